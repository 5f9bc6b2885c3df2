"""The numpy emulator of the ISA: the living definition the C simulator is tested against.

    res = emulate(words_or_insns, dram, hw)
    res.dram, res.stats.cycles, res.insn_start, res.insn_end

`isa/semantics.py` holds what each instruction does; this module holds when:
the three units, the token semaphores and the DRAM channel of ISA.md, "Units,
tokens and time", step by step. Its results (final DRAM, statistics,
per-instruction start and end cycles) and its errors (instruction index and
message text) are the C simulator's (`npuc.sim.core.run_words`), which a
test checks on random programs.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from npuc.hw import HwConfig

from .encoding import DecodeError, EncodeError, decode, encode
from .program import Insn
from .semantics import SEMANTICS, Fault, Machine
from .stats import ACTION_COUNTERS, RunStats
from .table import BY_MNEMONIC, HEADER_WORDS, NUM_TOKENS, WORDS_PER_INSN, Unit
from .timing import tile_limits, tile_problem

UNIT_NAMES = tuple(u.name.lower() for u in Unit)  # ("load", "compute", "store")
_FIELD_NAMES = {m: s.field_names() for m, s in BY_MNEMONIC.items()}

# A semaphore never holds more tokens than this; one more is an error. Not in
# ISA.md: the C simulator's bound on its heaps, mirrored so both models agree.
TOKEN_MAX = 65535

class EmuError(RuntimeError):
    """The program is malformed or faulted. `insn` is the instruction's index;
    `message` (also str(e)) reads `insn <index>: ...`, as the C simulator's SimError."""

    def __init__(self, insn: int, message: str) -> None:
        self.insn = insn
        self.message = f"insn {insn}: {message}"
        super().__init__(self.message)

EmuStats = RunStats  # the emulator's counters: the same type as the C core's


@dataclass(frozen=True)
class EmuResult:
    stats: EmuStats
    dram: np.ndarray  # uint8, the final DRAM
    insn_start: np.ndarray  # uint64 start cycle of each instruction
    insn_end: np.ndarray  # uint64 end cycle (completion, after the latency, for a DMA)
    spad: np.ndarray  # int8, the final scratchpad
    acc: np.ndarray  # int32, the final accumulator
    insn_sat: np.ndarray | None = None  # uint64 gemm outputs each instruction saturated (ISA.md, gemm)

@dataclass
class _Units:
    """The timing state: when each unit is free, each semaphore's token times, the DRAM channel."""

    free: list[int] = field(default_factory=lambda: [0, 0, 0])
    tokens: list[list[int]] = field(default_factory=lambda: [[] for _ in range(NUM_TOKENS)])  # min-heaps
    dram_free: int = 0
    busy: list[int] = field(default_factory=lambda: [0, 0, 0])
    token_stall: list[int] = field(default_factory=lambda: [0, 0, 0])
    dram_stall: list[int] = field(default_factory=lambda: [0, 0, 0])
    insns: list[int] = field(default_factory=lambda: [0, 0, 0])
    cycles: int = 0

    def can_take(self, mask: int) -> bool:
        return all(self.tokens[b] for b in _bits(mask))

    def ready(self, mask: int) -> int:
        """The latest availability among the earliest token of each waited semaphore."""
        return max((self.tokens[b][0] for b in _bits(mask)), default=0)

@cache
def _bits(mask: int) -> tuple[int, ...]:
    """The token ids of a mask."""
    return tuple(b for b in range(NUM_TOKENS) if mask >> b & 1)

def emulate(program: np.ndarray | Sequence[Insn], dram: np.ndarray, hw: HwConfig, *,
            spad: np.ndarray | None = None, acc: np.ndarray | None = None) -> EmuResult:
    """Run a program (encoded words, or instructions) on a copy of `dram`.

    SPAD and ACC start zeroed unless `spad` / `acc` give their initial
    contents (a testing aid, as `npuc.sim.core.run_words`'s). Raises
    EmuError for a malformed program (checked whole, before anything runs,
    as the C decoder does), a run-time fault, or a deadlock.
    """
    insns = _decoded(program, hw)
    m = Machine(hw, np.array(dram, dtype=np.uint8, copy=True).reshape(-1),
                _memory(spad, hw.spad_bytes, np.int8), _memory(acc, hw.acc_words, np.int32))
    start = np.zeros(len(insns), dtype=np.uint64)
    end = np.zeros(len(insns), dtype=np.uint64)
    sat = np.zeros(len(insns), dtype=np.uint64)
    units = _Units()
    queues = [[i for i, insn in enumerate(insns) if BY_MNEMONIC[insn.op].unit == u] for u in Unit]
    heads = [0, 0, 0]
    while True:
        best, best_start, pending = -1, 0, False
        for u in Unit:
            if heads[u] == len(queues[u]):
                continue
            pending = True
            insn = insns[queues[u][heads[u]]]
            if not units.can_take(insn.wait):
                continue
            s = max(units.ready(insn.wait), units.free[u])
            if best < 0 or s < best_start:  # strict: ties go to the earlier unit
                best, best_start = u, s
        if best < 0:
            if pending:
                raise _deadlock(insns, queues, heads, units)
            break
        i = queues[best][heads[best]]
        before = m.traffic.acc_sat
        start[i], end[i] = _step(m, units, Unit(best), i, insns[i])
        sat[i] = m.traffic.acc_sat - before
        heads[best] += 1
    return EmuResult(_stats(units, m), m.dram, start, end, m.spad, m.acc, sat)

