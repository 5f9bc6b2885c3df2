"""Fold overlap (ISA.md, gemm Cycles): chains of gemms, on both ISA models, against a pipeline model.

The oracle here is not the cost formula but the array's pipeline, written out
independently: in a chain the preload of gemm i+1 runs while gemm i streams,
so gemm i+1's rows enter `max(M_i, R)` cycles after gemm i's rows did; the
first gemm's rows enter after its preload (R); each gemm completes when its
last row has crossed the skewed array, `R + C - 2` cycles after it entered.
The formulas a careless implementation might use instead (`max(M, R)` of the
gemm's own rows, no drain at the end, a chain across a vector instruction)
give other end cycles on the shapes below (R = 4 != C = 8, M below and above R).

HW (tests/sim/conftest.py): R = 4, C = 8, BW = 4, LAT = 10, L = 4, VL = 3.
"""

from __future__ import annotations

import numpy as np
import pytest

from npuc.isa.emulator import EmuError, emulate
from npuc.isa.program import Insn

R, C, LAT = 4, 8, 10
SERIAL = 2 * R + C - 2  # fill and drain of a fold that overlaps nothing


def gemm(sim, m: int, **kw) -> Insn:
    return sim.I("gemm", dst=0, a=0, w=256, m0=m, m1=1, k=4, n=8, as0=4, ws=8, ds0=8, acc=1, **kw)


def pipeline_ends(t0: int, ms: list[int]) -> list[int]:
    """Completion cycles of a chain of gemms of ms rows whose first preload starts at t0."""
    ends, enter = [], t0 + R
    for i, m in enumerate(ms):
        if i:
            enter += max(ms[i - 1], R)
        ends.append(enter + m + R + C - 2)
    return ends


def both(sim, prog: list[Insn], hw=None):
    """The C core's result, after checking the emulator gives the same times and counters."""
    hw = hw or sim.hw
    res = sim.run(prog, hw=hw)
    emu = emulate(prog, np.zeros(4096, np.uint8), hw)
    np.testing.assert_array_equal(res.insn_start, emu.insn_start)
    np.testing.assert_array_equal(res.insn_end, emu.insn_end)
    assert res.stats == emu.stats
    return res


@pytest.mark.parametrize("ms", [[2, 9, 3, 1, 6], [16, 16, 16], [1, 1, 1, 1], [4, 3, 5], [0, 7, 2]])
def test_a_chain_ends_where_the_pipeline_does(sim, ms):
    res = both(sim, [gemm(sim, m) for m in ms])
    assert res.insn_end.tolist() == pipeline_ends(0, ms)
    assert res.insn_start.tolist() == [0, *res.insn_end[:-1].tolist()]  # one unit, back to back
    assert res.stats.gemm_chained == len(ms) - 1
    assert res.stats.gemm_fill == res.stats.busy[1] - sum(ms)
    assert res.stats.cycles == SERIAL + sum(max(m, R) for m in ms[:-1]) + ms[-1]


def test_equal_rows_cost_max_m_r_each_after_the_first(sim):
    for m in (2, 4, 11):
        res = both(sim, [gemm(sim, m) for _ in range(5)])
        costs = (res.insn_end - res.insn_start).tolist()
        assert costs == [SERIAL + m] + [max(m, R)] * 4


def test_without_fold_overlap_every_gemm_is_serial(sim):
    hw = sim.hw.replace(fold_overlap=False)
    ms = [2, 9, 3, 1, 6]
    res = both(sim, [gemm(sim, m) for m in ms], hw)
    assert (res.insn_end - res.insn_start).tolist() == [SERIAL + m for m in ms]
    assert res.stats.gemm_chained == 0 and res.stats.gemm_fill == SERIAL * len(ms)


def test_another_compute_instruction_ends_the_chain(sim):
    vs = sim.I("vsum", dst=700, src=0, m=1, n=4)  # VL + 1 = 4 cycles
    res = both(sim, [gemm(sim, 6), gemm(sim, 2), vs, gemm(sim, 5), gemm(sim, 3)])
    first = pipeline_ends(0, [6, 2])
    second = pipeline_ends(first[1] + 4, [5, 3])
    assert res.insn_end.tolist() == [*first, first[1] + 4, *second]
    assert res.stats.gemm_chained == 2


def test_dma_instructions_between_gemms_keep_the_chain(sim):
    ld = sim.I("ld", dst=3000, src=0, n0=1, n1=1, n2=8)
    st = sim.I("st", dst=100, src=3000, n0=1, n1=1, n2=8)
    res = both(sim, [gemm(sim, 6), ld, st, gemm(sim, 2)])
    assert res.insn_end[[0, 3]].tolist() == pipeline_ends(0, [6, 2])


