"""The hardware fields are declared once: validation, TOML, `npuc hw`, the README table and the C
struct all follow the declarations in npuc/hw/__init__.py. No C build needed."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from npuc.hw import BY_NAME, C_MEMBERS, DEFAULT_VALUES, FIELDS, HwConfig, HwConfigError, load_hw, presets
from npuc.hw.cgen import hw_lines
from npuc.hw.fields import (
    Bool,
    Choice,
    Int,
    Real,
    ToC,
    c_members,
    declared,
    flat_from_toml,
    hw_field,
    render_toml,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]


# ---- validation -------------------------------------------------------------------------------

# the messages users see, written out by hand: a declaration change that alters them must be deliberate
@pytest.mark.parametrize("changes, message", [
    ({"rows": 0}, "array.rows = 0: must be an integer in [1, 1024]"),
    ({"cols": 1025}, "array.cols = 1025: must be an integer in [1, 1024]"),
    ({"rows": True}, "array.rows = True: must be an integer in [1, 1024]"),
    ({"rows": 4.0}, "array.rows = 4.0: must be an integer in [1, 1024]"),
    ({"spad_kib": 0}, "memory.spad_kib = 0: must be an integer in [1, 1048576]"),
    ({"dram_latency": -1}, "memory.dram_latency = -1: must be an integer in [0, 1048576]"),
    ({"vec_latency": 4097}, "vector.vec_latency = 4097: must be an integer in [0, 4096]"),
    ({"acc_bits": 15}, "quant.acc_bits = 15: must be an integer in [16, 32]"),
    ({"clock_mhz": 0}, "clock.clock_mhz = 0: must be a positive number"),
    ({"clock_mhz": math.nan}, "clock.clock_mhz = nan: must be a positive number"),
    ({"clock_mhz": "fast"}, "clock.clock_mhz = 'fast': must be a positive number"),
    ({"dataflow": "rs"}, "array.dataflow = 'rs': must be one of ws, os, is"),
    ({"act_mode": "x"}, "quant.act_mode = 'x': must be one of symmetric, asymmetric"),
    ({"rounding": "up"}, "quant.rounding = 'up': must be one of half_even, half_up, truncate, half_away"),
])
def test_a_bad_value_is_named_by_its_toml_key(changes, message):
    with pytest.raises(HwConfigError) as e:
        HwConfig(**changes)
    assert str(e.value) == message


def _bad_value(kind: Any) -> Any:
    if isinstance(kind, Int):
        return kind.hi + 1
    if isinstance(kind, Choice):
        return "not-a-choice"
    if isinstance(kind, Bool):
        return 1
    return -1.0  # Real: every declared Real so far is positive


@pytest.mark.parametrize("d", FIELDS, ids=lambda d: d.key)
def test_every_declared_field_is_checked(d):
    with pytest.raises(HwConfigError, match=rf"^{re.escape(d.key)} = "):
        HwConfig(**{d.name: _bad_value(d.kind)})
    if isinstance(d.kind, Int):  # both ends of the range are allowed
        assert getattr(HwConfig(**{d.name: d.kind.lo}), d.name) == d.kind.lo
        assert getattr(HwConfig(**{d.name: d.kind.hi}), d.name) == d.kind.hi


def test_declarations_cover_the_dataclass_and_its_defaults():
    assert [d.name for d in FIELDS] == list(HwConfig().to_flat())
    assert all(getattr(DEFAULT_VALUES, d.name) == d.default for d in FIELDS)
    assert set(BY_NAME) == {d.name for d in FIELDS}


def test_from_flat_rejects_an_unknown_field_by_name():
    with pytest.raises(HwConfigError, match=r"^prog\.s: unknown hardware field 'lanez'$"):
        HwConfig.from_flat({"rows": 4, "lanez": 2}, source="prog.s")
    with pytest.raises(HwConfigError, match=r"^prog\.s: array\.rows = 0: "):
        HwConfig.from_flat({"rows": 0}, source="prog.s")


# ---- TOML -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("[array]\nfoo = 1\n", "unknown hardware field array.foo"),
    ("[memory]\nrows = 4\n", "unknown hardware field memory.rows"),  # a known field in another section
    ("[energy]\nmac_joules = 0.2\n", "unknown hardware field energy.mac_joules"),
    ("rows = 4\n", "top-level key 'rows' must be a [section]"),
    ("[array]\nrows = 0\n", "array.rows = 0: must be an integer in [1, 1024]"),
    ("[quant]\nact_mode = symmetric\n", "not valid TOML"),
])
def test_a_bad_toml_file_is_named_with_the_key(tmp_path, text, message):
    path = tmp_path / "hw.toml"
    path.write_text(text)
    with pytest.raises(HwConfigError) as e:
        load_hw(path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value)


def test_a_partial_file_takes_the_declared_defaults(tmp_path):
    path = tmp_path / "hw.toml"
    path.write_text("[array]\nrows = 8\n[quant]\nact_mode = \"symmetric\"\n")
    assert load_hw(path) == HwConfig(rows=8, act_mode="symmetric")
    assert load_hw("default") == HwConfig() == DEFAULT_VALUES


def _parse_commented_toml(text: str) -> dict[str, tuple[Any, str]]:
    """{section.field: (value, trailing comment)} of `to_toml` text, read line by line."""
    out: dict[str, tuple[Any, str]] = {}
    section = None
    for line in text.splitlines():
        if m := re.fullmatch(r"\[(\w+)\]", line):
            section = m.group(1)
        elif line.strip():
            m = re.fullmatch(r"(\w+) = (.*?) +# (.*)", line)
            assert m, f"a field line without a doc comment: {line!r}"
            out[f"{section}.{m.group(1)}"] = (tomllib.loads(f"v = {m.group(2)}")["v"], m.group(3))
    return out


@pytest.mark.parametrize("preset", presets())
def test_to_toml_lists_every_field_with_its_doc_and_loads_back(preset, tmp_path):
    hw = load_hw(preset)
    text = hw.to_toml()
    parsed = _parse_commented_toml(text)
    assert list(parsed) == [d.key for d in FIELDS]
    for d in FIELDS:
        assert parsed[d.key] == (getattr(hw, d.name), d.doc)
    (tmp_path / "hw.toml").write_text(text)
    assert load_hw(tmp_path / "hw.toml") == hw


def _npuc_hw_output() -> str:
    """What `npuc hw` prints, run as a user runs it (the console script when installed)."""
    script = shutil.which("npuc", path=str(Path(sys.executable).parent))
    cmd = [script] if script else [sys.executable, "-m", "npuc.cli"]
    r = subprocess.run([*cmd, "hw"], check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


# ---- the README table ------------------------------------------------------------------------


def _readme_table() -> list[list[str]]:
    """The cells of the table in the README's "Hardware config" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Hardware config\n", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("|")]
    assert rows[0] == "| field | default | allowed | meaning |" and set(rows[1]) <= set("|-")
    return [[c.strip() for c in ln.strip("|").split(" | ")] for ln in rows[2:]]


