"""Cycles against ISA.md's formulas, and the token / DRAM-channel model.

The cost formulas are checked on three hardware shapes, in both models of the ISA (the C
simulator and the emulator), each instruction alone: the tests' small NPU R = 4, C = 8
(BW = 4, L = 4), where 2R + C - 2 = 2C - 2 = 4R - 2 and a lane count of 4 equals R and BW,
so wrong formulas pass there; R = 3, C = 7 (BW = 3, L = 5, VL = 2); R = 8, C = 5 (BW = 16,
L = 3, VL = 6). The shapes are chosen so that plausible wrong formulas differ from ISA.md's
on at least one case (`test_the_shapes_tell_wrong_formulas_apart` checks that for the
parametrization below). The DMA cases put contiguous and strided runs on each side (DRAM,
SPAD), so that a burst rule read off the wrong stride shows.

The token and channel tests further down use the small NPU: R = 4, C = 8, BW = 4, LAT = 10,
L = 4, VL = 3.
"""

import numpy as np
import pytest

from npuc.hw import HwConfig
from npuc.isa.emulator import emulate

R, C, BW, LAT, L, VL = 4, 8, 4, 10, 4, 3
LOAD, COMPUTE, STORE = 0, 1, 2
SHAPES = {
    "R4C8": HwConfig(rows=4, cols=8, spad_kib=4, acc_kib=4, dram_bw=4, dram_latency=10, vec_lanes=4,
                     vec_latency=3),
    "R3C7": HwConfig(rows=3, cols=7, spad_kib=4, acc_kib=4, dram_bw=3, dram_latency=10, vec_lanes=5,
                     vec_latency=2),
    "R8C5": HwConfig(rows=8, cols=5, spad_kib=4, acc_kib=4, dram_bw=16, dram_latency=7, vec_lanes=3,
                     vec_latency=6),
}


