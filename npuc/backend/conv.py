"""Convolution and fully connected layers on the weight-stationary array.

A convolution is lowered to gemms over views of an input buffer in the
scratchpad, accumulating in the int32 accumulator SRAM, then one `vrq` per
output tile requantizes to int8 with the fused activation as the clamp
bounds. The bias enters through the accumulator: the first gemm of a tile
starts each output from the bias row (`acc=2`), so no vector pass adds it.

The reduction is laid out one of two ways (`conv_plan.py` chooses):

* one gemm per kernel tap and slice of at most `rows` input channels: for tap
  (ki, kj) the input pixels that meet it are a strided view of the input box
  (`as0 = stride_w * channels`), so no im2col copy exists anywhere;
* packed (small channel counts): each output row's input is loaded as a row
  buffer `[x][ki][c]`, in which an output pixel's whole window is contiguous,
  so one gemm covers `rows` consecutive reduction rows across taps — the DMA
  that lays the buffer out is an `ld` with its cost, the kernel rows
  duplicated (kh/sh times the input bytes).

The gemms of one output tile and cout tile follow each other on the compute
unit with nothing in between, so the array chains them (ISA.md, gemm Cycles:
each preload hides behind the previous gemm's rows); the input buffers and
the weight blocks they need are loaded ahead into double-buffered slots by
the load unit.

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

Tiling (`conv_plan.plan_conv`) picks the layout, the input-channel chunk,
the output tile and weight residency by a cost model, within the SRAM window
the layer was given (half of each memory, so consecutive layers overlap; the
whole of them when half fits nothing or costs more). A fully connected layer
is a 1x1 convolution on a 1x1 image.

The epilogue is parametrizable (`lower_conv`'s ``params`` and ``runs``): a
layer may carry several (mul, shift) vector pairs and requantize runs of
output pixels with different ones (AveragePool's per-count divisors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..hw import HwConfig
from ..ir import AccQ, QParams
from ..isa.arith import ROUNDING_BY_NAME
from ..isa.semantics import pack_int4
from ..isa.timing import gemm_cols
from .conv_plan import (
    ConvGeom,
    ConvPlan,
    _largest,
    _spans,
    _structure,
    array_steps,
    cdiv,
    pixel_blocks,
    plan_conv,
    tile_inputs,
)
from .emit import BackendError, Buf, Emitter, SlotCache

__all__ = ["ConvGeom", "ConvPlan", "FusedAdd", "Resident", "Run", "_largest", "_spans", "_structure", "cdiv",
           "choose_plan", "expand_groups", "lower_conv", "pack_weights", "plan_conv", "tile_inputs"]


def pack_weights(wq: np.ndarray, kc: int, cols: int, packed: bool = False) -> list[list[np.ndarray]]:
    """Cut int8 weights (Cout, Cin, kh, kw) into blocks [cout tile][cin chunk], each laid out
    [ki][kj][cin][cout] — the k-major rows a `gemm` weight tile reads — or, packed,
    [kj][ki][cin][cout]: the order of a row buffer's window."""
    cout, cin = wq.shape[:2]
    order = (3, 2, 1, 0) if packed else (2, 3, 1, 0)
    blocks = []
    for j0, nt in _spans(cout, cols):
        row = []
        for c0, kcq in _spans(cin, kc):
            blk = wq[j0:j0 + nt, c0:c0 + kcq].transpose(*order)
            row.append(np.ascontiguousarray(blk, dtype=np.int8))
        blocks.append(row)
    return blocks


def int4_array(hw: HwConfig) -> HwConfig:
    """The array an int4 layer tiles for: `int4_pack` times the columns (isa/ISA.md, gemm w4) where
    the dataflow limits n by the columns (ws, os), or the array itself where that would pass the
    declared column limit or in the is dataflow (n streams, unlimited; the cols limit the pixels)."""
    cols = gemm_cols(hw, True)
    return hw.replace(cols=cols) if cols <= 1024 and hw.dataflow != "is" else hw


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


