"""The C core's gemm kernels (csrc/kernels.c) on the shapes that pick each path: the fixed
16 x 16 fold, the blocked general one (rows in fours, columns in sixteens, odd k) and its row
tail, against ISA.md's Action row by row, with every acc mode and aliasing output rows."""

import numpy as np
import pytest

from npuc.hw import HwConfig

HW16 = HwConfig(rows=16, cols=40, spad_kib=8, acc_kib=32, dram_bw=4, dram_latency=10, vec_lanes=4, vec_latency=3)


def _action(spad, acc_img, f):
    """ISA.md's gemm Action row by row, the bias row read before any output is written."""
    k, n = f["k"], f["n"]
    acc = acc_img.astype(np.int64)
    bias = acc[f["bias"] + np.arange(n)].copy()
    wt = spad[(f["w"] + np.arange(k)[:, None] * f["ws"] + np.arange(n)).ravel()].reshape(k, n).astype(np.int64)
    for i1 in range(f["m1"]):
        for i0 in range(f["m0"]):
            row = spad[f["a"] + i1 * f["as1"] + i0 * f["as0"] + np.arange(k)].astype(np.int64)
            o = f["dst"] + i1 * f["ds1"] + i0 * f["ds0"] + np.arange(n)
            base = acc[o] if f["acc"] == 1 else bias if f["acc"] == 2 else 0
            acc[o] = (base + row @ wt + 2**31) % 2**32 - 2**31
    return acc.astype(np.int32)


def _run(sim, rng, f):
    spad = rng.integers(-128, 128, HW16.spad_bytes, dtype=np.int8)
    acc = rng.integers(-2**31, 2**31, HW16.acc_words, dtype=np.int64).astype(np.int32)
    r = sim.run_on([sim.I("gemm", **f)], spad=spad, acc=acc, hw=HW16)
    np.testing.assert_array_equal(r.acc, _action(spad, acc, f))
    assert r.stats.macs == f["m0"] * f["m1"] * f["k"] * f["n"]


@pytest.mark.parametrize("k,n", [(16, 16), (15, 16), (16, 13), (3, 16), (16, 40), (1, 1), (7, 33)])
@pytest.mark.parametrize("m0,m1", [(1, 1), (3, 1), (4, 1), (5, 2), (49, 1)])
@pytest.mark.parametrize("mode", [0, 1, 2])
def test_gemm_kernels_follow_the_action(sim, rng, k, n, m0, m1, mode):
    f = dict(dst=64, a=5, w=4000, m0=m0, m1=m1, k=k, n=n, as0=k + 3, as1=(k + 3) * m0 + 1, ws=n + 2,
             ds0=n + 1, ds1=(n + 1) * m0 + 5, acc=mode, bias=8)
    _run(sim, rng, f)


@pytest.mark.parametrize("k,n", [(16, 16), (9, 20)])
@pytest.mark.parametrize("mode", [0, 1, 2])
def test_gemm_kernels_aliasing_and_negative_strides(sim, rng, k, n, mode):
    """ds0 = 0: every row of a block lands on the same words (acc = 1 adds them in row order);
    negative strides walk the rows backwards; the bias row overlaps the outputs."""
    _run(sim, rng, dict(dst=300, a=2000, w=6000, m0=6, m1=2, k=k, n=n, as0=-k, as1=-200, ws=-n,
                        ds0=0, ds1=n, acc=mode, bias=300 + n // 2))