def _expected_table() -> str:
    return "\n".join(f"| `{d.key}` | `{d.kind.toml(d.default)}` | {d.kind.allowed()} | {d.doc} |"
                     for d in FIELDS)


def test_readme_table_lists_exactly_the_declared_fields():
    cells = _readme_table()
    hint = f"update README.md's hardware table to:\n{_expected_table()}"
    assert [row[0] for row in cells] == [f"`{d.key}`" for d in FIELDS], hint
    shown = _parse_commented_toml(_npuc_hw_output())
    for (key, default, allowed, meaning), d in zip(cells, FIELDS):
        value = tomllib.loads(f"v = {default.strip('`')}")["v"]
        assert value == d.default and type(value) is type(d.default), (key, hint)
        assert value == shown[d.key][0], f"{key}: the README's default is not what `npuc hw` prints"
        assert allowed == d.kind.allowed(), (key, hint)
        assert meaning == d.doc == shown[d.key][1], (key, hint)


def test_readme_states_the_actual_default_act_mode():
    """The table once said "symmetric" while the code said "asymmetric"."""
    row = next(r for r in _readme_table() if r[0] == "`quant.act_mode`")
    assert row[1] == '`"asymmetric"`' and HwConfig().act_mode == "asymmetric"


# ---- the C view -------------------------------------------------------------------------------


def test_c_members_carry_the_c_core_ranges():
    """The npu_hw members and ranges, written out: sim.c accepted exactly these before they were
    generated, and every value the Python ranges allow must fit them."""
    assert [(m.member, m.lo, m.hi) for m in C_MEMBERS] == [
        ("rows", 1, 1024), ("cols", 1, 1024), ("dataflow", 0, 2), ("fold_overlap", 0, 1), ("int4_pack", 1, 2),
        ("act16_passes", 1, 2), ("spad_bytes", 1, 1 << 30),
        ("acc_words", 1, 1 << 28), ("dram_bw", 1, 1 << 16), ("dram_latency", 0, 1 << 20), ("vec_lanes", 1, 1 << 12),
        ("vec_latency", 0, 1 << 12), ("dw_lanes", 0, 4096), ("dw_taps", 1, 256), ("acc_bits", 16, 32)]
    for m in C_MEMBERS:
        kind = m.field.kind
        assert isinstance(kind, (Int, Bool, Choice))
        values = (kind.lo, kind.hi) if isinstance(kind, Int) else kind.values if isinstance(kind, Choice) else (
            False, True)
        for v in values:
            assert m.lo <= HwConfig(**{m.field.name: v}).c_values()[m.member] <= m.hi, (m.member, v)


