"""Emulator: gemm and the vector instructions against numpy expressions and ISA.md cycle formulas.

gemm costs 2R + C + M - 2; a vector instruction VL + m * ceil(n / L).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npuc.hw import HwConfig
from npuc.isa.arith import requantize, round_shift
from npuc.isa.emulator import EmuError, emulate
from npuc.isa.program import make_insn

HW = HwConfig(rows=4, cols=8, spad_kib=1, acc_kib=1, dram_bw=4, dram_latency=10, vec_lanes=4, vec_latency=3)
R, C, L, VL = HW.rows, HW.cols, HW.vec_lanes, HW.vec_latency
DRAM = np.zeros(64, np.uint8)


def _spad(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, HW.spad_bytes).astype(np.int8)


def _acc(seed: int = 0, lo: int = -(2**31), hi: int = 2**31) -> np.ndarray:
    return np.random.default_rng(seed).integers(lo, hi, HW.acc_words).astype(np.int32)


def _run(insn, spad=None, acc=None):
    return emulate([insn], DRAM, HW, spad=spad, acc=acc)


def _rows(mem: np.ndarray, base: int, outer: tuple[int, int], inner: tuple[int, int], n: int) -> np.ndarray:
    """mem[base + i1*s1 + i0*s0 + j] for (i1, i0) in the outer x inner loop, as M rows of n."""
    (m1, s1), (m0, s0) = outer, inner
    return np.array([mem[base + i1 * s1 + i0 * s0:][:n] for i1 in range(m1) for i0 in range(m0)])


def test_gemm_is_an_int32_matmul_over_strided_rows():
    spad, acc = _spad(), _acc()
    insn = make_insn("gemm", dst=40, a=500, w=100, m0=3, m1=2, k=4, n=7, as0=-9, as1=60, ws=11, ds0=8, ds1=30, acc=0)
    res = _run(insn, spad, acc)
    a = _rows(spad, 500, (2, 60), (3, -9), 4).astype(np.int64)
    w = np.array([spad[100 + r * 11:][:7] for r in range(4)]).astype(np.int64)
    got = _rows(res.acc, 40, (2, 30), (3, 8), 7)
    np.testing.assert_array_equal(got, a @ w)
    assert res.insn_end[0] == 2 * R + C + 6 - 2
    s = res.stats
    assert (s.macs, s.spad_rd, s.acc_rd, s.acc_wr) == (6 * 4 * 7, 6 * 4 + 4 * 7, 0, 4 * 6 * 7)


def test_gemm_accumulates_modulo_2_32_and_sums_rows_that_share_an_output():
    spad = np.full(HW.spad_bytes, -128, np.int8)
    acc = np.full(HW.acc_words, 2**31 - 1, np.int32)
    # ds0 = 0: the three input rows of the inner loop all add into the same output row
    res = _run(make_insn("gemm", dst=0, a=0, w=0, m0=3, m1=1, k=4, n=2, as0=4, ws=2, ds0=0, acc=1), spad, acc)
    total = (2**31 - 1) + 3 * 4 * 128 * 128
    assert res.acc[:2].tolist() == [(total + 2**31) % 2**32 - 2**31] * 2
    assert res.stats.acc_rd == 4 * 3 * 2


def test_gemm_with_no_rows_touches_nothing_but_costs_the_preload():
    res = _run(make_insn("gemm", dst=2**31 - 1, a=2**31 - 1, w=2**31 - 1, m0=0, m1=5, k=4, n=8))
    assert res.insn_end[0] == 2 * R + C - 2 and res.stats.macs == 0 and res.stats.spad_rd == 0


def test_gemm_tile_must_fit_the_array():
    with pytest.raises(EmuError, match=r"^insn 1: gemm n = 9 exceeds the array's 8 cols$"):
        emulate([make_insn("st"), make_insn("gemm", k=4, n=9)], DRAM, HW)


def test_vaddv_broadcasts_the_vector_with_wrap():
    acc = _acc()
    res = _run(make_insn("vaddv", dst=100, src=10, vec=200, m=3, n=5, ds=-20, ss=7), acc=acc)
    want = np.array([acc[10 + 7 * i:][:5].astype(np.int64) + acc[200:205] for i in range(3)])
    got = np.array([res.acc[100 - 20 * i:][:5] for i in range(3)])
    np.testing.assert_array_equal(got, want.astype(np.uint32).astype(np.int32))
    assert res.insn_end[0] == VL + 3 * -(-5 // L)
    assert (res.stats.acc_rd, res.stats.acc_wr) == (4 * (15 + 5), 4 * 15)


def _vaddv_loop(acc, dst, src, vec, m, n, ds, ss):
    """ISA.md's Action, literally."""
    acc = acc.astype(np.int64)
    for i in range(m):
        for j in range(n):
            acc[dst + i * ds + j] = (acc[src + i * ss + j] + acc[vec + j] + 2**31) % 2**32 - 2**31
    return acc


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 40), st.integers(0, 40), st.integers(0, 40), st.integers(0, 4), st.integers(0, 6),
       st.integers(-6, 6), st.integers(-6, 6))
