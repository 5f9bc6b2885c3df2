"""Code generation and cycle counts are pinned: a diff here is a change in what the compiler emits."""

import pytest

from .cases import CASES, HERE, build


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_golden(name, tmp_path):
    asm, stats = build(name, tmp_path)
    assert asm == (HERE / f"{name}.s").read_text(), "assembly changed: review, then python tests/golden/cases.py"
    assert stats == (HERE / f"{name}.stats.json").read_text(), "cycle statistics changed"
