"""Activations. Relu and Clip stay as they are: `fuse_activation` folds them into their producer's
clamp, or turns one with nothing to fuse into into a ``Lut``. Every other one becomes an IR ``Lut``
node (one `vlut` table lookup on the NPU, `npuc/lut.py`): attrs ``{"fn": name, **params}``.

Clip is normalized to ``attrs = {"lo": float, "hi": float}`` (±inf when a
bound is absent), from either the opset-6 attributes or the opset-11+
constant inputs. PRelu's slope is a constant: one value becomes
``leakyrelu(alpha)``, one value per channel ``prelu`` with ``consts["slope"]``
of shape (C,).
"""

from __future__ import annotations

import math

import numpy as np

from .elementwise import per_channel
from .registry import NodeCtx, handler


@handler("Relu")
def Relu(ctx: NodeCtx) -> None:
    ctx.emit("Relu", [ctx.data(0)], shape=ctx.in_shape(0))


@handler("Clip")
def Clip(ctx: NodeCtx) -> None:
    if ctx.has_attr("min") or ctx.has_attr("max"):  # opset 6 form
        lo = float(ctx.attr("min", -math.inf))
        hi = float(ctx.attr("max", math.inf))
    else:
        lo_c = ctx.const_or(1, None)
        hi_c = ctx.const_or(2, None)
        for what, c in (("min", lo_c), ("max", hi_c)):
            if c is not None and c.size != 1:
                raise ctx.error(f"{what} has shape {c.shape}; a scalar is expected")
        lo = -math.inf if lo_c is None else float(lo_c.reshape(()))
        hi = math.inf if hi_c is None else float(hi_c.reshape(()))
    if lo > hi:
        raise ctx.error(f"min {lo} > max {hi}")
    ctx.emit("Clip", [ctx.data(0)], shape=ctx.in_shape(0), attrs={"lo": lo, "hi": hi})


def _lut(ctx: NodeCtx, fn: str, **params: object) -> None:
    ctx.emit("Lut", [ctx.data(0)], shape=ctx.in_shape(0), attrs={"fn": fn, **params})


@handler("Sigmoid")
def Sigmoid(ctx: NodeCtx) -> None:
    _lut(ctx, "sigmoid")


@handler("Tanh")
def Tanh(ctx: NodeCtx) -> None:
    _lut(ctx, "tanh")


@handler("HardSigmoid")
def HardSigmoid(ctx: NodeCtx) -> None:
    _lut(ctx, "hardsigmoid", alpha=float(ctx.attr("alpha", 0.2)), beta=float(ctx.attr("beta", 0.5)))


@handler("HardSwish")
def HardSwish(ctx: NodeCtx) -> None:
    _lut(ctx, "hardswish")


@handler("LeakyRelu")
def LeakyRelu(ctx: NodeCtx) -> None:
    _lut(ctx, "leakyrelu", alpha=float(ctx.attr("alpha", 0.01)))


@handler("Elu")
def Elu(ctx: NodeCtx) -> None:
    _lut(ctx, "elu", alpha=float(ctx.attr("alpha", 1.0)))


@handler("Selu")
def Selu(ctx: NodeCtx) -> None:
    _lut(ctx, "selu", alpha=float(ctx.attr("alpha", 1.67326319217681884765625)),
         gamma=float(ctx.attr("gamma", 1.05070102214813232421875)))


@handler("Softplus")
def Softplus(ctx: NodeCtx) -> None:
    _lut(ctx, "softplus")


@handler("Softsign")
def Softsign(ctx: NodeCtx) -> None:
    _lut(ctx, "softsign")


@handler("Gelu")
def Gelu(ctx: NodeCtx) -> None:
    approximate = ctx.attr("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise ctx.error(f"approximate={approximate!r}: 'none' or 'tanh' expected")
    _lut(ctx, "gelu", approximate=approximate)


@handler("Erf")
def Erf(ctx: NodeCtx) -> None:
    _lut(ctx, "erf")


@handler("Abs")
def Abs(ctx: NodeCtx) -> None:
    _lut(ctx, "abs")


@handler("Neg")
def Neg(ctx: NodeCtx) -> None:
    """-x is a channel affine (a Mul by -1), which folds into the producing conv like any other."""
    shape = ctx.in_shape(0)
    if len(shape) not in (2, 4):
        raise ctx.unsupported(f"input of shape {shape}: only 2-D or 4-D tensors are supported")
    ctx.emit("Mul", [ctx.data(0)], shape=shape, consts={"S": np.full(shape[1], -1.0, np.float32)})


@handler("PRelu")
def PRelu(ctx: NodeCtx) -> None:
    shape = ctx.in_shape(0)
    slope = ctx.const(1, "slope").astype(np.float64)
    if slope.size == 1:
        _lut(ctx, "leakyrelu", alpha=float(slope.reshape(())))
        return
    per = per_channel(slope, shape)
    if per is None:
        raise ctx.unsupported(f"slope of shape {slope.shape} is not one value per channel of the {shape} input")
    if np.all(per == per[0]):
        _lut(ctx, "leakyrelu", alpha=float(per[0]))
        return
    ctx.emit("Lut", [ctx.data(0)], shape=shape, attrs={"fn": "prelu"}, consts={"slope": per.astype(np.float32)})
