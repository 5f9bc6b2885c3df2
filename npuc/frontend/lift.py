"""1-D models on the NPU: a node over (1, C, L) tensors runs as the same node over (1, C, L, 1).

NPU tensors are (1, C, H, W) maps or (1, K) vectors. A (1, C, L) tensor lies
channels last in DRAM, (L, C): the very bytes of the (1, C, L, 1) map
(`npuc.nhwc`; and of (1, C, 1, L)), so viewing it as that map is a free
alias (an IR ``Reshape``). `lift_1d` rewrites an ONNX node whose run-time
inputs are 3-D into its 4-D twin — Conv1d into a Conv with kernel (k, 1), a
pool's window likewise, a constant broadcast against (N, C, L) given a unit
last axis; axes keep their numbers — and hands the twin to its handler. L
becomes the rows, so a concatenation or a slice along L is one of whole rows:
contiguous bytes. Each output is then a 4-D IR node, and the ONNX value a 3-D
alias of it; the 4-D node is remembered, so the next lifted node reads it
without a pair of aliases.

A node whose twin its handler refuses is left alone: the loader runs the
original on the host.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper

from .registry import Graph, NodeCtx

# attributes with one value per spatial axis: how the 1-D value becomes the (H = 1, W) one
_SPATIAL = {
    "kernel_shape": lambda v: [*v, 1], "strides": lambda v: [*v, 1], "dilations": lambda v: [*v, 1],
    "pads": lambda v: [v[0], 0, v[1], 0], "output_padding": lambda v: [*v, 0], "output_shape": lambda v: [*v[-1:], 1],
}
WINDOW_OPS = frozenset({"Conv", "ConvTranspose", "MaxPool", "AveragePool"})
CHANNEL_OPS = frozenset({"GlobalAveragePool", "GlobalMaxPool", "BatchNormalization"})
UNARY_OPS = frozenset({"Relu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "LeakyRelu", "Elu", "Selu",
                       "Softplus", "Softsign", "Gelu", "Erf", "Abs", "Neg"})
BROADCAST_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Sum", "PRelu"})
AXIS_OPS = frozenset({"Concat", "Split", "Slice", "ReduceMean", "ReduceMax"})
LIFTABLE = WINDOW_OPS | CHANNEL_OPS | UNARY_OPS | BROADCAST_OPS | AXIS_OPS


def _axis4(a: int) -> int:
    """An axis of a rank-3 tensor as the same axis of its (N, C, L, 1) twin."""
    return a + 3 if a < 0 else a


def _lift_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (*shape, 1)


def _lift_const(op: str, slot: int, c: np.ndarray) -> np.ndarray | None:
    """Constant input `slot` of a lifted `op`, or None when the node cannot be lifted."""
    if op in ("Conv", "ConvTranspose") and slot == 1:
        return c.reshape(*c.shape, 1) if c.ndim == 3 else None
    if op in BROADCAST_OPS or op == "Clip":
        if c.ndim == 0 or op == "Clip":
            return c
        full = c.reshape((1,) * (3 - c.ndim) + c.shape) if c.ndim <= 3 else None
        return None if full is None else full.reshape(_lift_shape(full.shape))
    if op in ("Slice",) and slot == 3:
        return np.array([_axis4(int(a)) for a in c.reshape(-1)], c.dtype)
    if op in ("ReduceMean", "ReduceMax") and slot == 1:
        return np.array([_axis4(int(a)) for a in c.reshape(-1)], c.dtype)
    return c  # BN's per-channel vectors, Split's sizes, Slice's starts / ends / steps


def lift_1d(ctx: NodeCtx, run: Callable[[NodeCtx], bool]) -> bool:
    """Translate the node as its 4-D twin through `run` (a handler call that returns False when the
    handler refused); True when the twin was translated."""
    g, node = ctx.graph, ctx.node
    if node.op_type not in LIFTABLE:
        return False
    runtime = [v for v in node.input if v and v in g.producer]
    shapes = [tuple(g.ir.node(g.producer[v])["shape"]) for v in runtime]
    if not runtime or any(len(s) != 3 or s[0] != 1 for s in shapes):
        return False
    if node.op_type in AXIS_OPS and any(a.name == "axes" for a in node.attribute) \
            and node.op_type not in ("ReduceMean", "ReduceMax"):
        return False
    if node.op_type == "Slice" and (len(node.input) < 4 or not node.input[3]):
        return False  # default axes 0..k-1 would name other axes of the twin
    twin = onnx.NodeProto()
    twin.CopyFrom(node)
    for i, v in enumerate(node.input):
        if not v:
            continue
        if v in g.producer:
            twin.input[i] = _lifted_value(g, v)
        elif v in g.consts:
            c = _lift_const(node.op_type, i, np.asarray(g.consts[v]))
            if c is None:
                return False
            twin.input[i] = f"{v}::4d"
            g.consts[twin.input[i]] = c
    del twin.attribute[:]
    for a in node.attribute:
        value = helper.get_attribute_value(a)
        if a.name in _SPATIAL and node.op_type in WINDOW_OPS:
            value = _SPATIAL[a.name](list(value))
        elif a.name == "axis":
            value = _axis4(int(value))
        elif a.name == "axes":
            value = [_axis4(int(x)) for x in value]
        twin.attribute.append(helper.make_attribute(a.name, value))
    for i, out in enumerate(node.output):
        if out:
            twin.output[i] = f"{out}::4d"
            if out in g.shapes and len(g.shapes[out]) == 3:
                g.shapes[twin.output[i]] = _lift_shape(g.shapes[out])
    if not run(NodeCtx(g, twin, ctx.name)):
        return False
    for out, out4 in zip(node.output, twin.output):
        if out and out4 in g.producer:
            src = g.producer[out4]
            shape = tuple(g.ir.node(src)["shape"])
            if len(shape) != 4:  # a reduction to (1, C) and the like: the value is that tensor
                g.producer[out] = src
                continue
            g.lifted[out] = src
            g.order += 1
            alias = g.ir.add(g.unique_name(f"{ctx.name}/1d"), "Reshape", [src], attrs={"shape": _drop(shape)},
                             shape=_drop(shape), value=out)
            g.ir.node(alias)["order"] = g.order
            g.producer[out] = alias
    return True


def _drop(shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape[:3]


def _lifted_value(g: Graph, v: str) -> str:
    """The name of a 4-D twin of 3-D run-time value `v` (an alias Reshape, made once)."""
    twin = f"{v}::4d"
    if twin in g.producer:
        return twin
    if v in g.lifted:
        g.producer[twin] = g.lifted[v]
        return twin
    src = g.producer[v]
    shape = _lift_shape(tuple(g.ir.node(src)["shape"]))
    g.order += 1
    name = g.ir.add(g.unique_name(f"{src}/2d"), "Reshape", [src], attrs={"shape": shape}, shape=shape, value=twin)
    g.ir.node(name)["order"] = g.order
    g.producer[twin] = name
    g.lifted[v] = name
    return twin
