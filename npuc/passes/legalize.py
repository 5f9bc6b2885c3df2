"""Bring every requantization into what `vrq` accepts: shift in [0, 62], mul and bias in int32.

Pre: quantized IR (shifts may be negative or above 62, arrays int64).
Post: every QOp has ``mul`` (int32, 0 <= mul < 2^31; Add/Sub's two may be
negative, |mul| < 2^31), ``shift`` (int32 in [0, 62]) and ``bias`` (int32),
with the same real ratio mul·2^-shift:

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
from ..ir import IR
from ..isa.arith import round_shift
from .errors import PassError

SHIFT_MAX = 62
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def legalize(ir: IR, hw: HwConfig) -> IR:
    """`hw` is taken for symmetry with the other passes: the limits are the ISA's (vrq), not a config's."""
    ir = ir.copy()
    for name in ir.topo():
        q = ir.node(name).get("qop")
        if q is None:
            continue
        mul, shift = np.asarray(q.mul, dtype=np.int64), np.asarray(q.shift, dtype=np.int64)
        left = np.maximum(-shift, 0)
        if np.any(left > 62) or np.any(np.abs(mul << left) > INT32_MAX):  # Add/Sub: mul may be negative
            raise PassError(f"node {name!r} (op {ir.op(name)}): output scale needs a left shift the "
                            f"requantizer cannot do (multiplier {int(np.abs(mul).max())} << {int(left.max())} "
                            "exceeds int32); the output range is much narrower than the input's")
        mul, shift = mul << left, shift + left
        over = np.maximum(shift - SHIFT_MAX, 0)
        mul = np.where(over > 0, round_shift(mul, np.minimum(over, SHIFT_MAX), "half_even"), mul)
        shift = np.minimum(shift, SHIFT_MAX)
        bias = np.asarray(q.bias, dtype=np.int64)
        if np.any((bias < INT32_MIN) | (bias > INT32_MAX)):
            raise PassError(f"node {name!r} (op {ir.op(name)}): bias does not fit int32")
        ir.node(name)["qop"] = dataclasses.replace(q, mul=mul.astype(np.int32), shift=shift.astype(np.int32),
                                        bias=bias.astype(np.int32))
    return ir