def test_c_values_follow_the_config():
    hw = HwConfig(rows=4, cols=8, spad_kib=2, acc_kib=3, dram_bw=5, dram_latency=6, vec_lanes=7,
                  vec_latency=9, acc_bits=24)
    assert hw.c_values() == {"rows": 4, "cols": 8, "dataflow": 0, "fold_overlap": 1, "int4_pack": 2,
                             "act16_passes": 2, "spad_bytes": 2048,
                             "acc_words": 768, "dram_bw": 5, "dram_latency": 6, "vec_lanes": 7, "vec_latency": 9,
                             "dw_lanes": 0, "dw_taps": 9, "acc_bits": 24}
    assert hw.replace(fold_overlap=False).c_values()["fold_overlap"] == 0
    assert [hw.replace(dataflow=d).c_values()["dataflow"] for d in ("ws", "os", "is")] == [0, 1, 2]


# ---- a new field is one declaration: the kinds the next wave needs ----------------------------


@dataclass(frozen=True)
class Future:
    """A config as the next wave will write it: a bool, a dataflow choice the C core gets as an
    index, a new section with floats, a new int section. Nothing else is registered anywhere."""

    rows: int = hw_field("array", 16, Int(1, 1024), "array rows", c=ToC())
    fold_overlap: bool = hw_field("array", True, Bool(), "next fold's preload overlaps streaming", c=ToC())
    dataflow: str = hw_field("array", "ws", Choice("ws", "os", "is"), "dataflow", c=ToC())
    lanes: int = hw_field("depthwise", 0, Int(0, 64), "depthwise lanes (0: no engine)", c=ToC())
    mac_pj: float = hw_field("energy", 0.2, Real(0.0, lo_open=False), "pJ per issued int8 MAC")
    pe_mm2: float = hw_field("area", 0.001, Real(), "mm2 per PE")

    def __post_init__(self) -> None:
        validate(FUTURE, self)


FUTURE = declared(Future)


@pytest.mark.parametrize("changes, message", [
    ({"fold_overlap": 1}, "array.fold_overlap = 1: must be true or false"),
    ({"dataflow": "rs"}, "array.dataflow = 'rs': must be one of ws, os, is"),
    ({"mac_pj": -0.5}, "energy.mac_pj = -0.5: must be a number >= 0"),
    ({"pe_mm2": 0.0}, "area.pe_mm2 = 0.0: must be a positive number"),
    ({"lanes": 65}, "depthwise.lanes = 65: must be an integer in [0, 64]"),
])
def test_new_kinds_validate_with_named_messages(changes, message):
    with pytest.raises(HwConfigError) as e:
        Future(**changes)
    assert str(e.value) == message
    assert Future(mac_pj=0, fold_overlap=False).mac_pj == 0  # 0 pJ is allowed: the bound is closed


def test_new_kinds_round_trip_through_toml():
    cfg = Future(fold_overlap=False, dataflow="os", lanes=8, mac_pj=0.25)
    text = render_toml(FUTURE, cfg)
    assert "fold_overlap = false" in text and "[energy]" in text and "[depthwise]" in text
    flat = flat_from_toml(FUTURE, tomllib.loads(text), "f.toml")
    assert Future(**flat) == cfg
    with pytest.raises(HwConfigError, match=r"unknown hardware field energy\.lanes"):
        flat_from_toml(FUTURE, {"energy": {"lanes": 1}}, "f.toml")


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_new_kinds_render_to_c_that_compiles(tmp_path):
    members = c_members(FUTURE)
    assert [(m.member, m.lo, m.hi) for m in members] == [
        ("rows", 1, 1024), ("fold_overlap", 0, 1), ("dataflow", 0, 2), ("lanes", 0, 64)]
    assert {m.member: m.value(Future(dataflow="is", fold_overlap=True)) for m in members} == {
        "rows": 16, "fold_overlap": 1, "dataflow": 2, "lanes": 0}
    text = "\n".join(hw_lines(members))
    assert "#define NPU_HW_DATAFLOW_IS 2" in text
    src = tmp_path / "t.c"
    src.write_text("#include <stdint.h>\n" + text + "\n"
                   "#define LIM(m, lo, hi) {#m, lo, hi},\n"
                   "static const struct { const char *n; int32_t lo, hi; } lim[] = {NPU_HW_FIELDS(LIM)};\n"
                   "int f(const npu_hw *h) { return h->fold_overlap + h->dataflow + (int)lim[0].hi; }\n")
    r = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-c", str(src),
                        "-o", str(tmp_path / "t.o")], check=False, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_a_bad_declaration_fails_at_import():
    with pytest.raises(ValueError, match="default 0"):
        hw_field("array", 0, Int(1, 4), "rows")
    with pytest.raises(ValueError, match="cannot go to the C core"):
        hw_field("energy", 1.0, Real(), "pJ", c=ToC())
    with pytest.raises(ValueError, match="one non-empty line"):
        hw_field("array", 1, Int(1, 4), "a | b")

    @dataclass(frozen=True)
    class Mismatch:
        rows: str = hw_field("array", 1, Int(1, 4), "rows")

    with pytest.raises(TypeError, match="annotated"):
        declared(Mismatch)

    @dataclass(frozen=True)
    class Derived:
        spad_kib: int = hw_field("memory", 1, Int(1, 4), "KiB", c=ToC("spad_bytes"))

    with pytest.raises(ValueError, match="its range must be given"):
        c_members(declared(Derived))
