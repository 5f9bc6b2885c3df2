"""ONNX model -> IR: opset check, static input shapes, shape inference, the node walk.

A model of opset 1 to 10 (the ONNX model zoo's Caffe2 exports are opset 9,
PyTorch's old exports opset 6) is first converted to opset `OPSET_CONVERT` by
ONNX's version converter, so the handlers see one form of each op (Upsample
becomes Resize, Slice's and Pad's attributes become inputs,
BatchNormalization loses `spatial`): the IR's opset, and a host node's, is
then the converted one. A model newer than `OPSET_MAX` is brought down to it:
relabelled when none of its ops changed after `OPSET_MAX` (the common case),
else by the version converter; an op neither can bring down is an error
naming it.

A fixed batch N > 1 compiles as batch 1 when every op keeps the samples
apart on axis 0 (`batch.py`); the program then runs once per sample.

Each ONNX node is handed to the handler registered under its op type (see
`registry.py`); this module only owns the order of things around that. A
node with constant inputs only is folded, and one no handler takes runs on
the host (`fallback.py`).
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper, shape_inference

from .. import limits
from ..ir import IR
from . import fallback, lift
from .batch import batch_one
from .registry import HANDLERS, FrontendError, Graph, Handler, NodeCtx, UnsupportedOp

OPSET_MIN, OPSET_MAX = 1, 21  # loadable; 1..10 are converted up, newer ones down (`_bring_into_range`)
OPSET_CONVERT = 11  # older models are converted up to this opset before translation
OPSET_NEWEST = onnx.defs.onnx_opset_version()  # what the installed onnx knows
DEFAULT_DOMAINS = ("", "ai.onnx")
InputShapes = dict[str, tuple[int, ...]]


def load_onnx(model: str | Path | onnx.ModelProto, input_shapes: InputShapes | None = None,
              allow_fallback: bool = True) -> IR:
    """Translate an ONNX model (path or ModelProto) into an IR with static shapes.

    `input_shapes` fixes dynamic input dimensions by input name; a dynamic
    batch dimension (dim 0) defaults to 1. A node the NPU cannot run becomes
    a `Host` node (`fallback.py`), or with `allow_fallback=False` an error.
    Raises `FrontendError` with a one-line message naming the file, node, op
    and opset.
    """
    source, proto = _read(model)
    opset = _default_opset(proto, source)
    _check_graph_structure(proto, source)
    proto, opset = _bring_into_range(proto, opset, source)
    initializers = {t.name: t for t in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    _check_input_shape_names(input_shapes or {}, inputs, source)
    static = {i.name: _static_input_shape(i, (input_shapes or {}).get(i.name), source) for i in inputs}
    _check_sizes(static, "input", source)
    if any(s[0] > 1 for s in static.values()):  # a fixed batch: batch 1, run once per sample, if the ops allow
        one = batch_one(proto, static, opset, source, lambda m, st: _infer_shapes(m, st, source))
        if one is not None:
            proto, static = one
    consts = _constants(proto, source)
    dtypes: dict[str, int] = {}
    shapes = _infer_shapes(proto, static, source, dtypes)
    producers = _producers(proto)
    _check_sizes(shapes, "value", source, producers)
    _check_working_set({**static, **{v: s for v, s in shapes.items() if v in producers}}, source)

    ir = IR(proto.graph.name or Path(source).stem or "model", opset)
    used = {v for n in proto.graph.node for v in n.input if v} | {o.name for o in proto.graph.output}
    graph = Graph(ir, source, opset, shapes, used, dtypes, allow_fallback)
    graph.consts.update(consts)
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
    if path.is_file():  # protobuf parsing holds the file and the parsed message
        limits.check(f"{path}: loading an ONNX model of {path.stat().st_size} bytes", 3 * path.stat().st_size)
    try:
        proto = onnx.load(str(path))
    except FileNotFoundError:
        raise FrontendError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FrontendError(f"{path}: is a directory, not an ONNX model file") from None
    except onnx.checker.ValidationError as e:  # external data that is missing or outside the model's folder
        raise FrontendError(f"{path}: {_first_line(e)}") from None
    except (DecodeError, ValueError, OSError) as e:  # a file that is not a serialized model
        raise FrontendError(f"{path}: not a readable ONNX model ({type(e).__name__}: {_first_line(e)})") from None
    if not proto.HasField("graph") or not proto.opset_import:  # protobuf reads a prefix cut at a field boundary
        missing = "graph" if not proto.HasField("graph") else "opset import"
        raise FrontendError(f"{path}: not a readable ONNX model (it has no {missing}: a truncated file?)")
    return str(path), proto


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# ---- validation of what the model claims, before anything is built from it -----------------------

def _check_graph_structure(proto: onnx.ModelProto, source: str) -> None:
    """Every node input is a graph input, an initializer or the output of an earlier node.

    ONNX requires nodes in topological order; a value read before the node
    producing it is a cycle or a misordered graph, and a value nothing
    produces is a missing initializer.
    """
    defined = {i.name for i in proto.graph.input} | {t.name for t in proto.graph.initializer}
    producer: dict[str, int] = {}
    for i, node in enumerate(proto.graph.node):
        for out in node.output:
            if out:
                producer.setdefault(out, i)
    for i, node in enumerate(proto.graph.node):
        name = node.name or (node.output[0] if node.output else f"#{i}")
        for value in node.input:
            if not value or value in defined:
                continue
            if value not in producer:
                raise FrontendError(f"{source}: node '{name}' (op {node.op_type}) reads {value!r}, which is "
                                    "not a graph input, an initializer or any node's output (missing initializer?)")
            cycle = _cycle(proto, producer, i)
            if cycle:
                raise FrontendError(f"{source}: the graph has a cycle: {' -> '.join(cycle)}")
            later = proto.graph.node[producer[value]]
            raise FrontendError(f"{source}: node '{name}' reads {value!r} before node "
                                f"'{later.name or later.output[0]}' produces it: nodes must be in topological order")
        defined.update(o for o in node.output if o)
    for out in proto.graph.output:
        if out.name not in defined:
            raise FrontendError(f"{source}: graph output {out.name!r} is not produced by any node")


def _cycle(proto: onnx.ModelProto, producer: dict[str, int], start: int) -> list[str]:
    """Node names around a cycle through node `start`, or [] when there is none."""
    g = nx.DiGraph()
    for i, node in enumerate(proto.graph.node):
        for value in node.input:
            if value in producer:
                g.add_edge(producer[value], i)
    try:
        edges = nx.find_cycle(g, start)
    except nx.NetworkXNoCycle:
        return []
    nodes = [proto.graph.node[a] for a, _ in edges] + [proto.graph.node[edges[0][0]]]
    return [f"'{n.name or n.output[0]}'" for n in nodes]


def _producers(proto: onnx.ModelProto) -> dict[str, str]:
    """Computed values -> the name of the node computing them.

    Values the loader folds at compile time are not computed: Constant and Shape outputs, and the
    outputs of a node whose inputs are all such constants (the zoo's ConstantOfShape weights)."""
    const = {t.name for t in proto.graph.initializer}
    out: dict[str, str] = {}
    for n in proto.graph.node:
        inputs = [v for v in n.input if v]
        if n.op_type in ("Constant", "Shape") or (inputs and all(v in const for v in inputs)):
            const.update(o for o in n.output if o)
            continue
        out.update((o, n.name or n.output[0]) for o in n.output if o)
    return out


# inputs where an infinite scalar is a bound, not a broken weight: Pad's constant_value, Clip's min/max
_BOUND_INPUTS = {"Pad": (2,), "Clip": (1, 2)}
_FLOAT = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16)


