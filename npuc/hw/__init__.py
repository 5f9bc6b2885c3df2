"""Hardware configuration: one frozen dataclass drives the compiler and the simulator.

Presets are TOML files beside this module (`default.toml`, ...). A user file
may set any subset of fields; the rest come from the default preset. Every
field is checked, and a bad one is reported by its TOML name
(`memory.spad_kib`).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

PRESET_DIR = Path(__file__).parent


class HwConfigError(ValueError):
    """A hardware config file or field is invalid; the message names it."""


# field name -> (TOML section, allowed values or None for a positive int)
_SECTIONS: dict[str, str] = {
    "rows": "array",
    "cols": "array",
    "dataflow": "array",
    "spad_kib": "memory",
    "acc_kib": "memory",
    "dram_bw": "memory",
    "dram_latency": "memory",
    "vec_lanes": "vector",
    "vec_latency": "vector",
    "clock_mhz": "clock",
    "weight_granularity": "quant",
    "act_mode": "quant",
    "scale_rule": "quant",
    "rounding": "quant",
    "acc_bits": "quant",
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "dataflow": ("ws",),
    "weight_granularity": ("per_channel", "per_tensor"),
    "act_mode": ("symmetric", "asymmetric"),
    "scale_rule": ("pow2", "fixed_point", "float"),
    "rounding": ("half_even", "half_up", "truncate"),
}

# (min, max) for integer fields; the maxima keep every address in int32
_INT_RANGES: dict[str, tuple[int, int]] = {
    "rows": (1, 1024),
    "cols": (1, 1024),
    "spad_kib": (1, 1 << 20),
    "acc_kib": (1, 1 << 20),
    "dram_bw": (1, 1 << 16),
    "dram_latency": (0, 1 << 20),
    "vec_lanes": (1, 1 << 12),
    "vec_latency": (0, 1 << 12),
    "acc_bits": (32, 32),
}


@dataclass(frozen=True)
class HwConfig:
    """One NPU: a rows x cols weight-stationary int8 array and its memories.

    Sizes: `spad_kib` int8 scratchpad, `acc_kib` int32 accumulator SRAM
    (acc_kib * 256 words). DRAM moves `dram_bw` bytes per cycle after
    `dram_latency` cycles. The vector unit has `vec_lanes` lanes and a
    pipeline of `vec_latency` cycles. The quant fields are the rules the
    compiler quantizes under.
    """

    rows: int = 16
    cols: int = 16
    dataflow: str = "ws"
    spad_kib: int = 256
    acc_kib: int = 64
    dram_bw: int = 16
    dram_latency: int = 100
    vec_lanes: int = 16
    vec_latency: int = 4
    clock_mhz: float = 1000.0
    weight_granularity: str = "per_channel"
    act_mode: str = "asymmetric"
    scale_rule: str = "pow2"
    rounding: str = "half_even"
    acc_bits: int = 32

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_field(f.name, getattr(self, f.name))

    @property
    def spad_bytes(self) -> int:
        return self.spad_kib * 1024

    @property
    def acc_words(self) -> int:
        return self.acc_kib * 1024 // 4

    def to_flat(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_flat(cls, values: dict[str, Any], source: str = "<config>") -> HwConfig:
        unknown = sorted(set(values) - set(_SECTIONS))
        if unknown:
            raise HwConfigError(f"{source}: unknown hardware field {unknown[0]!r}")
        try:
            return dataclasses.replace(DEFAULT_VALUES, **values)
        except HwConfigError as e:
            raise HwConfigError(f"{source}: {e}") from None

    def replace(self, **changes: Any) -> HwConfig:
        return dataclasses.replace(self, **changes)

    def to_toml(self) -> str:
        out: list[str] = []
        for section in dict.fromkeys(_SECTIONS.values()):
            out.append(f"[{section}]")
            for name, sec in _SECTIONS.items():
                if sec == section:
                    out.append(f"{name} = {_toml_value(getattr(self, name))}")
            out.append("")
        return "\n".join(out)


def _toml_value(v: Any) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    return repr(v)


def _check_field(name: str, value: Any) -> None:
    where = f"{_SECTIONS[name]}.{name}"
    if name in _CHOICES:
        if value not in _CHOICES[name]:
            raise HwConfigError(f"{where} = {value!r}: must be one of {', '.join(_CHOICES[name])}")
    elif name == "clock_mhz":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise HwConfigError(f"{where} = {value!r}: must be a positive number")
    else:
        lo, hi = _INT_RANGES[name]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise HwConfigError(f"{where} = {value!r}: must be an integer in [{lo}, {hi}]")


DEFAULT_VALUES = HwConfig()


def field_choices(name: str) -> tuple[str, ...]:
    """The allowed values of a string-valued hardware field (`act_mode`, `rounding`, ...)."""
    return _CHOICES[name]


def presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_hw(spec: str | Path | None = None) -> HwConfig:
    """Load a preset name (`default`, `npu32`) or a TOML file path; None is the default."""
    if spec is None:
        spec = "default"
    path = Path(spec)
    if not path.suffix and (PRESET_DIR / f"{spec}.toml").exists():
        path = PRESET_DIR / f"{spec}.toml"
    if not path.exists():
        raise HwConfigError(f"{spec}: no such hardware preset or file (presets: {', '.join(presets())})")
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise HwConfigError(f"{path}: not valid TOML: {e}") from None
    flat: dict[str, Any] = {}
    for section, table in doc.items():
        if not isinstance(table, dict):
            raise HwConfigError(f"{path}: top-level key {section!r} must be a [section]")
        for name, value in table.items():
            if _SECTIONS.get(name) != section:
                raise HwConfigError(f"{path}: unknown hardware field {section}.{name}")
            flat[name] = value
    return HwConfig.from_flat(flat, source=str(path))
