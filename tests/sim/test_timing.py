"""Cycles against ISA.md's formulas, and the token / DRAM-channel model.

HW of these tests: R = 4, C = 8, BW = 4 bytes/cycle, LAT = 10, L = 4 lanes, VL = 3.
"""

import numpy as np
import pytest

R, C, BW, LAT, L, VL = 4, 8, 4, 10, 4, 3
LOAD, COMPUTE, STORE = 0, 1, 2


def cdiv(a, b):
    return -(-a // b)


def _one(sim, insn, dram=65536):
    r = sim.run([insn], dram=dram)
    return r, int(r.insn_end[0] - r.insn_start[0])


@pytest.mark.parametrize("m0,m1", [(1, 1), (16, 1), (5, 7), (0, 3)])
def test_gemm_costs_2R_plus_C_plus_M_minus_2(sim, m0, m1):
    r, cost = _one(sim, sim.I("gemm", dst=0, a=0, w=0, m0=m0, m1=m1, k=3, n=2, as0=1, as1=1, ds0=2, ds1=2))
    assert cost == 2 * R + C + m0 * m1 - 2 == r.stats.cycles == r.stats.busy[COMPUTE]
    assert r.stats.macs == m0 * m1 * 3 * 2


@pytest.mark.parametrize("n0,n1,n2,ss1,xfer", [
    (3, 5, 7, 100, 3 * 5 * cdiv(7, BW)),  # one burst per run of n2 bytes
    (3, 5, 8, 8, 3 * cdiv(5 * 8, BW)),  # ss1 == n2: a row of n1*n2 bytes is one burst
    (2, 3, 5, 5, 2 * cdiv(15, BW)),
    (4, 1, 1, 0, 4),
    (0, 5, 5, 9, 0),
])
def test_ld_cost_is_bursts_plus_latency(sim, n0, n1, n2, ss1, xfer):
    r, cost = _one(sim, sim.I("ld", dst=0, src=0, n0=n0, n1=n1, n2=n2, ss0=1000, ss1=ss1, ds0=64, ds1=n2,
                              pt=1, pl=2, pr=1, fill=3))
    assert cost == xfer + LAT == r.stats.cycles
    assert r.stats.busy[LOAD] == xfer and r.stats.dram_stall[LOAD] == 0


@pytest.mark.parametrize("n0,n1,n2,ds1,xfer", [
    (3, 5, 7, 100, 3 * 5 * cdiv(7, BW)),
    (3, 5, 8, 8, 3 * cdiv(40, BW)),  # ds1 == n2: one burst per row
])
def test_st_cost_is_bursts_plus_latency(sim, n0, n1, n2, ds1, xfer):
    r, cost = _one(sim, sim.I("st", dst=0, src=0, n0=n0, n1=n1, n2=n2, ds0=1000, ds1=ds1, ss0=64, ss1=n2))
    assert cost == xfer + LAT and r.stats.busy[STORE] == xfer


@pytest.mark.parametrize("n0,n1", [(3, 5), (1, 1), (7, 2)])
def test_lda_cost(sim, n0, n1):
    r, cost = _one(sim, sim.I("lda", dst=0, src=0, n0=n0, n1=n1, ss0=64, ds0=16))
    assert cost == n0 * cdiv(4 * n1, BW) + LAT and r.stats.busy[LOAD] == cost - LAT


@pytest.mark.parametrize("op,extra", [("vaddv", {}), ("vrq", {"hi": 127}), ("vmax", {}), ("vsum", {}),
                                      ("vadd", {"hi": 127}), ("vmul", {"hi": 127}), ("vlut", {}),
                                      ("vlut", {"ts": 256})])
@pytest.mark.parametrize("m,n", [(1, 1), (3, 9), (5, 4), (0, 7), (2, 0)])
def test_vector_cost(sim, op, extra, m, n):
    r, cost = _one(sim, sim.I(op, dst=100, m=m, n=n, **extra))
    assert cost == VL + m * cdiv(n, L) == r.stats.busy[COMPUTE]


def test_vlut_and_vmul_traffic_and_cost(sim):
    """vlut reads its source byte and one table byte per element; vmul reads both operands."""
    r = sim.run(sim.chain(sim.I("vlut", dst=0, src=0, tab=1024, m=3, n=9, ds=9, ss=9, ts=256),
                          sim.I("vmul", dst=0, a=0, b=100, m=3, n=9, ds=9, bs=0, hi=127, **{"as": 9})))
    assert r.stats.spad_rd == 2 * 27 + 2 * 27 and r.stats.spad_wr == 2 * 27
    assert r.stats.busy[COMPUTE] == 2 * (VL + 3 * cdiv(9, L)) and r.stats.insns == (0, 2, 0)


def test_dma_issue_is_pipelined_on_one_unit(sim):
    """Two lds: the second issues when the first's transfer ends, not when its latency does."""
    ld = sim.I("ld", dst=0, src=0, n0=1, n1=1, n2=40)  # xfer 10
    r = sim.run([ld, ld])
    assert list(r.insn_start) == [0, 10] and list(r.insn_end) == [20, 30]
    assert r.stats.cycles == 30 and r.stats.busy[LOAD] == 20 and r.stats.dram_stall[LOAD] == 0


def test_load_and_store_contend_for_the_dram_channel(sim):
    ld = sim.I("ld", dst=0, src=0, n0=1, n1=1, n2=40)  # xfer 10
    st = sim.I("st", dst=100, src=0, n0=1, n1=1, n2=24)  # xfer 6
    r = sim.run([st, ld])  # both ready at 0: load goes first (tie order), then the store waits
    assert list(r.insn_start) == [0, 0] and list(r.insn_end) == [10 + 6 + LAT, 10 + LAT]
    assert r.stats.dram_stall[STORE] == 10 and r.stats.busy[STORE] == 6 and r.stats.dram_stall[LOAD] == 0


def test_compute_waits_for_the_token_of_a_load_and_overlaps_the_next(sim):
    ld = sim.I("ld", dst=0, src=0, n0=1, n1=1, n2=40, signal=1)  # xfer 10, ends at +20
    gemm = sim.I("gemm", dst=0, a=0, w=0, m0=10, m1=1, k=4, n=8, wait=1)  # 2R+C+M-2 = 24
    r = sim.run([ld, ld, gemm, gemm])
    start, end = list(r.insn_start), list(r.insn_end)
    assert (start[0], end[0], start[1], end[1]) == (0, 20, 10, 30)
    assert (start[2], end[2]) == (20, 44)  # waits for ld 0, overlaps the transfer of ld 1
    assert (start[3], end[3]) == (44, 68)  # its token (ready at 30) is older than the unit
    assert r.stats.token_stall[COMPUTE] == 20 and r.stats.busy[COMPUTE] == 48 and r.stats.cycles == 68


def test_a_wait_takes_the_earliest_token(sim):
    """TOK[0] first gets a late token (gemm, ends 214), then an early one (ld, ends 22): the
    first waiter takes the early one even though it arrived second."""
    gemm = sim.I("gemm", dst=0, a=0, w=0, m0=200, m1=1, k=4, n=8, signal=1)  # 2R+C+M-2 = 214
    st1 = sim.I("st", dst=0, src=0, n0=1, n1=1, n2=4, signal=2)  # ends 1 + LAT = 11
    ld = sim.I("ld", dst=0, src=0, n0=1, n1=1, n2=4, wait=2, signal=1)  # starts 11, ends 22
    st2 = sim.I("st", dst=0, src=0, n0=1, n1=1, n2=4, wait=1)
    st3 = sim.I("st", dst=0, src=0, n0=1, n1=1, n2=4, wait=1)
    r = sim.run([gemm, st1, ld, st2, st3])
    assert list(r.insn_end[:3]) == [214, 11, 22]
    assert list(r.insn_start[3:]) == [22, 214]


def test_signals_from_several_units_and_waits_on_several_tokens(sim):
    ld = sim.I("ld", dst=0, src=0, n0=1, n1=1, n2=8, signal=0b01)  # ends 2 + LAT = 12
    vs = sim.I("vsum", dst=0, m=1, n=1, signal=0b10)  # 3 + 1 = 4
    st = sim.I("st", dst=0, src=0, n0=1, n1=1, n2=4, wait=0b11)
    r = sim.run([ld, vs, st])
    assert r.insn_start[2] == 12 and r.insn_end[2] == 12 + 1 + LAT
    assert r.stats.token_stall[STORE] == 12


def test_stats_count_traffic_and_instructions(sim):
    prog = sim.chain(
        # a 3 x 4 x 4 SPAD box around a 2 x 3 x 4 interior
        sim.I("ld", dst=0, src=0, n0=2, n1=3, n2=4, ss0=12, ss1=4, ds0=20, ds1=4, pt=1, pl=1, fill=1),
        sim.I("lda", dst=0, src=0, n0=2, n1=5, ss0=20, ds0=5),
        sim.I("gemm", dst=0, a=0, w=0, m0=3, m1=2, k=4, n=8, as0=4, ds0=8, ws=8, acc=1),
        sim.I("vaddv", dst=0, src=0, vec=0, m=2, n=3),
        sim.I("vrq", dst=0, src=0, mul=0, sh=200, m=2, n=3, hi=127),
        sim.I("vmax", dst=0, a=0, b=0, m=2, n=5),
        sim.I("vsum", dst=0, src=0, m=4, n=6, acc=0),
        sim.I("st", dst=0, src=0, n0=2, n1=2, n2=3),
    )
    r = sim.run(prog)
    s = r.stats
    assert s.insns == (2, 5, 1)
    assert s.macs == 6 * 4 * 8
    assert s.dram_rd == 2 * 3 * 4 + 4 * 10 and s.dram_wr == 12
    assert s.spad_wr == 3 * 4 * 4 + 6 + 10
    assert s.spad_rd == (6 * 4 + 4 * 8) + 2 * 10 + 24 + 12
    assert s.acc_wr == 4 * (10 + 48 + 6 + 6)
    assert s.acc_rd == 4 * (48 + (6 + 3) + (6 + 3 + 3))
    assert s.cycles == int(r.insn_end.max())
    dma_spans = (r.insn_end[:2] - r.insn_start[:2]).astype(int)
    assert s.busy[LOAD] == int(dma_spans.sum()) - 2 * LAT


def test_utilization(sim):
    r = sim.run([sim.I("gemm", dst=0, a=0, w=0, m0=100, m1=1, k=4, n=8)])
    assert r.stats.utilization(sim.hw) == pytest.approx(100 * 32 / (32 * (2 * R + C + 100 - 2)))
    assert r.stats.per_unit("busy") == {"load": 0, "compute": 2 * R + C + 98, "store": 0}


def test_runs_are_deterministic(sim, rng):
    prog = [sim.I("ld", dst=0, src=0, n0=2, n1=2, n2=9, signal=1),
            sim.I("gemm", dst=0, a=0, w=0, m0=5, m1=1, k=4, n=8, wait=1, signal=2),
            sim.I("vrq", dst=0, src=0, mul=0, sh=8, m=5, n=8, hi=127, wait=2, signal=4),
            sim.I("st", dst=0, src=0, n0=5, n1=1, n2=8, wait=4)]
    dram = rng.integers(0, 256, 4096, dtype=np.uint8)
    a, b = sim.run(prog, dram=dram), sim.run(prog, dram=dram)
    assert a.stats == b.stats
    np.testing.assert_array_equal(a.dram, b.dram)
    np.testing.assert_array_equal(a.insn_end, b.insn_end)


def test_trace_off_returns_no_trace(sim):
    from npuc.sim.core import run_words

    r = run_words(sim.encode([sim.I("vsum", dst=0, m=1, n=1)]), np.zeros(4, np.uint8), sim.hw, trace=False)
    assert r.insn_start is None and r.insn_end is None and r.spad is None and r.stats.cycles == VL + 1