def _constants(proto: onnx.ModelProto, source: str) -> dict[str, np.ndarray]:
    """The initializers as arrays, checked: a sane size, decodable, finite, and not empty where an
    op npuc computes itself reads them (an empty `roi` of a host-run Resize is fine).

    Constant nodes' tensor values get the same checks (they become weights just the same).
    """
    tensors = [(t, t.name, f"initializer {t.name!r}") for t in proto.graph.initializer]
    for node in proto.graph.node:
        if node.op_type == "Constant" and node.domain in DEFAULT_DOMAINS and node.output:
            for a in node.attribute:
                if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                    tensors.append((a.t, node.output[0], f"node '{node.name or node.output[0]}' (op Constant) value"))
    # an empty constant in an optional input is how exporters spell an absent one (paddle2onnx's Resize
    # roi and scales); in a required input of an op npuc computes itself it is a broken model
    opset = _default_opset(proto, source)
    npu_read = {v for n in proto.graph.node if n.domain in DEFAULT_DOMAINS and n.op_type in HANDLERS
                and n.op_type != "Constant" for i, v in enumerate(n.input) if not _optional(n, i, opset)}
    bounds = {n.input[i] for n in proto.graph.node if n.domain in DEFAULT_DOMAINS
              for i in _BOUND_INPUTS.get(n.op_type, ()) if i < len(n.input)}
    total = 0
    for t, _, what in tensors:
        dims = tuple(int(d) for d in t.dims)
        if any(d < 0 for d in dims):
            raise FrontendError(f"{source}: {what} has a negative dimension: shape {dims}")
        try:
            itemsize = helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
        except (KeyError, ValueError, TypeError):
            raise FrontendError(f"{source}: {what} has an unknown data type {t.data_type}") from None
        nbytes = limits.elements(dims) * itemsize
        limits.check(f"{source}: {what} of shape {dims}", nbytes)
        total += nbytes
    # the weights are held as floats, as quantized integers and as DRAM data: a few copies
    limits.check(f"{source}: the model's {len(tensors)} constant tensors", 3 * total)
    out: dict[str, np.ndarray] = {}
    for t, value_name, what in tensors:
        try:
            value = numpy_helper.to_array(t)
        except Exception as e:  # noqa: BLE001 - protobuf content the decoder cannot make sense of
            raise FrontendError(f"{source}: {what} is corrupt: {_first_line(e)}") from None
        if value.size == 0 and value.ndim > 0 and value_name in npu_read:
            raise FrontendError(f"{source}: {what} is empty: shape {value.shape} (zero-sized tensors are not "
                                "supported)")
        ok = np.isfinite(value) if t.data_type in _FLOAT else None
        if ok is not None and value_name in bounds:  # a -inf Pad value or Clip bound is meaningful
            ok = ~np.isnan(value)
        if ok is not None and not np.all(ok):
            bad = np.argwhere(~ok)[0]
            raise FrontendError(f"{source}: {what} holds {value[tuple(bad)]} at index {tuple(int(i) for i in bad)}: "
                                "weights must be finite")
        if what.startswith("initializer"):
            out[t.name] = value
    return out


