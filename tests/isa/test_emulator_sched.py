"""Emulator: units, token semaphores, functional order, deadlock and statistics (ISA.md).

`start = max(free(U), ready)`; a wait takes the earliest-available token of
its semaphore; among the units that can take their tokens the smallest start
runs next (ties: load, compute, store); a signal's token is available at the
signaller's end.
"""

from __future__ import annotations

import numpy as np
import pytest

from npuc.hw import HwConfig
from npuc.isa.emulator import EmuError, emulate
from npuc.isa.encoding import encode
from npuc.isa.program import make_insn

# serial gemms (no fold overlap): these tests are about the units and tokens, not the array
HW = HwConfig(rows=4, cols=8, spad_kib=1, acc_kib=1, dram_bw=4, dram_latency=10, vec_lanes=4, vec_latency=3,
              fold_overlap=False)
GEMM_COST = 2 * HW.rows + HW.cols - 2 + 1  # one row
DRAM = np.arange(256, dtype=np.uint8)


def gemm(**kw):
    return make_insn("gemm", m0=1, m1=1, k=1, n=1, **kw)


def ld(n2=8, **kw):
    return make_insn("ld", dst=0, src=0, n0=1, n1=1, n2=n2, **kw)


def st(**kw):
    return make_insn("st", dst=0, src=0, n0=1, n1=1, n2=4, **kw)


def test_a_wait_starts_at_the_signallers_end_and_counts_as_token_stall():
    res = emulate([ld(signal=1 << 3), gemm(wait=1 << 3)], DRAM, HW)
    ld_end = 2 + HW.dram_latency  # xfer ceil(8/4) = 2
    assert res.insn_start[1] == ld_end and res.insn_end[1] == ld_end + GEMM_COST
    assert res.stats.token_stall == (0, ld_end, 0)
    assert res.stats.busy == (2, GEMM_COST, 0) and res.stats.insns == (1, 1, 0)


def test_semaphores_count_and_a_wait_takes_the_earliest_token():
    # two loads signal token 0 (available at 12 and 14); two gemms each take one, earliest first
    prog = [ld(signal=1), ld(signal=1), gemm(wait=1), gemm(wait=1)]
    res = emulate(prog, DRAM, HW)
    assert res.insn_end[:2].tolist() == [12, 14]
    assert res.insn_start[2] == 12 and res.insn_start[3] == 12 + GEMM_COST


def test_waiting_on_several_semaphores_starts_at_the_latest():
    prog = [ld(signal=1), ld(n2=40, signal=2), gemm(wait=3)]
    res = emulate(prog, DRAM, HW)
    assert res.insn_start[2] == max(res.insn_end[:2]) == 2 + 10 + 10


def test_ties_go_to_load_then_compute_then_store():
    # the token at GEMM_COST: lda (load), gemm (compute) and st (store) could all start then
    prog = [gemm(signal=1), st(wait=1), make_insn("lda", dst=0, src=0, n0=1, n1=1, wait=1), gemm(signal=1)]
    res = emulate(prog, DRAM, HW)
    assert res.insn_start[2] == GEMM_COST  # the load unit takes it
    assert res.insn_start[1] == 2 * GEMM_COST  # the store waits for the next one
    # tokens at 12 and 14 (the second load issues at 2): gemm and st tie at 12, compute goes first
    res = emulate([ld(signal=1), gemm(wait=1), st(wait=1), ld(signal=1)], DRAM, HW)
    assert (res.insn_start[1], res.insn_start[2]) == (12, 14)


def test_functional_order_follows_start_times_across_units():
    """A store that starts earlier runs before a later load: it reads SPAD before the load fills it."""
    prog = [make_insn("ld", dst=100, src=0, n0=1, n1=1, n2=40),  # the channel until 10
            make_insn("ld", dst=0, src=4, n0=1, n1=1, n2=4),  # starts at 10, writes SPAD[0:4]
            st()]  # starts at 0 (waits for the channel, but runs first) and reads SPAD[0:4]
    res = emulate(prog, DRAM, HW)
    assert res.insn_start.tolist() == [0, 10, 0]
    assert res.dram[:4].tolist() == [0, 0, 0, 0]
    assert res.spad[:4].tolist() == [4, 5, 6, 7]


def test_deadlock_names_each_blocked_unit():
    prog = [ld(), gemm(wait=1 << 2), st(wait=(1 << 4) | (1 << 5), signal=1 << 4), ld(wait=1 << 7)]
    with pytest.raises(EmuError) as e:
        emulate(prog, DRAM, HW)
    assert e.value.insn == 1
    assert e.value.message == ("insn 1: gemm: deadlock: no unit can proceed; load unit at insn 3 (ld) waits for "
                               "TOK[7]; compute unit at insn 1 (gemm) waits for TOK[2]; store unit at insn 2 (st) "
                               "waits for TOK[4] TOK[5]")


def test_words_and_instructions_give_the_same_run():
    prog = [ld(signal=1), gemm(wait=1, signal=2), st(wait=2)]
    a, b = emulate(prog, DRAM, HW), emulate(encode(prog), DRAM, HW)
    assert a.stats == b.stats
    np.testing.assert_array_equal(a.insn_end, b.insn_end)
    assert a.stats.cycles == int(a.insn_end.max())


def test_malformed_programs_are_rejected_before_anything_runs():
    words = encode([gemm(wait=1 << 9), ld(), ld()]).reshape(3, -1)  # insn 0 would deadlock
    words[2, 0] |= 0x300
    with pytest.raises(EmuError, match=r"^insn 2: ld: reserved bits 8-15 of word 0 are 0x03, must be 0$"):
        emulate(words.reshape(-1), DRAM, HW)
    with pytest.raises(EmuError, match=r"^insn 1: gemm k = 5 exceeds the array's 4 rows$"):
        emulate([ld(), make_insn("gemm", k=5, n=1), make_insn("gemm", k=0, n=1)], DRAM, HW)
    with pytest.raises(EmuError, match=r"^insn 0: ld n0 = -1 outside"):
        emulate([make_insn("ld", n0=-1)], DRAM, HW)


def test_a_run_time_fault_names_the_instruction_in_functional_order():
    # insn 2 (store, start 0) runs before insn 1 (gemm, waiting for the load): its fault is the one reported
    prog = [ld(signal=1), gemm(wait=1, dst=10**6), make_insn("st", dst=10**6, src=0, n0=1, n1=1, n2=1)]
    with pytest.raises(EmuError, match=r"^insn 2: st dst: address range \[1000000, 1000000\] outside DRAM of 256 "
                                       r"bytes$"):
        emulate(prog, DRAM, HW)
