"""Quantization rule presets of deployed toolchains: named sets of the hardware config's `[quant]`
fields (`npuc compile --rules NAME`, the sweep key `compile.rules`).

Each preset follows its toolchain's published quantization scheme; what the NPU's ISA cannot
express is approximated, and the approximation is stated with the preset (README, "Rule presets").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..hw import HwConfig


@dataclass(frozen=True)
class RulePreset:
    name: str
    quant: dict[str, Any]  # [quant] field -> value
    follows: str  # the documentation the preset follows
    approximation: str = ""  # what differs from the toolchain, and why


RULE_PRESETS: dict[str, RulePreset] = {p.name: p for p in (
    RulePreset("npuc", {"weight_granularity": "per_channel", "act_mode": "asymmetric", "scale_rule": "pow2",
                        "rounding": "half_even", "zero_point": "even"},
               "npuc's defaults: power-of-two scales, requantization is a shift (ARCHITECTURE.md)"),
    RulePreset("tensorrt", {"weight_granularity": "per_channel", "act_mode": "symmetric", "scale_rule": "float",
                            "rounding": "half_even", "zero_point": "even"},
               "NVIDIA TensorRT, 'Working with Quantized Types': symmetric int8, per-channel weights, "
               "per-tensor activations, round half to even",
               "float scales run as 31-bit fixed-point multipliers (the NPU requantizes in integers)"),
    RulePreset("tflite", {"weight_granularity": "per_channel", "act_mode": "asymmetric",
                          "scale_rule": "fixed_point", "rounding": "half_away", "zero_point": "any"},
               "TensorFlow Lite 8-bit quantization specification: per-channel symmetric int8 weights, "
               "asymmetric int8 activations (any zero point), int32 fixed-point multiplier and shift",
               "TFLite rounds twice (SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT, both half "
               "away from zero); the NPU's vrq rounds the exact product once, half away from zero: results "
               "differ by at most 1 LSB, only at the rare double-rounding ties"),
    RulePreset("vitis", {"weight_granularity": "per_tensor", "act_mode": "symmetric", "scale_rule": "pow2",
                         "rounding": "half_up", "zero_point": "even"},
               "AMD/Xilinx Vitis AI DPU (as documented by MQBench's Vitis backend): per-tensor symmetric "
               "int8 with power-of-two scales; activations round half up (toward +inf at ties)"),
    RulePreset("dsp", {"weight_granularity": "per_tensor", "act_mode": "asymmetric", "scale_rule": "fixed_point",
                       "rounding": "half_even", "zero_point": "any"},
               "Qualcomm SNPE / QNN DSP (as documented by MQBench's SNPE backend): per-tensor asymmetric 8-bit "
               "activations with any zero point",
               "the DSP quantizes weights asymmetrically (uint8 with a zero point); the NPU's array takes "
               "symmetric int8 weights, so weights are symmetric per tensor here"),
)}


def apply_rules(hw: HwConfig, name: str) -> HwConfig:
    """`hw` with the `[quant]` fields of preset `name`."""
    from ..hw import HwConfigError

    if name not in RULE_PRESETS:
        raise HwConfigError(f"rules {name!r}: no such preset (presets: {', '.join(RULE_PRESETS)})")
    return hw.replace(**RULE_PRESETS[name].quant)
