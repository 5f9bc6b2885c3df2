"""Depthwise convolutions on the depthwise engine (`dwc`, hardware `[depthwise] lanes > 0`).

A weight-stationary array runs a depthwise conv at 1/C of its columns at best
(block-diagonal weights); the engine multiplies `lanes` channels by `taps`
kernel taps a cycle. When the NPU has one and it is faster than the array's
plan for the layer (`use_engine`), the layer is lowered here: per channel
chunk and band of output rows, the input window is loaded (padded with the
input's zero point, as the array's path does) — or read in place when the
producing conv kept its output in the scratchpad (`Resident`, padded with the
same value) —, one `dwc` sums the taps from the bias and requantizes them
(the engine's output stage: multiplier, rounding shift, zero point, clamp, as
`vrq` does), and one `st` stores the band. Input windows and output bands are double-buffered. A
layer whose DRAM transfers outlast its sums reads each input row once: a band
shares its first kernel rows (the halo) with the previous band's last ones,
which one `vmax` of a row with itself copies from the other buffer (the vector
unit, idle in such a layer, instead of the DRAM channel). The
weights ([tap][channel] per chunk) and the per-channel parameters stay in
SRAM. The quantization (bias with the input zero point folded in, multiplier,
shift) is the conv's own, so the result is bit-identical to the array's.
"""

from __future__ import annotations

import numpy as np

from ..hw import HwConfig
from ..ir import AccQ
from ..isa.arith import ROUNDING_BY_NAME
from .conv import Resident, _clip, _load_box
from .conv_plan import ConvGeom, _spans, cdiv, plan_conv
from .emit import ACC_ALIGN, SPAD_ALIGN, Buf, Emitter, SlotCache, align_up

NVEC = 3  # bias, multiplier, shift


def is_depthwise(g: ConvGeom) -> bool:
    return g.group > 1 and g.group == g.cin == g.cout


def engine_cycles(g: ConvGeom, hw: HwConfig) -> int:
    """The engine's cycles for the layer's sums (ISA.md, dwc), without pipeline latencies."""
    return g.oh * g.ow * cdiv(g.cout, hw.lanes) * cdiv(g.kh * g.kw, hw.taps)


def use_engine(g: ConvGeom, hw: HwConfig, spad: int, acc: int, in_sram: bool = False) -> bool:
    """The NPU has an engine, the layer is depthwise, the engine's sums take fewer cycles than the
    array's plan computes, and a plan fits the window."""
    if hw.lanes == 0 or not is_depthwise(g) or plan_depthwise(g, hw, spad, acc, in_sram) is None:
        return False
    array = plan_conv(g, hw, "depthwise", spad=spad, acc=acc, in_sram=in_sram)
    return array is None or array.est is None or engine_cycles(g, hw) < array.est.compute


def plan_depthwise(g: ConvGeom, hw: HwConfig, spad: int, acc: int, in_sram: bool = False) -> tuple[int, int] | None:
    """(channels per chunk, output rows per band) that fit the windows, with bands of at most a
    quarter of the rows (loads, sums and stores overlap): the plan that reads the fewest input
    bytes from DRAM (bands re-read their kernel halo), then the widest chunk."""
    best: tuple[tuple[int, int], tuple[int, int]] | None = None
    for cc in sorted({g.cout, *(min(g.cout, c) for c in (512, 256, 128, 64, 32, 16))}, reverse=True):
        weights = len(_spans(g.cout, cc)) * align_up(g.kh * g.kw * cc, SPAD_ALIGN)  # every chunk's, resident
        for th in range(max(1, cdiv(g.oh, 4)), 0, -1):
            ih, iw = g.box(th, g.ow)
            inputs = 0 if in_sram else 2 * align_up(ih * iw * cc, SPAD_ALIGN)
            need = weights + inputs + 2 * align_up(th * g.ow * cc, SPAD_ALIGN)
            words = 2 * align_up(NVEC * cc, ACC_ALIGN) + ACC_ALIGN
            if need <= spad and words <= acc:
                read = 0 if in_sram else cdiv(g.oh, th) * ih  # input rows read, every channel
                key = (read, -cc)
                if best is None or key < best[0]:
                    best = (key, (cc, th))
                break
    return None if best is None else best[1]


