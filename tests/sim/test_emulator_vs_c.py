"""The two models of the ISA agree: the numpy emulator (the definition) and the C simulator.

Random runnable programs, each from a random machine state (`tests/sim/programs.py`: DRAM,
SPAD and ACC all random, vrq parameters at the top of ACC, results often inside int8 and on
rounding ties), run on both models: the final DRAM, SPAD and ACC, the statistics and every
instruction's start and end cycle must be equal. Two drivers of the same generator:

* a fixed corpus of seeded programs (`RngChooser`), identical on every run: the programs
  `bench/inject_bugs.py` relies on — each data-path bug it injects into the C core (vmax as
  min, gemm ignoring acc or adding 1, vrq/vadd/vmul adding 1, vlut off by one entry, vaddv
  without its vector, vsum dropping a bit, ties rounded up, ld padding with 0, lda byte
  order) fails it, each in several programs of the corpus;
* hypothesis (derandomized, no database), which explores further and shrinks a failure.

Mutated programs (a field set to any in-range value, a bad word, a wait nobody signals) must
succeed alike or fail alike: same instruction index, same message.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npuc.isa.emulator import EmuError, emulate
from npuc.isa.encoding import encode
from npuc.isa.program import make_insn
from npuc.sim import core

from .programs import HWS, DrawChooser, RngChooser, State, mutated, program

CORPUS = range(200)  # seeds of the fixed corpus


def _run_both(words: np.ndarray, state: State, hw):
    """(emulator result or EmuError, C result or SimError), both from the same machine state."""
    dram, spad, acc = state
    try:
        emu = emulate(words, dram, hw, spad=spad, acc=acc)
    except EmuError as e:
        emu = e
    try:
        sim = core.run_words(words, dram, hw, trace=True, memories=True, spad=spad, acc=acc)
    except core.SimError as e:
        sim = e
    return emu, sim


def _assert_same(emu, sim) -> None:
    if isinstance(emu, EmuError) or isinstance(sim, core.SimError):
        assert isinstance(emu, EmuError) and isinstance(sim, core.SimError), (emu, sim)
        assert (emu.insn, emu.message) == (sim.insn, sim.message)
        return
    assert asdict(emu.stats) == asdict(sim.stats)
    np.testing.assert_array_equal(emu.insn_start, sim.insn_start)
    np.testing.assert_array_equal(emu.insn_end, sim.insn_end)
    np.testing.assert_array_equal(emu.insn_sat, sim.insn_sat)
    np.testing.assert_array_equal(emu.dram, sim.dram, err_msg="DRAM")
    np.testing.assert_array_equal(emu.spad, sim.spad, err_msg="SPAD")
    np.testing.assert_array_equal(emu.acc, sim.acc, err_msg="ACC")


def test_corpus_programs_agree():
    failed = []
    for seed in CORPUS:
        hw, insns, state = program(RngChooser(seed))
        emu, sim = _run_both(encode(insns), state, hw)
        try:
            assert not isinstance(emu, EmuError), emu
            _assert_same(emu, sim)
        except AssertionError as e:
            failed.append(f"seed {seed}: {hw}\n  " + "\n  ".join(map(str, insns)) + f"\n{e}")
    assert not failed, f"{len(failed)} of {len(CORPUS)} programs disagree; the first:\n{failed[0]}"


# derandomized and without a database: CI runs the same examples every time
SETTINGS = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.composite(lambda draw: program(DrawChooser(draw)))())
def test_random_programs_agree(case):
    hw, insns, state = case
    emu, sim = _run_both(encode(insns), state, hw)
    assert not isinstance(emu, EmuError), emu
    _assert_same(emu, sim)


@SETTINGS
@given(st.composite(lambda draw: mutated(DrawChooser(draw)))())
def test_mutated_programs_fail_alike(case):
    hw, words, state = case
    emu, sim = _run_both(words, state, hw)
    _assert_same(emu, sim)


def test_mutated_corpus_fails_alike():
    for seed in range(100):
        hw, words, state = mutated(RngChooser(seed))
        _assert_same(*_run_both(words, state, hw))


def test_initial_memories_reach_the_c_core():
    """run_words(spad=, acc=) starts the C core from those memories (the start of each, the rest
    zeroed, as emulate's); without them SPAD and ACC start zeroed."""
    hw = HWS[0]
    rng = np.random.default_rng(5)
    spad = rng.integers(-128, 128, 40).astype(np.int8)
    acc = rng.integers(-(2**31), 2**31, 30).astype(np.int32)
    words = encode([make_insn("vsum", dst=0, src=0, m=2, n=3, ss=3, acc=1)])
    dram = np.zeros(8, np.uint8)
    got = core.run_words(words, dram, hw, memories=True, spad=spad, acc=acc)
    want = emulate(words, dram, hw, spad=spad, acc=acc)
    np.testing.assert_array_equal(got.acc[:3], acc[:3] + spad[:3].astype(np.int32) + spad[3:6])
    np.testing.assert_array_equal(got.spad[:40], spad)
    np.testing.assert_array_equal(got.spad, want.spad)
    np.testing.assert_array_equal(got.acc, want.acc)
    assert not got.spad[40:].any() and not got.acc[30:].any()
    zero = core.run_words(words, dram, hw, memories=True)
    assert not zero.spad.any() and not zero.acc.any()
    with pytest.raises(ValueError, match="spad: 1025 initial elements for a memory of 1024"):
        core.run_words(words, dram, hw, spad=np.zeros(hw.spad_bytes + 1, np.int8))
