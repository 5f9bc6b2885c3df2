"""The built C core agrees with the Python declarations its structs are generated from (the
generation itself: tests/isa/test_generated_headers.py): the same members, the same ranges
checked, every counter counted and copied back."""

from __future__ import annotations

from dataclasses import asdict, fields

import numpy as np
import pytest

from npuc.hw import C_MEMBERS, HwConfig
from npuc.isa.emulator import emulate
from npuc.isa.encoding import encode
from npuc.isa.program import make_insn
from npuc.isa.stats import COUNTERS, UNITS, RunStats

core = pytest.importorskip("npuc.sim.core")
ffi, lib = core.ffi, core.lib

HW = HwConfig(rows=4, cols=8, spad_kib=4, acc_kib=4, dram_bw=4, dram_latency=10, vec_lanes=4, vec_latency=3)
HW16 = HW.replace(acc_bits=16)  # the counter program: a 16-bit accumulator, so that acc_sat counts


# ---- the built core against the declarations --------------------------------------------------


def test_cffi_structs_have_the_declared_members():
    stats = ffi.typeof("npu_stats")
    assert [name for name, _ in stats.fields] == [f.name for f in fields(RunStats)]
    for (name, c), (_, f) in zip(COUNTERS, stats.fields):
        if c.per_unit:
            assert f.type.kind == "array" and f.type.length == len(UNITS) and f.type.item.cname == "uint64_t"
        else:
            assert f.type.cname == "uint64_t", name
    hw = ffi.typeof("npu_hw")
    assert [(name, f.type.cname) for name, f in hw.fields] == [(m.member, "int32_t") for m in C_MEMBERS]


def _run_raw(hw: dict[str, int]) -> tuple[int, str]:
    """npu_run of an empty program on a raw npu_hw: (return code, error message)."""
    err = ffi.new("char[]", 256)
    dram = np.zeros(16, np.uint8)
    rc = lib.npu_run(ffi.new("npu_hw *", hw), ffi.NULL, 0, ffi.from_buffer("uint8_t[]", dram), dram.size,
                     ffi.NULL, ffi.new("npu_stats *"), ffi.new("int64_t *"), err, 256)
    return rc, ffi.string(err).decode()


@pytest.mark.parametrize("m", C_MEMBERS, ids=lambda m: m.member)
def test_c_core_checks_the_declared_range(m):
    base = HW.c_values()
    assert _run_raw(base) == (0, "")
    for bad in (m.lo - 1, m.hi + 1):
        if -(2**31) <= bad < 2**31:
            assert _run_raw({**base, m.member: bad}) == (1, f"hw {m.member} = {bad}: must be in [{m.lo}, {m.hi}]")
    if m.hi <= 1 << 16:  # both ends are accepted (the largest memories are not worth allocating here)
        for ok in (m.lo, m.hi):
            rc, msg = _run_raw({**base, m.member: ok})
            assert rc == 0, msg


# The program below gives every counter a non-zero value. Its counts, from ISA.md's formulas
# (R = 4, C = 8, BW = 4, LAT = 10), independently of both models:
#   ld   (load)    0..16 on the channel, done at 26; 4*16 bytes DRAM -> SPAD (SPAD[i] = 64 + i)
#   st   (store)   ready at 0, channel free at 16: dram_stall 16; xfer 2*ceil(8/4) = 4, done at 30
#   gemm (compute) waits for ld: token_stall 26; 2R + C + M - 2 = 18 cycles, done at 44;
#                  M*k*n = 4*4*8 MACs, SPAD M*k + k*n, ACC 4*M*n read (acc=1) and written
#                  gemm_fill 18 - M = 14
#   gemm (compute) no wait: continues the chain, M + max(0, R - 4) = 2 cycles, done at 46 (gemm_chained 1);
#                  2*4*8 MACs, SPAD 2*4 + 4*8, ACC 4*2*8 read and written; its first row,
#                  SPAD[48..51] = 112..115, times the weights SPAD[0..31] = 64..95 sums 34544..37722
#                  per column: all 8 above 2^15 - 1, saturated by the 16-bit accumulator (acc_sat 8)
#   st   (store)   waits for the first gemm, free since 20: token_stall 24; xfer 4*ceil(8/4) = 8, done at 62
#   vmax (compute) after the gemms, 46..53: VL + m*ceil(n/L) = 3 + 2*2 = 7; 2*m*n SPAD read, m*n written,
#                  m*n = 12 vector element operations
PROGRAM = [
    make_insn("ld", dst=0, src=64, n0=4, n1=1, n2=16, ss0=16, ds0=16, signal=1),
    make_insn("st", dst=2048, src=512, n0=2, n1=1, n2=8, ss0=8, ds0=8),
    make_insn("gemm", dst=0, a=0, w=64, m0=4, m1=1, k=4, n=8, as0=16, ds0=8, ws=8, acc=1, wait=1, signal=2),
    make_insn("gemm", dst=256, a=48, w=0, m0=2, m1=1, k=4, n=8, as0=16, ds0=8, ws=8, acc=1),
    make_insn("st", dst=1024, src=0, n0=4, n1=1, n2=8, ss0=16, ds0=8, wait=2),
    make_insn("vmax", dst=700, a=600, b=640, m=2, n=6, ds=6, bs=6, **{"as": 6}),
]
EXPECTED = {
    "cycles": 62, "busy": (16, 18 + 2 + 7, 4 + 8), "token_stall": (0, 26, 24), "dram_stall": (0, 0, 16),
    "insns": (1, 3, 2), "macs": 128 + 64, "dram_rd": 64, "dram_wr": 16 + 32,
    "spad_rd": 16 + 4 * 8 + 16 + 32 + 24 + 2 * 4 + 4 * 8, "spad_wr": 64 + 12, "acc_rd": 4 * 6 * 8,
    "acc_wr": 4 * 6 * 8, "gemm_chained": 1, "gemm_fill": 14, "vec_ops": 12,
    "acc_sat": 8,
}


def test_every_counter_round_trips_from_the_c_core():
    """Each declared counter is counted by C, copied out, and equals the emulator's.

    A counter declared in isa/stats.py must be added to EXPECTED (and PROGRAM must make it
    non-zero), so a counter nobody counts, or one the copy drops, fails here."""
    assert set(EXPECTED) == {f.name for f in fields(RunStats)}, "give every declared counter a value here"
    assert all(any(v) if isinstance(v, tuple) else v for v in EXPECTED.values())
    dram = np.arange(4096, dtype=np.uint32).astype(np.uint8)
    words = encode(PROGRAM)

    raw = ffi.new("npu_stats *")
    err = ffi.new("char[]", 256)
    mem = dram.copy()
    rc = lib.npu_run(core.hw_struct(HW16), ffi.from_buffer("uint32_t[]", words), words.size,
                     ffi.from_buffer("uint8_t[]", mem), mem.size, ffi.NULL, raw, ffi.new("int64_t *"), err, 256)
    assert rc == 0, ffi.string(err)
    in_c = {name: tuple(getattr(raw, name)) if f.type.kind == "array" else getattr(raw, name)
            for name, f in ffi.typeof("npu_stats").fields}
    assert in_c == EXPECTED

    sim = core.run_words(words, dram, HW16).stats
    assert asdict(sim) == EXPECTED
    assert asdict(emulate(words, dram, HW16).stats) == EXPECTED
