"""Layout and bookkeeping ops: Flatten, Reshape, Constant, Identity, Dropout.

Flatten and Reshape become IR nodes whose ``shape`` is the resolved output
shape (a Reshape also keeps it in ``attrs["shape"]``); both reinterpret the
NCHW element order. A 4-D result must leave the DRAM bytes alone
(`npuc.nhwc.same_bytes`, or un-flattening a flattened map); the 5-D
Reshapes of a channel shuffle are handled in `layout.py`. Constant, Identity and inference-mode Dropout produce no
IR node: they only rename values.
"""

from __future__ import annotations

import numpy as np

from ..nhwc import same_bytes
from .layout import reshape_shuffle
from .registry import NodeCtx, handler


@handler("Flatten")
def Flatten(ctx: NodeCtx) -> None:
    shape = ctx.in_shape(0)
    axis = int(ctx.attr("axis", 1))
    if not -len(shape) <= axis <= len(shape):
        raise ctx.error(f"axis {axis} is out of range for rank {len(shape)}")
    if axis < 0:
        axis += len(shape)
    out = (int(np.prod(shape[:axis])), int(np.prod(shape[axis:])))
    if out[0] != shape[0]:
        raise ctx.unsupported(f"axis {axis} merges the batch dimension, which is not supported")
    ctx.emit("Flatten", [ctx.data(0)], shape=out, attrs={"axis": axis})


@handler("Reshape")
def Reshape(ctx: NodeCtx) -> None:
    shape = ctx.in_shape(0)
    target = [int(d) for d in ctx.const(1, "shape").reshape(-1)]
    if int(ctx.attr("allowzero", 0)) and 0 in target:
        raise ctx.unsupported("allowzero=1 with a zero in the shape is not supported")
    # 0 copies the input's dimension; one -1 takes what is left
    out = [shape[i] if d == 0 else d for i, d in enumerate(target)]
    if out.count(-1) > 1 or any(d < -1 for d in out):
        raise ctx.error(f"invalid target shape {target}")
    total = int(np.prod(shape))
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1]))
        if known == 0 or total % known:
            raise ctx.error(f"cannot reshape {shape} to {target}")
        out[out.index(-1)] = total // known
    if int(np.prod(out)) != total:
        raise ctx.error(f"cannot reshape {shape} to {target}")
    if reshape_shuffle(ctx, shape, out):  # a step of a channel shuffle (`layout.py`)
        return
    if len(out) not in (2, 4) and out[0] == shape[0] == 1 and same_bytes(shape, out):
        # (1, C, H, W) -> (1, C, H·W) and the like: a tensor of another rank on the same bytes (`npuc.nhwc`)
        ctx.emit("Reshape", [ctx.data(0)], shape=tuple(out), attrs={"shape": tuple(out)})
        return
    if len(out) not in (2, 4) or out[0] != shape[0]:
        raise ctx.unsupported(f"reshape {shape} -> {tuple(out)}: only 2-D/4-D results keeping the batch, or "
                              "results on the same bytes, are supported")
    # a 4-D result is an NHWC map in DRAM: only one whose bytes are the input's is a free alias
    if len(out) == 4 and not (same_bytes(shape, out) or _unflattens(ctx, tuple(out))):
        raise ctx.unsupported(f"reshape {shape} -> {tuple(out)} reorders the NHWC bytes in DRAM")
    ctx.emit("Reshape", [ctx.data(0)], shape=tuple(out), attrs={"shape": tuple(out)})


def _unflattens(ctx: NodeCtx, out: tuple[int, ...]) -> bool:
    """True when the input is a flattening of a map of shape `out` (its bytes are that map's NHWC bytes)."""
    ir, src = ctx.graph.ir, ctx.data(0)
    while ir.op(src) in ("Flatten", "Reshape") and len(ir.node(src)["shape"]) == 2:
        (src,) = ir.preds(src)
    return tuple(ir.node(src)["shape"]) == out


@handler("Constant")
def Constant(ctx: NodeCtx) -> None:
    for key, dtype in (("value", None), ("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if ctx.has_attr(key):
            ctx.set_const(np.asarray(ctx.attr(key), dtype=dtype))
            return
    raise ctx.error("only value, value_float(s) and value_int(s) constants are supported")


@handler("Identity")
def Identity(ctx: NodeCtx) -> None:
    ctx.alias(0)


@handler("Dropout")
def Dropout(ctx: NodeCtx) -> None:
    """Inference: the identity. The mask output must be unused; training mode is refused."""
    ctx.check_unused_outputs(1)
    if ctx.has_input(2) and bool(ctx.const(2, "training_mode").reshape(())):
        raise ctx.error("training_mode=True is not supported (inference only)")
    ctx.alias(0)
