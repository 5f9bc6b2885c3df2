"""Host fallback: an ONNX op the NPU cannot run, executed in float on the host between NPU segments.

A host op is carried as a single-node ONNX model, serialized to bytes: the
node itself, its constant inputs as initializers, its run-time inputs as the
graph inputs (in the order the NPU hands them over) and its first output as
the graph output, each with its static shape. `onnx.reference` runs it, so the
semantics are ONNX's own and no op needs code here.

This module is the one place host execution lives. The numpy reference
(`npuc/reference.py`, float and integer models) and the simulator driver
(`sim/driver.py`) both call `Kernel.run` and the `quantize` / `dequantize`
below, on inputs copied into fresh contiguous arrays: the same function on
the same bytes, so the driver's host results equal the reference's bit for
bit (numpy reductions can round differently on differently strided views).

A batch of B samples is B runs of the node, one sample each — exactly what
the driver does, one program run per sample. Batched, a tensor of shape
(n0, ...) is its B samples stacked along axis 0: (B·n0, ...) (n0 = 1 for
every NPU tensor; MultiheadAttention's host tensors (L, 1, E) have n0 = L).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .isa.arith import dequantize_linear, quantize_linear

# element types a host op may consume and produce: float tensors are int8 in
# DRAM (quantized with the tensor's scale and zero point), integer ones raw
DTYPES: dict[int, str] = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64",
                          onnx.TensorProto.INT32: "int32", onnx.TensorProto.BOOL: "bool"}
ONNX_DTYPES = {v: k for k, v in DTYPES.items()}
QMIN, QMAX = -128, 127


class HostError(ValueError):
    """A host op cannot be built or run; the message names the op."""


@functools.cache
def _fixed_ops() -> list[type]:
    """Replacements for onnx.reference kernels that are wrong in the onnx we run on (1.23).
    Drop each once the minimum onnx has the upstream fix.

    LRN: the normalization window is summed over the batch axis instead of
    the channel axis (onnx/onnx#7805, fixed by #8331), so with batch 1 only
    channel 0 is normalized. Here the spec's formula:
    y = x / (bias + alpha/size · Σ x²)^beta over channels
    [c - floor((size-1)/2), c + ceil((size-1)/2)].

    Softmax and LogSoftmax before opset 13: the 2-D coercion at `axis` is
    ignored (see `_softmax`).

    BatchNormalization, opsets 9-13: the schema's default momentum sends
    every node down the training path, which normalizes with batch
    statistics (onnx/onnx#8442, open). Host ops are inference: here the
    running-statistics formula of every opset.
    """
    from onnx.reference.op_run import OpRun

    class LRN(OpRun):
        op_domain = ""

        def _run(self, x, alpha=None, beta=None, bias=None, size=None):  # type: ignore[no-untyped-def]
            c, lo, hi = x.shape[1], (size - 1) // 2, size // 2  # size // 2 == ceil((size - 1) / 2)
            sq = x * x
            window = np.stack([sq[:, max(0, i - lo):i + hi + 1].sum(axis=1) for i in range(c)], axis=1)
            return ((x / (bias + (alpha / size) * window) ** beta).astype(x.dtype),)

    class BatchNormalization(OpRun):
        op_domain = ""

        def _run(self, x, scale, bias, mean, var, epsilon=None, training_mode=None,  # type: ignore[no-untyped-def]
                 **_):
            if training_mode:
                raise RuntimeError("training_mode=1 is not supported (inference only)")
            c = (1, -1) + (1,) * (x.ndim - 2)
            y = scale.reshape(c) * (x - mean.reshape(c)) / np.sqrt(var.reshape(c) + epsilon) + bias.reshape(c)
            return (y.astype(x.dtype),)

    class Softmax(OpRun):
        op_domain = ""

        def _run(self, x, axis=None):  # type: ignore[no-untyped-def]
            return (_softmax(self, x, log=False),)

    class LogSoftmax(OpRun):
        op_domain = ""

        def _run(self, x, axis=None):  # type: ignore[no-untyped-def]
            return (_softmax(self, x, log=True),)

    return [LRN, BatchNormalization, Softmax, LogSoftmax]


def _softmax(op: Any, x: np.ndarray, log: bool) -> np.ndarray:
    """Softmax / LogSoftmax of every opset. onnx.reference applies opset 13's rule (one axis, default
    -1) to all; before 13 the input is coerced to 2-D at `axis` (default 1) and normalized over the
    flattened trailing axes: the zoo's (1, 1000, 1, 1) Softmax, opset 9, is over its 1000 channels."""
    opset = int(op.run_params["opsets"].get("", 13))
    given = [int(a.i) for a in op.onnx_node.attribute if a.name == "axis"]
    axis = given[0] if given else (-1 if opset >= 13 else 1)
    axis = axis + x.ndim if axis < 0 else axis
    y = x if opset >= 13 else x.reshape(int(np.prod(x.shape[:axis])), -1)
    a = -1 if opset < 13 else axis
    z = y - y.max(axis=a, keepdims=True)
    e = np.exp(z)
    out = z - np.log(e.sum(axis=a, keepdims=True)) if log else e / e.sum(axis=a, keepdims=True)
    return out.reshape(x.shape).astype(x.dtype)


@dataclass(frozen=True)
class ValueSpec:
    """A run-time value of a host op: its ONNX name, element type (`DTYPES`) and static shape."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    def info(self) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(self.name, ONNX_DTYPES[self.dtype], list(self.shape))


def build_model(node: onnx.NodeProto, inputs: Sequence[ValueSpec], output: ValueSpec,
                initializers: dict[str, np.ndarray], opset: int) -> bytes:
    """The serialized single-node model of a host op (see the module doc).

    Only the node's first output is a graph output: further outputs (Dropout's
    mask) are computed and dropped, which the caller checked is harmless.
    """
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()]
    graph = helper.make_graph([node], node.name or node.op_type, [v.info() for v in inputs],
                              [output.info()], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="npuc-host")
    # the lowest IR version that opset needs: onnx.reference accepts it, and old readers too
    model.ir_version = min(onnx.IR_VERSION, max(7, helper.find_min_ir_version_for([model.opset_import[0]])))
    return model.SerializeToString()


def infer_output(node: onnx.NodeProto, inputs: Sequence[ValueSpec], initializers: dict[str, np.ndarray],
                 opset: int, output: str | None = None) -> tuple[tuple[int, ...] | None, int | None]:
    """Static shape (or None) and element type (or None) of the node's output `output` (default: the
    first), by ONNX shape inference on the node alone with its constant inputs as initializers: the
    loader folds constants (Shape -> Reshape) that inference over the whole model could not see through."""
    output = output or node.output[0]
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()]
    graph = helper.make_graph([node], "infer", [v.info() for v in inputs],
                              [helper.make_empty_tensor_value_info(output)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - no answer is an answer: the caller reports the missing shape
        return None, None
    for vi in [*inferred.graph.output, *inferred.graph.value_info]:
        tt = vi.type.tensor_type
        if vi.name == output and tt.elem_type:
            dims = tt.shape.dim
            static = tt.HasField("shape") and all(d.HasField("dim_value") for d in dims)
            return (tuple(int(d.dim_value) for d in dims) if static else None), tt.elem_type
    return None, None


def evaluate_constant(node: onnx.NodeProto, initializers: dict[str, np.ndarray], outputs: Sequence[str],
                      opset: int) -> list[np.ndarray]:
    """Run a node whose inputs are all constants, at compile time: the values of `outputs`."""
    from onnx.reference import ReferenceEvaluator

    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()]
    graph = helper.make_graph([node], node.name or node.op_type, [],
                              [helper.make_empty_tensor_value_info(o) for o in outputs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    try:
        return [np.asarray(v) for v in ReferenceEvaluator(model, new_ops=_fixed_ops()).run(None, {})]
    except Exception as e:  # noqa: BLE001 - onnx.reference raises anything
        raise HostError(f"{type(e).__name__}: {e}") from None


@dataclass(frozen=True)
class Kernel:
    """A host op ready to run one sample: what it expects and what it returns."""

    op: str  # the ONNX op type
    name: str  # the node's name
    opset: int
    inputs: tuple[ValueSpec, ...]
    output: ValueSpec
    evaluator: object  # onnx.reference.ReferenceEvaluator

    def run(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """One sample: each array is reshaped to its declared input shape (same element count, ONNX
        order) and converted to its dtype; returns the output in its declared shape and dtype."""
        if len(arrays) != len(self.inputs):
            raise HostError(f"host op '{self.name}' ({self.op}): got {len(arrays)} inputs, expects "
                            f"{len(self.inputs)}")
        feeds = {}
        for spec, a in zip(self.inputs, arrays):
            a = np.asarray(a)
            if a.size != int(np.prod(spec.shape)):
                raise HostError(f"host op '{self.name}' ({self.op}): input {spec.name!r} has {a.size} elements, "
                                f"expects shape {spec.shape}")
            # a fresh C-contiguous copy: the same bytes and strides whoever calls
            feeds[spec.name] = np.array(a.reshape(spec.shape), dtype=spec.dtype, order="C", copy=True)
        try:
            (y,) = self.evaluator.run(None, feeds)  # type: ignore[attr-defined]
        except Exception as e:  # onnx.reference raises anything; name the op
            raise HostError(f"host op '{self.name}' ({self.op}, opset {self.opset}) failed: "
                            f"{type(e).__name__}: {e}") from e
        y = np.asarray(y)
        if y.shape != self.output.shape:
            raise HostError(f"host op '{self.name}' ({self.op}): output shape {y.shape}, declared "
                            f"{self.output.shape}")
        return y.astype(self.output.dtype, copy=False)


def _parse(model: bytes) -> tuple[onnx.ModelProto, list[ValueSpec]]:
    """The model and its graph inputs then output as ValueSpecs, checked to be a host op's."""
    try:
        proto = onnx.load_from_string(model)
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise HostError(f"host op model is not a serialized ONNX model ({type(e).__name__})") from None
    g = proto.graph
    if len(g.node) != 1 or len(g.output) != 1:
        raise HostError(f"host op model must hold one node and one output, holds {len(g.node)} and "
                        f"{len(g.output)}")
    node = g.node[0]
    specs = []
    for vi in [*g.input, *g.output]:
        tt = vi.type.tensor_type
        if tt.elem_type not in DTYPES or not all(d.HasField("dim_value") for d in tt.shape.dim):
            raise HostError(f"host op '{node.name}' ({node.op_type}): value {vi.name!r} is not a static "
                            f"{'/'.join(DTYPES.values())} tensor")
        specs.append(ValueSpec(vi.name, DTYPES[tt.elem_type], tuple(int(d.dim_value) for d in tt.shape.dim)))
    return proto, specs


