"""vadd: the C core against numpy expressions of its Action (round_shift is the definition of the rounding)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npuc.isa.arith import add_requantize, round_shift
from npuc.isa.program import make_insn
from npuc.isa.table import BY_MNEMONIC, HEADER_WORDS, Rounding
from npuc.sim.core import SimError, run_words

I32 = np.iinfo(np.int32)
A, B, DST = 100, 1200, 2400  # SPAD layout of the tests


def _vadd(sim, a, b, *, za=0, zb=0, ma=1, mb=1, sh=0, zp=0, lo=-128, hi=127, rnd=Rounding.HALF_EVEN,
          ds=None, as_=None, bs=None):
    """Run one vadd on the m x n int8 operands `a`, `b` (bs = 0: `b` is one row); returns the result rows."""
    m, n = a.shape
    as_ = n if as_ is None else as_
    bs = n if bs is None else bs
    ds = n if ds is None else ds
    spad = np.zeros(sim.hw.spad_bytes, np.int8)
    spad[sim.strided(A, (m, n), (as_, 1))] = a
    spad[sim.strided(B, (m, n), (bs, 1))] = np.broadcast_to(b, (m, n))
    f = {"dst": DST, "a": A, "b": B, "m": m, "n": n, "ds": ds, "as": as_, "bs": bs, "za": za, "zb": zb,
         "ma": ma, "mb": mb, "sh": sh, "zp": zp, "lo": lo, "hi": hi, "rnd": int(rnd)}
    r = sim.run_on([sim.I("vadd", **f)], spad=spad)
    return r.spad[sim.strided(DST, (m, n), (ds, 1))]


def _want(a, b, za, zb, ma, mb, sh, zp, lo, hi, rnd):
    """The Action as a numpy expression: exact int64 sum, one rounding shift, zero point, clamp."""
    t = (a.astype(np.int64) - za) * ma + (b.astype(np.int64) - zb) * mb
    return np.clip(round_shift(t, sh, rnd) + zp, lo, hi)


def _i8(rng, shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


@pytest.mark.parametrize("ds,as_,bs", [(16, 7, 9), (-16, -7, 11), (5, 5, 5), (7, 7, 0)])
def test_vadd_pow2_residual_with_strides(sim, rng, ds, as_, bs):
    """A residual Add with pow2 scales: a at 2^-5, b at 2^-3, out at 2^-4: ma = 1, mb = 4, sh = 1."""
    a, b = _i8(rng, (5, 5)), _i8(rng, (1 if bs == 0 else 5, 5))
    got = _vadd(sim, a, b, za=-6, zb=2, ma=1, mb=4, sh=1, zp=-10, ds=ds, as_=as_, bs=bs)
    np.testing.assert_array_equal(got, _want(a, b, -6, 2, 1, 4, 1, -10, -128, 127, Rounding.HALF_EVEN))


def test_vadd_subtracts_with_a_negative_multiplier(sim, rng):
    a, b = _i8(rng, (4, 6)), _i8(rng, (4, 6))
    got = _vadd(sim, a, b, ma=2, mb=-2, sh=2)
    np.testing.assert_array_equal(got, np.clip(round_shift(2 * (a.astype(np.int64) - b), 2, "half_even"),
                                               -128, 127))


@pytest.mark.parametrize("rnd", list(Rounding))
@pytest.mark.parametrize("sh", [1, 2, 5])
def test_vadd_rounds_the_sum_once_ties_included(sim, rnd, sh):
    """Every (a, b) pair of a small grid: sums land on every residue mod 2^sh, ties of both signs."""
    av, bv = np.meshgrid(np.arange(-20, 20), np.arange(-3, 4))
    a, b = av.reshape(-1, 20).astype(np.int8), bv.reshape(-1, 20).astype(np.int8)
    got = _vadd(sim, a, b, ma=1, mb=3, sh=sh, rnd=rnd)
    t = a.astype(np.int64) + 3 * b.astype(np.int64)
    np.testing.assert_array_equal(got, np.clip(round_shift(t, sh, rnd), -128, 127))
    # rounding each term separately is a different op: on this grid it differs somewhere
    apart = round_shift(a.astype(np.int64), sh, rnd) + round_shift(3 * b.astype(np.int64), sh, rnd)
    assert np.any(got != np.clip(apart, -128, 127))


@pytest.mark.parametrize("rnd", list(Rounding))
def test_vadd_extreme_multipliers_and_zero_points(sim, rnd):
    """|t| up to 2 * 255 * 2^31: the int64 sum and every shift up to 62."""
    a = np.array([[-128, 127, -128, 127, 0, 1]], np.int8)
    b = np.array([[-128, 127, 127, -128, -1, 0]], np.int8)
    for ma, mb, za, zb in ((I32.min, I32.min, 127, 127), (I32.max, I32.max, -128, -128),
                           (I32.min, I32.max, 127, -128), (I32.max, I32.min, -128, 127)):
        for sh in (0, 1, 31, 39, 40, 62):
            got = _vadd(sim, a, b, za=za, zb=zb, ma=ma, mb=mb, sh=sh, rnd=rnd)
            want = _want(a, b, za, zb, ma, mb, sh, 0, -128, 127, rnd)
            np.testing.assert_array_equal(got, want, err_msg=f"ma={ma} mb={mb} sh={sh}")


@pytest.mark.parametrize("zp,lo,hi", [(0, -128, 127), (-128, -128, 127), (5, 0, 6), (-3, -3, -3), (127, -128, 127)])
def test_vadd_zero_point_and_saturation(sim, rng, zp, lo, hi):
    a, b = _i8(rng, (6, 8)), _i8(rng, (6, 8))
    got = _vadd(sim, a, b, za=3, zb=-7, ma=5, mb=-3, sh=3, zp=zp, lo=lo, hi=hi, rnd=Rounding.HALF_UP)
    np.testing.assert_array_equal(got, _want(a, b, 3, -7, 5, -3, 3, zp, lo, hi, Rounding.HALF_UP))


def _action(spad, f):
    """The Action's element loop on a copy of SPAD (the definition where dst overlaps a or b)."""
    out = spad.copy()
    for i in range(f["m"]):
        for j in range(f["n"]):
            x, y = out[f["a"] + i * f["as"] + j], out[f["b"] + i * f["bs"] + j]
            out[f["dst"] + i * f["ds"] + j] = add_requantize(x, y, f["za"], f["zb"], f["ma"], f["mb"], f["sh"],
                                                             f["zp"], f["lo"], f["hi"], Rounding(f["rnd"]))
    return out


