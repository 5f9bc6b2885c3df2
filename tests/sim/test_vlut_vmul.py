"""vlut and vmul: the C core against numpy expressions of their Actions (isa/arith.py helpers)."""

import numpy as np
import pytest

from npuc.isa.arith import lut_lookup, mul_requantize, round_shift
from npuc.isa.table import Rounding
from npuc.sim.core import SimError

I32 = np.iinfo(np.int32)
A, B, DST, TAB = 100, 600, 1100, 2048  # SPAD layout of the tests (4 KiB)


def _i8(rng, shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


def _vlut(sim, x, table, ts, ds=None, ss=None, in_place=False):
    m, n = x.shape
    ss = n if ss is None else ss
    ds = ss if in_place else (n if ds is None else ds)
    dst = A if in_place else DST
    spad = np.zeros(sim.hw.spad_bytes, np.int8)
    spad[sim.strided(A, (m, n), (ss, 1))] = x
    tabs = np.atleast_2d(table)
    for j, t in enumerate(tabs):
        spad[TAB + j * ts:TAB + j * ts + 256] = t
    r = sim.run_on([sim.I("vlut", dst=dst, src=A, tab=TAB, m=m, n=n, ds=ds, ss=ss, ts=ts)], spad=spad)
    return r.spad[sim.strided(dst, (m, n), (ds, 1))]


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("ss,ds", [(None, None), (11, -9), (0, 13)])
def test_vlut_shared_table(sim, rng, ss, ds, in_place):
    x, table = _i8(rng, (4, 7)), _i8(rng, 256)
    if ss == 0:  # every row reads the same source row
        x = np.broadcast_to(x[:1], x.shape)
    got = _vlut(sim, x, table, 0, ds=ds, ss=ss, in_place=in_place and ss != 0)
    np.testing.assert_array_equal(got, lut_lookup(x, table))


def test_vlut_every_input_value_and_one_table_per_column(sim, rng):
    x = np.arange(-128, 128, dtype=np.int8).reshape(32, 8)  # every index reaches every column
    tables = _i8(rng, (8, 256))
    got = _vlut(sim, x, tables, 256)
    np.testing.assert_array_equal(got, lut_lookup(x, tables))
    np.testing.assert_array_equal(got[:, 3], tables[3][x[:, 3].astype(int) + 128])


def test_vlut_table_box_is_checked_whole_and_only_when_it_runs(sim):
    with pytest.raises(SimError, match=r"^insn 0: vlut tab: address range \[4000, 4255\] outside SPAD"):
        sim.run([sim.I("vlut", dst=0, src=0, tab=4000, m=1, n=1, ts=0)])
    with pytest.raises(SimError, match=r"vlut tab: address range \[3500, 4523\]"):
        sim.run([sim.I("vlut", dst=0, src=0, tab=3500, m=1, n=4, ts=256)])
    sim.run([sim.I("vlut", dst=0, src=0, tab=4000, m=0, n=4, ts=256)])  # no iteration: not checked


def _vmul(sim, a, b, *, bs=None, **kw):
    m, n = a.shape
    bs = n if bs is None else bs
    spad = np.zeros(sim.hw.spad_bytes, np.int8)
    spad[sim.strided(A, (m, n), (n, 1))] = a
    spad[sim.strided(B, (m, n), (bs, 1))] = np.broadcast_to(b, (m, n))
    f = {"dst": DST, "a": A, "b": B, "m": m, "n": n, "ds": n, "as": n, "bs": bs, "za": 0, "zb": 0, "mul": 1,
         "sh": 0, "zp": 0, "lo": -128, "hi": 127, "rnd": 0}
    f.update(kw)
    r = sim.run_on([sim.I("vmul", **f)], spad=spad)
    return r.spad[sim.strided(DST, (m, n), (n, 1))]


def test_vmul_squeeze_excite_broadcast_of_one_row(sim, rng):
    x, s = _i8(rng, (6, 8)), _i8(rng, (1, 8))
    got = _vmul(sim, x, s, bs=0, za=-4, zb=3, mul=1 << 20, sh=26, zp=5, rnd=0)
    np.testing.assert_array_equal(got, mul_requantize(x, s, -4, 3, 1 << 20, 26, 5, -128, 127, "half_even"))


@pytest.mark.parametrize("rnd", list(Rounding))
def test_vmul_extreme_product_is_exact(sim, rnd):
    """|(a - za)(b - zb) mul| up to 255^2 * 2^31 < 2^47, every shift to 62, ties of both signs."""
    a = np.array([[-128, 127, -128, 127, 3, -3, 1, 0]], np.int8)
    b = np.array([[-128, 127, 127, -128, 1, 1, -1, 5]], np.int8)
    for mul, za, zb in ((I32.min, 127, 127), (I32.max, -128, -128), (I32.min, -128, 127), (1, 0, 0)):
        for sh in (0, 1, 2, 31, 46, 47, 62):
            got = _vmul(sim, a, b, za=za, zb=zb, mul=mul, sh=sh, rnd=int(rnd), lo=-100, hi=90)
            t = (a.astype(np.int64) - za) * (b.astype(np.int64) - zb) * mul
            np.testing.assert_array_equal(got, np.clip(round_shift(t, sh, rnd), -100, 90))


def test_vmul_lo_above_hi_is_an_error(sim):
    with pytest.raises(SimError, match=r"^insn 0: vmul: lo = 3 > hi = 2$"):
        sim.run([sim.I("vmul", m=0, n=0, lo=3, hi=2)])
