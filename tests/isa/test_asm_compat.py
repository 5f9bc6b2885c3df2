"""What the next wave added to the text format: a true / false hardware field in the `.hw` line
(printed and read as the bare words), and a gemm field with a default that older programs omit."""

from __future__ import annotations

import pytest

from npuc.hw import HwConfig
from npuc.isa.asm import AsmError, format_program, parse_program
from npuc.isa.program import Program


def _text(hw_line: str) -> str:
    return f".npuc 1\n{hw_line}\n.dram 64\n"


@pytest.mark.parametrize("value", [True, False])
def test_fold_overlap_round_trips_as_a_word(value):
    prog = Program(hw=HwConfig(fold_overlap=value).to_flat(), dram_size=64)
    text = format_program(prog)
    assert f"fold_overlap={'true' if value else 'false'} " in text
    assert parse_program(text).hw["fold_overlap"] is value


def test_a_missing_bool_takes_the_default():
    assert parse_program(_text(".hw rows=4")).hw["fold_overlap"] is True


@pytest.mark.parametrize("value,message", [
    ("1", "array.fold_overlap = 1: must be true or false"),
    ('"true"', "array.fold_overlap = 'true': must be true or false"),
    ("yes", 'strings are quoted'),
])
def test_a_bool_is_not_a_number_or_a_string(value, message):
    with pytest.raises(AsmError, match=message) as e:
        parse_program(_text(f".hw rows=4 fold_overlap={value}"))
    assert e.value.line == 2 and e.value.column == len(".hw rows=4 fold_overlap=") + 1


def test_a_word_is_no_bool_for_another_field():
    with pytest.raises(AsmError, match="strings are quoted"):
        parse_program(_text(".hw rows=true"))


def test_a_gemm_without_bias_takes_the_default():
    body = "gemm  dst=0 a=0 w=0 m0=4 m1=1 k=4 n=8 as0=4 as1=0 ws=8 ds0=8 ds1=0 acc=0\n"
    prog = parse_program(_text(".hw rows=4 cols=8") + body)
    assert prog.insns[0].get("bias") == 0 and "bias=0" in format_program(prog)
    with pytest.raises(AsmError, match="gemm: missing field 'acc'"):
        parse_program(_text(".hw rows=4 cols=8") + body.replace(" acc=0", ""))
