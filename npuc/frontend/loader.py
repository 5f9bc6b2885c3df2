"""ONNX model -> IR: opset check, static input shapes, shape inference, the node walk.

Each ONNX node is handed to the handler registered under its op type (see
`registry.py`); this module only owns the order of things around that.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper, shape_inference

from ..ir import IR
from .registry import HANDLERS, FrontendError, Graph, NodeCtx

OPSET_MIN, OPSET_MAX = 11, 21
DEFAULT_DOMAINS = ("", "ai.onnx")
InputShapes = dict[str, tuple[int, ...]]


def load_onnx(model: str | Path | onnx.ModelProto, input_shapes: InputShapes | None = None) -> IR:
    """Translate an ONNX model (path or ModelProto) into an IR with static shapes.

    `input_shapes` fixes dynamic input dimensions by input name; a dynamic
    batch dimension (dim 0) defaults to 1. Raises `FrontendError` with a
    one-line message naming the file, node, op and opset.
    """
    source, proto = _read(model)
    opset = _default_opset(proto, source)
    initializers = {t.name: t for t in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    _check_input_shape_names(input_shapes or {}, inputs, source)
    static = {i.name: _static_input_shape(i, (input_shapes or {}).get(i.name), source) for i in inputs}
    shapes = _infer_shapes(proto, static, source)

    ir = IR(proto.graph.name or Path(source).stem or "model", opset)
    used = {v for n in proto.graph.node for v in n.input if v} | {o.name for o in proto.graph.output}
    graph = Graph(ir, source, opset, shapes, used)
    graph.consts.update({name: numpy_helper.to_array(t) for name, t in initializers.items()})
    for inp in inputs:
        graph.producer[inp.name] = ir.add(inp.name, "Input", shape=static[inp.name])
        ir.inputs.append(inp.name)

    domains = {o.domain or "ai.onnx": int(o.version) for o in proto.opset_import}
    for node in proto.graph.node:
        _translate(graph, node, domains)
    _set_outputs(graph, proto, source)
    _prune(ir)
    return ir


def _read(model: str | Path | onnx.ModelProto) -> tuple[str, onnx.ModelProto]:
    if isinstance(model, onnx.ModelProto):
        return (model.graph.name or "<model>"), model
    path = Path(model)
    try:
        return str(path), onnx.load(str(path))
    except FileNotFoundError:
        raise FrontendError(f"{path}: no such file") from None
    except (DecodeError, ValueError, OSError) as e:  # a file that is not a serialized model
        raise FrontendError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from None


def _default_opset(proto: onnx.ModelProto, source: str) -> int:
    versions = [o.version for o in proto.opset_import if o.domain in DEFAULT_DOMAINS]
    if not versions:
        raise FrontendError(f"{source}: the model imports no default-domain (ai.onnx) opset")
    opset = int(versions[0])
    if not OPSET_MIN <= opset <= OPSET_MAX:
        raise FrontendError(f"{source}: opset {opset} is not supported (supported: {OPSET_MIN}..{OPSET_MAX})")
    return opset


def _check_input_shape_names(given: InputShapes, inputs: list[onnx.ValueInfoProto], source: str) -> None:
    names = [i.name for i in inputs]
    for name in given:
        if name not in names:
            raise FrontendError(f"{source}: --input-shape names {name!r}, but the inputs are {', '.join(names)}")


def _static_input_shape(vi: onnx.ValueInfoProto, given: tuple[int, ...] | None, source: str) -> tuple[int, ...]:
    """Resolve one graph input's shape from the model, `given`, and the batch-1 default."""
    tt = vi.type.tensor_type
    if tt.elem_type != onnx.TensorProto.FLOAT:
        dtype = onnx.TensorProto.DataType.Name(tt.elem_type)
        raise FrontendError(f"{source}: input {vi.name!r} has type {dtype}; only float32 inputs are supported")
    if not tt.HasField("shape"):
        if given is None:
            raise FrontendError(f"{source}: input {vi.name!r} has no shape; pass --input-shape {vi.name}:1,3,H,W")
        dims: list[int | str] = ["?"] * len(given)
    else:
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or "?")
                for d in tt.shape.dim]
    if given is not None:
        given = tuple(int(d) for d in given)
        fits = len(given) == len(dims) and all(not isinstance(d, int) or d == g for d, g in zip(dims, given))
        if not fits or min(given, default=1) < 1:
            raise FrontendError(f"{source}: --input-shape {vi.name}:{','.join(map(str, given))} does not match "
                                f"the model's input shape ({', '.join(map(str, dims))})")
        shape = given
    else:
        if dims and not isinstance(dims[0], int):
            dims[0] = 1  # a dynamic batch defaults to 1
        for i, d in enumerate(dims):
            if not isinstance(d, int):
                hint = ",".join(str(x) if isinstance(x, int) else str(x).upper() for x in dims)
                raise FrontendError(f"{source}: input {vi.name!r} has a dynamic dimension {i} ({d!r}); "
                                    f"pass --input-shape {vi.name}:{hint}")
        shape = tuple(int(d) for d in dims)
    if len(shape) not in (2, 4):
        raise FrontendError(f"{source}: input {vi.name!r} has shape {shape}; only 4-D NCHW and 2-D inputs "
                            "are supported")
    return shape


