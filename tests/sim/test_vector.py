"""vaddv, vmax, vsum: the C core against numpy expressions of their Actions."""

import numpy as np
import pytest

from npuc.isa.arith import wrap_int32

I32 = np.iinfo(np.int32)


def _acc(rng, size):
    return rng.integers(I32.min, I32.max, size, dtype=np.int64, endpoint=True).astype(np.int32)


@pytest.mark.parametrize("ds,ss", [(8, 5), (-8, -5), (3, 3)])
def test_vaddv_adds_the_vector_to_every_row_with_wraparound(sim, rng, ds, ss):
    acc = _acc(rng, sim.hw.acc_words)
    f = dict(dst=400, src=200, vec=900, m=4, n=3, ds=ds, ss=ss)
    r = sim.run_on([sim.I("vaddv", **f)], acc=acc)
    src = acc[sim.strided(200, (4, 3), (ss, 1))].astype(np.int64)
    want = wrap_int32(src + acc[900:903].astype(np.int64))
    np.testing.assert_array_equal(r.acc[sim.strided(400, (4, 3), (ds, 1))], want)


def _vaddv_action(acc, dst, src, vec, m, n, ds, ss):
    for i in range(m):
        for j in range(n):
            acc[dst + i * ds + j] = wrap_int32(int(acc[src + i * ss + j]) + int(acc[vec + j]))


@pytest.mark.parametrize("f", [
    dict(dst=10, src=10, vec=100, m=3, n=4, ds=4, ss=4),  # in place
    dict(dst=100, src=10, vec=100, m=3, n=4, ds=0, ss=4),  # dst is vec: each row sees the last
    dict(dst=11, src=10, vec=10, m=2, n=5, ds=5, ss=5),  # shifted overlap
])
def test_vaddv_aliasing_follows_the_action_order(sim, rng, f):
    acc = rng.integers(-50, 50, sim.hw.acc_words).astype(np.int32)
    r = sim.run_on([sim.I("vaddv", **f)], acc=acc)
    want = acc.copy()
    _vaddv_action(want, **f)
    np.testing.assert_array_equal(r.acc, want)


@pytest.mark.parametrize("ds,as_,bs", [(16, 7, 9), (-16, -7, 0), (5, 5, 5)])
def test_vmax_is_elementwise_maximum(sim, rng, ds, as_, bs):
    spad = rng.integers(-128, 128, sim.hw.spad_bytes, dtype=np.int8)
    f = {"dst": 3000, "a": 100, "b": 1000, "m": 5, "n": 5, "ds": ds, "as": as_, "bs": bs}
    r = sim.run_on([sim.I("vmax", **f)], spad=spad)
    a = spad[sim.strided(100, (5, 5), (as_, 1))]
    b = spad[sim.strided(1000, (5, 5), (bs, 1))]
    np.testing.assert_array_equal(r.spad[sim.strided(3000, (5, 5), (ds, 1))], np.maximum(a, b))


def test_vmax_in_place_with_overlap_follows_the_action_order(sim, rng):
    spad = rng.integers(-128, 128, sim.hw.spad_bytes, dtype=np.int8)
    f = {"dst": 1, "a": 0, "b": 50, "m": 3, "n": 6, "ds": 6, "as": 6, "bs": 6}
    r = sim.run_on([sim.I("vmax", **f)], spad=spad)
    want = spad.copy()
    for i in range(3):
        for j in range(6):
            want[1 + i * 6 + j] = max(want[i * 6 + j], want[50 + i * 6 + j])
    np.testing.assert_array_equal(r.spad, want)


@pytest.mark.parametrize("ss", [8, -8, 0, 3])
@pytest.mark.parametrize("acc_flag", [0, 1])
def test_vsum_sums_columns(sim, rng, ss, acc_flag):
    spad = rng.integers(-128, 128, sim.hw.spad_bytes, dtype=np.int8)
    acc = _acc(rng, sim.hw.acc_words)
    r = sim.run_on([sim.I("vsum", dst=50, src=2000, m=7, n=6, ss=ss, acc=acc_flag)], spad=spad, acc=acc)
    col = spad[sim.strided(2000, (7, 6), (ss, 1))].astype(np.int64).sum(axis=0)
    base = acc[50:56].astype(np.int64) if acc_flag else 0
    np.testing.assert_array_equal(r.acc[50:56], wrap_int32(base + col))
    assert (r.acc[:50] == acc[:50]).all() and (r.acc[56:] == acc[56:]).all()


def test_vsum_of_no_rows_clears_or_keeps(sim, rng):
    acc = _acc(rng, sim.hw.acc_words)
    prog = [sim.I("vsum", dst=5, src=0, m=0, n=3, acc=0), sim.I("vsum", dst=9, src=0, m=0, n=3, acc=1)]
    r = sim.run_on(prog, acc=acc)
    np.testing.assert_array_equal(r.acc[5:8], 0)
    np.testing.assert_array_equal(r.acc[9:12], acc[9:12])
