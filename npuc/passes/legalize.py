"""Bring every requantization into what the hardware accepts: shifts in [0, 62], multipliers and
biases in int32 (`vrq`, `vadd`, `vmul`).

Pre: quantized IR (shifts may be negative or above 62, arrays int64).
Post: every `AccQ`/`MatQ`/`PoolQ` has int32 ``mul`` (0 <= mul < 2^31), ``shift`` in [0, 62] and
``bias``; every `AddQ` (ma, mb: |m| < 2^31, signed) and `MulQ` (mul) a shift ``sh`` in [0, 62] —
each with the same real ratio mul·2^-shift:

* shift < 0 (the output scale is finer than the accumulator's): the left
  shift moves into the multiplier, mul·2^-shift, shift = 0 — refused when the
  multiplier would reach 2^31;
* shift > 62: the multiplier is rounded down to shift 62 (half even); the
  ratio is then below 2^-31, every output is (almost) the zero point anyway.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..hw import HwConfig
from ..ir import IR, AccQ, AddQ, LutQ, MulQ, PoolQ
from ..isa.arith import round_shift
from .errors import PassError

SHIFT_MAX = 62
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def legalize(ir: IR, hw: HwConfig) -> IR:
    """`hw` is taken for symmetry with the other passes: the limits are the ISA's (vrq), not a config's."""
    ir = ir.copy()
    for name in ir.topo():
        q = ir.node(name).get("qop")
        if q is None or isinstance(q, LutQ):  # a lookup has no requantization
            continue
        what = f"node {name!r} (op {ir.op(name)})"
        if isinstance(q, (AccQ, PoolQ)):  # vrq: arrays, one (mul, shift) per column or divisor
            mul, shift = _legal(what, np.asarray(q.mul, dtype=np.int64), np.asarray(q.shift, dtype=np.int64))
            bias = np.asarray(q.bias, dtype=np.int64)
            if np.any((bias < INT32_MIN) | (bias > INT32_MAX)):
                raise PassError(f"{what}: bias does not fit int32")
            q = dataclasses.replace(q, mul=mul.astype(np.int32), shift=shift.astype(np.int32),
                                    bias=bias.astype(np.int32))
        elif isinstance(q, AddQ):  # vadd: two signed multipliers sharing one shift
            (ma, mb), (sh,) = _legal(what, np.array([q.ma, q.mb], dtype=np.int64), np.array([q.sh], dtype=np.int64))
            q = dataclasses.replace(q, ma=int(ma), mb=int(mb), sh=int(sh))
        elif isinstance(q, MulQ):  # vmul: one multiplier
            (mul,), (sh,) = _legal(what, np.array([q.mul], dtype=np.int64), np.array([q.sh], dtype=np.int64))
            q = dataclasses.replace(q, mul=int(mul), sh=int(sh))
        else:
            raise PassError(f"{what}: no legalization for a {type(q).__name__}")
        ir.node(name)["qop"] = q
    return ir


def _legal(what: str, mul: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same real ratios mul·2^-shift with shift in [0, 62] and |mul| < 2^31 (shift broadcasts)."""
    left = np.maximum(-shift, 0)
    if np.any(left > 62) or np.any(np.abs(mul << left) > INT32_MAX):  # vadd: mul may be negative
        raise PassError(f"{what}: output scale needs a left shift the requantizer cannot do (multiplier "
                        f"{int(np.abs(mul).max())} << {int(left.max())} exceeds int32); the output range is "
                        "much narrower than the input's")
    mul, shift = mul << left, shift + left
    over = np.maximum(shift - SHIFT_MAX, 0)
    mul = np.where(over > 0, round_shift(mul, np.minimum(over, SHIFT_MAX), "half_even"), mul)
    return mul, np.minimum(shift, SHIFT_MAX)
