"""The run counters are declared once (isa/stats.py): ZERO, +, the copy from named values and the
emulator's per-instruction Traffic all follow the declaration. No C build needed."""

from __future__ import annotations

from dataclasses import asdict, fields

import pytest

from npuc.isa.emulator import _Units
from npuc.isa.semantics import Machine, Traffic
from npuc.isa.stats import ACTION_COUNTERS, COUNTERS, UNITS, ZERO, RunStats, counter

NAMES = [f.name for f in fields(RunStats)]


def _distinct(scale: int) -> RunStats:
    """Every counter (and every unit of a per-unit one) a different value: i * scale."""
    values, i = {}, 1
    for name, c in COUNTERS:
        if c.per_unit:
            values[name] = tuple(scale * (i + u) for u in range(len(UNITS)))
            i += len(UNITS)
        else:
            values[name] = scale * i
            i += 1
    return RunStats(**values)


def test_the_declaration_is_the_dataclass():
    assert [name for name, _ in COUNTERS] == NAMES
    assert NAMES[:5] == ["cycles", "busy", "token_stall", "dram_stall", "insns"]  # the C struct's order
    assert ACTION_COUNTERS == ("macs", "dram_rd", "dram_wr", "spad_rd", "spad_wr", "acc_rd", "acc_wr", "gemm_chained",
                               "gemm_fill", "vec_ops", "acc_sat")
    assert [n for n, c in COUNTERS if c.per_unit] == ["busy", "token_stall", "dram_stall", "insns"]


def test_zero_is_zero_in_every_counter():
    assert asdict(ZERO) == {n: (0,) * len(UNITS) if c.per_unit else 0 for n, c in COUNTERS}


def test_sum_adds_each_counter_to_itself():
    total = _distinct(1) + _distinct(100)
    assert total == _distinct(101)
    assert ZERO + _distinct(7) == _distinct(7)


def test_from_counters_reads_every_counter_by_name():
    src = {n: list(v) if isinstance(v, tuple) else v for n, v in asdict(_distinct(3)).items()}
    assert RunStats.from_counters(src.__getitem__) == _distinct(3)
    with pytest.raises(KeyError):
        RunStats.from_counters({k: v for k, v in src.items() if k != "acc_wr"}.__getitem__)


def test_building_run_stats_names_every_counter():
    """No defaults: a copy that forgets a counter fails instead of reporting 0."""
    partial = {k: v for k, v in asdict(ZERO).items() if k != "macs"}
    with pytest.raises(TypeError, match="macs"):
        RunStats(**partial)


def test_traffic_holds_exactly_the_action_counters():
    t = Traffic()
    assert {n: getattr(t, n) for n in ACTION_COUNTERS} == dict.fromkeys(ACTION_COUNTERS, 0)
    t.dram_rd += 5
    assert t.dram_rd == 5
    with pytest.raises(AttributeError):
        t.dram_rdd = 1  # a misspelt counter is an error, not a new attribute
    assert isinstance(Machine.__dataclass_fields__["traffic"].default_factory(), Traffic)


def test_the_scheduler_counts_every_other_counter():
    units = _Units()
    for name, c in COUNTERS:
        if not c.action:
            assert hasattr(units, name), f"isa/emulator.py's _Units does not count {name}"


def test_a_bad_counter_declaration_is_refused():
    with pytest.raises(ValueError, match="comment"):
        counter("a */ b")
    with pytest.raises(ValueError, match="per-unit"):
        counter("x", per_unit=True, action=True)