def cdiv(a, b):
    return -(-a // b)


# ISA.md, "Cycles" of each instruction, written out again here
def gemm_cycles(hw: HwConfig, m: int) -> int:
    return 2 * hw.rows + hw.cols + m - 2


def vector_cycles(hw: HwConfig, m: int, n: int) -> int:
    return hw.vec_latency + m * cdiv(n, hw.vec_lanes)


def dma_xfer(hw: HwConfig, n0: int, n1: int, n2: int, contiguous: bool) -> int:
    return n0 * cdiv(n1 * n2, hw.dram_bw) if contiguous else n0 * n1 * cdiv(n2, hw.dram_bw)


@pytest.fixture(params=list(SHAPES))
def hw(request) -> HwConfig:
    return SHAPES[request.param]


def _one(sim, insn, hw: HwConfig | None = None, dram=65536):
    """Run one instruction on the C core and the emulator: (C result, its cost); both must agree."""
    hw = hw or sim.hw
    r = sim.run([insn], dram=dram, hw=hw)
    e = emulate([insn], np.zeros(dram, np.uint8), hw)
    assert (r.stats, list(r.insn_start), list(r.insn_end)) == (e.stats, list(e.insn_start), list(e.insn_end))
    return r, int(r.insn_end[0] - r.insn_start[0])


GEMM_ROWS = [(1, 1), (16, 1), (5, 7), (0, 3)]


@pytest.mark.parametrize("m0,m1", GEMM_ROWS)
def test_gemm_costs_2R_plus_C_plus_M_minus_2(sim, hw, m0, m1):
    k, n = min(3, hw.rows), min(2, hw.cols)
    gemm = sim.I("gemm", dst=0, a=0, w=0, m0=m0, m1=m1, k=k, n=n, as0=1, as1=1, ds0=2, ds1=2)
    r, cost = _one(sim, gemm, hw)
    assert cost == gemm_cycles(hw, m0 * m1) == r.stats.cycles == r.stats.busy[COMPUTE]
    assert r.stats.macs == m0 * m1 * k * n


def test_a_full_tile_costs_the_same_as_a_small_one(sim, hw):
    """A tile smaller than the array still pays for the whole array."""
    full = _one(sim, sim.I("gemm", dst=0, a=0, w=0, m0=5, m1=1, k=hw.rows, n=hw.cols, as0=hw.rows,
                           ds0=hw.cols), hw)[1]
    small = _one(sim, sim.I("gemm", dst=0, a=0, w=0, m0=5, m1=1, k=1, n=1, as0=1, ds0=1), hw)[1]
    assert full == small == gemm_cycles(hw, 5)


# (n0, n1, n2, DRAM stride of dim 1, SPAD stride of dim 1): contiguous DRAM rows (stride n2) with a
# strided SPAD side and the other way round
DMA_BOXES = [
    (3, 5, 7, 100, 7),
    (3, 5, 8, 8, 8),
    (3, 5, 8, 8, 11),  # one burst per row: the DRAM side is contiguous
    (3, 5, 8, 11, 8),  # a burst per run: the DRAM side is strided, however the SPAD side is
    (2, 3, 5, 5, 5),
    (4, 1, 1, 0, 1),
    (2, 4, 3, 3, 0),
    (0, 5, 5, 9, 5),
]


@pytest.mark.parametrize("n0,n1,n2,dram_s1,spad_s1", DMA_BOXES)
def test_ld_cost_is_bursts_plus_latency(sim, hw, n0, n1, n2, dram_s1, spad_s1):
    """Padding is written in the shadow of the transfer: only the interior's bursts count."""
    r, cost = _one(sim, sim.I("ld", dst=0, src=0, n0=n0, n1=n1, n2=n2, ss0=1000, ss1=dram_s1, ds0=200,
                              ds1=spad_s1, pt=1, pl=2, pr=1, fill=3), hw)
    xfer = dma_xfer(hw, n0, n1, n2, dram_s1 == n2)
    assert cost == xfer + hw.dram_latency == r.stats.cycles
    assert r.stats.busy[LOAD] == xfer and r.stats.dram_stall[LOAD] == 0


@pytest.mark.parametrize("n0,n1,n2,dram_s1,spad_s1", DMA_BOXES)
def test_st_cost_is_bursts_plus_latency(sim, hw, n0, n1, n2, dram_s1, spad_s1):
    r, cost = _one(sim, sim.I("st", dst=0, src=0, n0=n0, n1=n1, n2=n2, ds0=1000, ds1=dram_s1, ss0=200,
                              ss1=spad_s1), hw)
    xfer = dma_xfer(hw, n0, n1, n2, dram_s1 == n2)
    assert cost == xfer + hw.dram_latency and r.stats.busy[STORE] == xfer


@pytest.mark.parametrize("n0,n1", [(3, 5), (1, 1), (7, 2), (2, 9)])
def test_lda_cost(sim, hw, n0, n1):
    """One burst of 4*n1 bytes per row."""
    r, cost = _one(sim, sim.I("lda", dst=0, src=0, n0=n0, n1=n1, ss0=64, ds0=16), hw)
    xfer = n0 * cdiv(4 * n1, hw.dram_bw)
    assert cost == xfer + hw.dram_latency and r.stats.busy[LOAD] == xfer


VECTOR_OPS = [("vaddv", {}), ("vrq", {"hi": 127}), ("vmax", {}), ("vsum", {}), ("vadd", {"hi": 127}),
              ("vmul", {"hi": 127}), ("vlut", {}), ("vlut", {"ts": 256})]
VECTOR_SHAPES = [(1, 1), (3, 9), (5, 4), (4, 13), (7, 2), (0, 7), (2, 0)]


@pytest.mark.parametrize("op,extra", VECTOR_OPS)
@pytest.mark.parametrize("m,n", VECTOR_SHAPES)
def test_vector_cost(sim, hw, op, extra, m, n):
    r, cost = _one(sim, sim.I(op, dst=100, m=m, n=n, **extra), hw)
    assert cost == vector_cycles(hw, m, n) == r.stats.busy[COMPUTE]


WRONG_GEMM = {  # plausible misreadings of 2R + C + M - 2
    "2C + M - 2": lambda R, C, M: 2 * C + M - 2,
    "4R + M - 2": lambda R, C, M: 4 * R + M - 2,
    "R + 2C + M - 2": lambda R, C, M: R + 2 * C + M - 2,
    "R + C + M - 2 (no preload)": lambda R, C, M: R + C + M - 2,
    "2R + C + M": lambda R, C, M: 2 * R + C + M,
    "2R + C + M - 1": lambda R, C, M: 2 * R + C + M - 1,
    "R + C + 2M - 2": lambda R, C, M: R + C + 2 * M - 2,
}
WRONG_VECTOR = {  # plausible misreadings of VL + m * ceil(n / L)
    "VL + ceil(m*n / L)": lambda hw, m, n: hw.vec_latency + cdiv(m * n, hw.vec_lanes),
    "VL + n * ceil(m / L)": lambda hw, m, n: hw.vec_latency + n * cdiv(m, hw.vec_lanes),
    "VL + ceil(n / L)": lambda hw, m, n: hw.vec_latency + cdiv(n, hw.vec_lanes),
    "VL + m * ceil(n / R)": lambda hw, m, n: hw.vec_latency + m * cdiv(n, hw.rows),
    "VL + m * ceil(n / C)": lambda hw, m, n: hw.vec_latency + m * cdiv(n, hw.cols),
    "VL + m * ceil(n / 4)": lambda hw, m, n: hw.vec_latency + m * cdiv(n, 4),
    "VL + m * floor(n / L)": lambda hw, m, n: hw.vec_latency + m * (n // hw.vec_lanes),
    "VL + m * n": lambda hw, m, n: hw.vec_latency + m * n,
    "m * ceil(n / L)": lambda hw, m, n: m * cdiv(n, hw.vec_lanes),
    "m * (VL + ceil(n / L))": lambda hw, m, n: m * (hw.vec_latency + cdiv(n, hw.vec_lanes)),
}


def test_the_shapes_tell_wrong_formulas_apart():
    """Each plausible wrong formula gives another cost than ISA.md's for some case of the tests
    above, on the new shapes alone (the R = 4, C = 8 shape lets several through)."""
    shapes = [SHAPES["R3C7"], SHAPES["R8C5"]]
    for name, wrong in WRONG_GEMM.items():
        assert any(wrong(hw.rows, hw.cols, m0 * m1) != gemm_cycles(hw, m0 * m1)
                   for hw in shapes for m0, m1 in GEMM_ROWS), name
    for name, wrong in WRONG_VECTOR.items():
        assert any(wrong(hw, m, n) != vector_cycles(hw, m, n)
                   for hw in shapes for m, n in VECTOR_SHAPES), name
    slips = {"2C + M - 2", "4R + M - 2"}  # what R = 4, C = 8 alone would let through
    hw = SHAPES["R4C8"]
    assert {name for name in slips
            if all(WRONG_GEMM[name](hw.rows, hw.cols, m0 * m1) == gemm_cycles(hw, m0 * m1)
                   for m0, m1 in GEMM_ROWS)} == slips


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
