"""The two models of the ISA agree: the numpy emulator (the definition) and the C simulator.

Hypothesis writes random programs that run: every box inside its memory (or
empty), token waits that cannot deadlock (each semaphore is consumed by one
unit, and every wait is covered by signals earlier in program order), vrq
shifts from a parameter area loaded first. Data races between units are left
in on purpose: both models must follow the same functional order. Every
instruction of the table is drawn (vadd and vmul with full-range int32
multipliers, in place or overlapping; vlut with shared, per-column and
overlapping tables). Both must
give the same final DRAM, statistics and per-instruction start and end
cycles. Mutated programs (a field set to any in-range value, a bad word, a
wait nobody signals) must succeed alike or fail alike: same instruction
index, same message.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npuc.hw import HwConfig
from npuc.isa.emulator import EmuError, emulate
from npuc.isa.encoding import encode
from npuc.isa.program import Insn, make_insn
from npuc.isa.table import BY_MNEMONIC, HEADER_WORDS, INSNS, NUM_TOKENS, Unit

core = pytest.importorskip("npuc.sim.core")

HWS = [
    HwConfig(rows=4, cols=8, spad_kib=1, acc_kib=1, dram_bw=4, dram_latency=10, vec_lanes=4, vec_latency=3),
    HwConfig(rows=2, cols=3, spad_kib=1, acc_kib=1, dram_bw=1, dram_latency=0, vec_lanes=1, vec_latency=0),
    HwConfig(rows=8, cols=8, spad_kib=2, acc_kib=2, dram_bw=16, dram_latency=5, vec_lanes=8, vec_latency=1),
]
DRAM_SIZE = 2048
ST_LIMIT = 1536  # stores stay below: DRAM above holds the vrq parameters the prologue loads
PARAM_WORDS = 32  # ACC top: 16 multipliers, then 16 shifts in [0, 62]
READY = 15  # the prologue's token, consumed by the first compute instruction
OWNER = [Unit(t % 3) for t in range(NUM_TOKENS - 1)]  # each semaphore's one consumer unit
MAX_EXT = 5
MAX_STRIDE = 16

ext = st.one_of(st.integers(1, MAX_EXT), st.integers(1, MAX_EXT), st.integers(0, MAX_EXT))
stride = st.integers(-MAX_STRIDE, MAX_STRIDE)


@st.composite
def place(draw, lo: int, hi: int, dims: tuple[tuple[int, int], ...]) -> int:
    """A base address putting the box inside [lo, hi); any address when the box is empty."""
    if any(n == 0 for n, _ in dims):
        return draw(st.one_of(st.integers(0, 64), st.just(2**31 - 1)))
    neg = sum(min(0, (n - 1) * s) for n, s in dims)
    pos = sum(max(0, (n - 1) * s) for n, s in dims)
    return draw(st.integers(lo - neg, hi - 1 - pos))


@st.composite
def body_insn(draw, hw: HwConfig) -> Insn:
    """One instruction whose boxes fit: ACC writes stay below the parameter area."""
    op = draw(st.sampled_from([s.mnemonic for s in INSNS]))
    spad, acc = (0, hw.spad_bytes), (0, hw.acc_words - PARAM_WORDS)
    f: dict[str, int] = {}
    if op in ("ld", "st"):
        f.update(n0=draw(ext), n1=draw(ext), n2=draw(st.integers(1, 8)))
        names = ("ss0", "ss1", "ds0", "ds1")
        f.update({k: draw(stride) for k in names})
        if draw(st.booleans()):  # a contiguous DRAM row: one burst per row
            f["ss1" if op == "ld" else "ds1"] = f["n2"]
        if op == "ld":
            f.update(pt=draw(st.integers(0, 2)), pb=draw(st.integers(0, 2)), pl=draw(st.integers(0, 2)),
                     pr=draw(st.integers(0, 2)), fill=draw(st.integers(-128, 127)))
            e0, e1 = f["pt"] + f["n0"] + f["pb"], f["pl"] + f["n1"] + f["pr"]
            f["dst"] = draw(place(*spad, ((e0, f["ds0"]), (e1, f["ds1"]), (f["n2"], 1))))
            f["src"] = draw(place(0, DRAM_SIZE, ((f["n0"], f["ss0"]), (f["n1"], f["ss1"]), (f["n2"], 1))))
        else:
            f["dst"] = draw(place(0, ST_LIMIT, ((f["n0"], f["ds0"]), (f["n1"], f["ds1"]), (f["n2"], 1))))
            f["src"] = draw(place(*spad, ((f["n0"], f["ss0"]), (f["n1"], f["ss1"]), (f["n2"], 1))))
    elif op == "lda":
        f.update(n0=draw(ext), n1=draw(ext), ss0=draw(stride), ds0=draw(stride))
        f["dst"] = draw(place(*acc, ((f["n0"], f["ds0"]), (f["n1"], 1))))
        f["src"] = draw(place(0, DRAM_SIZE, ((f["n0"], f["ss0"]), (4 * f["n1"], 1))))
    elif op == "gemm":
        f.update(m0=draw(st.integers(0, 4)), m1=draw(st.integers(1, 3)), k=draw(st.integers(1, hw.rows)),
                 n=draw(st.integers(1, hw.cols)), acc=draw(st.integers(0, 1)),
                 **{k: draw(stride) for k in ("as0", "as1", "ws", "ds0", "ds1")})
        f["dst"] = draw(place(*acc, ((f["m1"], f["ds1"]), (f["m0"], f["ds0"]), (f["n"], 1))))
        f["a"] = draw(place(*spad, ((f["m1"], f["as1"]), (f["m0"], f["as0"]), (f["k"], 1))))
        f["w"] = draw(place(*spad, ((f["k"], f["ws"]), (f["n"], 1))))
    else:
        f.update(m=draw(ext), n=draw(st.integers(0, 8)))
        rows = lambda s: ((f["m"], s), (f["n"], 1))
        if op == "vsum":
            f.update(ss=draw(stride), acc=draw(st.integers(0, 1)))
            f["dst"] = draw(place(*acc, ((f["n"], 1),)))
            f["src"] = draw(place(*spad, rows(f["ss"])))
        elif op == "vmax":
            f.update(ds=draw(stride), **{"as": draw(stride)}, bs=draw(stride))
            for k, s in (("dst", "ds"), ("a", "as"), ("b", "bs")):
                f[k] = draw(place(*spad, rows(f[s])))
            if draw(st.booleans()):  # in place: dst is exactly a
                f["dst"], f["ds"] = f["a"], f["as"]
        elif op in ("vadd", "vmul"):  # the same boxes; vadd has two multipliers, vmul one and a row broadcast
            i8, i32 = st.integers(-128, 127), st.integers(-(2**31), 2**31 - 1)
            mult = st.one_of(i32, st.integers(-64, 64))
            lo, hi = sorted((draw(i8), draw(i8)))
            bs = draw(stride) if op == "vadd" else draw(st.one_of(stride, st.just(0)))
            f.update(ds=draw(stride), **{"as": draw(stride)}, bs=bs, za=draw(i8), zb=draw(i8),
                     sh=draw(st.integers(0, 62)), zp=draw(i8), lo=lo, hi=hi, rnd=draw(st.integers(0, 2)))
            if op == "vadd":
                f.update(ma=draw(mult), mb=draw(mult))
            else:
                f["mul"] = draw(mult)
            for k, s in (("dst", "ds"), ("a", "as"), ("b", "bs")):
                f[k] = draw(place(*spad, rows(f[s])))
            if draw(st.booleans()):  # in place: dst is exactly a or b
                k, s = draw(st.sampled_from([("a", "as"), ("b", "bs")]))
                f["dst"], f["ds"] = f[k], f[s]
        elif op == "vlut":
            ts = draw(st.one_of(stride, st.just(0), st.just(256), st.just(-256)))
            if f["n"] > 0 and (f["n"] - 1) * abs(ts) + 256 > hw.spad_bytes:
                ts = 0  # one table per column does not fit this scratchpad
            f.update(ds=draw(stride), ss=draw(stride), ts=ts)
            f["dst"] = draw(place(*spad, rows(f["ds"])))
            f["src"] = draw(place(*spad, rows(f["ss"])))
            f["tab"] = draw(place(*spad, ((f["n"], ts), (256, 1))))
            if draw(st.booleans()):  # in place: dst is exactly src (or anywhere, tables included)
                f["dst"], f["ds"] = f["src"], f["ss"]
        elif op == "vaddv":
            f.update(ds=draw(stride), ss=draw(stride))
            f["dst"] = draw(place(*acc, rows(f["ds"])))
            f["src"] = draw(place(*acc, rows(f["ss"])))
            f["vec"] = draw(place(*acc, ((f["n"], 1),)))
            if draw(st.booleans()):
                f["dst"], f["ds"] = f["src"], f["ss"]
        else:  # vrq
            lo, hi = sorted((draw(st.integers(-128, 127)), draw(st.integers(-128, 127))))
            f.update(ds=draw(stride), ss=draw(stride), zp=draw(st.integers(-128, 127)), lo=lo, hi=hi,
                     rnd=draw(st.integers(0, 2)))
            f["dst"] = draw(place(*spad, rows(f["ds"])))
            f["src"] = draw(place(*acc, rows(f["ss"])))
            top = hw.acc_words - PARAM_WORDS
            f["mul"] = draw(st.integers(top, top + 16 - f["n"]))
            f["sh"] = draw(st.integers(top + 16, top + 32 - f["n"]))
    return make_insn(op, **f)


def _bits(mask: int) -> list[int]:
    return [b for b in range(NUM_TOKENS) if mask >> b & 1]


@st.composite
def runnable(draw) -> tuple[HwConfig, list[Insn], np.ndarray]:
    """A program that runs to completion on both models, and its DRAM image."""
    hw = draw(st.sampled_from(HWS))
    top = hw.acc_words - PARAM_WORDS
    prologue = make_insn("lda", dst=top, src=DRAM_SIZE - 4 * PARAM_WORDS, n0=1, n1=PARAM_WORDS, ss0=0,
                         ds0=0, signal=1 << READY)
    body = draw(st.lists(body_insn(hw), min_size=1, max_size=10))
    count = [0] * NUM_TOKENS  # tokens outstanding, in program order
    insns, first_compute = [prologue], True
    for insn in body:
        unit = BY_MNEMONIC[insn.op].unit
        have = [t for t in range(NUM_TOKENS - 1) if OWNER[t] == unit and count[t] > 0]
        waits = draw(st.lists(st.sampled_from(have), unique=True)) if have else []
        wait = sum(1 << t for t in waits)
        if unit == Unit.COMPUTE and first_compute:
            wait |= 1 << READY
            first_compute = False
        signal = draw(st.integers(0, (1 << (NUM_TOKENS - 1)) - 1)) if draw(st.booleans()) else 0
        for t in _bits(wait & ~(1 << READY)):
            count[t] -= 1
        for t in _bits(signal):
            count[t] += 1
        insns.append(Insn(insn.op, insn.fields, wait, signal, draw(st.integers(0, 3))))
    seed = draw(st.integers(0, 2**32 - 1))
    dram = np.random.default_rng(seed).integers(0, 256, DRAM_SIZE, dtype=np.uint8)
    params = np.random.default_rng(seed).integers(-(2**31), 2**31, PARAM_WORDS, dtype=np.int64)
    params[16:] = np.random.default_rng(seed + 1).integers(0, 63, 16)
    dram[DRAM_SIZE - 4 * PARAM_WORDS:] = params.astype("<i4").view(np.uint8)
    return hw, insns, dram


def _run_both(words: np.ndarray, dram: np.ndarray, hw: HwConfig):
    """(emulator result or EmuError, C result or SimError)."""
    try:
        emu = emulate(words, dram, hw)
    except EmuError as e:
        emu = e
    try:
        sim = core.run_words(words, dram, hw, trace=True)
    except core.SimError as e:
        sim = e
    return emu, sim


def _assert_same(emu, sim) -> None:
    if isinstance(emu, EmuError) or isinstance(sim, core.SimError):
        assert isinstance(emu, EmuError) and isinstance(sim, core.SimError), (emu, sim)
        assert (emu.insn, emu.message) == (sim.insn, sim.message)
        return
    assert asdict(emu.stats) == asdict(sim.stats)
    np.testing.assert_array_equal(emu.insn_start, sim.insn_start)
    np.testing.assert_array_equal(emu.insn_end, sim.insn_end)
    np.testing.assert_array_equal(emu.dram, sim.dram)


SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(runnable())
def test_random_programs_agree(case):
    hw, insns, dram = case
    emu, sim = _run_both(encode(insns), dram, hw)
    assert not isinstance(emu, EmuError), emu
    _assert_same(emu, sim)


SMALL_COUNTS = {"n0", "n1", "n2", "m", "m0", "m1", "pt", "pb", "pl", "pr"}


@st.composite
def mutated(draw) -> tuple[HwConfig, np.ndarray, np.ndarray]:
    """A runnable program with one defect: a field set anew (in or out of its range), a bad
    header or unused word, a gemm tile too big, a bad vrq shift, vrq/vadd/vmul bounds lo > hi, a wait never
    met."""
    hw, insns, dram = draw(runnable())
    words = encode(insns).reshape(len(insns), -1)
    i = draw(st.integers(0, len(insns) - 1))
    spec = BY_MNEMONIC[insns[i].op]
    names = spec.field_names()
    kind = draw(st.sampled_from(["field", "field", "range", "word", "reserved", "tile", "shift", "lohi",
                                 "deadlock"]))
    if kind == "tile" and spec.mnemonic == "gemm":
        words[i, HEADER_WORDS + names.index(draw(st.sampled_from(["k", "n"])))] = max(hw.rows, hw.cols) + 1
    elif kind == "lohi" and spec.mnemonic in ("vrq", "vadd", "vmul"):
        words[i, HEADER_WORDS + names.index("lo")] = 5
        words[i, HEADER_WORDS + names.index("hi")] = 4
    elif kind == "shift":  # one parameter shift out of [0, 62]: every vrq reading it faults
        j = draw(st.integers(0, 15))
        bad = np.array([draw(st.sampled_from([-1, 63, 2**31 - 1]))], dtype="<i4").view(np.uint8)
        at = DRAM_SIZE - 4 * PARAM_WORDS + 4 * (16 + j)
        dram = dram.copy()
        dram[at:at + 4] = bad
    elif kind == "range":
        narrow = [j for j, fd in enumerate(spec.fields) if fd.lo > -(2**31) or fd.hi < 2**31 - 1]
        j = draw(st.sampled_from(narrow))
        fd = spec.fields[j]
        value = draw(st.sampled_from([v for v in (fd.lo - 1, fd.hi + 1) if -(2**31) <= v < 2**31]))
        words[i, HEADER_WORDS + j] = value & 0xFFFFFFFF
    elif kind == "word":  # the header words or an unused one
        w = draw(st.sampled_from([0, 1] + list(range(HEADER_WORDS + len(spec.fields), words.shape[1]))))
        words[i, w] = draw(st.one_of(st.integers(0, 2**32 - 1), st.integers(0, 0xFF)))
    elif kind == "reserved":
        words[i, 0] |= draw(st.integers(1, 255)) << 8
    elif kind == "deadlock":
        t = draw(st.sampled_from([t for t in range(NUM_TOKENS - 1) if OWNER[t] == spec.unit]))
        words[i, 1] |= 1 << t
    else:  # any in-range value; extents stay small so loops stay short
        j = draw(st.integers(0, len(spec.fields) - 1))
        fd = spec.fields[j]
        lo, hi = (fd.lo, min(fd.hi, 40)) if fd.name in SMALL_COUNTS else (fd.lo, fd.hi)
        value = draw(st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi])))
        words[i, HEADER_WORDS + j] = value & 0xFFFFFFFF
    return hw, words.reshape(-1), dram


@SETTINGS
@given(mutated())
def test_mutated_programs_fail_alike(case):
    hw, words, dram = case
    emu, sim = _run_both(words, dram, hw)
    _assert_same(emu, sim)
