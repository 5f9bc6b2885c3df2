"""gemm with int16 input rows (a16 = 1): little-endian, streamed act16_passes times (ISA.md, gemm)."""

import numpy as np
import pytest

from npuc.isa.emulator import emulate
from npuc.isa.program import make_insn
from npuc.sim.core import run_words

from .conftest import HW, encode, run_on


def _spad_with(hw, a16: np.ndarray, w: np.ndarray) -> np.ndarray:
    spad = np.zeros(hw.spad_bytes, np.int8)
    raw = a16.astype("<i2").view(np.int8).ravel()
    spad[:raw.size] = raw
    spad[2048:2048 + w.size] = w.ravel()
    return spad


@pytest.mark.parametrize("passes", [1, 2])
def test_int16_rows_are_a_matrix_product_and_stream_passes_times(passes):
    hw = HW.replace(act16_passes=passes)
    rng = np.random.default_rng(passes)
    m, k, n = 6, 4, 8
    a = rng.integers(-32768, 32768, (m, k))
    a[0] = [-32768, 32767, -1, 256]  # the byte edges: the low byte is unsigned
    w = rng.integers(-128, 128, (k, n))
    spad = _spad_with(hw, a, w)
    g = make_insn("gemm", dst=10, a=0, w=2048, m0=m, m1=1, k=k, n=n, as0=2 * k, ws=n, ds0=n, a16=1)
    r = run_on([g], spad=spad, hw=hw)
    np.testing.assert_array_equal(r.acc[10:10 + m * n].reshape(m, n), a @ w)
    # cost of a chain's first gemm: preload R + stream passes * M + drain R + C - 2
    assert r.insn_end[-1] - r.insn_start[-1] == 4 + passes * m + 4 + 8 - 2
    assert r.stats.gemm_fill == 4 + 4 + 8 - 2
    plain = run_on([make_insn("gemm", dst=10, a=0, w=2048, m0=m, m1=1, k=k, n=n, as0=2 * k, ws=n, ds0=n)],
                   spad=spad, hw=hw)
    assert r.stats.spad_rd - plain.stats.spad_rd == m * k  # 2 bytes an input element


def test_a_sum_beyond_int32_is_exact_until_the_accumulator():
    """k = 1024 rows of 32767 * 127: 4.26e9 > 2^31 - 1. Held exactly, then the 32-bit accumulator
    wraps it (and counts it); a 24-bit one saturates it."""
    for bits, want in ((32, np.int64(1024 * 32767 * 127) - 2**32), (24, 2**23 - 1)):
        hw = HW.replace(rows=1024, cols=4, spad_kib=8, acc_bits=bits)
        spad = np.zeros(hw.spad_bytes, np.int8)
        spad[:2048] = np.full(1024, 32767, "<i2").view(np.int8)
        spad[4096:4096 + 4096] = 127
        words = encode([make_insn("gemm", dst=0, a=0, w=4096, m0=1, m1=1, k=1024, n=4, ws=4, a16=1)])
        dram = np.zeros(64, np.uint8)
        sim = run_words(words, dram, hw, memories=True, spad=spad)
        emu = emulate(words, dram, hw, spad=spad)
        np.testing.assert_array_equal(sim.acc[:4], np.full(4, want))
        np.testing.assert_array_equal(emu.acc, sim.acc)
        assert sim.stats == emu.stats and sim.stats.acc_sat == 4
