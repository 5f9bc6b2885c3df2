"""gemm: the C core against int32 numpy matrix products (HW: R = 4, C = 8)."""

import numpy as np
import pytest

from npuc.isa.arith import wrap_int32


def _spad(rng, size):
    return rng.integers(-128, 128, size, dtype=np.int8)


def _gemm_ref(spad, acc_img, f):
    """ISA.md's gemm Action, row by row (write order matters when output rows alias)."""
    dst, a, w, m0, m1, k, n = (f[x] for x in ("dst", "a", "w", "m0", "m1", "k", "n"))
    as0, as1, ws, ds0, ds1 = (f.get(x, 0) for x in ("as0", "as1", "ws", "ds0", "ds1"))
    acc = acc_img.astype(np.int64)
    wt = spad[(w + np.arange(k)[:, None] * ws + np.arange(n)).ravel()].reshape(k, n).astype(np.int64)
    for i1 in range(m1):
        for i0 in range(m0):
            row = spad[a + i1 * as1 + i0 * as0 + np.arange(k)].astype(np.int64)
            o = dst + i1 * ds1 + i0 * ds0 + np.arange(n)
            acc[o] = (acc[o] if f["acc"] else 0) + row @ wt
            acc[o] = wrap_int32(acc[o])
    return acc.astype(np.int32)


@pytest.mark.parametrize("k,n", [(4, 8), (3, 5), (1, 1), (4, 1), (2, 7)])
def test_gemm_is_a_matrix_product(sim, rng, k, n):
    spad = _spad(rng, sim.hw.spad_bytes)
    m = 6
    r = sim.run_on([sim.I("gemm", dst=10, a=0, w=512, m0=m, m1=1, k=k, n=n, as0=k, ws=n, ds0=n)], spad=spad)
    a = spad[:m * k].reshape(m, k).astype(np.int32)
    w = spad[512:512 + k * n].reshape(k, n).astype(np.int32)
    np.testing.assert_array_equal(r.acc[10:10 + m * n].reshape(m, n), a @ w)
    assert not r.acc[:10].any() and not r.acc[10 + m * n:].any()


def test_gemm_two_level_row_loop_with_strides(sim, rng):
    spad = _spad(rng, sim.hw.spad_bytes)
    f = dict(dst=100, a=7, w=2000, m0=3, m1=4, k=3, n=5, as0=11, as1=40, ws=9, ds0=6, ds1=25, acc=0)
    r = sim.run_on([sim.I("gemm", **f)], spad=spad)
    np.testing.assert_array_equal(r.acc, _gemm_ref(spad, np.zeros(sim.hw.acc_words, np.int32), f))
    rows = spad[sim.strided(7, (4, 3, 3), (40, 11, 1))].reshape(12, 3).astype(np.int32)
    w = spad[sim.strided(2000, (3, 5), (9, 1))].astype(np.int32)
    np.testing.assert_array_equal(r.acc[sim.strided(100, (4, 3, 5), (25, 6, 1))].reshape(12, 5), rows @ w)


def test_gemm_negative_strides(sim, rng):
    spad = _spad(rng, sim.hw.spad_bytes)
    f = dict(dst=500, a=900, w=3000, m0=4, m1=2, k=4, n=8, as0=-4, as1=-100, ws=-8, ds0=-8, ds1=-64, acc=0)
    r = sim.run_on([sim.I("gemm", **f)], spad=spad)
    np.testing.assert_array_equal(r.acc, _gemm_ref(spad, np.zeros(sim.hw.acc_words, np.int32), f))


@pytest.mark.parametrize("acc_flag", [0, 1])
def test_gemm_zero_strides_alias_rows(sim, rng, acc_flag):
    """ds0 = 0: with acc every row adds into the same outputs, without it the last row wins;
    as0 = 0 repeats one input row, ws = 0 repeats one weight row."""
    spad = _spad(rng, sim.hw.spad_bytes)
    acc = rng.integers(-1000, 1000, sim.hw.acc_words).astype(np.int32)
    f = dict(dst=40, a=64, w=128, m0=5, m1=2, k=4, n=6, as0=4, as1=0, ws=0, ds0=0, ds1=0, acc=acc_flag)
    r = sim.run_on([sim.I("gemm", **f)], spad=spad, acc=acc)
    np.testing.assert_array_equal(r.acc, _gemm_ref(spad, acc, f))


def test_gemm_accumulates_with_int32_wraparound(sim):
    spad = np.zeros(sim.hw.spad_bytes, np.int8)
    spad[:4] = -128  # one row of k = 4
    spad[64:64 + 32] = -128  # 4 x 8 weights: each output gets 4 * 16384 = 65536
    acc = np.zeros(sim.hw.acc_words, np.int32)
    acc[:8] = [2**31 - 1, 2**31 - 65536, -(2**31), -1, 0, 2**31 - 65535, 5, -(2**31) + 3]
    r = sim.run_on([sim.I("gemm", dst=0, a=0, w=64, m0=1, m1=1, k=4, n=8, ws=8, acc=1)], spad=spad, acc=acc)
    np.testing.assert_array_equal(r.acc[:8], wrap_int32(acc[:8].astype(np.int64) + 65536))


def test_gemm_extreme_products_on_a_full_size_array(sim):
    """k = R = 1024 rows of (-128)(-128): 2^24 per output, no overflow in the dot product."""
    hw = sim.hw.replace(rows=1024, cols=16, spad_kib=64)
    spad = np.full(hw.spad_bytes, -128, np.int8)
    r = sim.run_on([sim.I("gemm", dst=0, a=0, w=0, m0=3, m1=1, k=1024, n=16, as0=0, ws=16, ds0=16)],
                   spad=spad, hw=hw)
    np.testing.assert_array_equal(r.acc[:48], np.full(48, 1024 * 16384, np.int32))
    assert r.stats.macs == 3 * 1024 * 16


def test_gemm_overwrite_ignores_old_accumulator(sim, rng):
    spad = _spad(rng, sim.hw.spad_bytes)
    acc = np.full(sim.hw.acc_words, 12345, np.int32)
    r = sim.run_on([sim.I("gemm", dst=0, a=0, w=64, m0=2, m1=1, k=4, n=8, as0=4, ws=8, ds0=8, acc=0)],
                   spad=spad, acc=acc)
    want = spad[:8].reshape(2, 4).astype(np.int32) @ spad[64:96].reshape(4, 8).astype(np.int32)
    np.testing.assert_array_equal(r.acc[:16].reshape(2, 8), want)
    assert (r.acc[16:] == 12345).all()


def test_gemm_with_no_rows_touches_nothing(sim):
    """M = 0: the a and w boxes are never read, so even out-of-range ones pass."""
    r = sim.run_on([sim.I("gemm", dst=0, a=2**31 - 1, w=2**31 - 1, m0=0, m1=7, k=4, n=8, ws=8)])
    assert not r.acc.any() and r.stats.macs == 0