def _optional(node: onnx.NodeProto, slot: int, opset: int) -> bool:
    """Whether input `slot` of `node` is optional in its schema, at the model's opset or a later one:
    Resize's roi and scales are required inputs at opsets 11 and 12, so exporters (paddle2onnx) pass
    empty tensors for them there; from opset 13 on they are optional."""
    try:
        schema = onnx.defs.get_schema(node.op_type, OPSET_NEWEST, "")
    except onnx.defs.SchemaError:
        return False
    params = schema.inputs
    if not params:
        return False
    p = params[min(slot, len(params) - 1)]
    return p.option == onnx.defs.OpSchema.FormalParameterOption.Optional


def _check_sizes(shapes: dict[str, tuple[int, ...]], kind: str, source: str,
                 producers: dict[str, str] | None = None) -> None:
    """No computed tensor is empty, and each fits the memory limit as float32 (constants were
    checked by `_constants`)."""
    for name, shape in shapes.items():
        if producers is not None and name not in producers:
            continue
        where = f"{kind} {name!r}"
        if producers and name in producers:
            where += f" (output of node '{producers[name]}')"
        if any(d == 0 for d in shape):
            raise FrontendError(f"{source}: {where} has a zero-sized dimension: shape {shape} (zero-sized tensors "
                                "are not supported)")
        limits.check(f"{source}: {where} of shape {shape}", 4 * limits.elements(shape))


