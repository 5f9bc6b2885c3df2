"""Export a quantized IR as an ONNX model that ONNX Runtime runs with the NPU's arithmetic.

The export is our independent oracle: ONNX Runtime (ORT) running it must give
the simulator's int8 outputs. Two forms, the same scales and zero points:

* ``qdq`` — the standard QDQ model a quantization tool writes: every tensor
  the NPU holds is a QuantizeLinear/DequantizeLinear pair with the IR's
  scale and zero point; weights are int8 initializers behind a per-channel
  DequantizeLinear (axis 0); the bias is the int32 ``rint(B / (s_in·s_w))``
  (the IR's bias with the input zero-point fold undone, since DQ already
  subtracts zp_in) behind a DequantizeLinear of scale ``s_in·s_w``; a fused
  ReLU/Clip becomes Relu, or Clip at the dequantized saturation bounds, so
  QuantizeLinear reproduces the requantizer's clamp. ORT either runs the float
  ops on dequantized values or fuses them into QLinearConv/QGemm; both round
  half to even after an int32→float32 multiply, so this form is exact for
  pow2 scales and ``half_even`` while partial sums stay below 2^24 (see
  `ORACLE_NOTES` for every op). Where a float spelling would not round like
  the NPU — a Lut's table (a sampled function), an AveragePool's per-pixel
  31-bit reciprocals, a Requant (DQ -> Q, which ORT's optimizer merges into
  the previous Q) — the QDQ form embeds the integer form between the
  neighbouring Q and DQ (an "integer island"). A Host node (an op left on the
  host) is its ONNX op in float between DQ and Q in both forms, as the
  simulator's driver runs it.
* ``integer`` (`npuc.export_integer`) — ConvInteger / MatMulInteger /
  ReduceSum give the int32 accumulator exactly; every requantizer (`vrq`,
  `vadd`, `vmul`) is spelled in int64 ONNX ops (Add, Mul, Mod, Div, Equal
  ...), a Lut is a Gather of its table, layout ops move the int8 tensors, so
  any multiplier, shift and rounding mode is exact in ORT whatever the
  optimization level.

Multi-input ops (Add, Sub, Mul, Concat) read their IR inputs in slot order:
the emitters' methods take one value per IR input.

Both take the model's float input (QuantizeLinear with the input's scale, as
the simulator's driver does) and give float outputs (DequantizeLinear of the
int8 result), or the raw int8 tensors with ``int8_outputs=True``.

Run the oracle through `ort_session` (int8 kernels kept: see there).

Assumption shared with the numpy reference's overflow-free path: acc + bias
fits int32 (the hardware wraps; the export does not emulate the wrap).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..host import ONNX_DTYPES
from ..ir import IR, MatQ
from .integer import (
    OPSET,
    ExportError,
    _Builder,
    _conv_attrs,
    _dequantize,
    _host_float,
    _Integer,
    _quantize,
    _window_attrs,
)

FORMS = ("qdq", "integer")

# What the QDQ form guarantees per op, against the simulator (ORT 1.32, x86, optimizations off and on).
# The integer form is exact for every op, scale rule and rounding mode.
ORACLE_NOTES: dict[str, str] = {
    "Conv": "exact for pow2 scales and half_even while |partial sums| < 2^24 (ORT sums in float32 "
            "or requantizes int32 via a float32 multiply); above that rare 1-LSB differences; with "
            "fixed_point/float scales ORT's float32 multiplier differs from the 31-bit one: rare 1 LSB. "
            "Grouped and depthwise convolutions (attrs group) the same, through Conv's group",
    "Gemm": "as Conv",
    "ConvTranspose": "as Conv: a float ConvTranspose of the dequantized int8 input and weights (weights "
                     "dequantized per output channel in the IR's layout, then reordered to ONNX's)",
    "MaxPool": "exact (a max commutes with any monotone requantization)",
    "GlobalMaxPool": "exact (as MaxPool)",
    "GlobalAveragePool": "exact when H·W is a power of two; otherwise the NPU multiplies by a 31-bit "
                         "reciprocal and ORT divides in float32: 1 LSB where the mean is within 2^-23 "
                         "of a rounding tie",
    "AveragePool": "exact for every rule: an integer island (window sum by a depthwise ConvInteger of "
                   "ones, each pixel's count's (mul, shift) in int64 ops) — ORT's float AveragePool "
                   "divides by counts that are not powers of two (borders, 3x3) in float32",
    "Lut": "exact for every rule: an integer island, Gather of the int8 table at q + 128 (per-channel "
           "tables flattened, c·256 + q + 128); the sampled function has no float op ORT would round alike",
    "Flatten": "exact (no arithmetic)",
    "Reshape": "exact (no arithmetic)",
    "Concat": "exact (no arithmetic: every input carries the output's act_q)",
    "ChannelSlice": "exact (no arithmetic: Slice on axis 1)",
    "ChannelShuffle": "exact (no arithmetic: Reshape, Transpose, Reshape)",
    "Resize": "exact (no arithmetic: Resize nearest, asymmetric coordinates, floor = replication)",
    "Pad": "exact (constant Pad with the dequantized pad level)",
    "EdgePad": "exact (no arithmetic: Pad mode edge or reflect)",
    "Add": "exact for pow2 scales and half_even: DQ(a) + DQ(b) is exact in float32 while the sum needs "
           "< 24 bits at the finer scale (input scales within 2^15 of each other), and QuantizeLinear then "
           "divides by a power of two and rounds half to even, as vadd does; ORT's fused QLinearAdd "
           "(optimizations on) computes the same exact sum in float32. Measured exact, opts off and on "
           "(tests/e2e/test_residual.py). fixed_point/float scales: vadd's 31-bit multipliers against ORT's "
           "float32 scale ratios, 1 LSB possible near a rounding tie (measured 0 of 163840 Add outputs)",
    "Sub": "as Add",
    "Requant": "exact for every rule: an integer island (one-input vadd in int64 ops); spelled DQ -> Q, "
               "ORT's optimizer merges the previous Q and this Q into one rounding of the float value",
    "Host": "within 1 LSB: the op's ONNX node in float between DQ and Q (both forms), ORT's kernel against "
            "the driver's onnx.reference; differs only where float32 results straddle a rounding tie",
    "Mul": "exact for pow2 scales and half_even: DQ(a)·DQ(b) is exact in float32 (two 9-bit centred "
           "values), QuantizeLinear divides by a power of two and rounds half to even, as vmul; ORT's "
           "fused QLinearMul (optimizations on) the same. fixed_point/float scales: vmul's 31-bit "
           "multiplier against a float32 ratio, 1 LSB possible near a rounding tie",
}


def default_form(rounding: str) -> str:
    """QDQ where ORT's own rounding (half to even) is the hardware's; the integer form otherwise."""
    return "qdq" if rounding == "half_even" else "integer"


def _unfolded_bias(q: MatQ) -> np.ndarray:
    """rint(B / (s_in·s_w)): the IR's bias with the −zp_in·ΣWq fold undone."""
    wsum = q.weight.reshape(q.weight.shape[0], -1).astype(np.int64).sum(axis=1)
    bias = q.bias.astype(np.int64) + q.zp_in * wsum
    if np.any(np.abs(bias) >= 1 << 31):
        raise ExportError("the unfolded bias (input zero point fold undone) does not fit int32")
    return bias.astype(np.int32)


