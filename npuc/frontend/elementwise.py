"""Elementwise arithmetic: Add, Sub, Sum, Mul, Div.

Two run-time tensors of the same shape become an IR ``Add`` or ``Sub`` node
with two inputs (slot 0 = ONNX input A, slot 1 = B): on the NPU one `vadd`
that rescales both to the finer scale and rounds once (a residual Add).
Broadcasting between two run-time tensors, and one tensor twice (x + x),
are not supported.

A tensor plus (or minus) a constant that is one value per channel (a
scalar, ``(C,)`` for a 2-D tensor, ``(C, 1, 1)``, ``(1, C, 1, 1)``, ...)
becomes an IR ``Add`` with one input and ``consts["B"]`` of shape ``(C,)``
(negated for Sub); `fold_batchnorm` then folds it into the bias of the Conv
or Gemm before it. Any other constant that broadcasts to the tensor (YOLO's
anchor grid (1, 2, anchors), its strides (1, anchors)) becomes an IR
``Const`` node of the tensor's shape and a two-input Add / Sub / Mul: the
constant is quantized once, stored in DRAM and read like any tensor.

Sum of one input is the identity, Sum of two is Add, and Sum of n > 2 a chain
of two-input Adds (each rounded: ((a + b) + c) + ...), the intermediate
nodes named ``<node>/sum<k>``.

Mul (`vmul` on the NPU), in its IR forms:

* two run-time tensors of one shape: IR ``Mul`` (slot 0 = A, slot 1 = B);
* a run-time (1, C, H, W) tensor times a run-time (1, C, 1, 1) one, either
  order (squeeze-excite): IR ``Mul`` with ``attrs["broadcast"] = "channel"``,
  the full tensor in slot 0, the per-channel one in slot 1;
* a tensor times a constant that is one value per channel (scalar, (C,),
  (C, 1, 1), ...): IR ``Mul`` with one input and ``consts["S"]`` of shape
  (C,), which `fold_batchnorm` folds into the Conv before it (or turns into
  a depthwise 1x1 conv);
* Div of a tensor by such a constant is that Mul by the reciprocal; Div of
  two run-time tensors, or of a constant by a tensor, is refused.
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
        _sum_chain(ctx, n)


def _sum_chain(ctx: NodeCtx, n: int) -> None:
    """((x0 + x1) + x2) + ...: n - 1 two-input Adds, the last one this node's output."""
    shape = ctx.in_shape(0)
    srcs = [ctx.data(i) for i in range(n)]
    if any(ctx.in_shape(i) != shape for i in range(n)):
        raise ctx.unsupported(f"Sum of shapes {[ctx.in_shape(i) for i in range(n)]}: one shape expected, "
                              "no broadcasting")
    if len(set(srcs)) != n:
        raise ctx.unsupported("an input appears twice")
    g = ctx.graph
    acc = srcs[0]
    for k in range(1, n - 1):
        g.order += 1
        acc = g.ir.add(g.unique_name(f"{ctx.name}/sum{k}"), "Add", [acc, srcs[k]], shape=shape)
        g.ir.node(acc)["order"] = g.order
    ctx.emit("Add", [acc, srcs[-1]], shape=shape)


@handler("Mul")
def Mul(ctx: NodeCtx) -> None:
    const = [ctx.is_const(0), ctx.is_const(1)]
    if not any(const):
        sa, sb = ctx.in_shape(0), ctx.in_shape(1)
        if ctx.data(0) == ctx.data(1):  # one IR edge per producer and consumer: x * x has no two slots
            raise ctx.unsupported("both inputs are the same tensor")
        if sa == sb:
            ctx.emit("Mul", [ctx.data(0), ctx.data(1)], shape=sa)
            return
        for big, small in ((0, 1), (1, 0)):
            s_big, s_small = ctx.in_shape(big), ctx.in_shape(small)
            if len(s_big) == 4 and s_big[0] == 1 and s_small == (1, s_big[1], 1, 1):
                ctx.emit("Mul", [ctx.data(big), ctx.data(small)], shape=s_big, attrs={"broadcast": "channel"})
                return
        raise ctx.unsupported(f"inputs of shapes {sa} and {sb}: the same shape, or (1, C, H, W) times "
                              "(1, C, 1, 1), are supported")
    i = 1 if const[0] else 0
    _scale(ctx, i, ctx.const(1 - i, "constant operand").astype(np.float64))


