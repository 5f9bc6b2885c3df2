"""Random words at the C core: every input ends in a result or a SimError, never a crash.

Run under the sanitizer build (sim/sanitize_check.sh) this also checks that
no input reads or writes outside a buffer or hits undefined behaviour.
"""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npuc.hw import HwConfig
from npuc.isa.table import INSNS, MAX_FIELDS, WORDS_PER_INSN
from npuc.sim.core import SimError, run_words

BIG, NEG = 2**31 - 1, -(2**31)
SPECIAL = [0, 1, 2, 3, 4, 7, 8, 16, 62, 63, -1, -2, -8, 127, -128, 4095, 4096, 2**16, 2**16 + 1,
           BIG, NEG, BIG - 1, NEG + 1, 2**30, -(2**30)]
HWS = [
    HwConfig(rows=4, cols=8, spad_kib=4, acc_kib=4, dram_bw=4, dram_latency=10, vec_lanes=4, vec_latency=3),
    HwConfig(rows=1, cols=1, spad_kib=1, acc_kib=1, dram_bw=1, dram_latency=0, vec_lanes=1, vec_latency=0),
    HwConfig(rows=16, cols=16, spad_kib=8, acc_kib=2, dram_bw=64, dram_latency=3, vec_lanes=16,
             vec_latency=1),
]
MAX_WORK = 20_000  # keeps in-range boxes with zero strides and huge extents from running for ages

COUNTS = {"n0", "n1", "n2", "m", "m0", "m1", "k", "n", "pt", "pb", "pl", "pr"}
word32 = st.integers(0, 2**32 - 1)
mask = st.one_of(st.just(0), st.just(0), st.just(0), st.integers(0, 3), st.integers(0, 0xFFFF))


def _field(f) -> st.SearchStrategy[int]:
    """A value inside the field's range: small (so boxes often fit) or an extreme one."""
    small = (0, 6) if f.name in COUNTS else (-24, 24) if f.lo < 0 else (0, 200)
    if f.name in ("k", "n"):
        small = (1, 4)
    tame = st.integers(max(f.lo, small[0]), min(f.hi, small[1]))
    special = st.sampled_from([v for v in SPECIAL if f.lo <= v <= f.hi])
    return st.one_of(*[tame] * 9, special)


@st.composite
def insn_words(draw) -> list[int]:
    spec = draw(st.sampled_from(INSNS))
    fields = [draw(_field(f)) for f in spec.fields] + [0] * (MAX_FIELDS - len(spec.fields))
    header = [spec.opcode | draw(st.integers(0, 0xFFFF)) << 16, draw(mask) | draw(mask) << 16]
    return [w & 0xFFFFFFFF for w in header + fields]


DEFECTS = ("none", "none", "none", "none", "opcode", "reserved", "field", "unused", "cut")


@st.composite
def programs(draw) -> list[int]:
    """Well-formed programs (which exercise execution), or ones with one decoding defect."""
    prog = draw(st.lists(insn_words(), min_size=1, max_size=6))
    defect = draw(st.sampled_from(DEFECTS))
    insn = prog[draw(st.integers(0, len(prog) - 1))]
    if defect == "opcode":
        insn[0] = insn[0] & ~0xFF | draw(st.integers(0, 255))
    elif defect == "reserved":
        insn[0] |= draw(st.integers(1, 255)) << 8
    elif defect in ("field", "unused"):
        insn[draw(st.integers(2, WORDS_PER_INSN - 1))] = draw(word32)
    words = [w for insn in prog for w in insn]
    cut = draw(st.integers(1, WORDS_PER_INSN - 1)) if defect == "cut" else 0
    return words[:len(words) - cut]


def _run(words, dram_size, hw):
    dram = np.arange(dram_size, dtype=np.uint8)
    try:
        r = run_words(np.array(words, np.uint32), dram, hw, max_work=MAX_WORK, memories=True)
    except SimError as e:
        assert e.insn >= -1 and e.message
        if e.insn >= 0:
            assert str(e).startswith(f"insn {e.insn}: ")
        return
    assert r.dram.size == dram_size and r.stats.cycles >= 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=programs(), dram_size=st.sampled_from([0, 1, 64, 4096, 5000]), hw=st.sampled_from(HWS))
def test_random_programs_never_crash(words, dram_size, hw):
    _run(words, dram_size, hw)


@settings(max_examples=100, deadline=None)
@given(words=st.lists(word32, max_size=3 * WORDS_PER_INSN), dram_size=st.integers(0, 300))
def test_random_words_never_crash(words, dram_size):
    _run(words, dram_size, HWS[0])
