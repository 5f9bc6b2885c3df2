"""A fixed batch N > 1: compile for batch 1 when every op keeps the samples apart on axis 0.

The NPU program runs one sample at a time (`npuc.sim.driver`), so a model
exported with a fixed batch (PyTorch's old exports: `(2, 3, 6, 6)`) compiles
as batch 1 when running it on N samples at once equals running it N times on
one: every op treats axis 0 as the batch. `batch_one` checks that node by
node on the model's own shapes (ONNX shape inference at batch N) and returns
the model rewritten for batch 1, or names the first node that mixes the
samples:

* tensors computed from a graph input carry the batch on axis 0, and every
  such output must keep N on axis 0;
* an op of `PER_SAMPLE` (convolutions, pools, normalizations, elementwise
  math) keeps samples apart by definition, provided a constant operand does
  not vary along axis 0 (one with N equal rows is cut to one row);
* an op with an axis (Softmax, Concat, Split, Gather, reductions, Slice,
  Transpose, Squeeze, Unsqueeze, Flatten, ArgMax, ...) must not touch axis 0;
* a Reshape or Expand whose constant target names N on axis 0 gets 1 there;
  Shape chains (Shape -> Gather -> Concat -> Reshape) need nothing: they are
  folded again at batch 1;
* any other op reading a batched tensor is refused: npuc cannot know.

`batch_one` returns None when a batch-1 model would compute something else
and the input has another axis of size 1 (MultiheadAttention's (L, 1, E)):
the whole input is then one sample, and the program takes it as it is.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .registry import FrontendError

Shapes = dict[str, tuple[int, ...]]

# ops that never mix samples along axis 0 (given constants that do not vary along it)
PER_SAMPLE = frozenset("""
Abs Acos Acosh Add And Asin Asinh Atan Atanh AveragePool BatchNormalization BitShift Cast CastLike Ceil Celu
Clip Conv ConvTranspose Cos Cosh DepthToSpace DequantizeLinear Div Dropout Elu Equal Erf Exp Floor Gelu
GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual HardSigmoid HardSwish Identity
InstanceNormalization IsInf IsNaN LRN LeakyRelu Less LessOrEqual Log LpPool MaxPool MaxRoiPool Max Mean Min
Mish Mod Mul Neg Not Or PRelu Pad Pow QuantizeLinear Reciprocal Relu Resize Round Selu Shrink Sigmoid Sign Sin
Sinh Softplus Softsign SpaceToDepth Sqrt Sub Sum Tan Tanh ThresholdedRelu Upsample Where Xor
""".split())
# ops whose one axis attribute (default given) must not be 0 (opset-dependent defaults below)
AXIS_OPS = {"Concat": None, "Split": 0, "Gather": 0, "ArgMax": 0, "ArgMin": 0, "Hardmax": -1,
            "LogSoftmax": -1, "Softmax": -1, "CumSum": None, "Compress": None, "LpNormalization": -1,
            "GatherElements": 0, "Flatten": 1, "LayerNormalization": -1, "TopK": -1}
REDUCE = frozenset({"ReduceMax", "ReduceMean", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL1", "ReduceL2",
                    "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"})
# ops whose outputs do not depend on the samples' values (their values follow the batch-1 shapes)
SHAPE_OPS = frozenset({"Shape", "Size"})


def batch_one(proto: onnx.ModelProto, static: Shapes, opset: int, source: str,
              infer: Callable[[onnx.ModelProto, Shapes], Shapes]) -> tuple[onnx.ModelProto, Shapes] | None:
    """`proto` rewritten for batch 1 and the batch-1 input shapes; None when the inputs are one sample
    as they are; a FrontendError naming the node that mixes the samples otherwise."""
    batched = {k: s for k, s in static.items() if s and s[0] > 1}
    ns = {s[0] for s in batched.values()}
    name0 = next(iter(batched))
    if len(ns) > 1:
        which = ", ".join(f"{k}: {s[0]}" for k, s in batched.items())
        raise FrontendError(f"{source}: inputs have different fixed batches ({which})")
    n = ns.pop()
    shapes = {**infer(proto, static), **static}
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    consts = _constants(model)
    carrying = set(batched)
    derived: set[str] = set()  # values computed from shapes only: folded again at batch 1
    try:
        for node in model.graph.node:
            inputs = [v for v in node.input if v]
            if node.op_type in SHAPE_OPS:
                derived.update(o for o in node.output if o)
                continue
            if not any(v in carrying for v in inputs):
                if any(v in derived for v in inputs):
                    derived.update(o for o in node.output if o)
                continue
            _check_node(node, model, n, shapes, consts, carrying, derived, opset)
            for out in node.output:
                if not out:
                    continue
                shape = shapes.get(out)
                if shape is None or not shape or shape[0] != n:
                    raise _Mixes(node, f"its output {out!r} has shape {shape}, not the batch {n} on axis 0")
                carrying.add(out)
        for out in model.graph.output:
            if out.name not in carrying:
                raise _Mixes(None, f"graph output {out.name!r} does not carry the batch")
    except _Mixes as e:
        if any(1 in s[1:] for s in batched.values()):
            return None  # (L, 1, E): the batch is another axis, the inputs are one sample
        where = (f"node '{e.node.name or e.node.output[0]}' (op {e.node.op_type}, opset {opset})" if e.node
                 else "the model")
        raise FrontendError(f"{source}: input {name0!r} has a fixed batch of {n}, but {where} mixes the samples: "
                            f"{e.reason}; export it with batch 1 or a dynamic batch") from None
    return model, {k: ((1, *s[1:]) if k in batched else s) for k, s in static.items()}


class _Mixes(Exception):
    def __init__(self, node: onnx.NodeProto | None, reason: str) -> None:
        super().__init__(reason)
        self.node, self.reason = node, reason


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    out = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for a in node.attribute:
                if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                    out[node.output[0]] = numpy_helper.to_array(a.t)
    return out


def _attr(node: onnx.NodeProto, key: str, default: object = None) -> object:
    for a in node.attribute:
        if a.name == key:
            return helper.get_attribute_value(a)
    return default


def _set_const(model: onnx.ModelProto, node: onnx.NodeProto, slot: int, value: np.ndarray,
               consts: dict[str, np.ndarray]) -> None:
    """Feed input `slot` of `node` from a new initializer holding `value` (the old one may be shared)."""
    name = f"{node.input[slot]}__batch1"
    k = 1
    while name in consts:
        name, k = f"{node.input[slot]}__batch1_{k}", k + 1
    model.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    consts[name] = np.asarray(value)
    node.input[slot] = name


def _check_node(node: onnx.NodeProto, model: onnx.ModelProto, n: int, shapes: Shapes,
                consts: dict[str, np.ndarray], carrying: set[str], derived: set[str], opset: int) -> None:
    """Raise _Mixes when `node` (reading a batched tensor) mixes samples; rewrite its constants for batch 1."""
    op = node.op_type
    rank = len(shapes.get(node.output[0], ())) if node.output and node.output[0] else 0
    data = [i for i, v in enumerate(node.input) if v in carrying]
    if op in PER_SAMPLE or op in ("Gemm", "MatMul"):
        if op == "Gemm" and (int(_attr(node, "transA", 0)) or 0 not in data or data != [0]):
            raise _Mixes(node, "only A (not transposed) may carry the batch")
        if op == "MatMul" and (data != [0] and not (data == [0, 1] and rank >= 3)):
            raise _Mixes(node, "its second operand carries the batch")
        for i, v in enumerate(node.input):
            if not v or v in carrying or v in derived or v not in consts or op in ("Conv", "ConvTranspose"):
                continue
            c = consts[v]
            if op in ("Gemm", "MatMul") and i == 1:
                continue
            if c.ndim == rank and rank > 0 and c.shape[0] == n and op not in ("Pad", "Resize", "Upsample", "Clip"):
                if not np.all(c == c[:1]):
                    raise _Mixes(node, f"constant {v!r} of shape {c.shape} differs along the batch axis")
                _set_const(model, node, i, c[:1], consts)
        if op == "Pad":
            pads = consts.get(node.input[1]) if len(node.input) > 1 and node.input[1] else _attr(node, "pads")
            if pads is not None:
                p = np.asarray(pads).reshape(-1)
                if len(node.input) > 3 and node.input[3]:
                    return  # explicit axes: the output-shape check catches a padded batch
                if p.size >= 2 and (p[0] or p[p.size // 2]):
                    raise _Mixes(node, "it pads the batch axis")
        return
    if op in AXIS_OPS:
        default = AXIS_OPS[op]
        if op in ("Softmax", "LogSoftmax", "Hardmax") and opset < 13:
            default = 1  # before 13: coerced to 2-D at axis, normalized over the trailing axes
        axis = _attr(node, "axis", default)
        if axis is None:
            raise _Mixes(node, "it has no axis")
        in_rank = len(shapes.get(node.input[0], ())) if node.input[0] in shapes else rank
        if int(axis) % max(in_rank, 1) == 0:
            raise _Mixes(node, f"it works along axis {axis}, the batch")
        if op == "Gather" and node.input[1] in carrying:
            raise _Mixes(node, "its indices carry the batch")
        return
    if op in REDUCE:
        axes = _attr(node, "axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = consts.get(node.input[1])
        if axes is None:
            if op != "ReduceSum" or opset < 13 or not int(_attr(node, "noop_with_empty_axes", 0)):
                raise _Mixes(node, "it reduces over every axis, the batch included")
            return
        in_rank = len(shapes[node.input[0]])
        if any(int(a) % in_rank == 0 for a in np.asarray(axes).reshape(-1)):
            raise _Mixes(node, "it reduces over axis 0, the batch")
        return
    if op == "Transpose":
        perm = _attr(node, "perm")
        if perm is None or int(perm[0]) != 0:
            raise _Mixes(node, f"perm {perm} moves the batch axis")
        return
    if op in ("Squeeze", "Unsqueeze"):
        axes = _attr(node, "axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = consts.get(node.input[1])
        in_shape = shapes[node.input[0]]
        if axes is None and op == "Squeeze":  # at batch 1 the batch would be squeezed too: name the axes
            ax = np.array([i for i, d in enumerate(in_shape) if d == 1], np.int64)
            if opset >= 13:
                node.input.append("")
                _set_const(model, node, 1, ax, consts)
            else:
                node.attribute.append(helper.make_attribute("axes", [int(a) for a in ax]))
            return
        r = len(in_shape) + (len(np.asarray(axes).reshape(-1)) if op == "Unsqueeze" else 0)
        if axes is not None and any(int(a) % r == 0 for a in np.asarray(axes).reshape(-1)):
            raise _Mixes(node, f"it {op.lower()}s axis 0, the batch")
        return
    if op == "Slice":
        if len(node.input) > 3 and node.input[3]:
            axes = consts.get(node.input[3])
            if axes is None:
                raise _Mixes(node, "its axes are computed at run time")
        else:
            axes = _attr(node, "axes")
            if axes is None:  # opset 10+: axes default to 0..len(starts)-1; opset < 10: attributes
                starts = consts.get(node.input[1]) if len(node.input) > 1 else _attr(node, "starts")
                axes = list(range(len(np.asarray(starts).reshape(-1)))) if starts is not None else [0]
        in_rank = len(shapes[node.input[0]])
        if any(int(a) % in_rank == 0 for a in np.asarray(axes).reshape(-1)):
            raise _Mixes(node, "it slices axis 0, the batch")
        return
    if op in ("Reshape", "Expand", "Tile"):
        v = node.input[1] if len(node.input) > 1 else ""
        if v in derived or not v:
            return
        if v not in consts:
            raise _Mixes(node, f"its {op == 'Tile' and 'repeats' or 'shape'} is computed at run time")
        target = consts[v].reshape(-1).astype(np.int64)
        if op == "Tile":
            if target[0] != 1:
                raise _Mixes(node, f"it repeats axis 0 {int(target[0])} times")
            return
        if op == "Expand":
            if target.size == rank and target[0] == n:
                _set_const(model, node, 1, np.concatenate([[1], target[1:]]).astype(np.int64), consts)
            return
        if target[0] == n:
            _set_const(model, node, 1, np.concatenate([[1], target[1:]]).astype(np.int64), consts)
        elif target[0] not in (0, -1):
            raise _Mixes(node, f"its target shape {tuple(int(t) for t in target)} does not keep the batch on axis 0")
        elif target[0] == -1 and -1 in target[1:]:
            raise _Mixes(node, "its target shape has two -1")
        return
    raise _Mixes(node, f"npuc does not know whether op {op} keeps the samples apart")