def _fold_rows(blk: np.ndarray, rows: int) -> list[tuple[int, int]]:
    """(first row, end row) of each gemm of a packed block (its reduction rows flattened): one per
    `rows` rows, narrowed to the rows that hold a nonzero weight; all-zero folds are skipped."""
    live = np.any(blk.reshape(-1, blk.shape[-1]) != 0, axis=1)
    out = []
    for r0 in range(0, live.size, rows):
        nz = np.flatnonzero(live[r0:r0 + rows])
        if nz.size:
            out.append((r0 + int(nz[0]), r0 + int(nz[-1]) + 1))
    return out


@dataclass(frozen=True)
class _Gemm:
    """One gemm of a weight block: the tap (ki, kj) and first reduction row `r` it reads, its weight
    offset in the block and its reduction length (packed: ki = kj = 0, `r` the fold's first row)."""

    ki: int
    kj: int
    r: int
    w: int
    k: int


def _block_gemms(blk: np.ndarray, rows: int, nt: int, packed: bool) -> list[_Gemm]:
    if packed:
        return [_Gemm(0, 0, ra, ra * nt, rb - ra) for ra, rb in _fold_rows(blk, rows)]
    kw, kcq = blk.shape[1], blk.shape[2]
    return [_Gemm(ki, kj, ra, ((ki * kw + kj) * kcq + ra) * nt, rb - ra) for ki, kj, ra, rb in _gemm_rows(blk, rows)]


@dataclass(frozen=True)
class Resident:
    """A conv's output kept in the scratchpad for the conv that reads it (no DRAM round trip):
    hp x wp pixels of c channels at `addr`, the producer's pixel (y, x) at (y + pt, x + pl), the
    border around it holding the consumer's padding value `fill`; `window` is the consumer's SPAD
    window (its half of the scratchpad, below the tensor)."""

    addr: int
    c: int
    hp: int
    wp: int
    pt: int
    pl: int
    h: int
    w: int
    fill: int
    window: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return self.hp * self.wp * self.c

    def at(self, y: int, x: int, k: int = 0) -> int:
        """The address of channel k of the producer's pixel (y, x)."""
        return self.addr + ((y + self.pt) * self.wp + x + self.pl) * self.c + k


def choose_plan(em: Emitter, g: ConvGeom, what: str, nvec: int = 3, out_bufs: int = 2, *, in_sram: bool = False,
                out_sram: bool = False, hw: HwConfig | None = None) -> ConvPlan:
    """The plan for this layer's SRAM window (half of each memory), or for the whole memories when
    that is cheaper by more than the overlap with the previous layer the half buys, or when nothing
    fits half; the window is widened accordingly. A layer with a tensor resident in the scratchpad
    (`in_sram`, `out_sram`) keeps its window. `hw` (default the emitter's) is the array the plan
    tiles for: an int4 layer's is `int4_pack` times wider (`int4_array`)."""
    hw = hw or em.hw
    half = plan_conv(g, hw, what, nvec, spad=em.spad.capacity, acc=em.acc.capacity, out_bufs=out_bufs,
                     in_sram=in_sram, out_sram=out_sram, schedule=em.schedule)
    whole = None
    if em.spad.capacity < hw.spad_bytes and not (in_sram or out_sram):
        whole = plan_conv(g, hw, what, nvec, out_bufs=out_bufs, schedule=em.schedule)
    if whole is not None and (half is None or _cost(whole) + _overlap(half) < _cost(half)):
        em.use_whole()
        return whole
    if half is None:
        raise BackendError(f"{what}: no tiling fits a {g.kh}x{g.kw} kernel over {g.cin} channels into "
                           f"{hw.spad_kib} KiB scratchpad and {hw.acc_kib} KiB accumulator")
    return half


def _cost(p: ConvPlan) -> int:
    assert p.est is not None
    return p.est.cycles


def _overlap(p: ConvPlan) -> int:
    """What a layer in the other half of the SRAM than its predecessor saves: its first loads run
    while the predecessor finishes (the whole-SRAM layer waits for the predecessor's last reader)."""
    assert p.est is not None
    return p.est.ramp


@dataclass(frozen=True)
class FusedAdd:
    """An elementwise Add / Sub applied to each output tile while it is in the scratchpad
    (`placement.plan_fused_adds`): the tile of the other input is loaded beside it, one `vadd`
    in place, and the sum stored to the Add's output; those instructions are the Add's layer's."""

    other: Buf  # the Add's other input
    y: Buf  # the Add's output
    fields: dict[str, int]  # vadd's parameters (`elementwise.vadd_fields`)
    conv_is_a: bool  # the conv's output is vadd's operand a (the Add's first input)
    layer: int  # the Add's layer id


