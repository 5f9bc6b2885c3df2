"""Dependency tokens: make a sequential instruction list safe on three parallel units.

The code generator writes the program as if one unit executed it in order.
This pass finds every cross-unit hazard (read-after-write, write-after-read,
write-after-write on DRAM, SPAD or ACC) and inserts a token from the earlier
instruction to the later one, so the three units may overlap wherever the
data allows — double buffering shows up in the cycle count by itself.

One counting semaphore per ordered pair of units carries the tokens. Each unit
runs in order, so a unit V only needs to wait for the *latest* conflicting
instruction of unit U, and only when it has not already waited for a later
one; the k-th wait on a semaphore then always takes the k-th token.
"""

from __future__ import annotations

from .. import limits
from ..hw import HwConfig
from ..isa.program import Insn
from ..isa.regions import ACC, DRAM, SPAD, regions
from ..isa.table import BY_MNEMONIC, Unit

# semaphore of each ordered unit pair (producer, consumer)
TOKEN: dict[tuple[Unit, Unit], int] = {
    (Unit.LOAD, Unit.COMPUTE): 0,
    (Unit.COMPUTE, Unit.LOAD): 1,
    (Unit.COMPUTE, Unit.STORE): 2,
    (Unit.STORE, Unit.COMPUTE): 3,
    (Unit.STORE, Unit.LOAD): 4,
    (Unit.LOAD, Unit.STORE): 5,
}

# tracking granularity per memory (bytes, or words for ACC); coarser pages are
# cheaper and only ever add dependencies
PAGE = {DRAM: 64, SPAD: 32, ACC: 8}  # DRAM buffers are 64-byte aligned: no false sharing


BLOCK = 64  # pages summarized by one entry of a tracker's block maxima


class _Pages:
    """The last instruction index that touched each page, with the maximum of every BLOCK pages.

    Indices only grow, so writing idx over a range makes idx the maximum of every block the range
    touches: the block maxima stay exact, and the maximum over a long range (a weight block spans
    thousands of DRAM pages) reads a few block entries instead of every page."""

    def __init__(self, pages: int) -> None:
        self.page = [-1] * pages
        self.block = [-1] * (pages // BLOCK + 1)
        self.latest = -1  # the maximum over all pages: most queries stop here

    def max(self, p0: int, p1: int) -> int:
        if p1 - p0 <= 2 * BLOCK:
            return max(self.page[p0:p1], default=-1)
        b0, b1 = -(-p0 // BLOCK), p1 // BLOCK
        return max(max(self.block[b0:b1]), max(self.page[p0:b0 * BLOCK], default=-1),
                   max(self.page[b1 * BLOCK:p1], default=-1))

    def set(self, p0: int, p1: int, idx: int) -> None:
        if p1 > p0:
            self.latest = idx
            self.page[p0:p1] = [idx] * (p1 - p0)
            b0, b1 = p0 // BLOCK, (p1 - 1) // BLOCK + 1
            self.block[b0:b1] = [idx] * (b1 - b0)


class _Tracker:
    """For one unit and one memory: the last instruction that read / wrote each page."""

    def __init__(self, pages: int) -> None:
        self.last_read = _Pages(pages)
        self.last_write = _Pages(pages)


def insert_tokens(insns: list[Insn], mem_sizes: dict[str, int]) -> list[Insn]:
    """Return `insns` with wait/signal masks that order every cross-unit hazard."""
    units = [BY_MNEMONIC[i.op].unit for i in insns]
    pages = {mem: -(-size // PAGE[mem]) + 1 for mem, size in mem_sizes.items()}
    track = {
        (u, mem): _Tracker(pages[mem])
        for u in Unit
        for mem, size in mem_sizes.items()
    }
    others = {v: [(u, (u, v), 1 << TOKEN[(u, v)]) for u in Unit if u != v] for v in Unit}
    waited = {pair: -1 for pair in TOKEN}
    wait = [0] * len(insns)
    signal = [0] * len(insns)

    for idx, insn in enumerate(insns):
        v = units[idx]
        # clamped to the memory, as a numpy slice would be (the assembler reports out-of-range boxes)
        regs = [(r.mem, r.lo // PAGE[r.mem], min(r.hi // PAGE[r.mem] + 1, pages[r.mem]), r.write)
                for r in regions(insn)]
        for u, pair, bit in others[v]:
            floor = need = waited[pair]  # only an instruction after the last one waited for matters
            for mem, p0, p1, write in regs:
                t = track[(u, mem)]
                if t.last_write.latest > need:
                    need = max(need, t.last_write.max(p0, p1))
                if write and t.last_read.latest > need:
                    need = max(need, t.last_read.max(p0, p1))
            if need > floor:
                wait[idx] |= bit
                signal[need] |= bit
                waited[pair] = need
        for mem, p0, p1, write in regs:
            t = track[(v, mem)]
            (t.last_write if write else t.last_read).set(p0, p1, idx)

    return [Insn(i.op, i.fields, w, s, i.layer, i.line) for i, w, s in zip(insns, wait, signal)]


def check_tracking_memory(hw: HwConfig) -> None:
    """Dependency tracking keeps, per unit, the last reader and writer of every SRAM page as int64:
    its memory grows with the SRAM sizes of `hw`; refuse sizes beyond the memory limit up front."""
    pages = -(-hw.spad_bytes // PAGE[SPAD]) + -(-hw.acc_words // PAGE[ACC])
    limits.check(f"compiling for SPAD of {hw.spad_bytes} bytes and ACC of {hw.acc_words} words (dependency "
                 "tracking of every SRAM page)", 3 * 2 * 8 * pages)