@pytest.mark.parametrize("f", [
    {"dst": 0, "a": 0, "b": 50, "m": 3, "n": 6, "ds": 6, "as": 6, "bs": 6},  # in place over a
    {"dst": 50, "a": 0, "b": 50, "m": 3, "n": 6, "ds": 6, "as": 6, "bs": 6},  # in place over b
    {"dst": 1, "a": 0, "b": 50, "m": 3, "n": 6, "ds": 6, "as": 6, "bs": 6},  # shifted overlap
    {"dst": 50, "a": 0, "b": 50, "m": 3, "n": 6, "ds": 0, "as": 6, "bs": 0},  # dst is the broadcast row
])
def test_vadd_aliasing_follows_the_action_order(sim, rng, f):
    f = {**f, "za": 1, "zb": -2, "ma": 3, "mb": 2, "sh": 2, "zp": 1, "lo": -120, "hi": 110, "rnd": 0}
    spad = _i8(rng, sim.hw.spad_bytes)
    r = sim.run_on([sim.I("vadd", **f)], spad=spad)
    np.testing.assert_array_equal(r.spad, _action(spad, f))


@pytest.mark.parametrize("m,n", [(0, 5), (3, 0), (1, 1), (3, 5), (2, 9)])
def test_vadd_cost_and_traffic(sim, m, n):
    body = [sim.I("vadd", dst=0, a=100, b=200, m=m, n=n, ds=n, bs=n, hi=127, **{"as": n})]
    r = sim.run(body)
    hw = sim.hw
    assert r.stats.cycles == hw.vec_latency + m * -(-n // hw.vec_lanes)
    assert (r.stats.spad_rd, r.stats.spad_wr) == (2 * m * n, m * n)
    assert r.stats.macs == r.stats.acc_rd == r.stats.acc_wr == 0


def test_vadd_lo_above_hi_is_an_error_even_with_no_elements(sim):
    for m in (0, 2):
        with pytest.raises(SimError) as e:
            sim.run([make_insn("vadd", m=m, n=2, lo=5, hi=4)])
        assert str(e.value) == "insn 0: vadd: lo = 5 > hi = 4"


@pytest.mark.parametrize("f,field,lo,hi", [
    ({"dst": 4095, "n": 2}, "dst", 4095, 4096),
    ({"a": 4090, "m": 2, "n": 3, "as": 4}, "a", 4090, 4096),
    ({"b": 5, "m": 3, "n": 1, "bs": -3}, "b", -1, 5),
])
def test_vadd_boxes_are_checked(sim, f, field, lo, hi):
    f = {"m": 1, "n": 1, **f, "hi": 1}
    with pytest.raises(SimError) as e:
        sim.run([make_insn("vadd", **f)])
    assert str(e.value) == f"insn 0: vadd {field}: address range [{lo}, {hi}] outside SPAD of 4096 bytes"


@pytest.mark.parametrize("f,msg", [
    ({"sh": 63}, "vadd sh = 63 outside [0, 62]"),
    ({"rnd": 4}, "vadd rnd = 4 outside [0, 3]"),
    ({"za": 128}, "vadd za = 128 outside [-128, 127]"),
    ({"zp": -129}, "vadd zp = -129 outside [-128, 127]"),
])
def test_vadd_fields_outside_their_table_range(sim, f, msg):
    words = sim.encode([make_insn("vadd", hi=1)])
    names = BY_MNEMONIC["vadd"].field_names()
    for k, v in f.items():
        words[HEADER_WORDS + names.index(k)] = v & 0xFFFFFFFF
    with pytest.raises(SimError) as e:
        run_words(words, np.zeros(16, np.uint8), sim.hw)
    assert str(e.value) == f"insn 0: {msg}"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), rnd=st.sampled_from(list(Rounding)))
def test_vadd_random_against_arith(sim, data, rnd):
    m, n = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 9))
    i8, i32 = st.integers(-128, 127), st.integers(I32.min, I32.max)
    a = np.array(data.draw(st.lists(i8, min_size=m * n, max_size=m * n)), np.int8).reshape(m, n)
    b = np.array(data.draw(st.lists(i8, min_size=m * n, max_size=m * n)), np.int8).reshape(m, n)
    small = st.integers(-(1 << 12), 1 << 12)
    ma, mb = data.draw(st.one_of(i32, small)), data.draw(st.one_of(i32, small))
    sh = data.draw(st.integers(0, 62))
    za, zb, zp = data.draw(i8), data.draw(i8), data.draw(i8)
    lo = data.draw(i8)
    hi = data.draw(st.integers(lo, 127))
    got = _vadd(sim, a, b, za=za, zb=zb, ma=ma, mb=mb, sh=sh, zp=zp, lo=lo, hi=hi, rnd=rnd)
    np.testing.assert_array_equal(got, add_requantize(a, b, za, zb, ma, mb, sh, zp, lo, hi, rnd))
