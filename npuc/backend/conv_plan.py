"""How a convolution is tiled: the candidates that fit the SRAM, and a cost model that picks one.

A plan fixes the reduction layout (one gemm per kernel tap, or the taps packed
into the array's rows), the input-channel chunk, the output tile and whether
the weights stay resident across output tiles. `plan_conv` enumerates the
plans whose buffers fit the scratchpad and accumulator windows it is given and
returns the one the cost model (`estimate`) expects to finish first: the larger
of the compute unit's cycles (gemm chains with ISA.md's fold-overlap rule, the
`vrq` epilogue) and the DRAM channel's (every `ld`, `lda` and `st` the plan
issues, with its bursts), plus the ramp the pipeline cannot hide (the first
loads, the last store). The estimate is only used to choose; the simulator
measures.

Packed reductions (`packed=True`, for small input-channel counts): the
input of each output row is loaded as a row buffer `[x][ki][c]` (one `ld`
with the kernel rows as its outer dimension, so the kernel rows are
duplicated, at kh/sh times the input bytes), in which the window of output
pixel x, `kw * kh * kc` bytes, is contiguous: a fold of `R` reduction rows
is one gemm over consecutive bytes, so a 7x7x3 stem takes ceil(147/R) folds
instead of 49 * ceil(3/R). The weights are packed `[kj][ki][c][cout]` to
match. Only for ungrouped convolutions without horizontal dilation.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from ..hw import HwConfig
from ..isa.timing import fold_phases, tile_limits
from .emit import ACC_ALIGN, SPAD_ALIGN, align_up
from .schedule import DEFAULT, Schedule


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


FIELD_MAX = 1 << 16  # the largest k and n a gemm's fields hold (isa/table.py)


def array_steps(hw: HwConfig, group: int = 1) -> tuple[int, int, int | None]:
    """How the array's dataflow cuts a conv (isa/timing.py, tile_limits): (reduction rows per gemm,
    output channels per cout tile, output pixels per gemm or None for any). ws: (R, C, any);
    os: (the whole reduction, C, R); is: (R, every channel, C) — C channels for a grouped conv,
    whose block-diagonal weights would otherwise stream every output channel past each slice."""
    lm, lk, ln = tile_limits(hw)
    if ln is None and group > 1:
        ln = hw.cols
    return lk or FIELD_MAX, ln or FIELD_MAX, lm


def pixel_blocks(th: int, tw: int, limit: int | None) -> list[tuple[int, int, int, int]]:
    """(y0, rows, x0, cols) of the gemms' pixel blocks of a th x tw output tile, each at most `limit`
    pixels (None: the whole tile, one block): the block shape with the fewest blocks, the widest
    of those (a block is a 2-D box of the tile, the rows a gemm reads with its m0 and m1 loops)."""
    if limit is None or th * tw <= limit:
        return [(0, th, 0, tw)]
    best = min((cdiv(th, min(th, limit // bw)) * cdiv(tw, bw), -bw) for bw in range(1, min(tw, limit) + 1))
    bw = -best[1]
    bh = min(th, limit // bw)
    return [(y0, nh, x0, nw) for y0, nh in _spans(th, bh) for x0, nw in _spans(tw, bw)]


def _spans(total: int, step: int) -> list[tuple[int, int]]:
    return [(s, min(step, total - s)) for s in range(0, total, step)]


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

    def in_bytes(self, th: int, tw: int, kc: int, packed: bool) -> int:
        """Scratchpad bytes of one input buffer: the box, or th row buffers [x][ki][c]."""
        ih, iw = self.box(th, tw)
        return th * iw * self.kh * kc if packed else ih * iw * kc

    def can_pack(self) -> bool:
        return self.group == 1 and self.dw == 1 and self.kh * self.kw > 1


@dataclass(frozen=True)
class Estimate:
    """The cost model's view of a plan, in cycles."""

    compute: int  # compute unit: gemms (chains) and the epilogue
    dram: int  # DRAM channel: every transfer's bursts
    ramp: int  # what no overlap hides: the first loads, the last store
    dram_bytes: int

    @property
    def cycles(self) -> int:
        return max(self.compute, self.dram) + self.ramp


@dataclass(frozen=True)
class ConvPlan:
    kc: int  # input channels per chunk
    th: int  # output rows per tile
    tw: int  # output columns per tile
    weights_resident: bool  # every weight block loaded once, kept across output tiles
    packed: bool = False  # kernel taps packed into the reduction rows (row buffers [x][ki][c])
    est: Estimate | None = None
    in_sram: bool = False  # the input is already in the scratchpad (the previous layer's output)
    out_sram: bool = False  # the output stays in the scratchpad for the next layer


