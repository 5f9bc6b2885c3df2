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

import dataclasses

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


class _Tracker:
    """For one unit and one memory: the last instruction that read / wrote each page.

    Python lists, not numpy arrays: most regions span a few pages, where a list slice's max is
    several times cheaper than a numpy reduction (VGG-19 has 1.6 million instructions)."""

    def __init__(self, pages: int) -> None:
        self.last_read = [-1] * pages
        self.last_write = [-1] * pages


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
            need = -1
            for mem, p0, p1, write in regs:
                t = track[(u, mem)]
                need = max(need, max(t.last_write[p0:p1], default=-1))
                if write:
                    need = max(need, max(t.last_read[p0:p1], default=-1))
            if need > waited[pair]:
                wait[idx] |= bit
                signal[need] |= bit
                waited[pair] = need
        for mem, p0, p1, write in regs:
            t = track[(v, mem)]
            if p1 > p0:
                (t.last_write if write else t.last_read)[p0:p1] = [idx] * (p1 - p0)

    return [dataclasses.replace(i, wait=w, signal=s) for i, w, s in zip(insns, wait, signal)]
