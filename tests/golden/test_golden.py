"""Code generation and cycle counts are pinned: a diff here is a change in what the compiler emits."""

import pytest

from npuc.isa.asm import read_program
from npuc.isa.table import INSNS

from .cases import CASES, HERE, build


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_golden(name, tmp_path):
    asm, stats = build(name, tmp_path)
    assert asm == (HERE / f"{name}.s").read_text(), "assembly changed: review, then python tests/golden/cases.py"
    assert stats == (HERE / f"{name}.stats.json").read_text(), "cycle statistics changed"


def test_golden_programs_use_every_instruction():
    """Every mnemonic of the ISA table occurs in some golden program, so a change in how any
    instruction is emitted shows up as a golden diff."""
    used = {insn.op for name in CASES for insn in read_program(HERE / f"{name}.s").insns}
    assert used == {spec.mnemonic for spec in INSNS}