def _step(m: Machine, units: _Units, u: Unit, i: int, insn: Insn) -> tuple[int, int]:
    """Execute instruction i on unit u: tokens, semantics, timing, statistics (ISA.md, Timing)."""
    ready, free_u = units.ready(insn.wait), units.free[u]
    start = max(ready, free_u)
    for b in _bits(insn.wait):
        heapq.heappop(units.tokens[b])  # the earliest-available token
    m.start, m.ready = start, ready
    try:
        cost = SEMANTICS[insn.op](m, dict(zip(_FIELD_NAMES[insn.op], insn.fields)))
    except Fault as e:
        raise EmuError(i, str(e)) from None
    if u == Unit.COMPUTE and insn.op != "gemm":
        m.array.last_gemm = False  # another compute instruction ends the array's chain
    if ready > free_u:
        units.token_stall[u] += start - free_u
    if u == Unit.COMPUTE:
        end = start + cost
        units.free[u] = end
    else:  # a DMA: the channel carries the transfer, the latency follows it
        x = max(start, units.dram_free)
        units.dram_free = x + cost
        units.free[u] = units.dram_free
        end = units.dram_free + m.hw.dram_latency
        units.dram_stall[u] += x - start
    units.busy[u] += cost
    units.insns[u] += 1
    units.cycles = max(units.cycles, end)
    for b in _bits(insn.signal):
        if len(units.tokens[b]) >= TOKEN_MAX:
            raise EmuError(i, f"{insn.op}: TOK[{b}] overflows: more than {TOKEN_MAX} tokens outstanding")
        heapq.heappush(units.tokens[b], end)
    return start, end

def _deadlock(insns: list[Insn], queues: list[list[int]], heads: list[int], units: _Units) -> EmuError:
    """No unit can proceed: name the first waiting instruction of each blocked unit."""
    why, first = "", None
    for u in Unit:
        if heads[u] == len(queues[u]):
            continue
        i = queues[u][heads[u]]
        first = i if first is None else min(first, i)
        missing = "".join(f" TOK[{b}]" for b in _bits(insns[i].wait) if not units.tokens[b])
        why += f"; {UNIT_NAMES[u]} unit at insn {i} ({insns[i].op}) waits for{missing}"
    assert first is not None
    return EmuError(first, f"{insns[first].op}: deadlock: no unit can proceed{why}")

def _stats(units: _Units, m: Machine) -> EmuStats:
    """Every declared counter: the Actions' from the traffic, the others from the scheduler
    (a counter declared in isa/stats.py that `_Units` lacks is an AttributeError here)."""
    return EmuStats.from_counters(lambda name: getattr(m.traffic if name in ACTION_COUNTERS else units, name))

def _memory(init: np.ndarray | None, size: int, dtype: type) -> np.ndarray:
    """A zeroed memory of `size` elements, its start set to `init` when given."""
    out: np.ndarray = np.zeros(size, dtype=dtype)
    if init is not None:
        flat: np.ndarray = np.asarray(init, dtype=dtype).reshape(-1)
        out[:flat.size] = flat
    return out

def _decoded(program: np.ndarray | Sequence[Insn], hw: HwConfig) -> list[Insn]:
    """The checked instructions of a program, or EmuError for the first malformed one.

    The C decoder checks each instruction in turn (fields, then a gemm tile
    against the array), so the error named is the lowest-index one.
    """
    if isinstance(program, np.ndarray):
        words = program
    else:
        insns = list(program)
        try:
            words = encode(insns)
        except EncodeError as e:
            tile = _first_bad_tile(encode(insns[:e.insn]), hw)
            raise (EmuError(*tile) if tile else EmuError(e.insn, e.message)) from None
    words = np.asarray(words, dtype=np.uint32).reshape(-1)
    tile = _first_bad_tile(words, hw)
    try:
        insns = decode(words)
    except DecodeError as e:
        if tile is not None and tile[0] < e.insn:
            raise EmuError(*tile) from None
        raise EmuError(e.insn, e.message) from None
    if tile is not None:
        raise EmuError(*tile)
    return insns

NO_DW_ENGINE = "dwc: the NPU has no depthwise engine (depthwise.lanes = 0)"


def _first_bad_tile(words: np.ndarray, hw: HwConfig) -> tuple[int, str] | None:
    """The first gemm whose tile does not fit the R x C array in its dataflow, with its error text."""
    n = words.size // WORDS_PER_INSN
    rows = words[:n * WORDS_PER_INSN].reshape(n, WORDS_PER_INSN)
    gemm = BY_MNEMONIC["gemm"]
    names = gemm.field_names()

    def col(name: str) -> np.ndarray:
        return rows[:, HEADER_WORDS + names.index(name)].view(np.int32).astype(np.int64)

    m, k, nn, w4 = col("m0") * col("m1"), col("k"), col("n"), col("w4") != 0
    over = np.zeros(n, dtype=bool)
    for packed in (False, True):  # int4 weights widen the n limit (timing.tile_limits)
        lm, lk, ln = tile_limits(hw, packed)
        sel = w4 == packed
        for v, lim in ((m, lm), (k, lk), (nn, ln)):
            if lim is not None:
                over |= sel & (v > lim)
    is_dwc = (rows[:, 0] & 0xFFFF) == BY_MNEMONIC["dwc"].opcode
    bad = np.flatnonzero((((rows[:, 0] & 0xFFFF) == gemm.opcode) & over) | (is_dwc & (hw.lanes == 0)))
    if not bad.size:
        return None
    i = int(bad[0])
    if is_dwc[i]:
        return i, NO_DW_ENGINE
    problem = tile_problem(hw, int(m[i]), int(k[i]), int(nn[i]), bool(w4[i]))
    assert problem is not None
    return i, problem