class _Qdq:
    """The QDQ form: one method per IR op, mapping the inputs' dequantized values to this node's."""

    def __init__(self, b: _Builder, ir: IR) -> None:
        self.b, self.ir = b, ir
        self.int8: dict[str, str] = {}  # IR node -> its QuantizeLinear output
        self.integer = _Integer(b, ir)  # integer islands and the layout ops, which work on any dtype

    def requantized(self, name: str, y: str) -> str:
        """Q then DQ with the node's act_q: the int8 tensor the NPU holds, in real units."""
        q = self.ir.node(name)["act_q"]
        self.int8[name] = _quantize(self.b, y, q, name)
        return _dequantize(self.b, self.int8[name], q, name)

    def island(self, name: str, *_: str) -> str:
        """The integer form of the node on its inputs' int8 tensors (the Q outputs), then DQ."""
        ins = [self.int8[p] for p in self.ir.preds(name)]
        self.int8[name] = getattr(self.integer, self.ir.op(name))(name, *ins)
        return _dequantize(self.b, self.int8[name], self.ir.node(name)["act_q"], name)

    def Input(self, name: str, x: str) -> str:
        return self.requantized(name, x)

    def Const(self, name: str) -> str:
        """The int8 constant (an initializer), then DQ."""
        self.int8[name] = self.integer.Const(name)
        return _dequantize(self.b, self.int8[name], self.ir.node(name)["act_q"], name)

    def Host(self, name: str, *xs: str) -> str:
        """The host op in float on the dequantized inputs, then Q/DQ (an integer output stays raw)."""
        y = _host_float(self.b, name, self.ir.node(name)["attrs"]["model"], list(xs),
                        [self.ir.node(p)["shape"] for p in self.ir.preds(name)])
        return y if self.ir.node(name).get("act_q") is None else self.requantized(name, y)

    def _weights(self, name: str, bias_q: np.ndarray) -> tuple[str, str]:
        """Per-output-channel DQ of the IR's int8 weights (axis 0), and of the int32 bias at s_in·s_w."""
        b, node = self.b, self.ir.node(name)
        q: MatQ = node["qop"]
        s_in = self.ir.node(self.ir.preds(name)[0])["act_q"].scale
        cout = q.weight.shape[0]
        w = b.op("DequantizeLinear", [b.const(f"{name}.Wq", q.weight.astype(np.int8)),
                                      b.const(f"{name}.Wscale", q.w_scale.astype(np.float32)),
                                      b.const(f"{name}.Wzp", np.zeros(cout, np.int8))], f"{name}.W", axis=0)
        bias = b.op("DequantizeLinear", [b.const(f"{name}.Bq", bias_q.astype(np.int32)),
                                         b.const(f"{name}.Bscale", np.float32(s_in) * q.w_scale.astype(np.float32)),
                                         b.const(f"{name}.Bzp", np.zeros(cout, np.int32))], f"{name}.B", axis=0)
        return w, bias

    def _activation(self, name: str, y: str) -> str:
        """The requantizer's clamp [lo, hi] as a float op before QuantizeLinear (none when it is int8's)."""
        node, b = self.ir.node(name), self.b
        q, act_q = node["qop"], node["act_q"]
        if (q.lo, q.hi) == (act_q.qmin, act_q.qmax):
            return y
        if q.hi == act_q.qmax and q.lo == act_q.zp:
            return b.op("Relu", [y], f"{name}.relu")  # ORT drops it when zp = -128, fusing QLinearConv
        # bounds on exact quantization levels: rint(clip(y, a, b) / s) == clip(rint(y / s), lo, hi)
        lo = b.const(f"{name}.lo", np.float32((q.lo - act_q.zp) * act_q.scale))
        hi = b.const(f"{name}.hi", np.float32((q.hi - act_q.zp) * act_q.scale))
        return b.op("Clip", [y, lo, hi], f"{name}.clip")

    # -- weighted ops ----------------------------------------------------------------------

    def Conv(self, name: str, x: str) -> str:
        w, bias = self._weights(name, _unfolded_bias(self.ir.node(name)["qop"]))
        y = self.b.op("Conv", [x, w, bias], f"{name}.conv", **_conv_attrs(self.ir.node(name)["attrs"]))
        return self.requantized(name, self._activation(name, y))

    def Gemm(self, name: str, x: str) -> str:
        w, bias = self._weights(name, _unfolded_bias(self.ir.node(name)["qop"]))
        y = self.b.op("Gemm", [x, w, bias], f"{name}.gemm", transB=1)
        return self.requantized(name, self._activation(name, y))

    def ConvTranspose(self, name: str, x: str) -> str:
        """The IR's bias is already rint(B / (s_in·s_w)); its weights (Cout, Cin/g, kh, kw) are dequantized
        per output channel, then reordered to ONNX's (Cin, Cout/g, kh, kw)."""
        b, node = self.b, self.ir.node(name)
        q: MatQ = node["qop"]
        a = node["attrs"]
        w, bias = self._weights(name, q.bias)
        cout, cig, kh, kw = q.weight.shape
        g = int(a["group"])
        w = b.op("Reshape", [w, b.const(f"{name}.Wg", np.array([g, cout // g, cig, kh, kw], np.int64))], f"{name}.Wg")
        w = b.op("Transpose", [w], f"{name}.Wt", perm=[0, 2, 1, 3, 4])
        w = b.op("Reshape", [w, b.const(f"{name}.Wonnx", np.array([g * cig, cout // g, kh, kw], np.int64))],
                 f"{name}.Wonnx")
        pt, pl, pb, pr = a["pads"]
        y = b.op("ConvTranspose", [x, w, bias], f"{name}.convt", kernel_shape=[kh, kw], strides=list(a["strides"]),
                 dilations=list(a["dilations"]), pads=[pt, pl, pb, pr], group=g,
                 output_padding=list(a.get("output_padding", (0, 0))))
        return self.requantized(name, self._activation(name, y))

    # -- pooling ---------------------------------------------------------------------------

    def MaxPool(self, name: str, x: str) -> str:
        a = _window_attrs(self.ir.node(name)["attrs"])
        return self.requantized(name, self.b.op("MaxPool", [x], f"{name}.maxpool", **a))

    def GlobalMaxPool(self, name: str, x: str) -> str:
        return self.requantized(name, self.b.op("GlobalMaxPool", [x], f"{name}.gmp"))

    def GlobalAveragePool(self, name: str, x: str) -> str:
        return self.requantized(name, self.b.op("GlobalAveragePool", [x], f"{name}.gap"))

    AveragePool = island

    # -- vector unit -----------------------------------------------------------------------

    def Add(self, name: str, x: str, y: str) -> str:
        op = self.ir.op(name)
        return self.requantized(name, self._activation(name, self.b.op(op, [x, y], f"{name}.{op.lower()}")))

    Sub = Add
    Mul = Add  # (N, C, 1, 1) times (N, C, H, W) broadcasts in ONNX too

    # a Requant as DQ -> Q would be the model's own words, but ORT's optimizer (DoubleQDQPairsRemover)
    # merges Q1 -> DQ1 -> Q2 into one Q2 of the float value: one rounding instead of the NPU's two
    Requant = Lut = island

    # -- layout: the integer form's ops, on the dequantized values -----------------------------

    def layout(self, name: str, *xs: str) -> str:
        """Flatten, Reshape, Concat, ChannelSlice, ChannelShuffle, Resize, EdgePad: the integer form's op on
        floats."""
        return self.requantized(name, getattr(self.integer, self.ir.op(name))(name, *xs))

    Flatten = Reshape = Concat = ChannelSlice = ChannelShuffle = Resize = EdgePad = layout

    def Pad(self, name: str, x: str) -> str:
        a = self.ir.node(name)["attrs"]
        q = self.ir.node(self.ir.preds(name)[0])["act_q"]
        if not any(a["pads"]):
            return self.requantized(name, self.b.op("Identity", [x], f"{name}.pad"))
        pt, pl, pb, pr = a["pads"]
        value = np.float32((q.code(float(a["value"])) - q.zp) * q.scale)  # the level the NPU writes
        y = self.b.op("Pad", [x, self.b.const(f"{name}.pads", np.array([0, 0, pt, pl, 0, 0, pb, pr], np.int64)),
                              self.b.const(f"{name}.fill", value)], f"{name}.pad")
        return self.requantized(name, y)


def export_qdq(ir: IR, form: str | None = None, int8_outputs: bool = False) -> onnx.ModelProto:
    """The quantized `ir` as an ONNX model (see the module docstring); `form` None picks by rounding."""
    rounding = _rounding(ir)
    form = form or default_form(rounding)
    if form not in FORMS:
        raise ExportError(f"unknown export form {form!r} (choices: {', '.join(FORMS)})")
    b = _Builder()
    emitter = (_Qdq if form == "qdq" else _Integer)(b, ir)
    values: dict[str, str] = {}
    graph_inputs, graph_outputs = [], []
    for name in ir.inputs:
        node = ir.node(name)
        graph_inputs.append(helper.make_tensor_value_info(node["value"], TensorProto.FLOAT,
                                                          ["N", *node["shape"][1:]]))
        b._names.add(node["value"])
    for name in ir.topo():
        node = ir.node(name)
        fn = getattr(emitter, node["op"], None)
        if fn is None:
            raise ExportError(f"node {name!r} (op {node['op']}): no {form} export")
        xs = [node["value"]] if node["op"] == "Input" else [values[p] for p in ir.preds(name)]
        values[name] = fn(name, *xs)
    for name in ir.outputs:
        node = ir.node(name)
        value = node["value"]
        final = emitter.int8.get(name, values[name]) if int8_outputs else values[name]
        raw = node.get("act_q") is None  # an integer tensor (a host ArgMax's), a float one (`float_out`): as it is
        if form == "integer" and not int8_outputs and not raw:
            final = _dequantize(b, final, node["act_q"], f"{name}.out")
        b.rename(final, value)
        if raw:
            dtype = ONNX_DTYPES[node["dtype"]]
        else:
            dtype = TensorProto.INT8 if int8_outputs else TensorProto.FLOAT
        graph_outputs.append(helper.make_tensor_value_info(value, dtype, ["N", *node["shape"][1:]]))
    graph = helper.make_graph(b.nodes, f"{ir.name}_{form}", graph_inputs, graph_outputs, b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="npuc export-qdq")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _rounding(ir: IR) -> str:
    modes = {ir.node(n)["qop"].rounding for n in ir.g.nodes if "qop" in ir.node(n)}
    if len(modes) > 1:
        raise ExportError(f"mixed rounding modes {sorted(modes)} in one IR")
    return modes.pop() if modes else "half_even"


def ort_session(model: onnx.ModelProto, optimize: bool) -> Any:
    """An ONNX Runtime CPU session for the oracle: graph optimizations all off, or all on.

    With optimizations on, ORT on x86 rewrites int8 activations to uint8 by
    default and runs U8S8 kernels; on CPUs without VNNI those sum pairs of
    u8·s8 products in int16 with saturation (vpmaddubsw), which silently
    corrupts a layer whose int8 weights reach about ±64 against large
    activations — an ORT performance trade-off, not the arithmetic of the
    model. `session.qdqisint8allowed` keeps the int8 kernels, which are exact.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    opts.add_session_config_entry("session.qdqisint8allowed", "1")
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
