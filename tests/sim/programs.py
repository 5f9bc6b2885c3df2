"""Random runnable programs and machine states for comparing the two models of the ISA.

Every choice goes through a `Chooser`, so one generator serves two drivers:

* `DrawChooser`: hypothesis draws (exploration, and shrinking of a failure);
* `RngChooser`: a seeded numpy generator, so that `program(RngChooser(seed))`
  is the same program on every run, whatever the hypothesis version and
  whatever modules are imported (hypothesis also draws from the constants of
  the local modules loaded, even when derandomized).

A program runs to completion on both models: every box inside its memory (or
empty), token waits that cannot deadlock (each semaphore is consumed by one
unit, and every wait is covered by signals earlier in program order). Data
races between units are left in on purpose: both models must follow the same
functional order. Every instruction of the table is drawn (vadd and vmul with
full-range int32 multipliers, in place or overlapping; vlut with shared,
per-column and overlapping tables).

The machine state is random too, not zeroed memories: DRAM and SPAD uniform
bytes, ACC words of every magnitude (half of them of at most 9 bits, so that
a vrq by a small shift lands inside int8), and at the top of ACC a parameter
area that no instruction writes: 16 vrq multipliers (mostly 1, else powers of
two, small, or any int32) and 16 shifts (mostly 1..4, so that rounding ties
happen). vadd and vmul take either any parameters (mostly saturated results)
or the compiler's kind (small power-of-two multipliers, a small shift: results
inside int8, ties). So every instruction's result lands in compared memory,
often unsaturated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
from hypothesis import strategies as st

from npuc.hw import HwConfig
from npuc.isa.encoding import encode
from npuc.isa.program import Insn, make_insn
from npuc.isa.table import BY_MNEMONIC, HEADER_WORDS, INSNS, NUM_TOKENS, Unit
from npuc.isa.timing import gemm_cols, tile_limits

T = TypeVar("T")

HWS = [
    HwConfig(rows=4, cols=8, spad_kib=1, acc_kib=1, dram_bw=4, dram_latency=10, vec_lanes=4, vec_latency=3),
    HwConfig(rows=2, cols=3, spad_kib=1, acc_kib=1, dram_bw=1, dram_latency=0, vec_lanes=1, vec_latency=0,
             acc_bits=16, int4_pack=1),
    HwConfig(rows=8, cols=8, spad_kib=2, acc_kib=2, dram_bw=16, dram_latency=5, vec_lanes=8, vec_latency=1,
             acc_bits=24, act16_passes=1),
    # the other dataflows, on arrays with R != C (their tile limits and fold phases differ)
    HwConfig(rows=4, cols=3, dataflow="os", spad_kib=1, acc_kib=1, dram_bw=4, dram_latency=10, vec_lanes=4,
             lanes=4, taps=2),  # a depthwise engine (dwc)
    HwConfig(rows=3, cols=5, dataflow="is", spad_kib=1, acc_kib=1, dram_bw=2, dram_latency=3, vec_lanes=2,
             fold_overlap=False, acc_bits=20, act16_passes=1),
    HwConfig(rows=2, cols=4, dataflow="is", spad_kib=1, acc_kib=1, dram_bw=4, dram_latency=0, vec_lanes=4,
             lanes=3, taps=9),
]  # the narrow accumulators saturate often: ACC starts with words of every magnitude
DRAM_SIZE = 2048
PARAM_WORDS = 32  # ACC top: 16 vrq multipliers, then 16 shifts in [0, 62]; no instruction writes there
OWNER = [Unit(t % 3) for t in range(NUM_TOKENS)]  # each semaphore's one consumer unit
MAX_EXT = 5
MAX_STRIDE = 16
I8, I32 = (-128, 127), (-(2**31), 2**31 - 1)


class Chooser(Protocol):
    def integer(self, lo: int, hi: int) -> int:
        """An integer in [lo, hi]."""
        ...

    def pick(self, options: Sequence[T]) -> T: ...

    def flip(self) -> bool: ...


@dataclass
class DrawChooser:
    """Choices drawn by hypothesis (inside `st.composite` or from `st.data()`)."""

    draw: Any

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def pick(self, options: Sequence[T]) -> T:
        return self.draw(st.sampled_from(options))

    def flip(self) -> bool:
        return self.draw(st.booleans())


class RngChooser:
    """Choices from a seeded numpy generator: a fixed corpus."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def integer(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi, endpoint=True))

    def pick(self, options: Sequence[T]) -> T:
        return options[int(self.rng.integers(len(options)))]

    def flip(self) -> bool:
        return bool(self.rng.integers(2))


