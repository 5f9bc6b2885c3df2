"""Emulator: ld, lda, st against numpy expressions, and the DMA timing of ISA.md.

Timing (ISA.md): xfer occupies the one DRAM channel, x = max(start, dram_free),
the unit is free at x + xfer, the instruction completes LAT later.
"""

from __future__ import annotations

import numpy as np
import pytest

from npuc.hw import HwConfig
from npuc.isa.emulator import EmuError, emulate
from npuc.isa.program import make_insn

HW = HwConfig(rows=4, cols=8, spad_kib=1, acc_kib=1, dram_bw=4, dram_latency=10, vec_lanes=4, vec_latency=3)
LAT, BW = HW.dram_latency, HW.dram_bw


def _dram(n: int = 2048, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8)


def test_ld_pads_and_gathers_strided_rows():
    dram = _dram()
    ld = make_insn("ld", dst=100, src=300, n0=3, n1=4, n2=5, ss0=40, ss1=-7, ds0=60, ds1=5, pt=1, pb=2, pl=2, pr=1,
                   fill=-3)
    res = emulate([ld], dram, HW)
    interior = np.array([[dram[300 + i0 * 40 - i1 * 7:][:5] for i1 in range(4)] for i0 in range(3)]).view(np.int8)
    box = np.full((6, 7, 5), -3, dtype=np.int8)
    box[1:4, 2:6] = interior
    spad = res.spad[100:100 + 6 * 60].reshape(6, 60)[:, :35].reshape(6, 7, 5)
    np.testing.assert_array_equal(spad, box)
    assert res.spad[:100].tolist() == [0] * 100  # nothing outside the box
    s = res.stats
    assert (s.dram_rd, s.spad_wr) == (3 * 4 * 5, 6 * 7 * 5)
    assert res.stats.busy[0] == 3 * 4 * 2  # one burst per 5-byte run: ceil(5/4) = 2
    assert (res.insn_start[0], res.insn_end[0]) == (0, 24 + LAT)


def test_ld_with_a_contiguous_dram_row_is_one_burst_per_row():
    ld = make_insn("ld", dst=0, src=0, n0=2, n1=3, n2=5, ss0=100, ss1=5, ds0=15, ds1=5)
    res = emulate([ld], _dram(), HW)
    assert res.stats.busy[0] == 2 * -(-15 // BW)  # n0 * ceil(n1*n2 / BW)


def test_ld_padding_only_box_is_written_and_counted():
    res = emulate([make_insn("ld", dst=10, src=2**31 - 1, n0=0, n1=2, n2=3, ds0=6, ds1=3, pt=2, fill=7)], _dram(), HW)
    assert res.spad[10:22].tolist() == [7] * 12
    assert (res.stats.dram_rd, res.stats.spad_wr, res.stats.busy[0]) == (0, 12, 0)
    assert res.insn_end[0] == LAT


def test_lda_reads_little_endian_int32_rows():
    dram = _dram()
    res = emulate([make_insn("lda", dst=20, src=64, n0=3, n1=4, ss0=20, ds0=-6)], dram, HW)
    for i0 in range(3):
        want = dram[64 + 20 * i0:][:16].view("<i4")
        np.testing.assert_array_equal(res.acc[20 - 6 * i0:][:4], want)
    assert (res.stats.dram_rd, res.stats.acc_wr, res.stats.busy[0]) == (48, 48, 3 * 4)


def test_st_scatters_and_later_writes_win():
    spad = np.arange(256, dtype=np.uint8).view(np.int8)
    # ds0 = 0: both rows land on the same DRAM bytes; row 1 is written last
    res = emulate([make_insn("st", dst=1000, src=16, n0=2, n1=2, n2=3, ds0=0, ds1=3, ss0=100, ss1=10)],
                  np.zeros(2048, np.uint8), HW, spad=spad)
    want = np.concatenate([spad[116:119], spad[126:129]]).view(np.uint8)
    np.testing.assert_array_equal(res.dram[1000:1006], want)
    assert (res.stats.spad_rd, res.stats.dram_wr) == (12, 12)
    assert res.stats.busy[2] == 2 * 2  # ds1 == n2: one 6-byte burst per row, ceil(6/4) = 2


def test_input_dram_is_not_modified():
    dram = np.zeros(64, np.uint8)
    emulate([make_insn("st", dst=0, src=0, n0=1, n1=1, n2=8)], dram, HW, spad=np.ones(8, np.int8))
    assert not dram.any()


def test_dram_channel_is_shared_and_dma_issue_is_pipelined():
    ld = make_insn("ld", dst=0, src=0, n0=1, n1=1, n2=40)  # xfer = 10
    st = make_insn("st", dst=0, src=0, n0=1, n1=1, n2=20)  # xfer = 5
    res = emulate([ld, ld, st], _dram(), HW)
    # ld0 owns the channel for [0, 10). The store (start 0) is picked before ld1 (start 10, when
    # its unit is free again: issue is pipelined), so it gets the channel first, for [10, 15);
    # ld1 then waits for the channel until 15.
    assert res.insn_start.tolist() == [0, 10, 0]
    assert res.insn_end.tolist() == [10 + LAT, 25 + LAT, 15 + LAT]
    s = res.stats
    assert s.dram_stall == (5, 0, 10) and s.busy == (20, 0, 5) and s.cycles == 25 + LAT


BOX_ERRORS = [
    (make_insn("ld", dst=1020, src=0, n0=1, n1=1, n2=8), "ld dst: address range [1020, 1027] outside SPAD of 1024"),
    (make_insn("ld", dst=0, src=10, n0=3, n1=1, n2=1, ss0=-6), "ld src: address range [-2, 10] outside DRAM of 2048"),
    (make_insn("lda", dst=250, src=0, n0=1, n1=8), "lda dst: address range [250, 257] outside ACC of 256 words"),
    (make_insn("lda", dst=0, src=2040, n0=1, n1=4), "lda src: address range [2040, 2055] outside DRAM of 2048"),
    (make_insn("st", dst=2047, src=0, n0=1, n1=2, n2=1, ds1=1), "st dst: address range [2047, 2048]"),
    (make_insn("st", dst=0, src=5, n0=2, n1=1, n2=1, ss0=2**31 - 1), "st src: address range [5, 2147483652]"),
]


@pytest.mark.parametrize(("insn", "message"), BOX_ERRORS)
def test_dma_boxes_are_checked(insn, message):
    with pytest.raises(EmuError) as e:
        emulate([insn], _dram(), HW)
    assert e.value.insn == 0 and e.value.message.startswith("insn 0: " + message)


def test_empty_boxes_are_not_checked():
    res = emulate([make_insn("st", dst=2**31 - 1, src=2**31 - 1, n0=5, n1=0, n2=9)], _dram(), HW)
    assert res.stats.dram_wr == 0 and res.insn_end[0] == LAT
