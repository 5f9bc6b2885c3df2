"""Elementwise arithmetic: Add, Sub, Sum.

Two run-time tensors of the same shape become an IR ``Add`` or ``Sub`` node
with two inputs (slot 0 = ONNX input A, slot 1 = B): on the NPU one `vadd`
that rescales both to the finer scale and rounds once (a residual Add).
Broadcasting between two run-time tensors, and one tensor twice (x + x),
are not supported.

A tensor plus (or minus) a constant that is one value per channel (a
scalar, ``(C,)`` for a 2-D tensor, ``(C, 1, 1)``, ``(1, C, 1, 1)``, ...)
becomes an IR ``Add`` with one input and ``consts["B"]`` of shape ``(C,)``
(negated for Sub); `fold_batchnorm` then folds it into the bias of the Conv
or Gemm before it. Any other constant operand, or constant minus tensor, is
refused here (`UnsupportedOp`: the loader may run the node on the host).

Sum of one input is the identity and Sum of two is Add; more inputs are refused.
"""

from __future__ import annotations

import numpy as np

from .registry import NodeCtx, handler


@handler("Add")
def Add(ctx: NodeCtx) -> None:
    _binary(ctx, sub=False)


@handler("Sub")
def Sub(ctx: NodeCtx) -> None:
    _binary(ctx, sub=True)


@handler("Sum")
def Sum(ctx: NodeCtx) -> None:
    n = len(ctx.node.input)
    if n == 1:
        ctx.alias(0)
    elif n == 2:
        _binary(ctx, sub=False)
    else:
        raise ctx.unsupported(f"Sum of {n} inputs: only one or two are supported")


def _binary(ctx: NodeCtx, sub: bool) -> None:
    const = [ctx.is_const(0), ctx.is_const(1)]
    if not any(const):
        sa, sb = ctx.in_shape(0), ctx.in_shape(1)
        if sa != sb:
            raise ctx.unsupported(f"inputs of shapes {sa} and {sb}: two tensors of the same shape are "
                                  "supported, no broadcasting")
        if ctx.data(0) == ctx.data(1):  # one IR edge per producer and consumer: x + x has no two slots
            raise ctx.unsupported("both inputs are the same tensor")
        ctx.emit("Sub" if sub else "Add", [ctx.data(0), ctx.data(1)], shape=sa)
        return
    if sub and const[0]:
        raise ctx.unsupported("a constant minus a tensor is not supported")
    i = 1 if const[0] else 0  # the run-time input
    shape = ctx.in_shape(i)
    bias = _per_channel(ctx.const(1 - i, "constant operand").astype(np.float64), shape)
    if bias is None:
        raise ctx.unsupported(f"constant of shape {ctx.const(1 - i, 'constant operand').shape} is not one "
                              f"value per channel of the {shape} tensor")
    ctx.emit("Add", [ctx.data(i)], shape=shape, consts={"B": (-bias if sub else bias).astype(np.float32)})


def _per_channel(c: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """The (C,) vector a constant adds to an (N, C, ...) tensor, or None when it is not one value per channel."""
    if len(shape) not in (2, 4):
        return None
    try:
        if np.broadcast_shapes(c.shape, shape) != shape:
            return None
    except ValueError:
        return None
    full = np.broadcast_to(c, shape)
    per = full[(0, slice(None)) + (0,) * (len(shape) - 2)]
    if not np.array_equal(full, np.broadcast_to(per.reshape((1, -1) + (1,) * (len(shape) - 2)), shape)):
        return None
    return np.ascontiguousarray(per)