def ext(c: Chooser) -> int:
    """A box extent: 0 (an empty box) a third as often as the others."""
    return c.integer(c.pick((1, 1, 0)), MAX_EXT)


def stride(c: Chooser) -> int:
    return c.integer(-MAX_STRIDE, MAX_STRIDE)


def bounds(c: Chooser) -> tuple[int, int]:
    """Saturation bounds lo <= hi: the whole int8 range, or any pair."""
    if c.flip():
        return I8
    a, b = c.integer(*I8), c.integer(*I8)
    return min(a, b), max(a, b)


def rounding(c: Chooser) -> int:
    return c.pick((0, 0, 1, 2, 3))  # half_even (the default, and the one with a tie rule) twice as often


def place(c: Chooser, lo: int, hi: int, dims: tuple[tuple[int, int], ...]) -> int:
    """A base address putting the box inside [lo, hi); any address when the box is empty."""
    if any(n == 0 for n, _ in dims):
        return c.integer(0, 64) if c.flip() else 2**31 - 1
    neg = sum(min(0, (n - 1) * s) for n, s in dims)
    pos = sum(max(0, (n - 1) * s) for n, s in dims)
    return c.integer(lo - neg, hi - 1 - pos)


def body_insn(c: Chooser, hw: HwConfig) -> Insn:
    """One instruction whose boxes fit: ACC writes stay below the parameter area."""
    op = c.pick([s.mnemonic for s in INSNS if s.mnemonic != "dwc" or hw.lanes])  # dwc needs the engine
    spad, acc = (0, hw.spad_bytes), (0, hw.acc_words - PARAM_WORDS)
    f: dict[str, int] = {}
    if op in ("ld", "st"):
        f.update(n0=ext(c), n1=ext(c), n2=c.integer(1, 8))
        f.update({k: stride(c) for k in ("ss0", "ss1", "ds0", "ds1")})
        if c.flip():  # a contiguous DRAM row: one burst per row
            f["ss1" if op == "ld" else "ds1"] = f["n2"]
        if op == "ld":
            f.update(pt=c.integer(0, 2), pb=c.integer(0, 2), pl=c.integer(0, 2), pr=c.integer(0, 2),
                     fill=c.integer(*I8))
            e0, e1 = f["pt"] + f["n0"] + f["pb"], f["pl"] + f["n1"] + f["pr"]
            f["dst"] = place(c, *spad, ((e0, f["ds0"]), (e1, f["ds1"]), (f["n2"], 1)))
            f["src"] = place(c, 0, DRAM_SIZE, ((f["n0"], f["ss0"]), (f["n1"], f["ss1"]), (f["n2"], 1)))
        else:
            f["dst"] = place(c, 0, DRAM_SIZE, ((f["n0"], f["ds0"]), (f["n1"], f["ds1"]), (f["n2"], 1)))
            f["src"] = place(c, *spad, ((f["n0"], f["ss0"]), (f["n1"], f["ss1"]), (f["n2"], 1)))
    elif op == "lda":
        f.update(n0=ext(c), n1=ext(c), ss0=stride(c), ds0=stride(c))
        f["dst"] = place(c, *acc, ((f["n0"], f["ds0"]), (f["n1"], 1)))
        f["src"] = place(c, 0, DRAM_SIZE, ((f["n0"], f["ss0"]), (4 * f["n1"], 1)))
    elif op == "gemm":  # the tile within the dataflow's limits; the unlimited dimension up to 2R + 3
        w4 = c.integer(0, 1)  # int4 weights, two per byte: n up to int4_pack * cols where n is limited
        a16 = c.integer(0, 1)  # int16 input rows, 2 bytes an element
        lm, lk, ln = tile_limits(hw, bool(w4))
        m1 = c.integer(1, 3)
        f.update(m0=c.integer(0, 4 if lm is None else lm // m1), m1=m1, k=c.integer(1, lk or 2 * hw.rows + 3),
                 n=c.integer(1, ln or 2 * hw.rows + 3), acc=c.integer(0, 1), w4=w4, a16=a16)
        f.update(**{k: stride(c) for k in ("as0", "as1", "ws", "ds0", "ds1")})
        f["dst"] = place(c, *acc, ((f["m1"], f["ds1"]), (f["m0"], f["ds0"]), (f["n"], 1)))
        f["a"] = place(c, *spad, ((f["m1"], f["as1"]), (f["m0"], f["as0"]), ((1 + a16) * f["k"], 1)))
        f["w"] = place(c, *spad, ((f["k"], f["ws"]), ((f["n"] + 1) // 2 if w4 else f["n"], 1)))
    elif op == "dwc":  # parameters at the ACC top: biases (any), multipliers, shifts in [0, 62]
        f.update(m0=c.integer(0, 4), m1=c.integer(1, 3), c=c.integer(1, 8), kh=c.integer(1, 3), kw=c.integer(1, 3))
        f.update(**{k: stride(c) for k in ("as0", "as1", "ts0", "ts1", "ds")})
        lo, hi = bounds(c)
        f.update(zp=c.integer(*I8), lo=lo, hi=hi, rnd=rounding(c), par=hw.acc_words - PARAM_WORDS + 16 - 2 * f["c"])
        f["dst"] = place(c, *spad, ((f["m1"], f["m0"] * f["ds"]), (f["m0"], f["ds"]), (f["c"], 1)))
        f["a"] = place(c, *spad, ((f["m1"], f["as1"]), (f["m0"], f["as0"]), (f["kh"], f["ts1"]), (f["kw"], f["ts0"]),
                                  (f["c"], 1)))
        f["w"] = place(c, *spad, ((f["kh"] * f["kw"] * f["c"], 1),))
    else:
        f.update(m=ext(c), n=c.integer(0, 8))
        _vector_fields(c, hw, op, f, spad, acc)
    return make_insn(op, **f)


def _vector_fields(c: Chooser, hw: HwConfig, op: str, f: dict[str, int], spad: tuple[int, int],
                   acc: tuple[int, int]) -> None:
    """The fields of a vector instruction over m rows of n elements (f holds m and n)."""
    def rows(s: int) -> tuple[tuple[int, int], ...]:
        return ((f["m"], s), (f["n"], 1))

    if op == "vsum":
        f.update(ss=stride(c), acc=c.integer(0, 1))
        f["dst"] = place(c, *acc, ((f["n"], 1),))
        f["src"] = place(c, *spad, rows(f["ss"]))
    elif op == "vmax":
        f.update(ds=stride(c), **{"as": stride(c)}, bs=stride(c))
        for k, s in (("dst", "ds"), ("a", "as"), ("b", "bs")):
            f[k] = place(c, *spad, rows(f[s]))
        if c.flip():  # in place: dst is exactly a
            f["dst"], f["ds"] = f["a"], f["as"]
    elif op in ("vadd", "vmul"):  # the same boxes; vadd has two multipliers, vmul one and a row broadcast
        if c.flip():  # any parameters: mostly saturated results
            def mult() -> int:
                return c.integer(*I32) if c.flip() else c.integer(-64, 64)

            f.update(sh=c.integer(0, 62), za=c.integer(*I8), zb=c.integer(*I8), zp=c.integer(*I8))
            f["lo"], f["hi"] = bounds(c)
        else:  # as the compiler's pow2 scales: results inside int8, and rounding ties
            def mult() -> int:
                return c.pick((1, 1, -1, 2))

            def zero() -> int:
                return 0 if c.flip() else c.integer(*I8)

            f.update(sh=c.integer(1, 2) if op == "vadd" else c.integer(6, 9), za=zero(), zb=zero(), zp=zero())
            f["lo"], f["hi"] = I8 if c.flip() else bounds(c)
        f.update(rnd=rounding(c), ds=stride(c), **{"as": stride(c)})
        f["bs"] = stride(c) if op == "vadd" or c.flip() else 0
        if op == "vadd":
            f.update(ma=mult(), mb=mult())
        else:
            f["mul"] = mult()
        for k, s in (("dst", "ds"), ("a", "as"), ("b", "bs")):
            f[k] = place(c, *spad, rows(f[s]))
        if c.flip():  # in place: dst is exactly a or b
            k, s = c.pick((("a", "as"), ("b", "bs")))
            f["dst"], f["ds"] = f[k], f[s]
    elif op == "vlut":
        ts = c.pick((None, 0, 256, -256))
        ts = stride(c) if ts is None else ts
        if f["n"] > 0 and (f["n"] - 1) * abs(ts) + 256 > hw.spad_bytes:
            ts = 0  # one table per column does not fit this scratchpad
        f.update(ds=stride(c), ss=stride(c), ts=ts)
        f["dst"] = place(c, *spad, rows(f["ds"]))
        f["src"] = place(c, *spad, rows(f["ss"]))
        f["tab"] = place(c, *spad, ((f["n"], ts), (256, 1)))
        if c.flip():  # in place: dst is exactly src (or anywhere, tables included)
            f["dst"], f["ds"] = f["src"], f["ss"]
    elif op == "vaddv":
        f.update(ds=stride(c), ss=stride(c))
        f["dst"] = place(c, *acc, rows(f["ds"]))
        f["src"] = place(c, *acc, rows(f["ss"]))
        f["vec"] = place(c, *acc, ((f["n"], 1),))
        if c.flip():
            f["dst"], f["ds"] = f["src"], f["ss"]
    else:  # vrq: its multipliers and shifts come from the parameter area
        assert op == "vrq", op
        f["lo"], f["hi"] = bounds(c)
        f.update(ds=stride(c), ss=stride(c), zp=c.integer(*I8), rnd=rounding(c))
        f["dst"] = place(c, *spad, rows(f["ds"]))
        f["src"] = place(c, *acc, rows(f["ss"]))
        top = hw.acc_words - PARAM_WORDS
        f["mul"] = c.integer(top, top + 16 - f["n"])
        f["sh"] = c.integer(top + 16, top + 32 - f["n"])


def bits(mask: int) -> list[int]:
    return [b for b in range(NUM_TOKENS) if mask >> b & 1]


State = tuple[np.ndarray, np.ndarray, np.ndarray]  # DRAM (uint8), SPAD (int8), ACC (int32)


def machine_state(hw: HwConfig, seed: int) -> State:
    """Initial DRAM, SPAD and ACC, the vrq parameter area at the top of ACC."""
    rng = np.random.default_rng(seed)
    dram = rng.integers(0, 256, DRAM_SIZE, dtype=np.uint8)
    spad = rng.integers(-128, 128, hw.spad_bytes, dtype=np.int8)
    # every magnitude from 0 to 2^31: half the words of at most 9 bits, the others of any length
    shift = np.where(rng.random(hw.acc_words) < 0.5, rng.integers(23, 32, hw.acc_words),
                     rng.integers(0, 32, hw.acc_words))
    acc = rng.integers(-(2**31), 2**31, hw.acc_words, dtype=np.int64) >> shift
    k = np.arange(16)
    muls = np.select([k < 8, k < 10, k < 12, k < 14], [
        np.ones(16, np.int64),
        rng.choice([-1, 1], 16) << rng.integers(0, 4, 16),
        rng.integers(-8, 9, 16),
        rng.integers(-300, 301, 16),
    ], rng.integers(-(2**31), 2**31, 16))
    shifts = np.select([k < 8, k < 13], [rng.integers(1, 5, 16), rng.integers(0, 17, 16)],
                       rng.integers(17, 63, 16))
    top = hw.acc_words - PARAM_WORDS
    acc[top:top + 16], acc[top + 16:] = rng.permutation(muls), rng.permutation(shifts)
    return dram, spad, acc.astype(np.int32)


def program(c: Chooser) -> tuple[HwConfig, list[Insn], State]:
    """A program that runs to completion on both models, and its initial machine state."""
    hw = c.pick(HWS)
    body = [body_insn(c, hw) for _ in range(c.integer(1, 10))]
    count = [0] * NUM_TOKENS  # tokens outstanding, in program order
    insns = []
    for insn in body:
        unit = BY_MNEMONIC[insn.op].unit
        waits = [t for t in range(NUM_TOKENS) if OWNER[t] == unit and count[t] > 0 and c.flip()]
        signal = c.integer(0, (1 << NUM_TOKENS) - 1) if c.flip() else 0
        for t in waits:
            count[t] -= 1
        for t in bits(signal):
            count[t] += 1
        insns.append(Insn(insn.op, insn.fields, sum(1 << t for t in waits), signal, c.integer(0, 3)))
    return hw, insns, machine_state(hw, c.integer(0, 2**32 - 1))


SMALL_COUNTS = {"n0", "n1", "n2", "m", "m0", "m1", "pt", "pb", "pl", "pr"}


def mutated(c: Chooser) -> tuple[HwConfig, np.ndarray, State]:
    """A runnable program with one defect: a field set anew (in or out of its range), a bad
    header or unused word, a gemm tile too big, a bad vrq shift, vrq/vadd/vmul bounds lo > hi, a
    wait never met."""
    hw, insns, (dram, spad, acc) = program(c)
    words = encode(insns).reshape(len(insns), -1)
    i = c.integer(0, len(insns) - 1)
    spec = BY_MNEMONIC[insns[i].op]
    names = spec.field_names()
    kind = c.pick(["field", "field", "range", "word", "reserved", "tile", "shift", "lohi", "deadlock"])
    if kind == "tile" and spec.mnemonic == "gemm":
        lm, lk, ln = tile_limits(hw, True)
        limited = [name for name, lim in (("k", lk), ("n", ln), ("m0", lm)) if lim is not None]
        words[i, HEADER_WORDS + names.index(c.pick(limited))] = max(hw.rows, gemm_cols(hw, True)) + 1
    elif kind == "lohi" and spec.mnemonic in ("vrq", "vadd", "vmul"):
        words[i, HEADER_WORDS + names.index("lo")] = 5
        words[i, HEADER_WORDS + names.index("hi")] = 4
    elif kind == "shift":  # one parameter shift out of [0, 62]: every vrq reading it faults
        acc = acc.copy()
        acc[hw.acc_words - 16 + c.integer(0, 15)] = c.pick([-1, 63, 2**31 - 1])
    elif kind == "range":
        narrow = [j for j, fd in enumerate(spec.fields) if fd.lo > -(2**31) or fd.hi < 2**31 - 1]
        j = c.pick(narrow)
        fd = spec.fields[j]
        value = c.pick([v for v in (fd.lo - 1, fd.hi + 1) if -(2**31) <= v < 2**31])
        words[i, HEADER_WORDS + j] = value & 0xFFFFFFFF
    elif kind == "word":  # the header words or an unused one
        w = c.pick([0, 1] + list(range(HEADER_WORDS + len(spec.fields), words.shape[1])))
        words[i, w] = c.integer(0, 2**32 - 1) if c.flip() else c.integer(0, 0xFF)
    elif kind == "reserved":
        words[i, 0] |= c.integer(1, 255) << 8
    elif kind == "deadlock":
        t = c.pick([t for t in range(NUM_TOKENS) if OWNER[t] == spec.unit])
        words[i, 1] |= 1 << t
    else:  # any in-range value; extents stay small so loops stay short
        j = c.integer(0, len(spec.fields) - 1)
        fd = spec.fields[j]
        lo, hi = (fd.lo, min(fd.hi, 40)) if fd.name in SMALL_COUNTS else (fd.lo, fd.hi)
        value = c.integer(lo, hi) if c.flip() else c.pick([lo, hi])
        words[i, HEADER_WORDS + j] = value & 0xFFFFFFFF
    return hw, words.reshape(-1), (dram, spad, acc)
