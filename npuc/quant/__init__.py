"""Quantization building blocks: range calibrators and scale rules (the passes use them)."""

from .calibrators import CALIBRATORS, Calibrator, make_calibrator
from .scales import SCALE_RULES, ScaleRule, fixed_point_multiplier, pow2_exponent, quantize_weights

__all__ = [
    "CALIBRATORS",
    "SCALE_RULES",
    "Calibrator",
    "ScaleRule",
    "fixed_point_multiplier",
    "make_calibrator",
    "pow2_exponent",
    "quantize_weights",
]