def tile_inputs(g: ConvGeom, j0: int, nt: int) -> tuple[int, int]:
    """The input channels [lo, hi) that output channels [j0, j0 + nt) read (their groups')."""
    cog, cig = g.cout // g.group, g.cin // g.group
    return (j0 // cog) * cig, ((j0 + nt - 1) // cog + 1) * cig


def _aligned_chunks(g: ConvGeom, hw: HwConfig) -> set[int]:
    """Chunk sizes whose boundaries fall on the cout tiles' input spans: their gcd and its divisors."""
    tiles = _spans(g.cout, array_steps(hw, g.group)[1])
    bounds = [b for j0, nt in tiles for b in tile_inputs(g, j0, nt) if 0 < b < g.cin]
    top = math.gcd(*bounds) if bounds else g.cin
    return {d for d in range(1, top + 1) if top % d == 0}


def block_gemms(g: ConvGeom, hw: HwConfig, kc: int, packed: bool) -> list[list[tuple[int, int]]]:
    """Per cout tile: (chunk index, gemms) of each weight block that is not all zero by the group
    structure (the lowering also skips blocks and rows the weights' values make zero)."""
    k_step, n_step, _ = array_steps(hw, g.group)
    return _block_gemms(g, k_step, n_step, kc, packed)


@lru_cache(maxsize=4096)
def _block_gemms(g: ConvGeom, rows: int, cols: int, kc: int, packed: bool) -> list[list[tuple[int, int]]]:
    chunks = _spans(g.cin, kc)
    if g.group == 1:  # every block is live
        row = [(q, cdiv(g.kh * g.kw * kcq, rows) if packed else g.kh * g.kw * cdiv(kcq, rows))
               for q, (_, kcq) in enumerate(chunks)]
        return [row] * cdiv(g.cout, cols)
    out = []
    for j0, nt in _spans(g.cout, cols):
        lo, hi = tile_inputs(g, j0, nt)
        row = []
        for q in range(lo // kc, cdiv(hi, kc)):  # the chunks that meet [lo, hi)
            k0, kcq = chunks[q]
            if packed:
                n = cdiv(g.kh * g.kw * kcq, rows)
            else:
                n = sum(1 for rk in range(0, kcq, rows) if k0 + rk < hi and k0 + min(kcq, rk + rows) > lo)
                n *= g.kh * g.kw
            if n:
                row.append((q, n))
        out.append(row)
    return out


def _structure(g: ConvGeom, hw: HwConfig, kc: int) -> tuple[int, int]:
    """For chunk size `kc` (one gemm per tap): (gemms per output tile, weight blocks not all zero)."""
    blocks = block_gemms(g, hw, kc, False)
    return sum(n for row in blocks for _, n in row), sum(len(row) for row in blocks)


def _kc_candidates(g: ConvGeom, hw: HwConfig) -> list[int]:
    step = array_steps(hw, g.group)[0]
    kcs = {g.cin} | {min(g.cin, step * m) for m in (64, 32, 16, 8, 4, 2, 1)} | {min(g.cin, c) for c in (8, 4, 2, 1)}
    if g.group > 1:
        kcs |= _aligned_chunks(g, hw)
    return sorted(kcs, reverse=True)


def _slot(n: int) -> int:
    return align_up(n, SPAD_ALIGN)


def plan_conv(g: ConvGeom, hw: HwConfig, what: str, nvec: int = 3, *, spad: int | None = None,
              acc: int | None = None, out_bufs: int = 2, in_sram: bool = False,
              out_sram: bool = False, schedule: Schedule = DEFAULT) -> ConvPlan | None:
    """The plan with the smallest estimate whose buffers fit `spad` bytes and `acc` words (default:
    the whole memories), or None when none fits.

    `nvec` is the number of per-channel int32 parameter vectors the epilogue keeps in the
    accumulator SRAM (bias, mul, shift: 3); `out_bufs` the tile-sized output buffers (two: the
    `vrq` of one tile overlaps the store of the other). `in_sram`: the input is a tensor already in
    the scratchpad (no input buffer, no load, one gemm per tap); `out_sram`: the output tiles go
    into a tensor kept in the scratchpad (no output buffer, no store). `schedule` may rule out
    packing, weight residency or tiles above a pixel count (`schedule.py`)."""
    spad = hw.spad_bytes if spad is None else spad
    acc = hw.acc_words if acc is None else acc
    nt = min(array_steps(hw, g.group)[1], g.cout)
    acc_room = acc - 2 * align_up(nvec * nt, ACC_ALIGN) - ACC_ALIGN
    best: ConvPlan | None = None
    taps: dict[int, int] = {}  # chunk -> gemms of one output tile, one gemm per tap
    if out_sram:
        out_bufs = 0
    cap = schedule.max_tile_pixels or g.oh * g.ow
    for packed in ([False, True] if g.can_pack() and not in_sram and schedule.pack_taps else [False]):
        for kc in _kc_candidates(g, hw):
            blocks = block_gemms(g, hw, kc, packed)
            if not packed:
                taps[kc] = sum(n for row in blocks for _, n in row)
            n_blocks = sum(len(row) for row in blocks)
            if packed and sum(n for row in blocks for _, n in row) >= taps[kc]:
                continue  # packing saves no fold at this chunk
            wblock = _slot(g.kh * g.kw * kc * nt)
            for resident in (True, False) if schedule.resident_weights else (False,):
                wbytes = max(n_blocks, 1) * wblock if resident else min(2, max(n_blocks, 1)) * wblock
                room = spad - wbytes

                def fits(th: int, tw: int, kc: int = kc, room: int = room, packed: bool = packed) -> bool:
                    inputs = 0 if in_sram else 2 * _slot(g.in_bytes(th, tw, kc, packed))
                    return (inputs + out_bufs * _slot(th * tw * nt) <= room and th * tw * nt <= acc_room
                            and th * tw <= cap)

                for th, tw in _tiles(g, fits):
                    plan = ConvPlan(kc, th, tw, resident, packed, None, in_sram, out_sram)
                    plan = ConvPlan(kc, th, tw, resident, packed, estimate(g, hw, plan, blocks, nvec), in_sram,
                                    out_sram)
                    if best is None or _better(plan, best):
                        best = plan
                if resident and n_blocks <= 2:
                    break  # streaming two slots is no smaller
    return best


def _better(a: ConvPlan, b: ConvPlan) -> bool:
    assert a.est is not None and b.est is not None
    return (a.est.cycles, a.est.dram_bytes) < (b.est.cycles, b.est.dram_bytes)


def _tiles(g: ConvGeom, fits) -> list[tuple[int, int]]:
    """Tile shapes worth estimating: the largest whole-row tile and the balanced one with as many
    tiles (or, when no whole row fits, the largest and balanced parts of a row)."""
    if fits(1, g.ow):
        th = _largest(lambda t: fits(t, g.ow), g.oh)
        return sorted({(th, g.ow), (cdiv(g.oh, cdiv(g.oh, th)), g.ow)})
    if fits(1, 1):
        tw = _largest(lambda t: fits(1, t), g.ow)
        return sorted({(1, tw), (1, cdiv(g.ow, cdiv(g.ow, tw)))})
    return []


def _xfer(hw: HwConfig, n0: int, n1: int, n2: int, contiguous: bool) -> int:
    """DMA transfer cycles (ISA.md, Bursts)."""
    return n0 * cdiv(n1 * n2, hw.dram_bw) if contiguous else n0 * n1 * cdiv(n2, hw.dram_bw)


def _chain(hw: HwConfig, m: int, k: int, n: int, gemms: int) -> int:
    """Compute cycles of `gemms` M x k x n gemms back to back (ISA.md, gemm Cycles)."""
    pre, stream, drain = fold_phases(hw, m, k, n)
    if not hw.fold_overlap:
        return gemms * (pre + stream + drain)
    return pre + drain + gemms * stream + (gemms - 1) * max(0, pre - stream)


def estimate(g: ConvGeom, hw: HwConfig, plan: ConvPlan, blocks: list[list[tuple[int, int]]],
             nvec: int = 3) -> Estimate:
    """Cycles of the compute unit and of the DRAM channel for `plan`, and the unhidden ramp."""
    k_step, n_step, m_step = array_steps(hw, g.group)
    couts = _spans(g.cout, n_step)
    chunks = _spans(g.cin, plan.kc)
    users = Counter(q for row in blocks for q, _ in row)  # chunk -> the cout tiles that read it
    used = sorted(users)
    cached = len(used) <= 2 or len(couts) == 1  # the two input slots hold every chunk of a tile
    wbytes = [g.kh * g.kw * chunks[q][1] * nt for row, (_, nt) in zip(blocks, couts) for q, _ in row]
    vec = hw.vec_latency
    k_fold = min(k_step, g.kh * g.kw * plan.kc if plan.packed else plan.kc)  # a typical gemm's k

    def tile_compute(th: int, tw: int, streamed: bool) -> int:
        m, out = th * tw, 0
        nb = len(pixel_blocks(th, tw, m_step))  # gemms per weight fold (os, is: pixel blocks)
        mb = cdiv(m, nb)
        pre, stream, drain = fold_phases(hw, mb, k_fold, min(n_step, g.cout))
        fill = pre + drain
        step = stream + max(0, pre - stream) if hw.fold_overlap else fill + stream  # a gemm inside a chain
        seq = []  # the weight blocks in emission order: (cout tile, gemms, load cycles)
        for j, ((_, nt), row) in enumerate(zip(couts, blocks)):
            n = sum(k for _, k in row)
            epilogue = vec * (th if plan.out_sram else 1) + m * cdiv(nt, hw.vec_lanes)  # a vrq per row into SRAM
            out += (_chain(hw, mb, k_fold, nt, n * nb) if n else 2 * vec + m * cdiv(nt, hw.vec_lanes)) + epilogue
            seq += [(j, k * nb, hw.dram_latency + cdiv(g.kh * g.kw * chunks[q][1] * nt, hw.dram_bw), epilogue)
                    for q, k in row]
        if streamed:
            # two weight slots: block b loads once block b-2's gemms are done, i.e. while block b-1
            # computes; a longer load stalls the array, and one not done when block b-1's last
            # gemm starts breaks the chain (its first gemm pays the fill again)
            for (pj, pk, _, pe), (j, _, load, _) in zip(seq, seq[1:]):
                window = pk * step + (pe if pj != j else 0)
                out += max(0, load - window)
                if pj == j and hw.fold_overlap and load > window - step:
                    out += fill
        return out

    def tile_inputs_dram(th: int, tw: int) -> tuple[int, int, int]:
        """(cycles, bytes, cycles of the first buffer) of a tile's input loads and output stores."""
        ih, iw = g.box(th, tw)
        cyc = nb = first = 0
        for q in used if not plan.in_sram else []:
            kcq = chunks[q][1]
            loads = 1 if cached else users[q]
            if plan.packed:
                x, b = th * _xfer(hw, g.kh, iw, kcq, kcq == g.cin), th * g.kh * iw * kcq
            else:
                x, b = _xfer(hw, ih, iw, kcq, kcq == g.cin), ih * iw * kcq
            cyc, nb, first = cyc + loads * x, nb + loads * b, first or x
        if plan.out_sram:
            return cyc, nb, first
        one_run = len(couts) == 1  # a dense output's pixel rows are contiguous only with one cout tile
        cyc += sum(_xfer(hw, th, tw, nt, one_run) for _, nt in couts)
        return cyc, nb + th * tw * g.cout, first

    tiles = [(th, tw) for _, th in _spans(g.oh, plan.th) for _, tw in _spans(g.ow, plan.tw)]
    w_cyc, w_bytes = sum(cdiv(b, hw.dram_bw) for b in wbytes), sum(wbytes)
    p_cyc = sum(cdiv(4 * nvec * nt, hw.dram_bw) for _, nt in couts)
    compute = dram = nbytes = 0
    for (th, tw), count in Counter(tiles).items():
        compute += count * tile_compute(th, tw, not plan.weights_resident)
        x, b, _ = tile_inputs_dram(th, tw)
        dram, nbytes = dram + count * x, nbytes + count * b
    reloads = len(tiles) if not plan.weights_resident else 1
    dram += reloads * w_cyc + (len(tiles) if len(couts) > 2 else 1) * p_cyc
    nbytes += reloads * w_bytes + (len(tiles) if len(couts) > 2 else 1) * 4 * nvec * g.cout
    if plan.weights_resident:  # the first tile streams them in
        compute += tile_compute(*tiles[0], True) - tile_compute(*tiles[0], False)
    th, tw = tiles[-1]
    last = vec + th * tw * cdiv(couts[-1][1], hw.vec_lanes)
    last += 0 if plan.out_sram else hw.dram_latency + _xfer(hw, th, tw, couts[-1][1], False)
    first_in = tile_inputs_dram(*tiles[0])[2]
    ramp = hw.dram_latency + first_in + (cdiv(wbytes[0], hw.dram_bw) if wbytes else 0) + last
    return Estimate(compute, dram, ramp, nbytes)
