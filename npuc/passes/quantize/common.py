"""What every quantizer shares: the registry, the input/output quantization of a node, the
clamp bounds of a fused activation and the requantization record builder.

Handler modules (`core`, `conv`, `layout`, `vector`) import this module and register into
`QUANTIZERS`; the package imports them. Nothing here imports a handler.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ...hw import HwConfig
from ...ir import IR, ActQ
from ...quant.scales import QMAX, QMIN, SCALE_RULES, ScaleRule

BIAS_LIMIT = float(1 << 30)  # |bias| stays below 2^30: headroom for the zp fold and the sum
INT32_MAX = (1 << 31) - 1
SHIFT_MAX = 62  # the hardware's largest right shift (vrq, vadd)

Quantizer = Callable[[IR, str, HwConfig, ScaleRule], None]
QUANTIZERS: dict[str, Quantizer] = {}


def quantizer(*ops: str) -> Callable[[Quantizer], Quantizer]:
    def register(fn: Quantizer) -> Quantizer:
        for op in ops:
            QUANTIZERS[op] = fn
        return fn

    return register


def in_q(ir: IR, name: str) -> ActQ:
    return ir.node(ir.preds(name)[0])["act_q"]


def out_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> ActQ:
    lo, hi = ir.node(name)["range"]
    if ir.node(name).get("free_scale"):  # an interface tensor whose scale the Conv/Gemm weights absorb
        rule = SCALE_RULES["float"]  # (`npuc.passes.fold_act_scales`): any real scale, the requant stays a shift
    return rule.act(lo, hi, hw.act_mode, hw.zero_point)


def clamp_bounds(act: tuple[str, float, float] | None, q: ActQ) -> tuple[int, int]:
    """int8 range ∩ the fused activation's float bounds, quantized as QuantizeLinear (relu: lo = zp)."""
    if act is None:
        return QMIN, QMAX
    _, a, b = act

    def level(x: float) -> int:
        if math.isinf(x):
            return QMIN if x < 0 else QMAX
        return q.code(x)

    lo, hi = level(a), level(b)
    return lo, max(lo, hi)


def multipliers(rule: ScaleRule, ratios: np.ndarray | list[float]) -> tuple[np.ndarray, np.ndarray]:
    """(mul, shift) int64 arrays approximating each real ratio under the scale rule (shifts may still lie
    outside the hardware's range: `legalize` brings them in)."""
    pairs = [rule.multiplier(float(m)) for m in ratios]
    return (np.array([p[0] for p in pairs], dtype=np.int64).reshape(-1),
            np.array([p[1] for p in pairs], dtype=np.int64).reshape(-1))


def output_stage(qo: ActQ, lo: int, hi: int, hw: HwConfig) -> dict[str, object]:
    """The `QParams` fields every kind shares: zero point, clamp bounds, rounding."""
    return {"zp_out": qo.zp, "lo": lo, "hi": hi, "rounding": hw.rounding}