def test_vaddv_follows_the_element_loop_when_boxes_overlap(dst, src, vec, m, n, ds, ss):
    acc = _acc(1, -1000, 1000)
    dst, src = dst + 30, src + 30  # keep negative strides inside ACC
    f = {"dst": dst, "src": src, "vec": vec, "m": m, "n": n, "ds": ds, "ss": ss}
    np.testing.assert_array_equal(_run(make_insn("vaddv", **f), acc=acc).acc, _vaddv_loop(acc, **f))


@pytest.mark.parametrize("rnd", ["half_even", "half_up", "truncate", "half_away"])
def test_vrq_requantizes_per_column(rnd):
    acc = _acc(2)
    n = 6
    acc[200:206] = [1, 3, -7, 2**20, 1, -1]  # multipliers
    acc[210:216] = [0, 1, 2, 5, 31, 62]  # shifts
    code = {"half_even": 0, "half_up": 1, "truncate": 2, "half_away": 3}[rnd]
    res = _run(make_insn("vrq", dst=64, src=0, mul=200, sh=210, m=4, n=n, ds=10, ss=6, zp=-3, lo=-100, hi=90,
                         rnd=code), acc=acc)
    want = requantize(acc[:24].reshape(4, 6), acc[200:206], acc[210:216], -3, -100, 90, rnd)
    got = np.array([res.spad[64 + 10 * i:][:6] for i in range(4)])
    np.testing.assert_array_equal(got, want)
    assert (res.stats.acc_rd, res.stats.spad_wr) == (4 * (24 + 12), 24)


def test_vrq_rounding_ties():
    acc = np.zeros(HW.acc_words, np.int32)
    acc[:6] = [5, 7, -5, -7, 6, -6]  # x / 4: 1.25, 1.75, -1.25, -1.75, 1.5, -1.5
    acc[100:106] = 1
    acc[110:116] = 2
    outs = {}
    for rnd in (0, 1, 2):
        res = _run(make_insn("vrq", dst=0, src=0, mul=100, sh=110, m=1, n=6, zp=0, lo=-128, hi=127, rnd=rnd), acc=acc)
        outs[rnd] = res.spad[:6].tolist()
    assert outs[0] == [1, 2, -1, -2, 2, -2]  # half to even
    assert outs[1] == [1, 2, -1, -2, 2, -1]  # half up
    assert outs[2] == [1, 1, -2, -2, 1, -2]  # floor


def test_vrq_errors_name_the_bad_column_and_bounds():
    acc = np.zeros(HW.acc_words, np.int32)
    acc[52] = 63
    with pytest.raises(EmuError, match=r"^insn 0: vrq sh: shift 63 at column 2 outside \[0, 62\]$"):
        _run(make_insn("vrq", dst=0, src=0, mul=0, sh=50, m=1, n=4, hi=1), acc=acc)
    with pytest.raises(EmuError, match=r"^insn 0: vrq: lo = 2 > hi = 1$"):
        _run(make_insn("vrq", dst=0, src=0, mul=0, sh=0, m=1, n=4, lo=2, hi=1))
    _run(make_insn("vrq", dst=0, src=0, mul=0, sh=50, m=0, n=4))  # no row: the shifts are never read


