"""The grid file of `npuc sweep`: which hardware and compile settings to try.

The same sections and field names as the hardware presets (`[array] rows = [8, 16, 32]`,
`[quant] rounding = ["half_even", "truncate"]`, ...) plus `[compile]` for compile options
(`calib_method`, `calib_samples`, `bias_correction`, `equalize`, `learn_rounding`, `fold_act_scales`,
`rules`, and the mixed-precision budget `sqnr_target` / `keep_accuracy`):

* a list is an axis, the grid is the cross product of the axes;
* a scalar fixes a value for every point;
* optional `[[point]]` tables list explicit points (each a set of `section.field` values, written
  as nested tables or dotted keys); with axes as well, every point is crossed with the axes.

Every point is checked before anything runs (a bad key or value is one line naming it), by
building its `HwConfig` and compile settings exactly as a run will.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...hw import BY_NAME, HwConfig, HwConfigError, load_hw
from ...passes.fold_act_scales import FOLD_MODES
from ...quant import CALIBRATORS
from ...quant.rules import RULE_PRESETS, apply_rules


class GridError(ValueError):
    """The grid file is malformed; the message names the file and the key."""


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _flag(v: Any) -> bool:
    return isinstance(v, bool)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# compile.<key>: (check, what it must be)
COMPILE_KEYS: dict[str, tuple[Any, str]] = {
    "calib_method": (lambda v: v in CALIBRATORS, f"one of {', '.join(CALIBRATORS)}"),
    "calib_samples": (_positive_int, "a positive integer"),
    "calib_batch": (_positive_int, "a positive integer"),
    "bias_correction": (_flag, "true or false"),
    "equalize": (_flag, "true or false"),
    "learn_rounding": (_flag, "true or false"),
    "fold_act_scales": (lambda v: v in FOLD_MODES, f"one of {', '.join(FOLD_MODES)}"),
    "rules": (lambda v: v in RULE_PRESETS, f"one of {', '.join(RULE_PRESETS)}"),
    "sqnr_target": (_number, "a number (dB)"),
    "keep_accuracy": (_number, "a number (percentage points)"),
}


@dataclass(frozen=True)
class Point:
    """One setting of the grid: `section.field` -> value, hardware and compile keys together."""

    values: dict[str, Any]

    @property
    def key(self) -> str:
        """A stable name for the point: the hash of its values (file names, caches)."""
        text = json.dumps(self.values, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def compile_settings(self) -> dict[str, Any]:
        return {k.split(".", 1)[1]: v for k, v in self.values.items() if k.startswith("compile.")}

    def hw(self, base: HwConfig) -> HwConfig:
        """`base`, then the point's rule preset (`compile.rules`), then its hardware fields."""
        rules = self.compile_settings().get("rules")
        hw = apply_rules(base, rules) if rules is not None else base
        changes = {k.split(".", 1)[1]: v for k, v in self.values.items() if not k.startswith("compile.")}
        return hw.replace(**changes) if changes else hw


@dataclass(frozen=True)
class Grid:
    source: str
    base: HwConfig  # the hardware every point starts from (`--hw`)
    axes: dict[str, list[Any]]  # swept key -> its values, in file order
    fixed: dict[str, Any]  # key -> the one value every point has
    explicit: list[dict[str, Any]] = field(default_factory=list)  # the [[point]] tables, flattened

    @property
    def swept_keys(self) -> list[str]:
        """The keys that vary between points: the result table's first columns."""
        keys: list[str] = []
        for p in self.explicit:
            keys += [k for k in p if k not in keys]
        return keys + [k for k in self.axes if k not in keys]

    def points(self) -> list[Point]:
        bases = self.explicit or [{}]
        names = list(self.axes)
        out = []
        for base in bases:
            for combo in itertools.product(*(self.axes[n] for n in names)):
                out.append(Point({**self.fixed, **base, **dict(zip(names, combo))}))
        return out


def _flatten(table: dict[str, Any], where: str) -> dict[str, Any]:
    """{"array": {"rows": 8}} or {"array.rows": 8} -> {"array.rows": 8}."""
    out: dict[str, Any] = {}
    for section, body in table.items():
        if "." in section:
            out[section] = body
            continue
        if not isinstance(body, dict):
            raise GridError(f"{where}: {section!r} must be a [section] of fields")
        for name, value in body.items():
            out[f"{section}.{name}"] = value
    return out


def _check_key(key: str, where: str) -> None:
    section, _, name = key.partition(".")
    if section == "compile":
        if name not in COMPILE_KEYS:
            raise GridError(f"{where}: unknown compile option {key!r} (options: {', '.join(COMPILE_KEYS)})")
        return
    d = BY_NAME.get(name)
    if d is None or d.section != section:
        raise GridError(f"{where}: unknown hardware field {key!r}")


def _check_value(key: str, value: Any, where: str) -> None:
    section, _, name = key.partition(".")
    if section == "compile":
        ok, what = COMPILE_KEYS[name]
        if not ok(value):
            raise GridError(f"{where}: {key} = {value!r}: must be {what}")
        return
    problem = BY_NAME[name].kind.problem(value)
    if problem is not None:
        raise GridError(f"{where}: {key} = {value!r}: {problem}")


def load_grid(path: str | Path, base: HwConfig | None = None) -> Grid:
    """Read and check a grid file; every point's hardware config is built once here."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise GridError(f"{path}: cannot read the grid file: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise GridError(f"{path}: not valid TOML: {e}") from None
    explicit_tables = doc.pop("point", [])
    if not isinstance(explicit_tables, list) or not all(isinstance(p, dict) for p in explicit_tables):
        raise GridError(f"{path}: 'point' must be an array of tables ([[point]])")
    explicit = [_flatten(p, f"{path}: [[point]] {i + 1}") for i, p in enumerate(explicit_tables)]
    axes, fixed = {}, {}
    for key, value in _flatten(doc, str(path)).items():
        _check_key(key, str(path))
        if isinstance(value, list):
            if not value:
                raise GridError(f"{path}: {key} is an empty list: an axis needs at least one value")
            for v in value:
                _check_value(key, v, str(path))
            axes[key] = value
        else:
            _check_value(key, value, str(path))
            fixed[key] = value
    for i, p in enumerate(explicit):
        for key, value in p.items():
            where = f"{path}: [[point]] {i + 1}"
            _check_key(key, where)
            if key in axes:
                raise GridError(f"{where}: {key} is also an axis of the grid")
            _check_value(key, value, where)
    grid = Grid(str(path), base or load_hw(None), axes, fixed, explicit)
    points = grid.points()
    if not points:
        raise GridError(f"{path}: the grid has no point")
    for p in points:  # the combination must make a valid config too (e.g. ranges that depend on others)
        try:
            p.hw(grid.base)
        except HwConfigError as e:
            raise GridError(f"{path}: point {p.values}: {e}") from None
    return grid
