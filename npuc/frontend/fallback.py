"""What the loader does with a node no NPU handler takes: fold it, or run it on the host.

* A node whose inputs are all constants is evaluated now, at compile time
  (`onnx.reference`), and its outputs become constants: nothing runs later.
  So is a `Shape` of a tensor whose shape is static (every shape is, here):
  exporters and the version converter use Shape -> Reshape to keep ranks.
* A node with no handler, or whose handler refuses it (`UnsupportedOp`: a
  grouped conv, a run-time weight, ...), becomes an IR ``Host`` node when
  fallback is allowed: ``attrs = {"onnx_op", "opset", "reason", "model"}``
  with ``model`` the serialized single-node ONNX model `npuc.host` runs. Its
  ``dtype`` is the output's ("float32", or "int64" e.g. for ArgMax, "int32",
  "bool" for a comparison that feeds a Where).

NPU ops compute on float tensors quantized to int8; a node reading an
integer tensor (a host ArgMax's output) runs on the host too. A host tensor
may have any shape of rank >= 1 (MultiheadAttention's (L, 1, E) keeps the
batch on axis 1): the program is one sample's computation, and a batch of
samples is that many independent runs (`npuc.host`).
"""

from __future__ import annotations

import numpy as np
import onnx

from .. import host
from .registry import NodeCtx


def fold_constant(ctx: NodeCtx) -> None:
    """Evaluate a node whose inputs are all constants; its outputs become constants."""
    node = ctx.node
    inits = {v: ctx.graph.consts[v] for v in dict.fromkeys(node.input) if v}
    outputs = [o for o in node.output if o]
    try:
        values = host.evaluate_constant(node, inits, outputs, ctx.opset)
    except host.HostError as e:
        raise ctx.error(f"constant folding failed: {e}") from None
    for name, value in zip(outputs, values):
        ctx.graph.consts[name] = value


def fold_shape(ctx: NodeCtx) -> bool:
    """A Shape node of a statically shaped tensor becomes a constant; False when it is not one."""
    node = ctx.node
    if node.op_type != "Shape" or len(node.input) != 1 or not node.input[0]:
        return False
    shape = ctx.graph.shapes.get(node.input[0])
    producer = ctx.graph.producer.get(node.input[0])
    if producer is not None:
        shape = tuple(ctx.graph.ir.node(producer)["shape"])
    if shape is None:
        return False
    start, end = int(ctx.attr("start", 0)), ctx.attr("end")
    # ONNX clamps start and end into [0, rank] after adding rank to negatives: Python's slice rule
    ctx.graph.consts[node.output[0]] = np.array(shape, dtype=np.int64)[start:None if end is None else int(end)]
    return True


def npu_input_problem(ctx: NodeCtx) -> str | None:
    """Why the NPU cannot take this node's run-time inputs (an integer tensor), or None."""
    for v in ctx.node.input:
        producer = ctx.graph.producer.get(v) if v else None
        if producer is not None and ctx.graph.ir.node(producer)["dtype"] != "float32":
            return f"input {v!r} is {ctx.graph.ir.node(producer)['dtype']}; NPU ops take float tensors"
    return None


def emit_host(ctx: NodeCtx, reason: str) -> str:
    """Add the node as an IR Host node running `reason`'s op in float on the host: one Host node per
    output that is used (a Split's later outputs, YOLOv8's head), each a model of the node with that
    output as its graph output. Returns the first output's node."""
    node, g = ctx.node, ctx.graph
    for a in node.attribute:
        if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            raise ctx.error(f"cannot run on the host ({reason}): ops with subgraphs are not supported")
    node, preds, specs, inits = _inputs(ctx, reason)
    first = ""
    for k, value in enumerate(node.output):
        if value and (k == 0 or value in g.used_values):
            name = _emit_host_output(ctx, node, k, preds, specs, inits, reason)
            first = first or name
    return first


def _emit_host_output(ctx: NodeCtx, node: onnx.NodeProto, k: int, preds: list[str], specs: list[host.ValueSpec],
                      inits: dict[str, np.ndarray], reason: str) -> str:
    g, value = ctx.graph, node.output[k]
    shape, elem = g.shapes.get(value), g.dtypes.get(value)
    if shape is None or elem is None:
        alone = host.infer_output(node, specs, inits, ctx.opset, value)
        shape, elem = shape or alone[0], elem or alone[1]
    if shape is None:
        raise ctx.error(f"cannot run on the host ({reason}): ONNX shape inference gives no static shape "
                        f"for output {value!r}")
    if elem not in host.DTYPES:
        name = onnx.TensorProto.DataType.Name(elem) if elem else "unknown"
        raise ctx.error(f"cannot run on the host ({reason}): output {value!r} is {name}; host ops may "
                        f"produce {', '.join(host.DTYPES.values())} tensors")
    if not shape:
        raise ctx.error(f"cannot run on the host ({reason}): output {value!r} is a scalar; tensors need an axis "
                        "to stack samples on")
    model = host.build_model(node, specs, host.ValueSpec(value, host.DTYPES[elem], shape), inits, ctx.opset)
    attrs = {"onnx_op": node.op_type, "opset": ctx.opset, "reason": reason, "model": model}
    name = ctx.emit_output(k, "Host", preds, shape=shape, attrs=attrs)
    g.ir.node(name)["dtype"] = host.DTYPES[elem]
    return name


def _inputs(ctx: NodeCtx, reason: str) -> tuple[onnx.NodeProto, list[str], list[host.ValueSpec],
                                                dict[str, np.ndarray]]:
    """The node to serialize, its run-time inputs (IR producers, each once, and their specs) and its
    constants. The IR has one edge per producer, so two values of one producer (`y = Identity(x)`,
    then `Mul(x, y)`) are renamed to one graph input."""
    node, g = onnx.NodeProto(), ctx.graph
    node.CopyFrom(ctx.node)
    preds: list[str] = []
    specs: list[host.ValueSpec] = []
    inits: dict[str, np.ndarray] = {}
    for i, v in enumerate(node.input):
        if not v:
            continue
        if v in g.consts:
            inits[v] = g.consts[v]
            continue
        src = ctx.data(i)
        if src in preds:  # an input read twice (Mul(x, x)) is one graph input
            node.input[i] = specs[preds.index(src)].name
            continue
        d = g.ir.node(src)
        preds.append(src)
        specs.append(host.ValueSpec(v, d["dtype"], tuple(d["shape"])))
    if not preds:
        raise ctx.error(f"cannot run on the host ({reason}): the node has no run-time input")
    return node, preds, specs, inits


def all_inputs_constant(ctx: NodeCtx) -> bool:
    inputs = [v for v in ctx.node.input if v]
    return bool(inputs) and all(v in ctx.graph.consts for v in inputs)
