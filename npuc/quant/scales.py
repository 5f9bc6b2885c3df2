"""Scale rules: how a real range becomes a scale, and a real ratio an integer multiplier.

A rule answers three questions, each a method of `ScaleRule`:

* `act(lo, hi, mode)` — the `ActQ` of an activation with calibrated range
  [lo, hi], symmetric (zp = 0) or asymmetric (zp even, in [-128, 126]);
* `to_scale(required)` — the scale actually used for a tensor or weight
  channel whose scale must be at least `required` (max|x|/127; for weights
  more when the bias would not fit int32);
* `multiplier(m)` — `(mul, shift)` with `m ≈ mul · 2^-shift` for the
  requantizer. Shifts may come out of the hardware range here; the
  `legalize` pass folds them into it.

Rules: ``pow2`` (every scale 2^-e, chosen so the range fits; multipliers
exact shifts), ``fixed_point`` (TFLite: float scales, mul in [2^30, 2^31)),
``float`` (unconstrained scales; on the integer path the same as fixed_point).

Exponent choice under pow2, for a range [lo, hi] widened to contain 0:

* symmetric: e = floor(log2(127 / max(|lo|, |hi|))), the finest scale with
  no clipping;
* asymmetric: e = floor(log2(255 / (hi - lo))) and zp = the smallest even
  value >= -128 - rint(lo·2^e), so lo lands at -128 or -127 (a ReLU output
  gets zp = -128); if rint(hi·2^e) + zp then exceeds 127, e drops by one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..ir import ActQ

QMIN, QMAX = -128, 127
WMAX = 127  # weights use [-127, 127]: symmetric, so -W is representable too


def pow2_exponent(required_scale: float) -> int:
    """The largest e with 2^-e >= required_scale (0 for a zero scale: any e is exact then)."""
    if required_scale <= 0.0:
        return 0
    e = math.floor(-math.log2(required_scale))
    # guard against log2 rounding at exact powers of two
    while 2.0 ** -e < required_scale:
        e -= 1
    while 2.0 ** -(e + 1) >= required_scale:
        e += 1
    return e


def fixed_point_multiplier(m: float) -> tuple[int, int]:
    """(mul, shift) with mul in [2^30, 2^31) and m = mul · 2^-shift, rounded half even (m > 0)."""
    if m <= 0.0:
        return 0, 0
    frac, exp = math.frexp(m)  # m = frac · 2^exp, frac in [0.5, 1)
    mul = round(frac * (1 << 31))
    if mul == 1 << 31:
        mul, exp = mul // 2, exp + 1
    return mul, 31 - exp


def exact_pow2_shift(m: float) -> int | None:
    """s with m == 2^-s exactly, or None."""
    if m <= 0.0:
        return None
    frac, exp = math.frexp(m)
    return 1 - exp if frac == 0.5 else None


@dataclass(frozen=True)
class ScaleRule:
    name: str

    def to_scale(self, required: float) -> tuple[float, int | None]:
        """A usable scale >= `required`, and its exponent when a power of two."""
        raise NotImplementedError

    def multiplier(self, m: float) -> tuple[int, int]:
        raise NotImplementedError

    def act(self, lo: float, hi: float, mode: str, zero_point: str = "even") -> ActQ:
        """Quantization of an activation with real range [lo, hi] (zero is always representable);
        an asymmetric zero point is even (`zero_point = "even"`, npuc's rule) or any integer."""
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        if mode == "symmetric":
            scale, exp = self.to_scale(max(-lo, hi) / QMAX)
            return ActQ(scale=scale, zp=0, exp=exp)
        return self._asymmetric(lo, hi, zero_point == "even")

    def _asymmetric(self, lo: float, hi: float, even: bool = True) -> ActQ:
        """Finest scale with a zp in [-128, 126] (even when `even`) such that lo and hi both fit.

        Start from the scale spreading [lo, hi] over all 255 steps; put zp at
        the (even) value that keeps lo just inside -128 (so a ReLU output gets
        zp = -128 and the whole int8 range); if rounding the zp pushed hi
        out, coarsen the scale (to the next power of two for pow2) and retry.
        """
        required = (hi - lo) / (QMAX - QMIN)
        while True:
            scale, exp = self.to_scale(required)
            zp = QMIN + _rint(-lo / scale)
            zp = _even_ceil(zp) if even else zp
            zp = min(max(zp, QMIN), QMAX - 1)
            if _rint(lo / scale) + zp >= QMIN and _rint(hi / scale) + zp <= QMAX:
                return ActQ(scale=scale, zp=zp, exp=exp)
            required = scale * (1.0 + 1.0 / 64)


def _rint(x: float) -> int:
    return int(np.rint(x))


def _even_ceil(x: int) -> int:
    return x + (x & 1)


class Pow2(ScaleRule):
    def to_scale(self, required: float) -> tuple[float, int | None]:
        e = pow2_exponent(required)
        return 2.0 ** -e, e

    def multiplier(self, m: float) -> tuple[int, int]:
        s = exact_pow2_shift(m)
        return (1, s) if s is not None else fixed_point_multiplier(m)


class FixedPoint(ScaleRule):
    def to_scale(self, required: float) -> tuple[float, int | None]:
        return (required if required > 0.0 else 1.0), None

    def multiplier(self, m: float) -> tuple[int, int]:
        return fixed_point_multiplier(m)


SCALE_RULES: dict[str, ScaleRule] = {
    "pow2": Pow2("pow2"),
    "fixed_point": FixedPoint("fixed_point"),
    "float": FixedPoint("float"),  # the integer path still needs an int32 multiplier
}


def quantize_weights(w: np.ndarray, rule: ScaleRule, per_channel: bool,
                     min_scale: np.ndarray | None = None,
                     bits: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """int8 weights (same layout as `w`, axis 0 = output channel), per-channel scales and exponents.

    `min_scale` (per channel) lets the caller demand a coarser scale, e.g.
    so that the bias fits in int32. `bits` 4 gives int4 weights, in [-7, 7] (held as int8).
    """
    wmax = WMAX if bits == 8 else (1 << (bits - 1)) - 1
    cout = w.shape[0]
    amax = np.abs(w.reshape(cout, -1)).max(axis=1).astype(np.float64) if w.size else np.zeros(cout)
    required = amax / wmax
    if min_scale is not None:
        required = np.maximum(required, min_scale)
    if not per_channel:
        required = np.full(cout, required.max(initial=0.0))
    pairs = [rule.to_scale(float(r)) for r in required]
    scales = np.array([p[0] for p in pairs], dtype=np.float64)
    exps = np.array([p[1] for p in pairs], dtype=np.int32) if pairs and pairs[0][1] is not None else None
    shape = (cout,) + (1,) * (w.ndim - 1)
    wq = np.clip(np.rint(w.astype(np.float64) / scales.reshape(shape)), -wmax, wmax).astype(np.int8)
    return wq, scales, exps