def test_vmax_is_elementwise_and_may_run_in_place():
    spad = _spad(3)
    res = _run(make_insn("vmax", dst=10, a=10, b=300, m=3, n=5, ds=9, **{"as": 9}, bs=-40), spad)
    want = np.array([np.maximum(spad[10 + 9 * i:][:5], spad[300 - 40 * i:][:5]) for i in range(3)])
    np.testing.assert_array_equal(np.array([res.spad[10 + 9 * i:][:5] for i in range(3)]), want)
    assert (res.stats.spad_rd, res.stats.spad_wr, res.insn_end[0]) == (30, 15, VL + 3 * 2)


def test_vmax_with_a_shifted_overlap_reads_what_it_wrote():
    spad = np.array([5, 1, 1, 1, 1, 1], np.int8)
    # dst row i is a's row i + 1: the maximum ripples down the rows, as the element loop says
    res = _run(make_insn("vmax", dst=1, a=0, b=1, m=5, n=1, ds=1, **{"as": 1}, bs=1), spad)
    assert res.spad[:6].tolist() == [5, 5, 5, 5, 5, 5]


def test_vsum_sums_columns_into_acc():
    spad, acc = _spad(4), _acc(4)
    res = _run(make_insn("vsum", dst=7, src=100, m=6, n=9, ss=-11, acc=1), spad, acc)
    rows = np.array([spad[100 - 11 * i:][:9] for i in range(6)]).astype(np.int64)
    want = (rows.sum(axis=0) + acc[7:16] + 2**31) % 2**32 - 2**31
    np.testing.assert_array_equal(res.acc[7:16], want)
    assert (res.stats.spad_rd, res.stats.acc_rd, res.stats.acc_wr) == (54, 36, 36)
    assert res.insn_end[0] == VL + 6 * 3


def test_vsum_of_no_rows_zeroes_its_output():
    res = _run(make_insn("vsum", dst=0, src=2**31 - 1, m=0, n=3, acc=0), acc=np.ones(HW.acc_words, np.int32))
    assert res.acc[:4].tolist() == [0, 0, 0, 1] and res.insn_end[0] == VL


@pytest.mark.parametrize("insn, message", [
    (make_insn("gemm", dst=250, k=1, n=8, m0=1, m1=1), "gemm dst: address range [250, 257] outside ACC of 256 words"),
    (make_insn("gemm", a=1022, k=4, n=1, m0=1, m1=1), "gemm a: address range [1022, 1025] outside SPAD of 1024 bytes"),
    (make_insn("gemm", w=0, ws=-1, k=2, n=1, m0=1, m1=1), "gemm w: address range [-1, 0] outside SPAD"),
    (make_insn("vaddv", vec=255, m=1, n=2), "vaddv vec: address range [255, 256] outside ACC"),
    (make_insn("vrq", mul=255, m=1, n=2, hi=1), "vrq mul: address range [255, 256]"),
    (make_insn("vmax", b=1023, m=2, n=1, bs=1), "vmax b: address range [1023, 1024]"),
    (make_insn("vsum", dst=255, n=2), "vsum dst: address range [255, 256]"),
    (make_insn("vadd", a=1020, m=2, n=3, hi=1, **{"as": 2}), "vadd a: address range [1020, 1024]"),
    (make_insn("vlut", tab=800, m=1, n=1), "vlut tab: address range [800, 1055] outside SPAD"),
    (make_insn("vlut", tab=100, m=1, n=2, ts=-256), "vlut tab: address range [-156, 355]"),
    (make_insn("vmul", b=1023, m=2, n=1, bs=1, hi=1), "vmul b: address range [1023, 1024]"),
])
def test_compute_boxes_are_checked(insn, message):
    with pytest.raises(EmuError) as e:
        _run(insn)
    assert e.value.insn == 0 and e.value.message.startswith("insn 0: " + message)


def test_vadd_rescales_both_inputs_and_rounds_once():
    """A residual Add at pow2 scales a: 2^-4, b: 2^-2, out: 2^-3 is ma = 1, mb = 4, sh = 1."""
    spad = _spad(5)
    f = {"dst": 600, "a": 10, "b": 300, "m": 4, "n": 6, "ds": 6, "as": 7, "bs": -20, "za": -4, "zb": 6,
         "ma": 1, "mb": 4, "sh": 1, "zp": 2, "lo": -50, "hi": 60, "rnd": 0}
    res = _run(make_insn("vadd", **f), spad)
    a = np.array([spad[10 + 7 * i:][:6] for i in range(4)]).astype(np.int64)
    b = np.array([spad[300 - 20 * i:][:6] for i in range(4)]).astype(np.int64)
    want = np.clip(round_shift((a + 4) + 4 * (b - 6), 1, "half_even") + 2, -50, 60)
    np.testing.assert_array_equal(res.spad[600:624].reshape(4, 6), want)
    assert (res.stats.spad_rd, res.stats.spad_wr, res.insn_end[0]) == (48, 24, VL + 4 * 2)


