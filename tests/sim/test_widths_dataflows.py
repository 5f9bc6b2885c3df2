"""Operand widths in every dataflow (ISA.md, gemm, Widths in every dataflow): int4 weights widen
the n limit where the dataflow has one (ws, os), int16 rows multiply the streamed length (ws M,
os k, is n) by act16_passes; both ISA models agree on values, counters and cycles."""

import numpy as np
import pytest

from npuc.isa.emulator import EmuError, emulate
from npuc.isa.program import make_insn
from npuc.isa.semantics import pack_int4
from npuc.isa.timing import fold_phases, tile_limits
from npuc.sim.core import SimError, run_words

from .conftest import HW, encode

R, C = HW.rows, HW.cols  # 4 x 8


def _gemm(hw, m, k, n, *, w4=0, a16=0, bits=32, seed=0):
    """Run one gemm (acc = 0) on both models; return (C result, emulator result, exact product)."""
    hw = hw.replace(acc_bits=bits)
    rng = np.random.default_rng(seed)
    a = rng.integers(-32768, 32768, (m, k)) if a16 else rng.integers(-128, 128, (m, k))
    w = rng.integers(-8, 8, (k, n)) if w4 else rng.integers(-128, 128, (k, n))
    spad = np.zeros(hw.spad_bytes, np.int8)
    raw = a.astype("<i2").view(np.int8).ravel() if a16 else a.astype(np.int8).ravel()
    spad[:raw.size] = raw
    wb = pack_int4(w) if w4 else w.astype(np.int8)
    spad[2048:2048 + wb.size] = wb.ravel()
    g = make_insn("gemm", dst=0, a=0, w=2048, m0=m, m1=1, k=k, n=n, as0=(2 if a16 else 1) * k, ws=wb.shape[1],
                  ds0=n, w4=w4, a16=a16)
    words = encode([g])
    dram = np.zeros(64, np.uint8)
    sim = run_words(words, dram, hw, memories=True, spad=spad, trace=True)
    emu = emulate(words, dram, hw, spad=spad)
    return sim, emu, a @ w


CASES = [  # (dataflow, M, k, n): each beyond int8's limit in some dimension the dataflow allows
    ("ws", 9, R, 2 * C),       # int4: n up to 2C
    ("os", R, 3 * R, 2 * C),   # k any (row by row), int4: n up to 2C
    ("is", C, R, 3 * C),       # n any (row by row)
]


@pytest.mark.parametrize("df,m,k,n", CASES)
@pytest.mark.parametrize("w4,a16,bits", [(1, 0, 32), (0, 1, 32), (1, 1, 24), (1, 0, 16)])
def test_widths_compose_with_every_dataflow(df, m, k, n, w4, a16, bits):
    hw = HW.replace(dataflow=df)
    if not w4 and tile_limits(hw)[2] is not None:
        n = min(n, C)
    sim, emu, exact = _gemm(hw, m, k, n, w4=w4, a16=a16, bits=bits, seed=m + k + n)
    hi = (1 << (bits - 1)) - 1
    want = exact.astype(np.uint32).astype(np.int32) if bits == 32 else np.clip(exact, -hi - 1, hi)
    np.testing.assert_array_equal(sim.acc[:m * n].reshape(m, n), want)
    np.testing.assert_array_equal(emu.acc, sim.acc)
    assert sim.stats == emu.stats
    assert sim.stats.acc_sat == int(((exact > hi) | (exact < -hi - 1)).sum())
    pre, stream, drain = fold_phases(hw, m, k, n, bool(a16))
    assert stream == {"ws": m, "os": k, "is": n}[df] * (hw.act16_passes if a16 else 1)
    assert sim.stats.cycles == pre + stream + drain == int(sim.insn_end[0] - sim.insn_start[0])


@pytest.mark.parametrize("df,ok_n", [("ws", 2 * C), ("os", 2 * C)])
def test_int4_widens_only_the_n_limit(df, ok_n):
    hw = HW.replace(dataflow=df)
    assert tile_limits(hw, True) == (tile_limits(hw)[0], tile_limits(hw)[1], ok_n)
    m = R if df == "os" else 1
    for n, ok in ((ok_n, True), (ok_n + 1, False)):
        words = encode([make_insn("gemm", dst=0, a=0, w=64, m0=m, m1=1, k=2, n=n, ws=n, w4=1)])
        dram = np.zeros(64, np.uint8)
        if ok:
            assert run_words(words, dram, hw).stats == emulate(words, dram, hw).stats
            continue
        msg = f"gemm n = {n} exceeds the array's {ok_n} cols"
        with pytest.raises(SimError, match=msg):
            run_words(words, dram, hw)
        with pytest.raises(EmuError, match=msg):
            emulate(words, dram, hw)


def test_int4_leaves_the_is_limits_alone():
    hw = HW.replace(dataflow="is")
    assert tile_limits(hw, True) == tile_limits(hw) == (C, R, None)


def test_the_packed_kernel_counts_wraps_like_the_row_path():
    """A 16 x 16 fold (the AVX2 special case where built) and a 5 x 3 one wrap at 32 bits: both
    count each wrapped output, as the emulator does."""
    for k, n in ((16, 16), (5, 3)):
        hw = HW.replace(rows=16, cols=16)
        spad = np.zeros(hw.spad_bytes, np.int8)
        spad[:k] = -128
        spad[512:512 + k * n] = -128  # each product 2^14
        acc = np.zeros(hw.acc_words, np.int32)
        acc[:n] = 2**31 - 1  # base + k * 2^14 wraps
        acc[1] = 0  # but not this one
        words = encode([make_insn("gemm", dst=0, a=0, w=512, m0=1, m1=1, k=k, n=n, ws=n, acc=1)])
        dram = np.zeros(64, np.uint8)
        sim = run_words(words, dram, hw, memories=True, spad=spad, acc=acc)
        emu = emulate(words, dram, hw, spad=spad, acc=acc)
        np.testing.assert_array_equal(sim.acc, emu.acc)
        assert sim.stats.acc_sat == emu.stats.acc_sat == n - 1


DATA_COUNTERS = ("macs", "dram_rd", "dram_wr", "spad_rd", "spad_wr", "acc_rd", "acc_wr", "vec_ops", "acc_sat")


def test_replay_gives_the_timed_runs_values_and_data_counters():
    """Random programs (int4 and int16 gemms, narrow accumulators, every dataflow): npu_replay in
    the timed run's order writes the same DRAM and counts the same data counters."""
    from npuc.isa.encoding import encode as encode_insns
    from npuc.sim.core import replay_words

    from .programs import DRAM_SIZE, RngChooser, program

    saturated = 0
    for seed in range(300):
        hw, insns, (dram, _spad, _acc) = program(RngChooser(seed))
        words = encode_insns(insns)
        assert dram.size == DRAM_SIZE
        try:
            timed = run_words(words, dram, hw, trace=False, order=True)
        except SimError:
            continue  # a fault the random program may hit on zeroed memories: not this test's subject
        assert timed.order is not None
        again = dram.copy()
        stats = replay_words(words, timed.order, again, hw)
        np.testing.assert_array_equal(again, timed.dram)
        for name in DATA_COUNTERS:
            assert getattr(stats, name) == getattr(timed.stats, name), (seed, name)
        saturated += timed.stats.acc_sat
    assert saturated > 0  # the corpus reaches the accumulator's edges
