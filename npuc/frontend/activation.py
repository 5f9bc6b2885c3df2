"""Activations: Relu and Clip. `fuse_activation` later folds them into their producer.

Clip is normalized to ``attrs = {"lo": float, "hi": float}`` (±inf when a
bound is absent), from either the opset-6 attributes or the opset-11+
constant inputs.
"""

from __future__ import annotations

import math

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