def _infer_shapes(proto: onnx.ModelProto, static: InputShapes, source: str) -> dict[str, tuple[int, ...]]:
    """Run ONNX shape inference with the inputs made static; return every fully static shape."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    for vi in model.graph.input:
        if vi.name in static:
            vi.type.tensor_type.ClearField("shape")
            for d in static[vi.name]:
                vi.type.tensor_type.shape.dim.add().dim_value = d
    del model.graph.value_info[:]
    for out in model.graph.output:  # stale symbolic output shapes would clash with the static ones
        out.type.tensor_type.ClearField("shape")
    try:
        model = shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (shape_inference.InferenceError, onnx.checker.ValidationError) as e:  # both name the node
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FrontendError(f"{source}: ONNX shape inference failed: {first}") from None
    shapes = {}
    for vi in [*model.graph.value_info, *model.graph.output]:
        dims = vi.type.tensor_type.shape.dim
        if vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(int(d.dim_value) for d in dims)
    return shapes


def _translate(graph: Graph, node: onnx.NodeProto, domains: dict[str, int]) -> None:
    name = graph.unique_name(node.name or node.output[0])
    if node.domain not in DEFAULT_DOMAINS or node.op_type not in HANDLERS:
        domain = node.domain or "ai.onnx"
        raise FrontendError(f"{graph.source}: node '{name}': unsupported op '{node.op_type}' "
                            f"(domain {domain}, opset {domains.get(domain, '?')})")
    HANDLERS[node.op_type](NodeCtx(graph, node, name))


def _set_outputs(graph: Graph, proto: onnx.ModelProto, source: str) -> None:
    ir = graph.ir
    for out in proto.graph.output:
        node = graph.producer.get(out.name)
        if node is None:
            what = "a constant" if out.name in graph.consts else "not produced by any node"
            raise FrontendError(f"{source}: graph output {out.name!r} is {what}")
        if ir.op(node) == "Input":
            raise FrontendError(f"{source}: graph output {out.name!r} is the graph input {node!r} unchanged")
        if node in ir.outputs:
            raise FrontendError(f"{source}: graph outputs {ir.node(node)['value']!r} and {out.name!r} "
                                "are the same tensor")
        ir.node(node)["value"] = out.name
        ir.outputs.append(node)


def _prune(ir: IR) -> None:
    """Drop nodes no graph output depends on (the inputs stay)."""
    live = set(ir.outputs) | set(ir.inputs)
    for out in ir.outputs:
        live |= nx.ancestors(ir.g, out)
    ir.g.remove_nodes_from([n for n in list(ir.g.nodes) if n not in live])
