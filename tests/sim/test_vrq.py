"""vrq: the C core against npuc.isa.arith (round_shift is the definition of the rounding)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npuc.isa.arith import requantize, round_shift
from npuc.isa.table import Rounding

I32 = np.iinfo(np.int32)
MUL, SH, SRC = 0, 100, 200  # ACC layout of the tests: multipliers, shifts, inputs


def _vrq(sim, src, mul, sh, rnd, zp=0, lo=-128, hi=127, ds=None, ss=None):
    """Requantize the m x n int32 `src` with per-column mul/sh; returns the SPAD rows."""
    m, n = src.shape
    acc = np.zeros(sim.hw.acc_words, np.int32)
    acc[MUL:MUL + n], acc[SH:SH + n] = mul, sh
    ss = n if ss is None else ss
    acc[sim.strided(SRC, (m, n), (ss, 1))] = src
    ds = n if ds is None else ds
    dst = 2000
    r = sim.run_on([sim.I("vrq", dst=dst, src=SRC, mul=MUL, sh=SH, m=m, n=n, ds=ds, ss=ss,
                          zp=zp, lo=lo, hi=hi, rnd=int(rnd))], acc=acc)
    return r.spad[sim.strided(dst, (m, n), (ds, 1))]


def _ties(s: int) -> np.ndarray:
    """Values exactly halfway between multiples of 2^s, both signs, plus neighbours."""
    q = np.array([-3, -2, -1, 0, 1, 2, 3], np.int64)
    half = (2 * q + 1) << (s - 1)
    return np.concatenate([half, half - 1, half + 1])


@pytest.mark.parametrize("rnd", list(Rounding))
@pytest.mark.parametrize("s", [1, 2, 7, 20])
def test_vrq_rounding_ties(sim, rnd, s):
    t = _ties(s)
    src = t.reshape(-1, 1).astype(np.int32)
    got = _vrq(sim, src, mul=[1], sh=[s], rnd=rnd)
    np.testing.assert_array_equal(got[:, 0], np.clip(round_shift(t, s, rnd), -128, 127))


@pytest.mark.parametrize("rnd", list(Rounding))
@pytest.mark.parametrize("s", [33, 45, 59])
def test_vrq_rounding_ties_of_wide_products(sim, rnd, s):
    """t = src * mul = (2q+1) * 2^(s-1) and its neighbours t +- 2^30, beyond int32."""
    k2 = 30
    odd = np.array([-7, -5, -3, -1, 1, 3, 5, 7], np.int64)
    src = np.concatenate([odd << (s - 1 - k2), (odd << (s - 1 - k2)) + 1, (odd << (s - 1 - k2)) - 1])
    t = src << k2
    got = _vrq(sim, src.reshape(-1, 1).astype(np.int32), mul=[1 << k2], sh=[s], rnd=rnd)
    np.testing.assert_array_equal(got[:, 0], np.clip(round_shift(t, s, rnd), -128, 127))


@pytest.mark.parametrize("rnd", list(Rounding))
def test_vrq_extreme_products_and_shifts(sim, rnd):
    """t = (-2^31)(-2^31) = 2^62 and (2^31-1)(-2^31): the extremes of the int64 product."""
    src = np.array([[I32.min, I32.min, I32.max, I32.max, -1, 1]], np.int32)
    mul = np.array([I32.min, I32.max, I32.min, 1, I32.min, I32.max], np.int32)
    for s in (0, 1, 31, 55, 61, 62):
        sh = np.full(6, s, np.int32)
        got = _vrq(sim, src, mul, sh, rnd)
        want = requantize(src, mul, sh, 0, -128, 127, rnd)
        np.testing.assert_array_equal(got, want, err_msg=f"shift {s}")


@pytest.mark.parametrize("zp,lo,hi", [
    (0, -128, 127), (-128, -128, 127), (5, 0, 6), (-3, -3, -3), (127, -128, 127),
])
def test_vrq_zero_point_and_saturation(sim, rng, zp, lo, hi):
    src = rng.integers(-5000, 5000, (5, 8)).astype(np.int32)
    mul = rng.integers(-40, 40, 8).astype(np.int32)
    sh = rng.integers(0, 8, 8).astype(np.int32)
    got = _vrq(sim, src, mul, sh, Rounding.HALF_EVEN, zp=zp, lo=lo, hi=hi)
    np.testing.assert_array_equal(got, requantize(src, mul, sh, zp, lo, hi, Rounding.HALF_EVEN))


def test_vrq_strides(sim, rng):
    src = rng.integers(-2**20, 2**20, (4, 3)).astype(np.int32)
    mul, sh = np.array([3, -7, 11], np.int32), np.array([4, 9, 1], np.int32)
    for ds, ss in ((-3, 5), (7, -4)):
        got = _vrq(sim, src, mul, sh, Rounding.HALF_UP, ds=ds, ss=ss)
        np.testing.assert_array_equal(got, requantize(src, mul, sh, 0, -128, 127, Rounding.HALF_UP))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), rnd=st.sampled_from(list(Rounding)))
def test_vrq_random_against_arith(sim, data, rnd):
    n = data.draw(st.integers(1, 6))
    i32 = st.integers(I32.min, I32.max)
    src = np.array(data.draw(st.lists(i32, min_size=2 * n, max_size=2 * n)), np.int32).reshape(2, n)
    mul = np.array(data.draw(st.lists(i32, min_size=n, max_size=n)), np.int32)
    sh = np.array(data.draw(st.lists(st.integers(0, 62), min_size=n, max_size=n)), np.int32)
    zp = data.draw(st.integers(-128, 127))
    lo = data.draw(st.integers(-128, 127))
    hi = data.draw(st.integers(lo, 127))
    got = _vrq(sim, src, mul, sh, rnd, zp=zp, lo=lo, hi=hi)
    np.testing.assert_array_equal(got, requantize(src, mul, sh, zp, lo, hi, rnd))