def test_vadd_subtracts_broadcasts_a_row_and_runs_in_place():
    spad = _spad(6)
    f = {"dst": 40, "a": 40, "b": 900, "m": 5, "n": 3, "ds": 3, "as": 3, "bs": 0, "za": 0, "zb": 0,
         "ma": 1, "mb": -1, "sh": 0, "zp": 0, "lo": -128, "hi": 127, "rnd": 2}
    res = _run(make_insn("vadd", **f), spad)
    want = np.clip(spad[40:55].reshape(5, 3).astype(np.int64) - spad[900:903], -128, 127)
    np.testing.assert_array_equal(res.spad[40:55].reshape(5, 3), want)


def test_vadd_with_a_shifted_overlap_reads_what_it_wrote():
    spad = np.zeros(HW.spad_bytes, np.int8)
    spad[:2] = [3, 0]
    # dst row i is a's row i + 1, b is zero: each row doubles the one before it
    res = _run(make_insn("vadd", dst=1, a=0, b=100, m=5, n=1, ds=1, **{"as": 1}, bs=1, ma=2, hi=127), spad)
    assert res.spad[:6].tolist() == [3, 6, 12, 24, 48, 96]


def test_vadd_lo_above_hi_is_checked_after_the_boxes():
    with pytest.raises(EmuError, match=r"^insn 0: vadd: lo = 1 > hi = 0$"):
        _run(make_insn("vadd", m=0, n=0, lo=1, hi=0))
    with pytest.raises(EmuError, match=r"^insn 0: vadd dst: address range"):
        _run(make_insn("vadd", dst=1024, m=1, n=1, lo=1, hi=0))


def test_vlut_looks_up_shared_and_per_column_tables_in_place():
    spad = _spad(3)
    f = dict(dst=40, src=40, tab=300, m=3, n=2, ds=-7, ss=-7, ts=256)
    res = _run(make_insn("vlut", **f), spad)
    x = np.array([spad[40 - 7 * i:][:2] for i in range(3)]).astype(np.int64)
    want = np.stack([spad[300 + j * 256 + x[:, j] + 128] for j in range(2)], axis=1)
    np.testing.assert_array_equal(np.array([res.spad[40 - 7 * i:][:2] for i in range(3)]), want)
    assert (res.stats.spad_rd, res.stats.spad_wr) == (12, 6) and res.insn_end[0] == VL + 3


def test_vlut_writing_into_its_own_table_reads_what_it_wrote():
    spad = np.zeros(HW.spad_bytes, np.int8)
    spad[128:384] = np.arange(256) % 7  # tab = 0 + x + 128: x = 0 reads address 128
    spad[500:504] = [0, 0, 1, 0]
    res = _run(make_insn("vlut", dst=128, src=500, tab=0, m=4, n=1, ds=0, ss=1, ts=128), spad)
    # element 0 writes tab[128] = tab[128] = 0; element 2 reads tab[129] = 1 -> 1, element 3 reads it back
    assert res.spad[128] == 1


def test_vmul_broadcasts_one_row_and_runs_in_place():
    spad = _spad(4)
    f = dict(dst=10, a=10, b=600, m=4, n=5, ds=5, bs=0, za=3, zb=-2, mul=-(2**31), sh=40, zp=1, lo=-50,
             hi=60, rnd=1, **{"as": 5})
    res = _run(make_insn("vmul", **f), spad)
    a = spad[10:30].reshape(4, 5).astype(np.int64)
    t = (a - 3) * (spad[600:605].astype(np.int64) + 2) * -(2**31)
    np.testing.assert_array_equal(res.spad[10:30].reshape(4, 5), np.clip(round_shift(t, 40, "half_up") + 1, -50, 60))