def _check_working_set(shapes: dict[str, tuple[int, ...]], source: str) -> None:
    """Calibration runs the float64 reference on batches of samples and keeps every intermediate."""
    if not shapes:
        return
    per_sample = sum(limits.elements(s[1:]) for s in shapes.values())
    name, shape = max(shapes.items(), key=lambda kv: limits.elements(kv[1]))
    # one sample at a time is the least calibration can do; larger batches shrink to fit (calibrate.py)
    limits.check(f"{source}: calibrating the model's {len(shapes)} tensors ({per_sample} values a sample, "
                 f"largest {name!r} of shape {shape}), even one sample at a time",
                 limits.REFERENCE_BYTES * per_sample)


def _default_opset(proto: onnx.ModelProto, source: str) -> int:
    versions = [o.version for o in proto.opset_import if o.domain in DEFAULT_DOMAINS]
    if not versions:
        raise FrontendError(f"{source}: the model imports no default-domain (ai.onnx) opset")
    opset = int(versions[0])
    if not OPSET_MIN <= opset <= OPSET_NEWEST:
        raise FrontendError(f"{source}: opset {opset} is not supported (supported: {OPSET_MIN}..{OPSET_NEWEST}; "
                            f"{OPSET_MIN}..{OPSET_CONVERT - 1} are converted to {OPSET_CONVERT}, "
                            f"{OPSET_MAX + 1}..{OPSET_NEWEST} down to {OPSET_MAX})")
    return opset


def _bring_into_range(proto: onnx.ModelProto, opset: int, source: str) -> tuple[onnx.ModelProto, int]:
    """The model at an opset the handlers know: converted up from 1..10, brought down from > 21."""
    if opset < OPSET_CONVERT:
        if opset < 7:
            proto = _legacy_prelu(proto)
        return _convert(proto, opset, OPSET_CONVERT, source), OPSET_CONVERT
    if opset <= OPSET_MAX:
        return proto, opset
    changed = _changed_since(proto, OPSET_MAX, opset)
    if not changed:  # every op reads the same at OPSET_MAX: only the import changes
        model = onnx.ModelProto()
        model.CopyFrom(proto)
        for o in model.opset_import:
            if o.domain in DEFAULT_DOMAINS:
                o.version = OPSET_MAX
        return model, OPSET_MAX
    try:
        return _convert(proto, opset, OPSET_MAX, source), OPSET_MAX
    except FrontendError as e:
        node, since = changed[0]
        raise FrontendError(f"{source}: node '{node.name or node.output[0]}' (op {node.op_type}, opset {opset}) "
                            f"changed in opset {since}, and converting the model down to opset {OPSET_MAX} "
                            f"failed ({str(e).split(': ', 1)[-1]})") from None


def _legacy_prelu(proto: onnx.ModelProto) -> onnx.ModelProto:
    """PRelu before opset 7 applies a (C,) slope per channel; from 7 on it broadcasts numpy-style
    (against the last axis), and the version converter leaves the slope as it is: shape it (C, 1, ...)."""
    prelu = [n for n in proto.graph.node if n.op_type == "PRelu" and n.domain in DEFAULT_DOMAINS]
    inits = {t.name: t for t in proto.graph.initializer}
    if not any(len(n.input) > 1 and n.input[1] in inits and len(inits[n.input[1]].dims) == 1 for n in prelu):
        return proto
    model, _ = _light(proto)
    try:
        inferred = shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - without ranks, leave the model to the converter
        return proto
    ranks = {vi.name: len(vi.type.tensor_type.shape.dim) for vi in [*inferred.graph.input, *inferred.graph.value_info]
             if vi.type.tensor_type.HasField("shape")}
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    inits = {t.name: t for t in out.graph.initializer}
    for node in out.graph.node:
        if node.op_type != "PRelu" or len(node.input) < 2 or node.input[1] not in inits:
            continue
        t, rank = inits[node.input[1]], ranks.get(node.input[0], 0)
        if len(t.dims) == 1 and t.dims[0] > 1 and rank > 2:
            t.dims[:] = [t.dims[0], *([1] * (rank - 2))]
            for vi in out.graph.input:  # an IR v3 model lists its initializers as inputs too
                if vi.name == t.name:
                    vi.type.tensor_type.shape.ClearField("dim")
                    for d in t.dims:
                        vi.type.tensor_type.shape.dim.add().dim_value = d
    return out


