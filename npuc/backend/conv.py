"""Convolution and fully connected layers on the weight-stationary array.

A convolution is lowered to one `gemm` per kernel position and per slice of
at most `rows` input channels: for kernel tap (ki, kj) the input pixels that
meet it are a strided view of the input box in the scratchpad
(`as0 = stride_w * channels`), so no im2col copy exists anywhere — the data
movement the cycle count sees is exactly what the DMA does. Partial sums
accumulate in the int32 accumulator SRAM; then `vaddv` adds the bias and
`vrq` requantizes to int8 with the fused activation as the clamp bounds.

Zero work is skipped, which is how grouped and depthwise convolutions run:
their weights are expanded to a block-diagonal dense (Cout, Cin, kh, kw)
(`expand_groups`), and a `gemm` whose weight sub-block (cout tile, up to
`rows` input rows of one chunk, one tap) is all zero is not emitted — its k
is also narrowed to the rows that hold a nonzero weight; a weight block that
is all zero is neither stored in DRAM nor loaded (and equal blocks, such as
AveragePool's identities, are stored and loaded once); an input box no gemm of a
cout tile needs is not loaded for it. A cout tile left with no gemm at all
(all its weights zero) gets its accumulator defined by a `vsum` of no rows
(zeros) broadcast through the bias `vaddv`.

Tiling (`plan_conv`) picks, in order: the input-channel chunk (all channels
if they fit), whether all weights stay resident in the scratchpad or two
weight slots are double-buffered, and the largest output tile (whole rows
first, then part of a row) whose input box and output fit twice in the
scratchpad (double buffering) and whose partial sums fit the accumulator.
For a grouped convolution every chunk size that fits is tried (also the
ones aligned to the input span of a cout tile) and the one with the fewest
estimated array cycles wins: a depthwise conv over C channels on an R x C
array then costs one k = R, n = C gemm per tap and cout tile.
A fully connected layer is a 1x1 convolution on a 1x1 image.

The epilogue is parametrizable (`lower_conv`'s ``params`` and ``runs``): a
layer may carry several (mul, shift) vector pairs and requantize runs of
output pixels with different ones (AveragePool's per-count divisors).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..hw import HwConfig
from ..ir import AccQ, QParams
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
    group: int = 1  # output channel o reads input channels of group o // (cout/group) only

    def box(self, th: int, tw: int) -> tuple[int, int]:
        """Input rows and columns that a th x tw output tile reads."""
        return (th - 1) * self.sh + (self.kh - 1) * self.dh + 1, (tw - 1) * self.sw + (self.kw - 1) * self.dw + 1


@dataclass(frozen=True)
class ConvPlan:
    kc: int  # input channels per chunk
    th: int  # output rows per tile
    tw: int  # output columns per tile
    weights_resident: bool


def plan_conv(g: ConvGeom, hw: HwConfig, what: str, nvec: int = 3) -> ConvPlan:
    """Choose chunk and tile sizes so every buffer fits its SRAM (see module doc).

    `nvec` is the number of per-channel int32 parameter vectors the epilogue keeps in the
    accumulator SRAM (bias, mul, shift: 3)."""
    nt = min(hw.cols, g.cout)
    n_ct = cdiv(g.cout, hw.cols)
    acc_avail = hw.acc_words - 2 * align_up(nvec * nt, ACC_ALIGN) - ACC_ALIGN
    kc_candidates = sorted({g.cin} | {min(g.cin, hw.rows * m) for m in (64, 32, 16, 8, 4, 2, 1)} | {
        min(g.cin, c) for c in (8, 4, 2, 1)}, reverse=True)
    if g.group == 1:
        for kc in kc_candidates:
            plan = _fit(g, hw, kc, n_ct * cdiv(g.cin, kc), acc_avail)
            if plan is not None:
                return plan
    else:
        best: tuple[tuple[int, int], ConvPlan] | None = None
        for kc in sorted(set(kc_candidates) | _aligned_chunks(g, hw), reverse=True):
            gemms, blocks = _structure(g, hw, kc)
            plan = _fit(g, hw, kc, blocks, acc_avail)
            if plan is None:
                continue
            positions = cdiv(g.oh, plan.th) * cdiv(g.ow, plan.tw)
            cost = (gemms * (positions * (2 * hw.rows + hw.cols - 2) + g.oh * g.ow), blocks * kc)
            if best is None or cost < best[0]:
                best = (cost, plan)
        if best is not None:
            return best[1]
    raise BackendError(f"{what}: no tiling fits a {g.kh}x{g.kw} kernel over {g.cin} channels into "
                       f"{hw.spad_kib} KiB scratchpad and {hw.acc_kib} KiB accumulator")


def _fit(g: ConvGeom, hw: HwConfig, kc: int, n_blocks: int, acc_avail: int) -> ConvPlan | None:
    """The plan with chunk `kc` and the largest output tile, or None when nothing fits.
    `n_blocks` weight blocks stay resident when they fill at most half the scratchpad."""
    nt = min(hw.cols, g.cout)

    def slot(n: int) -> int:
        return align_up(n, SPAD_ALIGN)

    wblock = slot(g.kh * g.kw * kc * nt)
    resident = n_blocks * wblock <= hw.spad_bytes // 2
    room = hw.spad_bytes - (n_blocks * wblock if resident else 2 * wblock)

    def fits(th: int, tw: int) -> bool:
        ih, iw = g.box(th, tw)
        return 2 * slot(ih * iw * kc) + 2 * slot(th * tw * nt) <= room and th * tw * nt <= acc_avail

    if fits(1, g.ow):
        return ConvPlan(kc, _largest(lambda t: fits(t, g.ow), g.oh), g.ow, resident)
    if fits(1, 1):
        return ConvPlan(kc, 1, _largest(lambda t: fits(1, t), g.ow), resident)
    return None


def tile_inputs(g: ConvGeom, j0: int, nt: int) -> tuple[int, int]:
    """The input channels [lo, hi) that output channels [j0, j0 + nt) read (their groups')."""
    cog, cig = g.cout // g.group, g.cin // g.group
    return (j0 // cog) * cig, ((j0 + nt - 1) // cog + 1) * cig


def _aligned_chunks(g: ConvGeom, hw: HwConfig) -> set[int]:
    """Chunk sizes whose boundaries fall on the cout tiles' input spans: their gcd and its divisors."""
    bounds = [b for j0, nt in _spans(g.cout, hw.cols) for b in tile_inputs(g, j0, nt) if 0 < b < g.cin]
    top = math.gcd(*bounds) if bounds else g.cin
    return {d for d in range(1, top + 1) if top % d == 0}


def _structure(g: ConvGeom, hw: HwConfig, kc: int) -> tuple[int, int]:
    """For chunk size `kc` of a grouped conv: (gemms per output tile, weight blocks not all zero)."""
    gemms = blocks = 0
    for j0, nt in _spans(g.cout, hw.cols):
        lo, hi = tile_inputs(g, j0, nt)
        for k0 in range(lo // kc * kc, hi, kc):  # the chunks that meet [lo, hi)
            kcq = min(kc, g.cin - k0)
            blocks += 1
            gemms += sum(1 for rk in range(0, kcq, hw.rows) if k0 + rk < hi and k0 + min(kcq, rk + hw.rows) > lo)
    return gemms * g.kh * g.kw, blocks


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


def expand_groups(wq: np.ndarray, group: int) -> np.ndarray:
    """Grouped weights (Cout, Cin/group, kh, kw) -> block-diagonal dense (Cout, Cin, kh, kw), zeros elsewhere."""
    if group == 1:
        return wq
    cout, cig = wq.shape[:2]
    cog = cout // group
    dense = np.zeros((cout, cig * group, *wq.shape[2:]), dtype=wq.dtype)
    for gi in range(group):
        dense[gi * cog:(gi + 1) * cog, gi * cig:(gi + 1) * cig] = wq[gi * cog:(gi + 1) * cog]
    return dense


# a run of output pixels of a tile requantized by one `vrq`: (first pixel, pixels, pixel stride, k)
# with k the (mul, shift) pair: rows 1 + 2k and 2 + 2k of the parameter vectors
Run = tuple[int, int, int, int]


def _gemm_rows(blk: np.ndarray, rows: int) -> list[tuple[int, int, int, int]]:
    """(ki, kj, first row, end row) of each gemm a weight block needs: per tap and per `rows` slice,
    the rows from the first to the last that hold a nonzero weight; all-zero slices are skipped."""
    kh, kw, kc, _ = blk.shape
    n_sl = cdiv(kc, rows)
    live = np.zeros((kh, kw, n_sl * rows), dtype=bool)  # padded to whole slices, one vector op per block
    live[:, :, :kc] = np.any(blk != 0, axis=3)
    live = live.reshape(kh, kw, n_sl, rows)
    first = np.argmax(live, axis=3)
    last = rows - 1 - np.argmax(live[..., ::-1], axis=3)
    ki, kj, sl = np.nonzero(np.any(live, axis=3))  # row-major: taps in order, slices within a tap
    rk = sl * rows
    return list(zip(ki.tolist(), kj.tolist(), (rk + first[ki, kj, sl]).tolist(),
                    (rk + last[ki, kj, sl] + 1).tolist()))


def lower_conv(em: Emitter, g: ConvGeom, x: Buf, y: Buf, wq: np.ndarray, qop: QParams, in_zp: int, what: str, *,
               params: np.ndarray | None = None,
               runs: Callable[[int, int, int, int], list[Run]] | None = None) -> None:
    """Emit the instructions of one quantized convolution (or fully connected layer).

    `wq` is dense (Cout, Cin, kh, kw) (see `expand_groups`). `params` (nvec, Cout) are the
    epilogue's int32 vectors: bias, then (mul, shift) pairs — default the `AccQ`'s one pair
    (`qop` gives the output stage: zero point, bounds, rounding).
    `runs(r0, th, c0, tw)` lists the `vrq`s of an output tile (default: one over the tile)."""
    hw = em.hw
    if params is None:
        assert isinstance(qop, AccQ), f"{what}: a convolution without params needs an AccQ"
        params = np.stack([qop.bias, qop.mul, qop.shift])
    nvec = params.shape[0]
    plan = plan_conv(g, hw, what, nvec)
    nt_max = min(hw.cols, g.cout)
    cout_tiles = _spans(g.cout, hw.cols)
    cin_chunks = _spans(g.cin, plan.kc)

    # constants in DRAM: the weight blocks that are not all zero and, per cout tile, the
    # parameter vectors [bias | mul | shift | ...] int32
    blocks = pack_weights(wq, plan.kc, hw.cols)
    gemms = [[_gemm_rows(b, hw.rows) for b in row] for row in blocks]
    stored: dict[bytes, int] = {}  # equal blocks (AveragePool's identities) are stored and loaded once
    w_addr = [[_store_once(em, stored, b) if gl else -1 for b, gl in zip(row, grow)]
              for row, grow in zip(blocks, gemms)]
    par_addr = []
    for j0, nt in cout_tiles:
        par_addr.append(em.add_data(params[:, j0:j0 + nt].astype("<i4")))

    # on-chip buffers
    ih_max, iw_max = g.box(plan.th, plan.tw)
    wblock = g.kh * g.kw * plan.kc * nt_max
    n_wslots = max(len(stored), 1) if plan.weights_resident else 2
    w_cache = SlotCache([em.spad.take(wblock, what) for _ in range(n_wslots)])
    in_cache = SlotCache([em.spad.take(ih_max * iw_max * plan.kc, what) for _ in range(2)])
    out_slots = [em.spad.take(plan.th * plan.tw * nt_max, what) for _ in range(2)]
    par_cache = SlotCache([em.acc.take(nvec * nt_max, what) for _ in range(2)])
    acc_tile = em.acc.take(plan.th * plan.tw * nt_max, what)
    rnd = int(ROUNDING_BY_NAME[qop.rounding])
    n_out = 0

    for r0, th in _spans(g.oh, plan.th):
        for c0, tw in _spans(g.ow, plan.tw):
            ih, iw = g.box(th, tw)
            m = th * tw
            for j, (j0, nt) in enumerate(cout_tiles):
                par, hit = par_cache.get(j)
                if not hit:
                    em.emit("lda", dst=par, src=par_addr[j], n0=1, n1=nvec * nt)
                first = True
                for q, (k0, kcq) in enumerate(cin_chunks):
                    if not gemms[j][q]:
                        continue  # all-zero weights: neither the box nor the block is needed
                    box, hit = in_cache.get((r0, c0, q))
                    if not hit:
                        _load_box(em, g, x, box, r0, c0, ih, iw, k0, kcq, in_zp)
                    wslot, hit = w_cache.get(w_addr[j][q])
                    if not hit:
                        em.emit("ld", dst=wslot, src=w_addr[j][q], n0=1, n1=1, n2=blocks[j][q].size)
                    for ki, kj, ra, rb in gemms[j][q]:
                        em.emit(
                            "gemm", dst=acc_tile,
                            a=box + (ki * g.dh * iw + kj * g.dw) * kcq + ra,
                            w=wslot + ((ki * g.kw + kj) * kcq + ra) * nt,
                            m0=tw, m1=th, k=rb - ra, n=nt,
                            as0=g.sw * kcq, as1=g.sh * iw * kcq, ws=nt,
                            ds0=nt, ds1=tw * nt, acc=0 if first else 1,
                        )
                        first = False
                out = out_slots[n_out % 2]
                n_out += 1
                if first:  # no gemm: the last row := 0 (a sum of no rows), broadcast with the bias
                    zero = acc_tile + (m - 1) * nt
                    em.emit("vsum", dst=zero, src=0, m=0, n=nt, ss=0, acc=0)
                    em.emit("vaddv", dst=acc_tile, src=zero, vec=par, m=m, n=nt, ds=nt, ss=0)
                else:
                    em.emit("vaddv", dst=acc_tile, src=acc_tile, vec=par, m=m, n=nt, ds=nt, ss=nt)
                for p0, mm, ps, k in (runs(r0, th, c0, tw) if runs is not None else [(0, m, 1, 0)]):
                    em.emit("vrq", dst=out + p0 * nt, src=acc_tile + p0 * nt, mul=par + (1 + 2 * k) * nt,
                            sh=par + (2 + 2 * k) * nt, m=mm, n=nt, ds=ps * nt, ss=ps * nt,
                            zp=qop.zp_out, lo=qop.lo, hi=qop.hi, rnd=rnd)
                em.emit("st", dst=y.at(r0, c0, j0), src=out, n0=th, n1=tw, n2=nt,
                        ds0=y.rs, ds1=y.ps, ss0=tw * nt, ss1=nt)


def _store_once(em: Emitter, stored: dict[bytes, int], block: np.ndarray) -> int:
    key = block.tobytes()
    if key not in stored:
        stored[key] = em.add_data(block)
    return stored[key]


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
