"""ld, lda, st: micro-programs in the C core against numpy expressions of their Actions."""

import numpy as np
import pytest


def _dram(rng, size=4096):
    return rng.integers(0, 256, size=size, dtype=np.uint8)


@pytest.mark.parametrize("strides", [
    dict(ss0=40, ss1=9, ds0=20, ds1=5),  # positive, gaps
    dict(ss0=-50, ss1=-7, ds0=-100, ds1=-10),  # negative
    dict(ss0=5, ss1=40, ds0=5, ds1=20),  # transposed
])
def test_ld_copies_a_strided_box(sim, rng, strides):
    f = dict(dst=1500, src=2000, n0=3, n1=4, n2=5, **strides)
    dram = _dram(rng)
    r = sim.run([sim.I("ld", **f)], dram=dram)
    got = r.spad[sim.strided(f["dst"], (3, 4, 5), (f["ds0"], f["ds1"], 1))]
    want = dram[sim.strided(f["src"], (3, 4, 5), (f["ss0"], f["ss1"], 1))].view(np.int8)
    np.testing.assert_array_equal(got, want)
    assert np.count_nonzero(r.spad) <= 60  # nothing written outside the box


def test_ld_pads_the_border_with_fill(sim, rng):
    f = dict(dst=7, src=100, n0=3, n1=2, n2=3, ss0=30, ss1=3, ds0=40, ds1=6, pt=1, pb=2, pl=2, pr=1, fill=-7)
    dram = _dram(rng)
    r = sim.run([sim.I("ld", **f)], dram=dram)
    want = np.full((6, 5, 3), -7, np.int8)
    want[1:4, 2:4] = dram[sim.strided(100, (3, 2, 3), (30, 3, 1))].view(np.int8)
    np.testing.assert_array_equal(r.spad[sim.strided(7, (6, 5, 3), (40, 6, 1))], want)


def test_ld_padding_only(sim):
    """A zero interior still writes the fill border and reads no DRAM."""
    r = sim.run([sim.I("ld", dst=0, src=0, n0=0, n1=3, n2=2, ds0=6, ds1=2, pt=2, fill=5)], dram=0)
    np.testing.assert_array_equal(r.spad[:12], np.full(12, 5, np.int8))
    assert r.stats.dram_rd == 0 and r.stats.spad_wr == 12


def _ld_action(spad, dram, dst, src, n0, n1, n2, ss0, ss1, ds0, ds1, pt=0, pb=0, pl=0, pr=0, fill=0):
    """ISA.md's ld Action, line for line (for aliasing boxes, where write order matters)."""
    for i0 in range(pt + n0 + pb):
        for i1 in range(pl + n1 + pr):
            for i2 in range(n2):
                d = dst + i0 * ds0 + i1 * ds1 + i2
                if pt <= i0 < pt + n0 and pl <= i1 < pl + n1:
                    spad[d] = dram[src + (i0 - pt) * ss0 + (i1 - pl) * ss1 + i2]
                else:
                    spad[d] = fill


@pytest.mark.parametrize("f", [
    dict(dst=10, src=0, n0=4, n1=3, n2=2, ss0=6, ss1=2, ds0=0, ds1=2),  # every row onto the same bytes
    dict(dst=10, src=0, n0=3, n1=3, n2=4, ss0=0, ss1=0, ds0=3, ds1=1),  # overlapping, repeated source
    dict(dst=50, src=9, n0=2, n1=2, n2=3, ss0=-4, ss1=5, ds0=-2, ds1=0, pt=1, pb=1, pl=1, pr=1, fill=-1),
])
def test_ld_aliasing_boxes_follow_the_action_order(sim, rng, f):
    dram = _dram(rng, 64)
    r = sim.run([sim.I("ld", **f)], dram=dram)
    want = np.zeros(sim.hw.spad_bytes, np.int8)
    _ld_action(want, dram.view(np.int8), **f)
    np.testing.assert_array_equal(r.spad, want)


@pytest.mark.parametrize("strides", [
    dict(ss0=40, ss1=9, ds0=20, ds1=5),
    dict(ss0=-40, ss1=-9, ds0=-20, ds1=-5),
])
def test_st_copies_a_strided_box(sim, rng, strides):
    spad = rng.integers(-128, 128, sim.hw.spad_bytes, dtype=np.int8)
    f = dict(dst=3000, src=1000, n0=3, n1=4, n2=5, **strides)
    r = sim.run_on([sim.I("st", **f)], spad=spad)
    got = r.dram[sim.strided(3000, (3, 4, 5), (f["ds0"], f["ds1"], 1))].view(np.int8)
    np.testing.assert_array_equal(got, spad[sim.strided(1000, (3, 4, 5), (f["ss0"], f["ss1"], 1))])


def test_st_zero_stride_keeps_the_last_row(sim, rng):
    spad = rng.integers(-128, 128, sim.hw.spad_bytes, dtype=np.int8)
    r = sim.run_on([sim.I("st", dst=5000, src=0, n0=5, n1=1, n2=7, ds0=0, ss0=7)], spad=spad)
    np.testing.assert_array_equal(r.dram[5000:5007].view(np.int8), spad[28:35])


def test_ld_then_st_round_trips(sim, rng):
    dram = _dram(rng, 8192)
    f = dict(n0=4, n1=6, n2=3)
    r = sim.run(sim.chain(sim.I("ld", dst=0, src=0, ss0=18, ss1=3, ds0=18, ds1=3, **f),
                          sim.I("st", dst=4096, src=0, ds0=18, ds1=3, ss0=18, ss1=3, **f)), dram=dram)
    np.testing.assert_array_equal(r.dram[4096:4096 + 72], dram[:72])
    np.testing.assert_array_equal(r.dram[:4096], dram[:4096])


@pytest.mark.parametrize("f", [
    dict(dst=3, src=1, n0=3, n1=5, ss0=24, ds0=7),  # unaligned
    dict(dst=200, src=100, n0=4, n1=2, ss0=-13, ds0=-9),
])
def test_lda_reads_little_endian_int32(sim, rng, f):
    dram = _dram(rng, 512)
    r = sim.run([sim.I("lda", **f)], dram=dram)
    byte_addr = sim.strided(f["src"], (f["n0"], f["n1"]), (f["ss0"], 4))
    b = dram[byte_addr[..., None] + np.arange(4)].astype(np.uint32)
    want = (b[..., 0] | b[..., 1] << 8 | b[..., 2] << 16 | b[..., 3] << 24).astype(np.uint32).view(np.int32)
    np.testing.assert_array_equal(r.acc[sim.strided(f["dst"], (f["n0"], f["n1"]), (f["ds0"], 1))], want)


def test_dram_input_is_not_modified(sim, rng):
    dram = _dram(rng)
    before = dram.copy()
    r = sim.run([sim.I("st", dst=0, src=0, n0=1, n1=1, n2=100)], dram=dram)
    np.testing.assert_array_equal(dram, before)
    assert not r.dram[:100].any() and (r.dram[100:] == dram[100:]).all()
    assert r.dram is not dram