def lower_depthwise(em: Emitter, g: ConvGeom, x: Buf, y: Buf, wq: np.ndarray, qop: AccQ, in_zp: int,
                    what: str, rb_in: Resident | None = None) -> None:
    """Emit one depthwise conv (`wq`: (C, 1, kh, kw) int8) on the engine; `rb_in`: its input is in
    the scratchpad (the previous conv's output, padded), read in place."""
    hw = em.hw
    plan = plan_depthwise(g, hw, em.spad.capacity, em.acc.capacity, rb_in is not None)
    assert plan is not None, f"{what}: use_engine said a plan fits"
    cc_max, band = plan
    chunks = _spans(g.cout, cc_max)
    taps = np.ascontiguousarray(wq[:, 0].transpose(1, 2, 0))  # (kh, kw, C): [tap][channel]
    params = np.stack([qop.bias, qop.mul, qop.shift]).astype("<i4")
    w_addr = [em.add_data(np.ascontiguousarray(taps[:, :, c0:c0 + cc])) for c0, cc in chunks]
    p_addr = [em.add_data(np.ascontiguousarray(params[:, c0:c0 + cc])) for c0, cc in chunks]
    w_slots = [em.spad.take(g.kh * g.kw * cc, what) for _, cc in chunks]
    ih_max, iw = g.box(band, g.ow)
    in_cache = SlotCache([em.spad.take(ih_max * iw * cc_max, what) for _ in range(0 if rb_in else 2)])
    out_slots = [em.spad.take(band * g.ow * cc_max, what) for _ in range(2)]
    par_cache = SlotCache([em.acc.take(NVEC * cc_max, what) for _ in range(2)])
    rnd = int(ROUNDING_BY_NAME[qop.rounding])
    halo = max(0, (g.kh - 1) * g.dh + 1 - g.sh)  # input rows a band shares with the next
    reuse = rb_in is None and halo > 0 and _dram_bound(g, hw)
    n_out = 0
    for q, (c0, cc) in enumerate(chunks):
        prev: tuple[int, int] | None = None  # the previous band's input buffer and rows
        em.emit("ld", dst=w_slots[q], src=w_addr[q], n0=1, n1=1, n2=g.kh * g.kw * cc)
        par, hit = par_cache.get(q)
        if not hit:
            em.emit("lda", dst=par, src=p_addr[q], n0=1, n1=NVEC * cc)
        for r0, th in _spans(g.oh, band):
            ih, _ = g.box(th, g.ow)
            if rb_in is not None:  # in place: pixels c apart, rows wp * c apart, the padding around
                ps, rs = rb_in.c, rb_in.wp * rb_in.c
                box = rb_in.addr + r0 * g.sh * rs + c0
            else:
                ps, rs = cc, iw * cc
                box, hit = in_cache.get((q, r0))
                if not hit and reuse and prev is not None:  # the halo from the other buffer, the rest from DRAM
                    src = prev[0] + (prev[1] - halo) * rs
                    em.emit("vmax", dst=box, a=src, b=src, m=halo * iw, n=cc, ds=cc, bs=cc, **{"as": cc})
                    _load_rows(em, g, x, box + halo * rs, r0 * g.sh - g.pt + halo, ih - halo, iw, c0, cc, in_zp)
                elif not hit:
                    _load_box(em, g, x, box, r0, 0, th, ih, iw, c0, cc, in_zp)
                prev = (box, ih)
            out = out_slots[n_out % 2]
            n_out += 1
            em.emit("dwc", dst=out, a=box, w=w_slots[q], m0=g.ow, m1=th, c=cc, kh=g.kh, kw=g.kw,
                    as0=g.sw * ps, as1=g.sh * rs, ts0=g.dw * ps, ts1=g.dh * rs, ds=cc, par=par,
                    zp=qop.zp_out, lo=qop.lo, hi=qop.hi, rnd=rnd)
            em.emit("st", dst=y.at(r0, 0, c0), src=out, n0=th, n1=g.ow, n2=cc, ds0=y.rs, ds1=y.ps,
                    ss0=g.ow * cc, ss1=cc)


def _dram_bound(g: ConvGeom, hw: HwConfig) -> bool:
    """The layer's DRAM transfers (input and output, once) take longer than the engine."""
    dram = cdiv(g.h * g.w * g.cin + g.oh * g.ow * g.cout, hw.dram_bw)
    compute = engine_cycles(g, hw)
    return dram > compute


def _load_rows(em: Emitter, g: ConvGeom, x: Buf, dst: int, top: int, rows: int, iw: int, k0: int, kc: int,
               fill: int) -> None:
    """DMA input rows [top, top + rows) (padded-image coordinates from the top pad) of the window
    columns [-pl, iw - pl) into `dst`, padding with `fill` (as `conv._load_box` does a whole window)."""
    pt, n0, pb = _clip(top, rows, g.h)
    pl, n1, pr = _clip(-g.pl, iw, g.w)
    src = x.at(top + pt, -g.pl + pl, k0) if n0 and n1 else 0
    em.emit("ld", dst=dst, src=src, n0=n0, n1=n1, n2=kc, ss0=x.rs, ss1=x.ps, ds0=iw * kc, ds1=kc,
            pt=pt, pb=pb, pl=pl, pr=pr, fill=fill)