def lower_conv(em: Emitter, g: ConvGeom, x: Buf, y: Buf, wq: np.ndarray, qop: QParams, in_zp: int, what: str, *,
               params: np.ndarray | None = None,
               runs: Callable[[int, int, int, int], list[Run]] | None = None,
               fused: FusedAdd | None = None, rb_in: Resident | None = None,
               rb_out: Resident | None = None) -> ConvPlan:
    """Emit the instructions of one quantized convolution (or fully connected layer); return its plan.

    `wq` is dense (Cout, Cin, kh, kw) (see `expand_groups`). `params` (nvec, Cout) are the
    epilogue's int32 vectors: bias, then (mul, shift) pairs — default the `AccQ`'s one pair
    (`qop` gives the output stage: zero point, bounds, rounding).
    `runs(r0, th, c0, tw)` lists the `vrq`s of an output tile (default: one over the tile).
    `fused`: an Add applied to each output tile before it is stored (to the Add's output).
    `rb_in`: the input is in the scratchpad (the previous conv's `rb_out`), read in place;
    `rb_out`: the output tiles are written into that tensor instead of being stored."""
    w4 = getattr(qop, "weight_bits", 8) == 4  # int4 weights: two per byte, tiles up to int4_pack * cols wide
    hw = int4_array(em.hw) if w4 else em.hw
    if params is None:
        assert isinstance(qop, AccQ), f"{what}: a convolution without params needs an AccQ"
        params = np.stack([qop.bias, qop.mul, qop.shift])
    nvec = params.shape[0]
    plan = choose_plan(em, g, what, nvec, out_bufs=4 if fused else 2, in_sram=rb_in is not None,
                       out_sram=rb_out is not None, hw=hw)
    k_step, n_step, m_step = array_steps(hw, g.group)  # the dataflow's cuts: gemms fit the array
    nt_max = min(n_step, g.cout)
    cout_tiles = _spans(g.cout, n_step)
    cin_chunks = _spans(g.cin, plan.kc)

    # constants in DRAM: the weight blocks that are not all zero and, per cout tile, the
    # parameter vectors [bias | mul | shift | ...] int32
    blocks = pack_weights(wq, plan.kc, n_step, plan.packed)
    gemms = [[_block_gemms(b, k_step, nt, plan.packed) for b in row] for row, (_, nt) in zip(blocks, cout_tiles)]
    stored: dict[bytes, int] = {}  # equal blocks (AveragePool's identities) are stored and loaded once
    if w4:  # each block's cout rows packed two per byte (gemm w4: column 2i in the low nibble)
        blocks = [[pack_int4(b) for b in row] for row in blocks]
    w_addr = [[_store_once(em, stored, b) if gl else -1 for b, gl in zip(row, grow)]
              for row, grow in zip(blocks, gemms)]
    par_addr = [em.add_data(params[:, j0:j0 + nt].astype("<i4")) for j0, nt in cout_tiles]

    # on-chip buffers
    wblock = g.kh * g.kw * plan.kc * (cdiv(nt_max, 2) if w4 else nt_max)
    n_wslots = max(len(stored), 1) if plan.weights_resident else 2
    w_cache = SlotCache([em.spad.take(wblock, what) for _ in range(n_wslots)])
    in_cache = SlotCache([em.spad.take(g.in_bytes(plan.th, plan.tw, plan.kc, plan.packed), what)
                          for _ in range(0 if rb_in else 2)])
    out_slots = [em.spad.take(plan.th * plan.tw * nt_max, what) for _ in range(0 if rb_out else 2)]
    skip_slots = [em.spad.take(plan.th * plan.tw * nt_max, what) for _ in range(2)] if fused else []
    par_cache = SlotCache([em.acc.take(nvec * nt_max, what) for _ in range(2)])
    acc_tile = em.acc.take(plan.th * plan.tw * nt_max, what)
    rnd = int(ROUNDING_BY_NAME[qop.rounding])
    n_out = 0

    for r0, th in _spans(g.oh, plan.th):
        for c0, tw in _spans(g.ow, plan.tw):
            ih, iw = g.box(th, tw)
            m = th * tw
            pblocks = pixel_blocks(th, tw, m_step)
            for j, (j0, nt) in enumerate(cout_tiles):
                par, hit = par_cache.get(j)
                if not hit:
                    em.emit("lda", dst=par, src=par_addr[j], n0=1, n1=nvec * nt)
                first = True
                for q, (k0, kcq) in enumerate(cin_chunks):
                    if not gemms[j][q]:
                        continue  # all-zero weights: neither the box nor the block is needed
                    if rb_in is not None:  # the input in place: pixels c apart, rows wp * c apart
                        ps, rs = rb_in.c, rb_in.wp * rb_in.c
                        box = rb_in.addr + r0 * g.sh * rs + c0 * g.sw * ps + k0
                    else:
                        box, hit = in_cache.get((r0, c0, q))
                        if not hit:
                            load = _load_rows if plan.packed else _load_box
                            load(em, g, x, box, r0, c0, th, ih, iw, k0, kcq, in_zp)
                        ps, rs = kcq, iw * kcq
                    wslot, hit = w_cache.get(w_addr[j][q])
                    if not hit:
                        em.emit("ld", dst=wslot, src=w_addr[j][q], n0=1, n1=1, n2=blocks[j][q].size)
                    if plan.packed:  # row buffers of iw * kh * kcq bytes, pixels sw * kh * kcq apart
                        as0, as1 = g.sw * g.kh * kcq, iw * g.kh * kcq
                    else:
                        as0, as1 = g.sw * ps, g.sh * rs
                    wrow = cdiv(nt, 2) if w4 else nt  # bytes of one weight row
                    for gm in gemms[j][q]:
                        for y0, bh, x0, bw in pblocks:  # one block, the tile, in ws
                            em.emit("gemm", dst=acc_tile + (y0 * tw + x0) * nt,
                                    a=box + gm.ki * g.dh * rs + gm.kj * g.dw * ps + gm.r + y0 * as1 + x0 * as0,
                                    w=wslot + gm.w // nt * wrow, m0=bw, m1=bh, k=gm.k, n=nt, as0=as0, as1=as1,
                                    ws=wrow, ds0=nt, ds1=tw * nt, acc=2 if first else 1, bias=par, w4=int(w4))
                        first = False
                if first:  # no gemm: the last row := 0 (a sum of no rows), broadcast with the bias
                    zero = acc_tile + (m - 1) * nt
                    em.emit("vsum", dst=zero, src=0, m=0, n=nt, ss=0, acc=0)
                    em.emit("vaddv", dst=acc_tile, src=zero, vec=par, m=m, n=nt, ds=nt, ss=0)
                if rb_out is not None:  # into the tensor the next conv reads: one vrq per output row
                    if n_out == 0:
                        _fill_border(em, rb_out)
                    n_out += 1
                    rows = [(0, th)] if rb_out.wp == tw else [(i, 1) for i in range(th)]
                    for i, nr in rows:
                        em.emit("vrq", dst=rb_out.at(r0 + i, c0, j0), src=acc_tile + i * tw * nt, mul=par + nt,
                                sh=par + 2 * nt, m=nr * tw, n=nt, ds=rb_out.c, ss=nt, zp=qop.zp_out, lo=qop.lo,
                                hi=qop.hi, rnd=rnd)
                    continue
                out = out_slots[n_out % 2]
                n_out += 1
                for p0, mm, ps, k in (runs(r0, th, c0, tw) if runs is not None else [(0, m, 1, 0)]):
                    em.emit("vrq", dst=out + p0 * nt, src=acc_tile + p0 * nt, mul=par + (1 + 2 * k) * nt,
                            sh=par + (2 + 2 * k) * nt, m=mm, n=nt, ds=ps * nt, ss=ps * nt,
                            zp=qop.zp_out, lo=qop.lo, hi=qop.hi, rnd=rnd)
                if fused is None:
                    em.emit("st", dst=y.at(r0, c0, j0), src=out, n0=th, n1=tw, n2=nt,
                            ds0=y.rs, ds1=y.ps, ss0=tw * nt, ss1=nt)
                    continue
                sk, other, n = skip_slots[(n_out - 1) % 2], fused.other, m * nt
                em.emit("ld", layer=fused.layer, dst=sk, src=other.at(r0, c0, j0), n0=th, n1=tw, n2=nt,
                        ss0=other.rs, ss1=other.ps, ds0=tw * nt, ds1=nt)
                a, b = (out, sk) if fused.conv_is_a else (sk, out)
                em.emit("vadd", layer=fused.layer, dst=out, a=a, b=b, m=1, n=n, ds=n, bs=n, **{"as": n},
                        **fused.fields)
                em.emit("st", layer=fused.layer, dst=fused.y.at(r0, c0, j0), src=out, n0=th, n1=tw, n2=nt,
                        ds0=fused.y.rs, ds1=fused.y.ps, ss0=tw * nt, ss1=nt)
    return plan


