"""The binary encoding: the layout of ISA.md, exact round trips, and every rejection."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npuc.isa.encoding import DecodeError, EncodeError, decode, encode
from npuc.isa.program import Insn, make_insn
from npuc.isa.table import BY_MNEMONIC, HEADER_WORDS, INSNS, MAX_FIELDS, WORDS_PER_INSN


def test_opcodes_are_distinct_bytes_and_fields_fit():
    opcodes = [s.opcode for s in INSNS]
    assert len(set(opcodes)) == len(opcodes)
    assert all(0 < op <= 0xFF for op in opcodes)
    assert len({s.mnemonic for s in INSNS}) == len(INSNS)
    assert all(len(s.fields) <= MAX_FIELDS for s in INSNS)
    assert all(-(2**31) <= f.lo <= f.hi < 2**31 for s in INSNS for f in s.fields)  # int32 words


def test_layout_matches_isa_md():
    insn = make_insn("vrq", dst=5, src=6, mul=7, sh=8, m=2, n=3, ds=-4, ss=9, zp=-128, lo=-1, hi=100, rnd=2,
                     wait=0b1001, signal=0x8000, layer=513)
    w = encode([insn])
    assert w.dtype == np.uint32 and w.shape == (WORDS_PER_INSN,)
    assert w[0] == 0x21 | 513 << 16
    assert w[1] == 0b1001 | 0x8000 << 16
    assert list(w[2:14]) == [5, 6, 7, 8, 2, 3, 2**32 - 4, 9, 2**32 - 128, 2**32 - 1, 100, 2]
    assert not w[14:].any()
    assert w.tobytes()[:4] == bytes([0x21, 0x00, 0x01, 0x02])  # little-endian words


@st.composite
def insns(draw) -> Insn:
    spec = draw(st.sampled_from(INSNS))
    fields = tuple(draw(st.one_of(st.integers(f.lo, f.hi), st.sampled_from([f.lo, f.hi]))) for f in spec.fields)
    u16 = st.integers(0, 0xFFFF)
    return Insn(spec.mnemonic, fields, draw(u16), draw(u16), draw(u16))


@settings(max_examples=40, deadline=None)
@given(st.lists(insns(), max_size=30))
def test_decode_inverts_encode(prog):
    words = encode(prog)
    assert words.size == WORDS_PER_INSN * len(prog)
    assert decode(words) == prog
    assert decode(words.reshape(-1, WORDS_PER_INSN)) == prog  # 2-D input too


@pytest.mark.parametrize("spec", INSNS, ids=lambda s: s.mnemonic)
def test_encode_rejects_every_out_of_range_field(spec):
    for j, f in enumerate(spec.fields):
        for bad in (f.lo - 1, f.hi + 1):
            fields = [max(f.lo, 0) for f in spec.fields]
            fields[j] = bad
            prog = [make_insn("st"), Insn(spec.mnemonic, tuple(fields))]
            with pytest.raises(EncodeError, match=rf"^insn 1: {spec.mnemonic} {f.name} = {bad} outside") as e:
                encode(prog)
            assert e.value.insn == 1


def test_encode_rejects_bad_masks_layers_and_shapes():
    with pytest.raises(EncodeError, match="insn 0: .*16 bits"):
        encode([make_insn("st", wait=1 << 16)])
    with pytest.raises(EncodeError, match="insn 1: .*16 bits"):
        encode([make_insn("st"), make_insn("st", layer=70000)])
    with pytest.raises(EncodeError, match="unknown mnemonic 'nop'"):
        encode([Insn("nop", ())])
    with pytest.raises(EncodeError, match=r"insn 0: \(line 7\) st needs 9 int32 fields"):
        encode([Insn("st", (1, 2), line=7)])


def _words(*insns: Insn) -> np.ndarray:
    return encode(list(insns)).reshape(len(insns), WORDS_PER_INSN)


@pytest.mark.parametrize("poke, message", [
    (lambda w: w.__setitem__((1, 0), 0x7F), "insn 1: unknown opcode 0x7f"),
    (lambda w: w.__setitem__((1, 0), w[1, 0] | 0x100), "insn 1: gemm: reserved bits 8-15 of word 0 are 0x01"),
    (lambda w: w.__setitem__((1, WORDS_PER_INSN - 1), 5), "insn 1: gemm: unused word 19 is 0x00000005"),
    (lambda w: w.__setitem__((1, HEADER_WORDS + 5), 0), "insn 1: gemm k = 0 outside [1, 65536]"),
    (lambda w: w.__setitem__((1, HEADER_WORDS), 2**32 - 1), "insn 1: gemm dst = -1 outside [0, 2147483647]"),
])
def test_decode_rejects_malformed_words(poke, message):
    words = _words(make_insn("st"), make_insn("gemm", k=1, n=1), make_insn("ld"))
    poke(words)
    with pytest.raises(DecodeError) as e:
        decode(words)
    assert str(e.value).startswith(message)
    assert e.value.insn == 1


def test_decode_reports_the_first_bad_instruction_and_truncation():
    words = _words(make_insn("st"), make_insn("st"), make_insn("st"))
    words[2, 0] = 0
    words[1, 19] = 1
    with pytest.raises(DecodeError, match="^insn 1: st: unused word 19"):
        decode(words)
    with pytest.raises(DecodeError, match="^insn 1: truncated: 3 of 20 words"):
        decode(np.zeros(23, dtype=np.uint32) + _words(make_insn("st")).reshape(-1)[np.arange(23) % 20])


def test_every_field_lands_in_its_own_word():
    for spec in INSNS:
        names = spec.field_names()
        values = {f.name: min(f.hi, 1000 + i) for i, f in enumerate(spec.fields)}
        w = encode([make_insn(spec.mnemonic, **values)])
        assert list(w[HEADER_WORDS:HEADER_WORDS + len(names)]) == [values[n] for n in names]
        assert w[0] & 0xFF == BY_MNEMONIC[spec.mnemonic].opcode
