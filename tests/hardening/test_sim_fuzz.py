"""Fuzzing the C core through `run_words`: every input ends in a result or a SimError naming an instruction.

This extends tests/sim/test_fuzz.py (fixed hardware, at most six
independent instructions) in three directions:

* hardware drawn over wide ranges (array 1..64, memories 1 byte..64 KiB,
  latencies 0..2^20), DRAM of any size from 0;
* programs whose instructions are chained by tokens the way the compiler
  chains them, so they run deep instead of stopping at the first wait, and
  raw word soup that mostly exercises the decoder;
* more than "no crash": a run is deterministic (two runs agree on DRAM,
  statistics and per-instruction cycles), recorded cycles lie inside the
  run, the per-unit counts add up to the program, and an error names a
  valid instruction index with the message prefix the driver relies on.

Programs come from seeds (numpy), which keeps an example under a
millisecond; hypothesis explores and replays the seeds. Counts:
NPUC_FUZZ_EXAMPLES (default 1500) chained programs, as many word soups.
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npuc.hw import HwConfig
from npuc.isa.table import INSNS, MAX_FIELDS, WORDS_PER_INSN
from npuc.sim.core import SimError, run_words

EXAMPLES = int(os.environ.get("NPUC_FUZZ_EXAMPLES", "1500"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
MAX_WORK = 30_000
COUNTS = {"n0", "n1", "n2", "m", "m0", "m1", "k", "n", "pt", "pb", "pl", "pr"}
seeds = st.integers(0, 2**64 - 1)


def random_hw(rng: np.random.Generator) -> HwConfig:
    def pick(small: tuple[int, int], edges: list[int]) -> int:
        return int(rng.choice(edges)) if rng.random() < 0.2 else int(rng.integers(small[0], small[1] + 1))

    return HwConfig(rows=pick((1, 16), [1, 64]), cols=pick((1, 16), [1, 64]), spad_kib=pick((1, 8), [1, 64]),
                    acc_kib=pick((1, 4), [1, 64]), dram_bw=pick((1, 64), [1, 1 << 16]),
                    dram_latency=pick((0, 200), [0, 1 << 20]), vec_lanes=pick((1, 32), [1, 1 << 12]),
                    vec_latency=pick((0, 8), [0, 1 << 12]), fold_overlap=bool(rng.random() < 0.7))


def field_value(rng: np.random.Generator, f, hw: HwConfig, wild: float) -> int:
    """Values whose boxes fit small memories (so programs run deep), or with probability `wild` an edge
    of the field's range or any value in it."""
    roll = rng.random()
    if f.name in ("k", "n"):
        limit = hw.rows if f.name == "k" else hw.cols
        return int(rng.integers(1, limit + 1)) if roll < 0.95 else int(rng.choice([f.lo, f.hi, limit + 1]))
    if roll >= wild:
        roll = rng.random()
        if f.name in ("pt", "pb", "pl", "pr"):
            lo, hi = 0, 2
        elif f.name in COUNTS:
            lo, hi = 0, 6
        elif f.lo < 0:  # a stride: mostly forward, sometimes zero or backward
            lo, hi = (0, 12) if roll < 0.8 else (-12, 12)
        else:
            lo, hi = 0, 64
    elif roll < wild / 2:
        return int(rng.choice([f.lo, f.hi, max(0, f.lo), 1, -1 if f.lo < 0 else 2, f.hi // 2]))
    else:
        lo, hi = f.lo, f.hi
    return int(rng.integers(max(lo, f.lo), min(hi, f.hi) + 1))


def chained_program(rng: np.random.Generator, hw: HwConfig) -> np.ndarray:
    """Instructions on the three units; each waits only for tokens some earlier one signals."""
    n = int(rng.integers(1, 12))
    wild = float(rng.choice([0.0, 0.005, 0.02, 0.1, 0.3]))  # how often a field takes an extreme value
    words = np.zeros((n, WORDS_PER_INSN), np.uint32)
    pending = np.zeros(16, np.int64)
    for i in range(n):
        spec = INSNS[int(rng.integers(len(INSNS)))]
        wait = 0
        for t in np.flatnonzero(pending > 0):
            if rng.random() < 0.5:
                wait |= 1 << int(t)
                pending[t] -= 1
        if rng.random() < 0.05:
            wait |= 1 << int(rng.integers(16))  # sometimes a wait nothing satisfies: deadlock
        signal = int(rng.integers(0, 1 << 16)) & int(rng.choice([0, 1, 3, 0xF, 0xFFFF]))
        for t in range(16):
            pending[t] += signal >> t & 1
        fields = [field_value(rng, f, hw, wild) for f in spec.fields] + [0] * (MAX_FIELDS - len(spec.fields))
        words[i, 0] = spec.opcode | int(rng.integers(0, 4)) << 16
        words[i, 1] = wait | signal << 16
        words[i, 2:] = np.array(fields, np.int64).astype(np.uint32)
    return words.reshape(-1)


def check_run(words: np.ndarray, dram: np.ndarray, hw: HwConfig) -> None:
    n = words.size // WORDS_PER_INSN
    try:
        a = run_words(words, dram, hw, max_work=MAX_WORK, memories=True)
    except SimError as e:
        assert -1 <= e.insn <= n and e.message, str(e)
        if e.insn >= 0:
            assert str(e).startswith(f"insn {e.insn}: "), str(e)
        with np.testing.assert_raises(SimError) as again:  # errors are deterministic too
            run_words(words, dram, hw, max_work=MAX_WORK)
        assert str(again.exception) == str(e)
        return
    b = run_words(words, dram, hw, max_work=MAX_WORK, memories=True)
    assert a.stats == b.stats
    np.testing.assert_array_equal(a.dram, b.dram)
    np.testing.assert_array_equal(a.spad, b.spad)
    np.testing.assert_array_equal(a.acc, b.acc)
    np.testing.assert_array_equal(a.insn_start, b.insn_start)
    np.testing.assert_array_equal(a.insn_end, b.insn_end)
    assert sum(a.stats.insns) == n
    if n:
        assert np.all(a.insn_start <= a.insn_end) and int(a.insn_end.max()) == a.stats.cycles
    assert a.dram.shape == dram.shape


@FUZZ
@given(seeds)
def test_chained_programs_on_random_hardware(seed):
    rng = np.random.default_rng(seed)
    hw = random_hw(rng)
    words = chained_program(rng, hw)
    size = int(rng.choice([0, 1, 64, int(rng.integers(0, 9000)), 4096, 4096]))
    dram = rng.integers(0, 256, size, dtype=np.uint8)
    if rng.random() < 0.5:  # DRAM words that are valid vrq shifts
        dram = (dram & 0x3F) * (np.arange(size) % 4 == 0)
    check_run(words, dram.astype(np.uint8), hw)


@FUZZ
@given(seeds)
def test_word_soup(seed):
    """Raw words, with a valid opcode most of the time and bits flipped in well-formed instructions."""
    rng = np.random.default_rng(seed)
    hw = random_hw(rng)
    words = chained_program(rng, hw)
    mode = rng.integers(4)
    if mode == 0:
        words = rng.integers(0, 2**32, int(rng.integers(0, 3 * WORDS_PER_INSN)), dtype=np.uint32)
    elif mode == 1:  # flip bits
        for _ in range(int(rng.integers(1, 6))):
            words[rng.integers(words.size)] ^= np.uint32(1 << int(rng.integers(32)))
    elif mode == 2:  # cut anywhere
        words = words[:int(rng.integers(0, words.size + 1))]
    else:  # a random word anywhere
        words[rng.integers(words.size)] = rng.integers(0, 2**32, dtype=np.uint32)
    check_run(words, rng.integers(0, 256, int(rng.integers(0, 5000)), dtype=np.uint8), hw)
