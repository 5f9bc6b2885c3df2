"""Golden model of the vector-unit ops: Lut (`vlut`) and Mul (`vmul`), float and integer.

Registered into `npuc.reference.common`'s registries. IR contract (`npuc/frontend/activation.py`,
`npuc/frontend/elementwise.py`):

* ``Lut`` — one input; attrs ``{"fn": name, **params}`` (`npuc.lut.LUT_FNS`),
  optionally ``consts["slope"]`` (C,) for per-channel PReLU and a fused
  ``attrs["act"]`` clamp. Integer: `LutQ` ``table``, int8 (256,) shared
  or (C, 256) one per channel: ``y = table[c][x + 128]``.
* ``Mul`` — two inputs of one shape, or with ``attrs["broadcast"] ==
  "channel"`` slot 1 of shape (1, C, 1, 1) scaling every pixel of slot 0
  (squeeze-excite); or (before `fold_batchnorm`) one input and a per-channel
  constant ``consts["S"]`` (C,). Integer (two inputs): `vmul`,
  clamp(round_shift((a - za)(b - zb)·mul, sh) + zp, lo, hi): a `MulQ`.
"""

from __future__ import annotations

import numpy as np

from .. import lut
from ..ir import ActQ
from ..isa.arith import lut_lookup, mul_requantize
from ..lut import lut_params
from .common import Node, apply_act, float_op, quant_op


def _channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """A (C,) vector shaped onto axis 1 of an (N, C, ...) tensor."""
    return np.asarray(v, dtype=np.float64).reshape((1, -1) + (1,) * (ndim - 2))


@float_op("Lut")
def lut_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    x = ins[0]
    slope = node["consts"].get("slope")
    y = lut.apply(node["attrs"]["fn"], x, lut_params(node), None if slope is None else _channel(slope, x.ndim))
    return apply_act(y, node).astype(np.float32)


@quant_op("Lut")
def lut_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    """`vlut`: one table lookup per element, the channel (axis 1) choosing a per-channel table."""
    x, table = ins[0], node["qop"].table
    if table.ndim == 1:
        return lut_lookup(x, table)
    last = np.moveaxis(x, 1, -1)
    return np.moveaxis(lut_lookup(last, table), -1, 1)


@float_op("Mul")
def mul_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    x = ins[0].astype(np.float64)
    if len(ins) == 1:
        return (x * _channel(node["consts"]["S"], x.ndim)).astype(np.float32)
    return apply_act(x * ins[1], node).astype(np.float32)


@quant_op("Mul")
def mul_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    """`vmul`: (a - za)(b - zb)·mul formed exactly, rounded once; a (N, C, 1, 1) b broadcasts."""
    q = node["qop"]
    return mul_requantize(ins[0], ins[1], q.za, q.zb, q.mul, q.sh, q.zp_out, q.lo, q.hi, q.rounding)