def _changed_since(proto: onnx.ModelProto, old: int, new: int) -> list[tuple[onnx.NodeProto, int]]:
    """The default-domain nodes whose op has a newer definition in (old, new], with that version."""
    out = []
    for node in proto.graph.node:
        if node.domain not in DEFAULT_DOMAINS:
            continue
        try:
            since = onnx.defs.get_schema(node.op_type, new, "").since_version
        except onnx.defs.SchemaError:
            continue  # an unknown op is reported as such by the node walk
        if since > old:
            out.append((node, since))
    return out


def _convert(proto: onnx.ModelProto, opset: int, target: int, source: str) -> onnx.ModelProto:
    """Convert a model to opset `target` (ONNX's version converter: node names kept)."""
    from onnx import version_converter

    light, big = _light(proto)
    try:
        out = version_converter.convert_version(light, target)
    except Exception as e:  # noqa: BLE001 - the converter raises bare RuntimeErrors naming the op
        raise FrontendError(f"{source}: converting opset {opset} to {target} failed: {_first_line(e)}") from None
    if target == OPSET_CONVERT:
        _keep_upsample_coordinates(out)
    added = {t.name for t in big} - {i.name for i in proto.graph.input}  # an IR v3 model keeps its own
    kept = [vi for vi in out.graph.input if vi.name not in added]
    del out.graph.input[:]
    out.graph.input.extend(kept)
    out.graph.initializer.extend(big)
    return out


def _keep_upsample_coordinates(model: onnx.ModelProto) -> None:
    """Upsample-9 and Resize-10 map output pixel x to input x / scale and round nearest down; the
    converter's Resize-11 omits the attributes, whose defaults (half_pixel, round_prefer_floor) would
    shift every linear upsampling by a quarter pixel. Set them to the old ops' meaning."""
    for node in model.graph.node:
        if node.op_type != "Resize":
            continue
        have = {a.name for a in node.attribute}
        if "coordinate_transformation_mode" not in have:
            node.attribute.append(helper.make_attribute("coordinate_transformation_mode", "asymmetric"))
        if "nearest_mode" not in have:
            node.attribute.append(helper.make_attribute("nearest_mode", "floor"))


LIGHT_MAX = 4096  # elements: a larger float initializer is only a shape to the converter and to inference