def test_a_token_ready_by_the_previous_start_keeps_the_chain(sim):
    """ld ends at 2 + LAT = 12. The second gemm starts at 0 + SERIAL + 30 = 44 and the third, waiting
    for the ld, would follow at 44 + 30: its token (12) was there when the second started (44)."""
    ld = sim.I("ld", dst=3000, src=0, n0=1, n1=1, n2=8, signal=1)
    res = both(sim, [ld, gemm(sim, 30), gemm(sim, 30), gemm(sim, 5, wait=1)])
    assert res.insn_end[1:].tolist() == pipeline_ends(0, [30, 30, 5])
    assert res.stats.gemm_chained == 2 and res.stats.token_stall[1] == 0


def test_a_token_arriving_after_the_previous_start_breaks_the_chain(sim):
    """ld ends at 10 + LAT = 20, after the first gemm started (0): the second gemm starts a chain at
    the first's end (44) though it does not stall."""
    ld = sim.I("ld", dst=3000, src=0, n0=1, n1=1, n2=40, signal=1)
    res = both(sim, [ld, gemm(sim, 30), gemm(sim, 5, wait=1)])
    end1 = SERIAL + 30
    assert res.insn_end[1:].tolist() == [end1, end1 + SERIAL + 5]
    assert res.stats.gemm_chained == 0 and res.stats.token_stall[1] == 0


def test_a_stall_breaks_the_chain(sim):
    """The ld (xfer 50, done at 60) arrives after the first gemm ended (20): the array drains."""
    ld = sim.I("ld", dst=3000, src=0, n0=1, n1=1, n2=200, signal=1)
    res = both(sim, [ld, gemm(sim, 6), gemm(sim, 6, wait=1)])
    assert res.insn_start[2] == 50 + LAT and res.insn_end[2] == 60 + SERIAL + 6
    assert res.stats.token_stall[1] == 60 - (SERIAL + 6)


def test_the_first_gemm_after_a_host_point_or_start_is_a_head(sim):
    res = both(sim, [gemm(sim, 3)])
    assert res.stats.cycles == SERIAL + 3 and res.stats.gemm_chained == 0


# ---- acc = 2: the bias row enters through the accumulator ----------------------------------


def test_acc2_starts_from_the_bias_row(sim, rng):
    a = rng.integers(-128, 128, (5, 4), dtype=np.int8)
    w = rng.integers(-128, 128, (4, 8), dtype=np.int8)
    bias = rng.integers(-(2**31), 2**31, 8, dtype=np.int64).astype(np.int32)
    spad = np.zeros(sim.hw.spad_bytes, np.int8)
    spad[:20] = a.ravel()
    spad[256:288] = w.ravel()
    acc = np.zeros(sim.hw.acc_words, np.int32)
    acc[500:508] = bias
    acc[:40] = 77  # overwritten, not added to
    res = sim.run_on([sim.I("gemm", dst=0, a=0, w=256, m0=5, m1=1, k=4, n=8, as0=4, ws=8, ds0=8, acc=2,
                            bias=500)], spad=spad, acc=acc)
    want = (a.astype(np.int64) @ w.astype(np.int64) + bias.astype(np.int64)).astype(np.uint32).astype(np.int32)
    np.testing.assert_array_equal(res.acc[:40].reshape(5, 8), want)  # mod 2^32, as the adder wraps


def test_acc2_reads_the_bias_before_writing_over_it(sim):
    """The bias row is the first output row: every row still gets the original bias."""
    spad = np.zeros(sim.hw.spad_bytes, np.int8)
    spad[:12] = 1  # three rows of four ones
    spad[256:288] = 1
    acc = np.zeros(sim.hw.acc_words, np.int32)
    acc[:8] = np.arange(8) * 100
    res = sim.run_on([sim.I("gemm", dst=0, a=0, w=256, m0=3, m1=1, k=4, n=8, as0=4, ws=8, ds0=8, acc=2, bias=0)],
                     spad=spad, acc=acc)
    np.testing.assert_array_equal(res.acc[:24].reshape(3, 8), np.tile(np.arange(8) * 100 + 4, (3, 1)))


def test_acc2_traffic_and_errors(sim):
    g = sim.I("gemm", dst=0, a=0, w=256, m0=3, m1=2, k=4, n=8, as0=4, as1=12, ws=8, ds0=8, ds1=24, acc=2,
              bias=900)
    res = both(sim, [g])
    assert res.stats.acc_rd == 4 * 8 and res.stats.acc_wr == 4 * 6 * 8
    bad = Insn("gemm", sim.I("gemm", **{**g.as_dict(), "bias": sim.hw.acc_words - 4}).fields)
    with pytest.raises(Exception, match=r"insn 0: gemm bias: address range \[1020, 1027\] outside ACC of 1024"):
        sim.run([bad])
    with pytest.raises(EmuError, match=r"insn 0: gemm bias: address range \[1020, 1027\] outside ACC of 1024"):
        emulate([bad], np.zeros(4096, np.uint8), sim.hw)
    empty = sim.I("gemm", **{**bad.as_dict(), "m0": 0})  # no row: the bias row is not read, not checked
    assert both(sim, [empty]).stats.acc_rd == 0