def _fill_border(em: Emitter, rb: Resident) -> None:
    """Write the consumer's padding value around the producer's pixels in a resident tensor: an
    `ld` with no interior (all padding, no DRAM byte) per border strip."""
    c, wp, bottom, right = rb.c, rb.wp, rb.hp - rb.pt - rb.h, rb.wp - rb.pl - rb.w
    strips = [(0, rb.pt, wp), ((rb.pt + rb.h) * wp, bottom, wp),  # (first pixel, rows, columns)
              (rb.pt * wp, rb.h, rb.pl), (rb.pt * wp + rb.pl + rb.w, rb.h, right)]
    for p0, nr, nc in strips:
        if nr and nc:
            em.emit("ld", dst=rb.addr + p0 * c, src=0, n0=0, n1=0, n2=c, ss0=0, ss1=0, ds0=wp * c, ds1=c,
                    pt=nr, pb=0, pl=nc, pr=0, fill=rb.fill)


def _store_once(em: Emitter, stored: dict[bytes, int], block: np.ndarray) -> int:
    key = block.tobytes()
    if key not in stored:
        stored[key] = em.add_data(block)
    return stored[key]


def _load_box(em: Emitter, g: ConvGeom, x: Buf, box: int, r0: int, c0: int, th: int, ih: int, iw: int,
              k0: int, kc: int, fill: int) -> None:
    """DMA the input window of an output tile into the scratchpad, padding with `fill`."""
    top = r0 * g.sh - g.pt
    left = c0 * g.sw - g.pl
    pt, n0, pb = _clip(top, ih, g.h)
    pl, n1, pr = _clip(left, iw, g.w)
    src = x.at(top + pt, left + pl, k0) if n0 and n1 else 0
    em.emit("ld", dst=box, src=src, n0=n0, n1=n1, n2=kc, ss0=x.rs, ss1=x.ps,
            ds0=iw * kc, ds1=kc, pt=pt, pb=pb, pl=pl, pr=pr, fill=fill)