@handler("Div")
def Div(ctx: NodeCtx) -> None:
    if not ctx.is_const(1):
        raise ctx.unsupported("division by a run-time tensor is not supported; only by a constant")
    if ctx.is_const(0):
        raise ctx.error("both inputs are constants")
    c = ctx.const(1, "divisor").astype(np.float64)
    if np.any(c == 0):
        raise ctx.unsupported("division by zero")
    _scale(ctx, 0, 1.0 / c)


def _scale(ctx: NodeCtx, i: int, c: np.ndarray) -> None:
    """Run-time input `i` times constant `c`: one value per channel, a one-input Mul with consts S; any
    other constant that broadcasts to the tensor, a two-input Mul with a `Const` node."""
    shape = ctx.in_shape(i)
    s = per_channel(c, shape)
    if s is None:
        ctx.emit("Mul", [ctx.data(i), const_tensor(ctx, c, shape)], shape=shape)
        return
    ctx.emit("Mul", [ctx.data(i)], shape=shape, consts={"S": s.astype(np.float32)})


MAX_CONST = 1 << 20  # elements: a larger constant tensor operand stays a host op's initializer


def const_tensor(ctx: NodeCtx, c: np.ndarray, shape: tuple[int, ...]) -> str:
    """An IR `Const` node holding constant `c` broadcast to a run-time tensor's `shape` (NPU tensors
    only: (1, C, H, W) or (1, K)); UnsupportedOp when it does not broadcast so."""
    try:
        fits = np.broadcast_shapes(c.shape, shape) == tuple(shape)
    except ValueError:
        fits = False
    if not fits or len(shape) not in (2, 4) or shape[0] != 1 or int(np.prod(shape)) > MAX_CONST:
        raise ctx.unsupported(f"constant of shape {c.shape} does not broadcast to the {shape} tensor as an NPU "
                              "operand")
    if not np.all(np.isfinite(c)):
        raise ctx.unsupported(f"constant of shape {c.shape} holds a non-finite value")
    g = ctx.graph
    g.order += 1
    name = g.ir.add(g.unique_name(f"{ctx.name}/const"), "Const", shape=shape,
                    consts={"value": np.ascontiguousarray(np.broadcast_to(c, shape), dtype=np.float32)})
    g.ir.node(name)["order"] = g.order
    return name


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
    i = 1 if const[0] else 0  # the run-time input
    shape = ctx.in_shape(i)
    c = ctx.const(1 - i, "constant operand").astype(np.float64)
    bias = per_channel(c, shape)
    if bias is None:  # a constant tensor (YOLO's anchor grid): a two-input Add / Sub with a Const node
        k = const_tensor(ctx, c, shape)
        ctx.emit("Sub" if sub else "Add", [k, ctx.data(i)] if const[0] else [ctx.data(i), k], shape=shape)
        return
    src = ctx.data(i)
    if sub and const[0]:  # c - x = (-1)·x + c: two channel affines, which fold into one (or into a conv)
        g = ctx.graph
        g.order += 1
        src = g.ir.add(g.unique_name(f"{ctx.name}/neg"), "Mul", [src], shape=shape,
                       consts={"S": np.full(shape[1], -1.0, np.float32)})
        g.ir.node(src)["order"] = g.order
        sub = False
    ctx.emit("Add", [src], shape=shape, consts={"B": (-bias if sub else bias).astype(np.float32)})


def per_channel(c: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
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
