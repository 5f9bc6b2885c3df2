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

import numpy as np

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
    """For one unit and one memory: the last instruction that read / wrote each page."""

    def __init__(self, pages: int) -> None:
        self.last_read = np.full(pages, -1, dtype=np.int64)
        self.last_write = np.full(pages, -1, dtype=np.int64)


def insert_tokens(insns: list[Insn], mem_sizes: dict[str, int]) -> list[Insn]:
    """Return `insns` with wait/signal masks that order every cross-unit hazard."""
    units = [BY_MNEMONIC[i.op].unit for i in insns]
    track = {
        (u, mem): _Tracker(-(-size // PAGE[mem]) + 1)
        for u in Unit
        for mem, size in mem_sizes.items()
    }
    waited = {pair: -1 for pair in TOKEN}
    wait = [0] * len(insns)
    signal = [0] * len(insns)

    for idx, insn in enumerate(insns):
        v = units[idx]
        regs = [(r.mem, r.lo // PAGE[r.mem], r.hi // PAGE[r.mem] + 1, r.write) for r in regions(insn)]
        for u in Unit:
            if u == v:
                continue
            need = -1
            for mem, p0, p1, write in regs:
                t = track[(u, mem)]
                need = max(need, int(t.last_write[p0:p1].max(initial=-1)))
                if write:
                    need = max(need, int(t.last_read[p0:p1].max(initial=-1)))
            pair = (u, v)
            if need > waited[pair]:
                bit = 1 << TOKEN[pair]
                wait[idx] |= bit
                signal[need] |= bit
                waited[pair] = need
        for mem, p0, p1, write in regs:
            t = track[(v, mem)]
            (t.last_write if write else t.last_read)[p0:p1] = idx

    return [dataclasses.replace(i, wait=w, signal=s) for i, w, s in zip(insns, wait, signal)]