def _load_rows(em: Emitter, g: ConvGeom, x: Buf, buf: int, r0: int, c0: int, th: int, ih: int, iw: int,
               k0: int, kc: int, fill: int) -> None:
    """DMA the row buffers of an output tile, one `ld` per output row: [x][ki][c], the kernel rows
    (every dh-th input row from the row's top) as the outer dimension of the ld, padded with `fill`."""
    left = c0 * g.sw - g.pl
    pl, n1, pr = _clip(left, iw, g.w)
    for t in range(th):
        top = (r0 + t) * g.sh - g.pt
        before = min(g.kh, max(0, cdiv(-top, g.dh)))  # kernel rows above the image
        inside = max(0, min(g.kh, cdiv(g.h - top, g.dh)) - before)  # ... and inside it
        after = g.kh - before - inside
        src = x.at(top + before * g.dh, left + pl, k0) if inside and n1 else 0
        em.emit("ld", dst=buf + t * iw * g.kh * kc, src=src, n0=inside, n1=n1, n2=kc, ss0=g.dh * x.rs, ss1=x.ps,
                ds0=kc, ds1=g.kh * kc, pt=before, pb=after, pl=pl, pr=pr, fill=fill)


def _clip(start: int, length: int, size: int) -> tuple[int, int, int]:
    """Split [start, start+length) into (before 0, inside [0, size), after size) counts."""
    before = min(length, max(0, -start))
    inside = max(0, min(start + length, size) - max(start, 0))
    return before, inside, length - before - inside
