"""Energy is the documented sum of the simulator's event counts times the config's constants; area
is the documented sum over the array and the SRAMs (`npuc/tools/cost.py`)."""

from __future__ import annotations

import dataclasses

import pytest

from npuc.hw import HwConfig
from npuc.isa.encoding import encode
from npuc.isa.program import make_insn
from npuc.isa.stats import ZERO
from npuc.sim.core import run_words
from npuc.tools.cost import area_mm2, energy

# distinct constants (powers of ten apart) so a term multiplied by the wrong counter shows
HW = HwConfig(rows=4, cols=8, spad_kib=4, acc_kib=4, dram_bw=4, dram_latency=10, vec_lanes=4, vec_latency=3,
              mac_pj=1.0, spad_read_pj=10.0, spad_write_pj=100.0, acc_read_pj=1e3, acc_write_pj=1e4,
              dram_pj=1e5, vector_pj=1e6, pe_mm2=0.5, spad_mm2_per_kib=0.25, acc_mm2_per_kib=0.125)

# events by ISA.md's Statistics table, counted by hand:
#   ld  4x16 bytes: DRAM read 64, SPAD written 64
#   lda 16 words (vrq's multipliers and shifts): DRAM read 64, ACC written 64
#   gemm M=4, k=4, n=8, acc=0: 128 MACs, SPAD read M*k + k*n = 48, ACC written 4*M*n = 128 bytes
#   vrq m=4, n=8: ACC read 4*(m*n + 2*n) = 192, SPAD written 32, 32 vector operations
#   st  4x8 bytes: SPAD read 32, DRAM written 32
PROGRAM = [
    make_insn("ld", dst=0, src=0, n0=4, n1=1, n2=16, ss0=16, ds0=16, signal=1),
    make_insn("lda", dst=512, src=512, n0=1, n1=16, ss0=64, ds0=16, signal=2),
    make_insn("gemm", dst=0, a=0, w=16, m0=4, m1=1, k=4, n=8, as0=16, ds0=8, ws=8, wait=1),
    make_insn("vrq", dst=256, src=0, mul=512, sh=520, m=4, n=8, ds=8, ss=8, zp=0, lo=-128, hi=127, rnd=0,
              wait=2, signal=4),
    make_insn("st", dst=1024, src=256, n0=4, n1=1, n2=8, ss0=8, ds0=8, wait=4),
]
EVENTS = {"macs": 128, "spad_rd": 48 + 32, "spad_wr": 64 + 32, "acc_rd": 192, "acc_wr": 128 + 64,
          "dram": 64 + 64 + 32, "vec_ops": 32}  # dram: ld 64 + lda 4*16 read, st 32 written


def test_energy_is_events_times_constants():
    dram = bytearray(2048)  # all zero: multipliers 0, shifts 0 (the values do not matter here)
    stats = run_words(encode(PROGRAM), dram, HW).stats
    want_pj = (1.0 * EVENTS["macs"] + 10.0 * EVENTS["spad_rd"] + 100.0 * EVENTS["spad_wr"] + 1e3 * EVENTS["acc_rd"]
               + 1e4 * EVENTS["acc_wr"] + 1e5 * EVENTS["dram"] + 1e6 * EVENTS["vec_ops"])
    e = energy(stats, HW)
    assert e.total_pj == pytest.approx(want_pj, rel=1e-12)
    assert e.total_uj == pytest.approx(want_pj * 1e-6, rel=1e-12)
    assert e.terms["vector_pj"] == 1e6 * 32 and e.terms["dram_pj"] == 1e5 * 160


def test_area_is_pes_plus_memories():
    assert area_mm2(HW) == pytest.approx(0.5 * 32 + 0.25 * 4 + 0.125 * 4)
    assert area_mm2(HwConfig()) == pytest.approx(0.0012 * 256 + 0.0039 * 256 + 0.0049 * 64)


def test_the_core_counts_each_layers_events():
    """Two layers: the first (ld, lda, gemm) and the second (vrq, st); a third named by no
    instruction counts nothing, and a layer past n_layers is not counted."""
    layered = [dataclasses.replace(i, layer=0 if k < 3 else 1) for k, i in enumerate(PROGRAM)]
    res = run_words(encode(layered), bytearray(2048), HW, n_layers=3)
    first, second, empty = res.layers
    assert (first.macs, first.dram_rd, first.spad_wr, first.acc_wr) == (128, 128, 64, 64 + 128)
    assert (second.acc_rd, second.spad_wr, second.vec_ops, second.dram_wr) == (192, 32, 32, 32)
    assert empty == ZERO
    both = first + second
    assert dataclasses.replace(both, cycles=res.stats.cycles) == res.stats
    assert both.cycles == res.stats.cycles  # each layer's share of the end's growth
    only_first = run_words(encode(layered), bytearray(2048), HW, n_layers=1).layers
    assert only_first == [first]
