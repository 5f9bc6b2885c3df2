"""Hardware configuration: one frozen dataclass drives the compiler and the simulator.

Each field is declared once, below, with `hw_field(section, default, kind,
doc, c=...)` (`npuc/hw/fields.py`): its TOML section, the values it takes,
its doc line and, for the fields the C core needs, its `npu_hw` member.
Validation, TOML loading, `to_toml`, the generated C struct
(`csrc/npu_types.h`, by `python -m npuc.isa.gen_header`) and the values
passed to the C core all come from those declarations; a test checks the
README's table against them.

Presets are TOML files beside this module (`default.toml`, ...). A user file
may set any subset of fields; the rest take their declared defaults. Every
field is checked, and a bad one is reported by its TOML name
(`memory.spad_kib`).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fields import (
    Bool,
    Choice,
    CMember,
    Declared,
    HwConfigError,
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

__all__ = [
    "BY_NAME",
    "C_MEMBERS",
    "DEFAULT_VALUES",
    "FIELDS",
    "Bool",
    "Choice",
    "HwConfig",
    "HwConfigError",
    "Int",
    "Real",
    "ToC",
    "field_choices",
    "load_hw",
    "presets",
]

PRESET_DIR = Path(__file__).parent


# The integer maxima keep every address in int32 (the C core's own checks, ToC, allow the same).
@dataclass(frozen=True)
class HwConfig:
    """One NPU: a rows x cols weight-stationary int8 array, its memories, and the
    quantization rules the compiler works under. The fields' docs are their declarations."""

    rows: int = hw_field("array", 16, Int(1, 1024),
                         "systolic array rows, the reduction depth of one pass", c=ToC())
    cols: int = hw_field("array", 16, Int(1, 1024),
                         "systolic array columns, the output channels of one pass", c=ToC())
    dataflow: str = hw_field("array", "ws", Choice("ws", "os", "is"),
                             "what stays in the PEs during a fold: ws (weights), os (outputs) or is (inputs);"
                             " a gemm's tile limits and cycles follow it (isa/ISA.md, gemm)", c=ToC())
    fold_overlap: bool = hw_field("array", True, Bool(),
                                  "a gemm's weight preload overlaps the previous gemm's streaming (a chain,"
                                  " isa/ISA.md); false: every gemm pays SCALE-Sim's serial fill and drain",
                                  c=ToC())
    int4_pack: int = hw_field("array", 2, Int(1, 2),
                              "int4 weights one PE holds and multiplies per cycle: a gemm with int4 weights"
                              " (w4 = 1) takes n <= int4_pack * cols where the dataflow limits n (ws, os)"
                              " (1: int4 only halves the weight bytes)",
                              c=ToC())
    act16_passes: int = hw_field("array", 2, Int(1, 2),
                                 "passes of a gemm with int16 input rows (a16 = 1): its streamed length (ws M,"
                                 " os k, is n) times this; 2, two passes of int8 PEs (low byte, then high byte"
                                 " x 256); 1, 16 x 8-bit PEs", c=ToC())
    spad_kib: int = hw_field("memory", 256, Int(1, 1 << 20), "int8 scratchpad size in KiB",
                             c=ToC("spad_bytes", 1, 1 << 30, doc="scratchpad bytes (memory.spad_kib * 1024)"))
    acc_kib: int = hw_field("memory", 64, Int(1, 1 << 20), "int32 accumulator SRAM size in KiB (256 words each)",
                            c=ToC("acc_words", 1, 1 << 28, doc="accumulator words (memory.acc_kib * 256)"))
    dram_bw: int = hw_field("memory", 16, Int(1, 1 << 16), "DRAM bytes per cycle", c=ToC())
    dram_latency: int = hw_field("memory", 100, Int(0, 1 << 20), "DRAM latency in cycles", c=ToC())
    vec_lanes: int = hw_field("vector", 16, Int(1, 1 << 12), "vector unit lanes", c=ToC())
    vec_latency: int = hw_field("vector", 4, Int(0, 1 << 12), "vector pipeline depth in cycles", c=ToC())
    lanes: int = hw_field("depthwise", 0, Int(0, 4096),
                          "depthwise engine channels per cycle (0: no engine; dwc, isa/ISA.md)",
                          c=ToC("dw_lanes", 0, 4096, doc="depthwise engine channels per cycle (0: none)"))
    taps: int = hw_field("depthwise", 9, Int(1, 256),
                         "depthwise engine kernel taps multiplied per channel per cycle",
                         c=ToC("dw_taps", 1, 256, doc="depthwise engine taps per channel per cycle"))
    clock_mhz: float = hw_field("clock", 1000.0, Real(), "clock in MHz, for time estimates")
    weight_granularity: str = hw_field("quant", "per_channel", Choice("per_channel", "per_tensor"),
                                       "weight scales: one per output channel or one per tensor")
    act_mode: str = hw_field("quant", "asymmetric", Choice("symmetric", "asymmetric"),
                             "activation zero points: asymmetric (even; a ReLU output uses all 256 codes)"
                             " or symmetric (0)")
    scale_rule: str = hw_field("quant", "pow2", Choice("pow2", "fixed_point", "float"),
                               "scales: pow2 (requantization is a shift), fixed_point (int32 multiplier"
                               " and shift) or float (a reference)")
    rounding: str = hw_field("quant", "half_even", Choice("half_even", "half_up", "truncate", "half_away"),
                             "rounding of the requantization shift (half_up: ties toward +inf;"
                             " truncate: floor; half_away: ties away from 0, as TFLite)")
    zero_point: str = hw_field("quant", "even", Choice("even", "any"),
                               "asymmetric activation zero points: even (npuc's rule) or any integer (TFLite, SNPE)")
    acc_bits: int = hw_field("quant", 32, Int(16, 32),
                             "accumulator adder width in bits: 32 wraps mod 2^32, narrower saturates (isa/ISA.md,"
                             " gemm)", c=ToC())
    # A first-order cost model: the simulator counts the events exactly, the constants are the user's.
    # Defaults: energy from Horowitz, ISSCC 2014 (45 nm, 0.9 V); area from the TPU v1 floor plan,
    # Jouppi et al., ISCA 2017 (28 nm). See the README, "Energy and area".
    mac_pj: float = hw_field("energy", 0.3, Real(0.0, lo_open=False),
                             "pJ per issued int8 MAC (8-bit multiply 0.2 + 32-bit add 0.1)")
    spad_read_pj: float = hw_field("energy", 2.5, Real(0.0, lo_open=False),
                                   "pJ per scratchpad byte read (a 32 KB SRAM bank: 20 pJ per 64 bits)")
    spad_write_pj: float = hw_field("energy", 2.5, Real(0.0, lo_open=False), "pJ per scratchpad byte written")
    acc_read_pj: float = hw_field("energy", 2.5, Real(0.0, lo_open=False), "pJ per accumulator byte read")
    acc_write_pj: float = hw_field("energy", 2.5, Real(0.0, lo_open=False), "pJ per accumulator byte written")
    dram_pj: float = hw_field("energy", 160.0, Real(0.0, lo_open=False),
                              "pJ per DRAM byte read or written (1.3 nJ per 64 bits)")
    vector_pj: float = hw_field("energy", 3.1, Real(0.0, lo_open=False),
                                "pJ per vector-unit element operation (a 32-bit multiply)")
    pe_mm2: float = hw_field("area", 0.0012, Real(0.0, lo_open=False),
                             "mm^2 per processing element (TPU v1: 24% of 331 mm^2 for 65536 MACs)")
    spad_mm2_per_kib: float = hw_field("area", 0.0039, Real(0.0, lo_open=False),
                                       "mm^2 per KiB of scratchpad (TPU v1: 29% of 331 mm^2 for 24 MiB)")
    acc_mm2_per_kib: float = hw_field("area", 0.0049, Real(0.0, lo_open=False),
                                      "mm^2 per KiB of accumulator SRAM (TPU v1: 6% of 331 mm^2 for 4 MiB)")

    def __post_init__(self) -> None:
        validate(FIELDS, self)

    @property
    def dw_lanes(self) -> int:
        return self.lanes

    @property
    def dw_taps(self) -> int:
        return self.taps

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
        unknown = sorted(set(values) - set(BY_NAME))
        if unknown:
            raise HwConfigError(f"{source}: unknown hardware field {unknown[0]!r}")
        try:
            return dataclasses.replace(DEFAULT_VALUES, **values)
        except HwConfigError as e:
            raise HwConfigError(f"{source}: {e}") from None

    def replace(self, **changes: Any) -> HwConfig:
        return dataclasses.replace(self, **changes)

    def to_toml(self) -> str:
        """Every field by section, each with its doc as a trailing comment (loadable by `load_hw`)."""
        return render_toml(FIELDS, self)

    def c_values(self) -> dict[str, int]:
        """The C core's `npu_hw` members (csrc/npu_types.h) for this config."""
        return {m.member: m.value(self) for m in C_MEMBERS}


FIELDS: tuple[Declared, ...] = declared(HwConfig)
BY_NAME: dict[str, Declared] = {d.name: d for d in FIELDS}
C_MEMBERS: tuple[CMember, ...] = c_members(FIELDS)

DEFAULT_VALUES = HwConfig()


def field_choices(name: str) -> tuple[str, ...]:
    """The allowed values of a string-valued hardware field (`act_mode`, `rounding`, ...)."""
    kind = BY_NAME[name].kind
    if not isinstance(kind, Choice):
        raise TypeError(f"hardware field {name!r} is not a choice")
    return kind.values


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
    return HwConfig.from_flat(flat_from_toml(FIELDS, doc, str(path)), source=str(path))