def _light(proto: onnx.ModelProto) -> tuple[onnx.ModelProto, list[onnx.TensorProto]]:
    """A copy of `proto` whose large float initializers are graph inputs of their type and shape, and
    those initializers. The version converter and shape inference serialize the whole model (VGG-19's
    550 MB several times over) but need only the weights' shapes; the constants they read (Reshape's
    shape, Resize's scales, Pad's pads) are small."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    small, big = [], []
    for t in model.graph.initializer:
        (big if t.data_type in _FLOAT and limits.elements(tuple(t.dims)) > LIGHT_MAX else small).append(t)
    if not big:
        return model, []
    names = {t.name for t in big}
    kept = [vi for vi in model.graph.input if vi.name not in names]  # IR v3 lists initializers as inputs
    del model.graph.input[:]
    model.graph.input.extend(kept)
    model.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in big)
    big = [t for t in proto.graph.initializer if t.name in names]
    small_copy = [onnx.TensorProto() for _ in small]
    for dst, src in zip(small_copy, small):
        dst.CopyFrom(src)
    del model.graph.initializer[:]
    model.graph.initializer.extend(small_copy)
    return model, big


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
        for i, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value") and d.dim_value <= 0 and given is None:
                what = "zero-sized" if d.dim_value == 0 else "negative"
                raise FrontendError(f"{source}: input {vi.name!r} has a {what} dimension {i} ({d.dim_value}); "
                                    "zero-sized tensors are not supported")
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
    if not shape:
        raise FrontendError(f"{source}: input {vi.name!r} is a scalar; inputs need a batch axis")
    return shape


def _infer_shapes(proto: onnx.ModelProto, static: InputShapes, source: str,
                  dtypes: dict[str, int] | None = None) -> dict[str, tuple[int, ...]]:
    """Run ONNX shape inference with the inputs made static; return every fully static shape.

    `dtypes`, when given, receives every inferred element type (a host op's output keeps its own)."""
    model, _ = _light(proto)
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
        if dtypes is not None and vi.type.tensor_type.elem_type:
            dtypes[vi.name] = vi.type.tensor_type.elem_type
    return shapes


def _translate(graph: Graph, node: onnx.NodeProto, domains: dict[str, int]) -> None:
    """Hand the node to its handler; fold it when its inputs are constants; else fall back to the host."""
    name = graph.unique_name(node.name or node.output[0])
    domain = node.domain or "ai.onnx"
    unsupported = (f"{graph.source}: node '{name}': unsupported op '{node.op_type}' "
                   f"(domain {domain}, opset {domains.get(domain, '?')})")
    if node.domain not in DEFAULT_DOMAINS:  # the host runs ONNX ops only: an unknown domain stays an error
        raise FrontendError(unsupported)
    ctx = NodeCtx(graph, node, name)
    if fallback.all_inputs_constant(ctx):
        fallback.fold_constant(ctx)
        return
    if fallback.fold_shape(ctx):
        return
    fn = HANDLERS.get(node.op_type)
    if fn is None:
        if not graph.allow_fallback:
            raise FrontendError(unsupported)
        fallback.emit_host(ctx, "no NPU lowering")
        return
    problem = fallback.npu_input_problem(ctx)
    if problem is not None:
        if not graph.allow_fallback:
            raise ctx.error(problem)
        fallback.emit_host(ctx, problem)
        return
    # a (1, C, L) node as its (1, C, 1, L) twin (Conv1d, pools, BN, activations): `lift.py`
    if lift.lift_1d(ctx, lambda twin: _handle(twin, fn, quiet=True) is None):
        return
    reason = _handle(ctx, fn, quiet=graph.allow_fallback)
    if reason is not None:
        fallback.emit_host(ctx, reason)


def _handle(ctx: NodeCtx, fn: Handler, quiet: bool) -> str | None:
    """Run the handler; None when it translated the node, else why the NPU cannot run it (the nodes it
    added removed). With `quiet` False a refusal raises."""
    g = ctx.graph
    before = set(g.ir.g.nodes)
    try:
        fn(ctx)
        _check_npu_ranks(ctx, before)
    except UnsupportedOp as e:
        g.ir.g.remove_nodes_from([n for n in g.ir.g.nodes if n not in before])
        for v in ctx.node.output:
            g.producer.pop(v, None)
        if not quiet:
            raise
        return e.reason
    return None


def _check_npu_ranks(ctx: NodeCtx, before: set[str]) -> None:
    """Refuse what a handler added when an NPU node of it is not a batch-1 4-D or 2-D tensor.

    NPU tensors are (1, C, H, W) maps or (1, K) vectors (a 3-D or 5-D tensor may be an alias
    `Reshape` of one); an elementwise handler would otherwise take a (1, L, D) residual Add of a
    transformer block (its inputs from host nodes) and the backend refuse it later, ending the compile
    instead of running the node on the host."""
    g = ctx.graph
    added = [n for n in g.ir.g.nodes if n not in before]

    def bad(n: str) -> bool:
        shape = g.ir.node(n)["shape"]
        if g.ir.op(n) == "Host":
            return False
        if g.ir.op(n) == "Reshape" and len(shape) >= 2:
            return shape[0] != 1
        return len(shape) not in (2, 4) or shape[0] != 1

    culprit = next((n for n in added if bad(n)), None)
    if culprit is None:
        return
    shape = tuple(g.ir.node(culprit)["shape"])
    raise ctx.unsupported(f"tensor shape {shape}: NPU tensors are 4-D (1, C, H, W) or 2-D (1, K)")


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