def model_io(model: bytes) -> tuple[list[ValueSpec], ValueSpec]:
    """A host op model's run-time inputs, in order, and its output."""
    _, specs = _parse(model)
    return specs[:-1], specs[-1]


@functools.lru_cache(maxsize=1024)
def kernel(model: bytes) -> Kernel:
    """The runnable host op of a serialized single-node model, cached per model (bytes hash once)."""
    from onnx.reference import ReferenceEvaluator  # slow to import; only host ops need it

    proto, specs = _parse(model)
    node = proto.graph.node[0]
    opset = next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    try:
        evaluator = ReferenceEvaluator(proto, new_ops=_fixed_ops())
    except Exception as e:  # noqa: BLE001 - an op or attribute onnx.reference does not implement
        raise HostError(f"host op '{node.name}' ({node.op_type}, opset {opset}): onnx.reference cannot run it: "
                        f"{type(e).__name__}: {e}") from None
    return Kernel(node.op_type, node.name, opset, tuple(specs[:-1]), specs[-1], evaluator)


def run_batched(model: bytes, arrays: Sequence[np.ndarray]) -> np.ndarray:
    """B samples (each array: B blocks of its declared axis 0) through the op, one sample a run,
    outputs concatenated along axis 0 (see the module doc)."""
    k = kernel(model)
    if not arrays:
        return k.run([])
    n0 = k.inputs[0].shape[0]
    batch = max(1, arrays[0].shape[0] // max(n0, 1))
    runs = []
    for b in range(batch):
        runs.append(k.run([a[b * s.shape[0]:(b + 1) * s.shape[0]] for a, s in zip(arrays, k.inputs)]))
    return np.concatenate(runs)


def dequantize(q: np.ndarray, scale: float, zp: int) -> np.ndarray:
    """int8 -> float32 as DequantizeLinear (`npuc.isa.arith.dequantize_linear`)."""
    return dequantize_linear(q, scale, zp)


def quantize(x: np.ndarray, scale: float, zp: int, what: str = "host op") -> np.ndarray:
    """float -> int8 as QuantizeLinear (`npuc.isa.arith.quantize_linear`); NaN or infinity is an error."""
    x = np.asarray(x)
    if not np.all(np.isfinite(x)):
        raise HostError(f"{what}: output holds NaN or infinity; it cannot be quantized to int8")
    return quantize_linear(x, scale, zp, QMIN, QMAX)
