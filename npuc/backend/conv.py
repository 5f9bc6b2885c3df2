"""Convolution and fully connected layers on the weight-stationary array.

A convolution is lowered to one `gemm` per kernel position and per slice of
at most `rows` input channels: for kernel tap (ki, kj) the input pixels that
meet it are a strided view of the input box in the scratchpad
(`as0 = stride_w * channels`), so no im2col copy exists anywhere — the data
movement the cycle count sees is exactly what the DMA does. Partial sums
accumulate in the int32 accumulator SRAM; then `vaddv` adds the bias and
`vrq` requantizes to int8 with the fused activation as the clamp bounds.

Tiling (`plan_conv`) picks, in order: the input-channel chunk (all channels
if they fit), whether all weights stay resident in the scratchpad or two
weight slots are double-buffered, and the largest output tile (whole rows
first, then part of a row) whose input box and output fit twice in the
scratchpad (double buffering) and whose partial sums fit the accumulator.
A fully connected layer is a 1x1 convolution on a 1x1 image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..hw import HwConfig
from ..isa.arith import ROUNDING_BY_NAME
from .emit import ACC_ALIGN, SPAD_ALIGN, BackendError, Buf, Emitter, SlotCache, align_up


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class ConvGeom:
    cin: int
    h: int
    w: int
    cout: int
    oh: int
    ow: int
    kh: int = 1
    kw: int = 1
    sh: int = 1
    sw: int = 1
    dh: int = 1
    dw: int = 1
    pt: int = 0
    pl: int = 0

    def box(self, th: int, tw: int) -> tuple[int, int]:
        """Input rows and columns that a th x tw output tile reads."""
        return (th - 1) * self.sh + (self.kh - 1) * self.dh + 1, (tw - 1) * self.sw + (self.kw - 1) * self.dw + 1


@dataclass(frozen=True)
class ConvPlan:
    kc: int  # input channels per chunk
    th: int  # output rows per tile
    tw: int  # output columns per tile
    weights_resident: bool


def plan_conv(g: ConvGeom, hw: HwConfig, what: str) -> ConvPlan:
    """Choose chunk and tile sizes so every buffer fits its SRAM (see module doc)."""
    nt = min(hw.cols, g.cout)
    n_ct = cdiv(g.cout, hw.cols)
    acc_avail = hw.acc_words - 2 * align_up(3 * nt, ACC_ALIGN) - ACC_ALIGN

    def slot(n: int) -> int:
        return align_up(n, SPAD_ALIGN)

    kc_candidates = sorted({g.cin} | {min(g.cin, hw.rows * m) for m in (64, 32, 16, 8, 4, 2, 1)} | {
        min(g.cin, c) for c in (8, 4, 2, 1)}, reverse=True)
    for kc in kc_candidates:
        n_kc = cdiv(g.cin, kc)
        wblock = slot(g.kh * g.kw * kc * nt)
        resident = n_ct * n_kc * wblock <= hw.spad_bytes // 2
        w_bytes = n_ct * n_kc * wblock if resident else 2 * wblock
        room = hw.spad_bytes - w_bytes

        def fits(th: int, tw: int, kc: int = kc, room: int = room) -> bool:
            ih, iw = g.box(th, tw)
            return 2 * slot(ih * iw * kc) + 2 * slot(th * tw * nt) <= room and th * tw * nt <= acc_avail

        if fits(1, g.ow):
            th = _largest(lambda t: fits(t, g.ow), g.oh)
            return ConvPlan(kc, th, g.ow, resident)
        if fits(1, 1):
            tw = _largest(lambda t: fits(1, t), g.ow)
            return ConvPlan(kc, 1, tw, resident)
    raise BackendError(f"{what}: no tiling fits a {g.kh}x{g.kw} kernel over {g.cin} channels into "
                       f"{hw.spad_kib} KiB scratchpad and {hw.acc_kib} KiB accumulator")


def _largest(ok, hi: int) -> int:
    """Largest t in [1, hi] with ok(t), for ok monotone decreasing and ok(1) true."""
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _spans(total: int, step: int) -> list[tuple[int, int]]:
    return [(s, min(step, total - s)) for s in range(0, total, step)]


def pack_weights(wq: np.ndarray, kc: int, cols: int) -> list[list[np.ndarray]]:
    """Cut int8 weights (Cout, Cin, kh, kw) into blocks [cout tile][cin chunk], each laid
    out [ki][kj][cin][cout] — the k-major rows a `gemm` weight tile reads."""
    cout, cin = wq.shape[:2]
    blocks = []
    for j0, nt in _spans(cout, cols):
        row = []
        for c0, kcq in _spans(cin, kc):
            blk = wq[j0:j0 + nt, c0:c0 + kcq].transpose(2, 3, 1, 0)  # kh, kw, cin, cout
            row.append(np.ascontiguousarray(blk, dtype=np.int8))
        blocks.append(row)
    return blocks


def lower_conv(em: Emitter, g: ConvGeom, x: Buf, y: Buf, wq: np.ndarray, qop, in_zp: int, what: str) -> None:
    """Emit the instructions of one quantized convolution (or fully connected layer)."""
    hw = em.hw
    plan = plan_conv(g, hw, what)
    nt_max = min(hw.cols, g.cout)
    cout_tiles = _spans(g.cout, hw.cols)
    cin_chunks = _spans(g.cin, plan.kc)

    # constants in DRAM: weight blocks and, per cout tile, [bias | mul | shift] int32
    blocks = pack_weights(wq, plan.kc, hw.cols)
    w_addr = [[em.add_data(b) for b in row] for row in blocks]
    par_addr = []
    for j0, nt in cout_tiles:
        par = np.concatenate([qop.bias[j0:j0 + nt], qop.mul[j0:j0 + nt], qop.shift[j0:j0 + nt]])
        par_addr.append(em.add_data(par.astype("<i4")))

    # on-chip buffers
    ih_max, iw_max = g.box(plan.th, plan.tw)
    wblock = g.kh * g.kw * plan.kc * nt_max
    n_wslots = len(cout_tiles) * len(cin_chunks) if plan.weights_resident else 2
    w_cache = SlotCache([em.spad.take(wblock, what) for _ in range(n_wslots)])
    in_cache = SlotCache([em.spad.take(ih_max * iw_max * plan.kc, what) for _ in range(2)])
    out_slots = [em.spad.take(plan.th * plan.tw * nt_max, what) for _ in range(2)]
    par_cache = SlotCache([em.acc.take(3 * nt_max, what) for _ in range(2)])
    acc_tile = em.acc.take(plan.th * plan.tw * nt_max, what)
    rnd = int(ROUNDING_BY_NAME[qop.rounding])
    n_out = 0

    for r0, th in _spans(g.oh, plan.th):
        for c0, tw in _spans(g.ow, plan.tw):
            ih, iw = g.box(th, tw)
            for j, (j0, nt) in enumerate(cout_tiles):
                par, hit = par_cache.get(j)
                if not hit:
                    em.emit("lda", dst=par, src=par_addr[j], n0=1, n1=3 * nt)
                first = True
                for q, (k0, kcq) in enumerate(cin_chunks):
                    box, hit = in_cache.get((r0, c0, q))
                    if not hit:
                        _load_box(em, g, x, box, r0, c0, ih, iw, k0, kcq, in_zp)
                    wslot, hit = w_cache.get((j, q))
                    if not hit:
                        em.emit("ld", dst=wslot, src=w_addr[j][q], n0=1, n1=1, n2=blocks[j][q].size)
                    for ki in range(g.kh):
                        for kj in range(g.kw):
                            for rk in range(0, kcq, hw.rows):
                                em.emit(
                                    "gemm", dst=acc_tile,
                                    a=box + (ki * g.dh * iw + kj * g.dw) * kcq + rk,
                                    w=wslot + ((ki * g.kw + kj) * kcq + rk) * nt,
                                    m0=tw, m1=th, k=min(hw.rows, kcq - rk), n=nt,
                                    as0=g.sw * kcq, as1=g.sh * iw * kcq, ws=nt,
                                    ds0=nt, ds1=tw * nt, acc=0 if first else 1,
                                )
                                first = False
                out = out_slots[n_out % 2]
                n_out += 1
                m = th * tw
                em.emit("vaddv", dst=acc_tile, src=acc_tile, vec=par, m=m, n=nt, ds=nt, ss=nt)
                em.emit("vrq", dst=out, src=acc_tile, mul=par + nt, sh=par + 2 * nt, m=m, n=nt, ds=nt, ss=nt,
                        zp=qop.zp_out, lo=qop.lo, hi=qop.hi, rnd=rnd)
                em.emit("st", dst=y.at(r0, c0, j0), src=out, n0=th, n1=tw, n2=nt,
                        ds0=y.rs, ds1=y.ps, ss0=tw * nt, ss1=nt)


def _load_box(em: Emitter, g: ConvGeom, x: Buf, box: int, r0: int, c0: int, ih: int, iw: int,
              k0: int, kc: int, fill: int) -> None:
    """DMA the input window of an output tile into the scratchpad, padding with `fill`."""
    top = r0 * g.sh - g.pt
    left = c0 * g.sw - g.pl
    pt, n0, pb = _clip(top, ih, g.h)
    pl, n1, pr = _clip(left, iw, g.w)
    src = x.at(top + pt, left + pl, k0) if n0 and n1 else 0
    em.emit("ld", dst=box, src=src, n0=n0, n1=n1, n2=kc, ss0=x.rs, ss1=x.ps,
            ds0=iw * kc, ds1=kc, pt=pt, pb=pb, pl=pl, pr=pr, fill=fill)


def _clip(start: int, length: int, size: int) -> tuple[int, int, int]:
    """Split [start, start+length) into (before 0, inside [0, size), after size) counts."""
    before = min(length, max(0, -start))
    inside = max(0, min(start + length, size) - max(start, 0))
    return before, inside, length - before - inside
