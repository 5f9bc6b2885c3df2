"""The numpy golden model of every IR op, in float32 and in the NPU's integer arithmetic.

Two registries, one small function per op:

* `FLOAT_OPS` — the float model (fused activations included), used for
  calibration and for the fp32-equivalence check against ONNX Runtime;
* `QUANT_OPS` — the int8 model: int8 x int8 products summed exactly, the
  accumulator (plus bias) wrapped to int32 as the hardware adder does, then
  `npuc.isa.arith.requantize` per output channel. This is the definition the
  C simulator must equal bit for bit.

Every tensor is batched NCHW (or (N, K)); a batch of B samples through an IR
built for batch 1 is B independent runs. Convolutions loop over the kernel
taps with one matmul each (a few taps, big matmuls): integer matmuls run in
float64, exact because every partial sum stays far below 2^53.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import host
from .ir import IR, ActQ, IRError
from .isa.arith import add_requantize, requantize, wrap_int32

Node = dict[str, Any]
FloatFn = Callable[[Node, list[np.ndarray]], np.ndarray]
QuantFn = Callable[[Node, list[np.ndarray], list[ActQ]], np.ndarray]
FLOAT_OPS: dict[str, FloatFn] = {}
QUANT_OPS: dict[str, QuantFn] = {}


def float_op(op: str) -> Callable[[FloatFn], FloatFn]:
    def register(fn: FloatFn) -> FloatFn:
        FLOAT_OPS[op] = fn
        return fn

    return register


def quant_op(op: str) -> Callable[[QuantFn], QuantFn]:
    def register(fn: QuantFn) -> QuantFn:
        QUANT_OPS[op] = fn
        return fn

    return register


# -- shared window machinery ---------------------------------------------------

def pad_nchw(x: np.ndarray, pads: tuple[int, int, int, int], value: float) -> np.ndarray:
    """Pad the two spatial axes of NCHW `x` by (top, left, bottom, right) with `value`."""
    pt, pl, pb, pr = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=value)


def taps(xp: np.ndarray, attrs: Node, out_hw: tuple[int, int]) -> Iterator[tuple[int, int, np.ndarray]]:
    """For each kernel tap (i, j): the (N, C, OH, OW) view of padded `xp` that tap reads."""
    (kh, kw), (sh, sw), (dh, dw) = attrs["kernel"], attrs["strides"], attrs["dilations"]
    oh, ow = out_hw
    for i in range(kh):
        for j in range(kw):
            y0, x0 = i * dh, j * dw
            yield i, j, xp[:, :, y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw]


def conv_nhwc(xp: np.ndarray, w: np.ndarray, attrs: Node, out_hw: tuple[int, int], dtype: type) -> np.ndarray:
    """Sum over taps of x·W in `dtype`: returns (N, OH, OW, Cout), channel last.

    Grouped (``attrs["group"]`` = G, W of shape (Cout, Cin/G, kh, kw)): output channel o
    reads only the Cin/G input channels of its group o // (Cout/G)."""
    n, cout = xp.shape[0], w.shape[0]
    acc: np.ndarray = np.zeros((n, *out_hw, cout), dtype=dtype)
    wt: np.ndarray = w.astype(dtype)
    group = int(attrs.get("group", 1))
    if group != 1:
        wg = wt.reshape(group, cout // group, w.shape[1], *w.shape[2:])
        for i, j, view in taps(xp, attrs, out_hw):
            v = view.astype(dtype).reshape(n, group, w.shape[1], *out_hw)
            acc += np.einsum("ngchw,goc->nhwgo", v, wg[..., i, j], optimize=True).reshape(acc.shape)
        return acc
    for i, j, view in taps(xp, attrs, out_hw):
        acc += np.einsum("nchw,oc->nhwo", view.astype(dtype), wt[:, :, i, j], optimize=True)
    return acc


def _out_hw(node: Node) -> tuple[int, int]:
    return tuple(node["shape"][2:4])  # type: ignore[return-value]


def _act(y: np.ndarray, node: Node) -> np.ndarray:
    """A fused activation is a clamp to its float bounds (relu: [0, inf))."""
    act = node["attrs"].get("act")
    return y if act is None else np.clip(y, act[1], act[2])


def _keep_batch(x: np.ndarray, node: Node) -> np.ndarray:
    """Flatten/Reshape: the node's shape with the batch axis taken from `x` (batch preserved)."""
    return x.reshape((x.shape[0], *node["shape"][1:]))


def _requant(acc: np.ndarray, node: Node) -> np.ndarray:
    """int32 accumulators, channel last -> int8 through the node's QOp (bias added mod 2^32)."""
    q = node["qop"]
    acc = wrap_int32(np.asarray(acc, dtype=np.int64) + q.bias.astype(np.int64))
    return requantize(acc, q.mul, q.shift, q.zp_out, q.lo, q.hi, q.rounding)


# -- float ops -----------------------------------------------------------------

@float_op("Conv")
def conv_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    a, c = node["attrs"], node["consts"]
    acc = conv_nhwc(pad_nchw(ins[0], a["pads"], 0.0), c["W"], a, _out_hw(node), np.float64)
    return _act(acc + c["B"], node).transpose(0, 3, 1, 2).astype(np.float32)


@float_op("Gemm")
def gemm_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    c = node["consts"]
    y = ins[0].astype(np.float64) @ c["W"].T.astype(np.float64) + c["B"]
    return _act(y, node).astype(np.float32)


@float_op("BatchNormalization")
def batchnorm_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    c, x = node["consts"], ins[0]
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv = c["scale"] / np.sqrt(c["var"].astype(np.float64) + node["attrs"]["epsilon"])
    y = (x - c["mean"].reshape(shape)) * inv.reshape(shape) + c["B"].reshape(shape)
    return y.astype(np.float32)


@float_op("Relu")
def relu_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    return np.maximum(ins[0], 0).astype(np.float32)


@float_op("Clip")
def clip_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    return np.clip(ins[0], node["attrs"]["lo"], node["attrs"]["hi"]).astype(np.float32)


@float_op("MaxPool")
def maxpool_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    return _maxpool(pad_nchw(ins[0], node["attrs"]["pads"], -np.inf), node)


@float_op("GlobalAveragePool")
def gap_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    return ins[0].mean(axis=(2, 3), keepdims=True, dtype=np.float64).astype(np.float32)


@float_op("Flatten")
@float_op("Reshape")
def reshape_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    return _keep_batch(ins[0], node)


@float_op("Host")
def host_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    """An op the NPU cannot run, in float through onnx.reference (`npuc.host`)."""
    return host.run_batched(node["attrs"]["model"], ins)


@float_op("Add")
def add_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    """Two tensors of one shape, or (before `fold_batchnorm`) one tensor plus a per-channel constant B."""
    if len(ins) == 1:
        x = ins[0]
        return (x + node["consts"]["B"].reshape((1, -1) + (1,) * (x.ndim - 2))).astype(np.float32)
    return _act(ins[0].astype(np.float64) + ins[1], node).astype(np.float32)


@float_op("Sub")
def sub_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    return _act(ins[0].astype(np.float64) - ins[1], node).astype(np.float32)


def _maxpool(xp: np.ndarray, node: Node) -> np.ndarray:
    out = None
    for _, _, view in taps(xp, node["attrs"], _out_hw(node)):
        out = view.copy() if out is None else np.maximum(out, view)
    assert out is not None
    return out


# -- integer ops ---------------------------------------------------------------

@quant_op("Conv")
def conv_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    """Padding holds the input zero point, as the hardware's `ld fill=` writes it;
    the bias already subtracts zp_in·ΣW, so a padded tap contributes exactly zero."""
    a, q = node["attrs"], node["qop"]
    xp = pad_nchw(ins[0], a["pads"], in_q[0].zp)
    acc = conv_nhwc(xp, q.weight, a, _out_hw(node), np.float64)
    return _requant(acc.astype(np.int64), node).transpose(0, 3, 1, 2)


@quant_op("Gemm")
def gemm_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    acc = ins[0].astype(np.float64) @ node["qop"].weight.T.astype(np.float64)
    return _requant(acc.astype(np.int64), node)


@quant_op("MaxPool")
def maxpool_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    """Exact on int8; padding is -128, which never beats a real pixel."""
    return _maxpool(pad_nchw(ins[0], node["attrs"]["pads"], -128), node)


@quant_op("GlobalAveragePool")
def gap_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    """acc = Σ_HW q (int32), + bias (= -HW·zp_in), then requantize: the QOp's mul/shift is 1/HW."""
    acc = ins[0].astype(np.int64).sum(axis=(2, 3))
    return _requant(acc, node)[:, :, None, None]


@quant_op("Flatten")
@quant_op("Reshape")
def reshape_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    return _keep_batch(ins[0], node)


@quant_op("Host")
def host_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    """What the simulator driver does at a host point: dequantize the int8 inputs (integer tensors,
    whose `in_q` entry is None, pass as they are), run the op in float, quantize a float output
    (round half to even, saturate)."""
    real = [x if q is None else host.dequantize(x, q.scale, q.zp) for x, q in zip(ins, in_q)]
    y = host.run_batched(node["attrs"]["model"], real)
    q_out = node.get("act_q")
    if q_out is None:  # an integer output (ArgMax) is not quantized
        return y
    return host.quantize(y, q_out.scale, q_out.zp, f"host op {node['attrs']['onnx_op']}")


@quant_op("Add")
@quant_op("Sub")
def add_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    """`vadd`: (a - za)·ma + (b - zb)·mb formed exactly, rounded once (Sub: mb < 0); see quantize.py."""
    q = node["qop"]
    return add_requantize(ins[0], ins[1], in_q[0].zp, in_q[1].zp, int(q.mul[0]), int(q.mul[1]), int(q.shift[0]),
                          q.zp_out, q.lo, q.hi, q.rounding)


# -- running a graph -----------------------------------------------------------

def _check_feeds(ir: IR, feeds: dict[str, np.ndarray], dtype: type) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in ir.inputs:
        if name not in feeds:
            raise IRError(f"no value fed for input {name!r}")
        x = np.asarray(feeds[name])
        want = ir.node(name)["shape"]
        if x.ndim != len(want) or tuple(x.shape[1:]) != tuple(want[1:]):
            raise IRError(f"input {name!r}: got shape {x.shape}, expected (batch, {', '.join(map(str, want[1:]))})")
        if dtype is np.int8 and x.dtype != np.int8:
            raise IRError(f"input {name!r}: got dtype {x.dtype}, expected int8 (use quantize_input)")
        out[name] = x.astype(dtype, copy=False)
    return out


def _walk(ir: IR, values: dict[str, np.ndarray], step: Callable[[str, list[np.ndarray]], np.ndarray],
          intermediates: bool) -> dict[str, np.ndarray]:
    """Evaluate nodes in topological order; free a value once its last consumer ran."""
    pending = {n: len(ir.succs(n)) for n in ir.g.nodes}
    keep = set(ir.outputs)
    for name in ir.topo():
        if name in values:
            continue
        preds = ir.preds(name)
        values[name] = step(name, [values[p] for p in preds])
        if not intermediates:
            for p in preds:
                pending[p] -= 1
                if pending[p] == 0 and p not in keep:
                    del values[p]
    return values if intermediates else {o: values[o] for o in ir.outputs}


def run_float(ir: IR, feeds: dict[str, np.ndarray], intermediates: bool = False) -> dict[str, np.ndarray]:
    """Float32 outputs keyed by IR node name (every node's with `intermediates`)."""

    def step(name: str, ins: list[np.ndarray]) -> np.ndarray:
        node = ir.node(name)
        fn = FLOAT_OPS.get(node["op"])
        if fn is None:
            raise IRError(f"node {name!r}: the float reference has no op {node['op']!r}")
        return fn(node, ins)

    return _walk(ir, _check_feeds(ir, feeds, np.float32), step, intermediates)


def run_quantized(ir: IR, feeds_q: dict[str, np.ndarray], intermediates: bool = False) -> dict[str, np.ndarray]:
    """Int8 outputs of a quantized IR on int8 inputs, keyed by IR node name."""

    def step(name: str, ins: list[np.ndarray]) -> np.ndarray:
        node = ir.node(name)
        fn = QUANT_OPS.get(node["op"])
        if fn is None:
            raise IRError(f"node {name!r}: the integer reference has no op {node['op']!r}")
        if "act_q" not in node and node["dtype"] == "float32":
            raise IRError(f"node {name!r} is not quantized (no act_q)")
        # an integer tensor (a host ArgMax's) has no quantization: None
        return fn(node, ins, [ir.node(p).get("act_q") for p in ir.preds(name)])

    return _walk(ir, _check_feeds(ir, feeds_q, np.int8), step, intermediates)


def quantize_input(x: np.ndarray, act_q: ActQ) -> np.ndarray:
    """real -> int8: round half to even (as ONNX QuantizeLinear), add zp, saturate."""
    q = np.rint(np.asarray(x, dtype=np.float64) / act_q.scale) + act_q.zp
    return np.clip(q, act_q.qmin, act_q.qmax).astype(np.int8)


def dequantize(q: np.ndarray, act_q: ActQ) -> np.ndarray:
    return ((np.asarray(q, dtype=np.float64) - act_q.zp) * act_q.scale).astype(np.float32)


def run_quantized_float(ir: IR, feeds: dict[str, np.ndarray], intermediates: bool = False) -> dict[str, np.ndarray]:
    """Quantize float feeds, run the integer model, dequantize: the NPU's answer in real units."""
    feeds_q = {n: quantize_input(feeds[n], ir.node(n)["act_q"]) for n in ir.inputs if n in feeds}
    out = run_quantized(ir, feeds_q, intermediates)
    return {n: dequantize(q, ir.node(n)["act_q"]) for n, q in out.items()}


from . import reference_layout  # noqa: E402,F401  (registers Concat, ChannelSlice, Resize, Pad, ... )
from . import reference_conv  # noqa: E402,F401  (registers AveragePool, GlobalMaxPool, ConvTranspose)
from . import reference_vector  # noqa: E402,F401  (registers Lut, Mul)
