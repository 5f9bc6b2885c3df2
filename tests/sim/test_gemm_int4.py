"""gemm with int4 weights (w4 = 1): two per byte, low nibble first, n <= int4_pack * cols (ISA.md)."""

import numpy as np
import pytest

from npuc.isa.emulator import EmuError, emulate
from npuc.isa.program import make_insn
from npuc.isa.semantics import pack_int4, unpack_int4
from npuc.sim.core import SimError, run_words

from .conftest import HW, encode, run_on


def test_pack_and_unpack_are_inverse():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 16):
        w = rng.integers(-8, 8, (5, n))
        packed = pack_int4(w)
        assert packed.shape == (5, (n + 1) // 2) and packed.dtype == np.int8
        np.testing.assert_array_equal(unpack_int4(packed, n), w)
    # the documented layout: column 0 in the low nibble, column 1 in the high one
    assert pack_int4(np.array([[-1, 2]]))[0, 0] == np.int8(0x2F)


@pytest.mark.parametrize("n", [1, 5, 8, 9, 16])  # C = 8: up to 2C columns with int4_pack = 2
def test_int4_gemm_is_a_matrix_product(n):
    rng = np.random.default_rng(n)
    k, m = 4, 6
    a = rng.integers(-128, 128, (m, k))
    w = rng.integers(-8, 8, (k, n))
    packed = pack_int4(w)
    spad = np.zeros(HW.spad_bytes, np.int8)
    spad[:m * k] = a.ravel()
    ws = packed.shape[1] + 3  # a row stride beyond the packed bytes
    for r in range(k):
        spad[512 + r * ws:512 + r * ws + packed.shape[1]] = packed[r]
    g = make_insn("gemm", dst=10, a=0, w=512, m0=m, m1=1, k=k, n=n, as0=k, ws=ws, ds0=n, w4=1)
    r = run_on([g], spad=spad)
    np.testing.assert_array_equal(r.acc[10:10 + m * n].reshape(m, n), a @ w)
    # SPAD read: the M*k input bytes and the k * ceil(n/2) weight bytes (besides the ld)
    plain = run_on([make_insn("gemm", dst=10, a=0, w=512, m0=m, m1=1, k=k, n=min(n, 8), as0=k, ws=ws,
                              ds0=n)], spad=spad)
    assert r.stats.spad_rd - plain.stats.spad_rd == k * ((n + 1) // 2) - k * min(n, 8)
    assert r.stats.macs == plain.stats.macs + m * k * (n - min(n, 8))
    # the cost does not depend on the weights' width: preload R, stream M, drain R + C - 2
    assert r.stats.busy == plain.stats.busy


@pytest.mark.parametrize("pack,n,ok", [(2, 16, True), (2, 17, False), (1, 8, True), (1, 9, False)])
def test_int4_columns_are_bounded_by_int4_pack(pack, n, ok):
    hw = HW.replace(int4_pack=pack)
    words = encode([make_insn("gemm", dst=0, a=0, w=64, m0=1, m1=1, k=4, n=n, ws=8, w4=1)])
    dram = np.zeros(64, np.uint8)
    if ok:
        assert run_words(words, dram, hw).stats.macs == 4 * n
        assert emulate(words, dram, hw).stats.macs == 4 * n
        return
    msg = f"insn 0: gemm n = {n} exceeds the array's {8 * pack} cols"
    with pytest.raises(SimError, match=msg):
        run_words(words, dram, hw)
    with pytest.raises(EmuError, match=msg):
        emulate(words, dram, hw)


def test_int8_gemm_keeps_cols():
    words = encode([make_insn("gemm", dst=0, a=0, w=64, m0=1, m1=1, k=4, n=9, ws=9)])
    with pytest.raises(SimError, match="gemm n = 9 exceeds the array's 8 cols"):
        run_words(words, np.zeros(64, np.uint8), HW)
