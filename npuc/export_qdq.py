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
  `ORACLE_NOTES` for every op).
* ``integer`` — ConvInteger / MatMulInteger / ReduceSum give the int32
  accumulator exactly; the requantizer is spelled in int64 ONNX ops (Add,
  Mul, Mod, Div, Equal ...), so any multiplier, shift and rounding mode is
  exact in ORT whatever the optimization level. Add/Sub (`vadd`) forms
  (a − za)·ma + (b − zb)·mb in int64 and rounds it with the same ops.

An Add or Sub reads two IR inputs: the emitters' methods take one value per
IR input, in slot order.

Both take the model's float input (QuantizeLinear with the input's scale, as
the simulator's driver does) and give float outputs (DequantizeLinear of the
int8 result), or the raw int8 tensors with ``int8_outputs=True``.

Run the oracle through `ort_session` (int8 kernels kept: see there).

Assumption shared with the numpy reference's overflow-free path: acc + bias
fits int32 (the hardware wraps; the export does not emulate the wrap).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .ir import IR, ActQ, IRError, QOp

FORMS = ("qdq", "integer")
OPSET = 13

# What the QDQ form guarantees per op, against the simulator (ORT 1.32, x86, optimizations off and on).
ORACLE_NOTES: dict[str, str] = {
    "Conv": "exact for pow2 scales and half_even while |partial sums| < 2^24 (ORT sums in float32 "
            "or requantizes int32 via a float32 multiply); above that rare 1-LSB differences; with "
            "fixed_point/float scales ORT's float32 multiplier differs from the 31-bit one: rare 1 LSB",
    "Gemm": "as Conv",
    "MaxPool": "exact (a max commutes with any monotone requantization)",
    "GlobalAveragePool": "exact when H·W is a power of two; otherwise the NPU multiplies by a 31-bit "
                         "reciprocal and ORT divides in float32: 1 LSB where the mean is within 2^-23 "
                         "of a rounding tie",
    "Flatten": "exact (no arithmetic)",
    "Reshape": "exact (no arithmetic)",
    "Add": "exact for pow2 scales and half_even: DQ(a) + DQ(b) is exact in float32 while the sum needs "
           "< 24 bits at the finer scale (input scales within 2^15 of each other), and QuantizeLinear then "
           "divides by a power of two and rounds half to even, as vadd does; ORT's fused QLinearAdd "
           "(optimizations on) computes the same exact sum in float32. Measured exact, opts off and on "
           "(tests/e2e/test_residual.py). fixed_point/float scales: vadd's 31-bit multipliers against ORT's "
           "float32 scale ratios, 1 LSB possible near a rounding tie (measured 0 of 163840 Add outputs)",
    "Sub": "as Add",
}


class ExportError(IRError):
    """The quantized IR holds something the export cannot express; the message names the node."""


def default_form(rounding: str) -> str:
    """QDQ where ORT's own rounding (half to even) is the hardware's; the integer form otherwise."""
    return "qdq" if rounding == "half_even" else "integer"


class _Builder:
    """Accumulates ONNX nodes and initializers; every helper returns its output value's name."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._names: set[str] = set()

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    def const(self, base: str, value: np.ndarray | np.generic) -> str:
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], base: str, out: str | None = None, **attrs: Any) -> str:
        out = out or self.fresh(base)
        self._names.add(out)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.fresh(f"{base}/{op_type}"), **attrs))
        return out

    def rename(self, old: str, new: str) -> None:
        """Give value `old` the name `new` (a graph output keeps the model's output name)."""
        for node in self.nodes:
            node.input[:] = [new if v == old else v for v in node.input]
            node.output[:] = [new if v == old else v for v in node.output]


def _scale_zp(b: _Builder, base: str, q: ActQ) -> tuple[str, str]:
    return b.const(f"{base}.scale", np.float32(q.scale)), b.const(f"{base}.zp", np.int8(q.zp))


def _quantize(b: _Builder, x: str, q: ActQ, base: str, out: str | None = None) -> str:
    s, z = _scale_zp(b, base, q)
    return b.op("QuantizeLinear", [x, s, z], f"{base}.q", out)


def _dequantize(b: _Builder, x: str, q: ActQ, base: str, out: str | None = None) -> str:
    s, z = _scale_zp(b, base, q)
    return b.op("DequantizeLinear", [x, s, z], f"{base}.dq", out)


def _conv_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    pt, pl, pb, pr = attrs["pads"]
    return {"kernel_shape": list(attrs["kernel"]), "strides": list(attrs["strides"]),
            "dilations": list(attrs["dilations"]), "pads": [pt, pl, pb, pr]}


def _unfolded_bias(q: QOp) -> np.ndarray:
    """rint(B / (s_in·s_w)): the IR's bias with the −zp_in·ΣWq fold undone."""
    assert q.weight is not None
    wsum = q.weight.reshape(q.weight.shape[0], -1).astype(np.int64).sum(axis=1)
    bias = q.bias.astype(np.int64) + int(q.extra.get("zp_in", 0)) * wsum
    if np.any(np.abs(bias) >= 1 << 31):
        raise ExportError("the unfolded bias (input zero point fold undone) does not fit int32")
    return bias.astype(np.int32)


class _Qdq:
    """The QDQ form: one method per IR op, mapping the input's dequantized value to this node's."""

    def __init__(self, b: _Builder, ir: IR) -> None:
        self.b, self.ir = b, ir
        self.int8: dict[str, str] = {}  # IR node -> its QuantizeLinear output

    def requantized(self, name: str, y: str) -> str:
        """Q then DQ with the node's act_q: the int8 tensor the NPU holds, in real units."""
        q = self.ir.node(name)["act_q"]
        self.int8[name] = _quantize(self.b, y, q, name)
        return _dequantize(self.b, self.int8[name], q, name)

    def Input(self, name: str, x: str) -> str:
        return self.requantized(name, x)

    def _weights(self, name: str) -> tuple[str, str]:
        b, node = self.b, self.ir.node(name)
        q: QOp = node["qop"]
        assert q.weight is not None and q.w_scale is not None
        s_in = self.ir.node(self.ir.preds(name)[0])["act_q"].scale
        cout = q.weight.shape[0]
        w = b.op("DequantizeLinear", [b.const(f"{name}.Wq", q.weight.astype(np.int8)),
                                      b.const(f"{name}.Wscale", q.w_scale.astype(np.float32)),
                                      b.const(f"{name}.Wzp", np.zeros(cout, np.int8))], f"{name}.W", axis=0)
        bias = b.op("DequantizeLinear", [b.const(f"{name}.Bq", _unfolded_bias(q)),
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

    def Conv(self, name: str, x: str) -> str:
        w, bias = self._weights(name)
        y = self.b.op("Conv", [x, w, bias], f"{name}.conv", **_conv_attrs(self.ir.node(name)["attrs"]))
        return self.requantized(name, self._activation(name, y))

    def Gemm(self, name: str, x: str) -> str:
        w, bias = self._weights(name)
        y = self.b.op("Gemm", [x, w, bias], f"{name}.gemm", transB=1)
        return self.requantized(name, self._activation(name, y))

    def MaxPool(self, name: str, x: str) -> str:
        a = _conv_attrs(self.ir.node(name)["attrs"])
        return self.requantized(name, self.b.op("MaxPool", [x], f"{name}.maxpool", **a))

    def GlobalAveragePool(self, name: str, x: str) -> str:
        return self.requantized(name, self.b.op("GlobalAveragePool", [x], f"{name}.gap"))

    def Flatten(self, name: str, x: str) -> str:
        return self.requantized(name, _reshape(self.b, self.ir, name, x))

    Reshape = Flatten

    def Add(self, name: str, x: str, y: str) -> str:
        op = self.ir.op(name)
        return self.requantized(name, self._activation(name, self.b.op(op, [x, y], f"{name}.{op.lower()}")))

    Sub = Add


def _reshape(b: _Builder, ir: IR, name: str, x: str) -> str:
    shape = np.array((-1, *ir.node(name)["shape"][1:]), dtype=np.int64)  # any batch
    return b.op("Reshape", [x, b.const(f"{name}.shape", shape)], f"{name}.reshape")


class _Integer:
    """The integer form: one method per IR op, mapping the input's int8 value to this node's int8 value."""

    def __init__(self, b: _Builder, ir: IR) -> None:
        self.b, self.ir = b, ir
        self.int8: dict[str, str] = {}  # values are int8 already

    def Input(self, name: str, x: str) -> str:
        return _quantize(self.b, x, self.ir.node(name)["act_q"], name)

    def requantize(self, name: str, acc: str, channel_shape: tuple[int, ...]) -> str:
        """int32 acc -> int8, exactly `npuc.isa.arith.requantize` (any rounding), in int64 ONNX ops."""
        b, node = self.b, self.ir.node(name)
        q: QOp = node["qop"]

        def per_channel(base: str, v: np.ndarray) -> str:
            return b.const(f"{name}.{base}", np.asarray(v, dtype=np.int64).reshape(channel_shape))

        t = b.op("Cast", [acc], f"{name}.acc64", to=TensorProto.INT64)
        t = b.op("Add", [t, per_channel("bias", q.bias)], f"{name}.biased")
        t = b.op("Mul", [t, per_channel("mul", q.mul)], f"{name}.scaled")
        return self.round_clamp(name, t, q.shift, per_channel)

    def round_clamp(self, name: str, t: str, shifts: np.ndarray, per_channel: Callable[[str, np.ndarray], str]) -> str:
        """int64 t -> int8: round_shift(t, shifts) (the QOp's rounding), + zp_out, clamp [lo, hi], in ONNX ops;
        `per_channel` makes a constant broadcasting like `shifts` against t."""
        b, q = self.b, self.ir.node(name)["qop"]
        shift = shifts.astype(np.int64)
        pos = shift > 0
        half = np.where(pos, np.int64(1) << np.maximum(shift - 1, 0), 0)
        d = per_channel("pow2shift", np.int64(1) << shift)
        if q.rounding in ("half_up", "half_even"):
            t = b.op("Add", [t, per_channel("half", half)], f"{name}.rounded")
        # floor division by 2^s: Div truncates toward zero, so subtract Mod's (divisor-signed) remainder first
        rem = b.op("Mod", [t, d], f"{name}.rem", fmod=0)
        r = b.op("Div", [b.op("Sub", [t, rem], f"{name}.floored"), d], f"{name}.shifted")
        if q.rounding == "half_even":
            # a tie (t + half ≡ 0 mod 2^s before the floor, i.e. rem == 0 with s > 0) rounded up to an odd
            # value goes back down to the even one; tie_at = -1 where s = 0 never matches
            tie = b.op("Equal", [rem, per_channel("tie_at", np.where(pos, 0, -1))], f"{name}.tie")
            odd = b.op("Equal", [b.op("Mod", [r, b.const(f"{name}.two", np.int64(2))], f"{name}.parity",
                                      fmod=0), b.const(f"{name}.one", np.int64(1))], f"{name}.odd")
            down = b.op("Cast", [b.op("And", [tie, odd], f"{name}.down")], f"{name}.down64",
                        to=TensorProto.INT64)
            r = b.op("Sub", [r, down], f"{name}.even")
        r = b.op("Add", [r, b.const(f"{name}.zp_out", np.int64(q.zp_out))], f"{name}.zp")
        r = b.op("Max", [r, b.const(f"{name}.qlo", np.int64(q.lo))], f"{name}.lo")
        r = b.op("Min", [r, b.const(f"{name}.qhi", np.int64(q.hi))], f"{name}.hi")
        return b.op("Cast", [r], f"{name}.int8", to=TensorProto.INT8)

    def Conv(self, name: str, x: str) -> str:
        """Pad with zp_in explicitly (as the hardware's `ld fill=`), then ConvInteger with no padding:
        acc = Σ x·W over the padded input; the IR's bias already subtracts zp_in·ΣW."""
        b, node = self.b, self.ir.node(name)
        q: QOp = node["qop"]
        attrs = _conv_attrs(node["attrs"])
        pt, pl, pb, pr = attrs.pop("pads")
        if any((pt, pl, pb, pr)):
            pads = b.const(f"{name}.pads", np.array([0, 0, pt, pl, 0, 0, pb, pr], np.int64))
            x = b.op("Pad", [x, pads, b.const(f"{name}.fill", np.int8(q.extra.get("pad_value", 0)))],
                     f"{name}.pad")
        assert q.weight is not None
        acc = b.op("ConvInteger", [x, b.const(f"{name}.Wq", q.weight.astype(np.int8))], f"{name}.acc", **attrs)
        return self.requantize(name, acc, (-1, 1, 1))

    def Gemm(self, name: str, x: str) -> str:
        q: QOp = self.ir.node(name)["qop"]
        assert q.weight is not None
        w = self.b.const(f"{name}.WqT", np.ascontiguousarray(q.weight.T.astype(np.int8)))
        return self.requantize(name, self.b.op("MatMulInteger", [x, w], f"{name}.acc"), (-1,))

    def MaxPool(self, name: str, x: str) -> str:
        return self.b.op("MaxPool", [x], f"{name}.maxpool", **_conv_attrs(self.ir.node(name)["attrs"]))

    def GlobalAveragePool(self, name: str, x: str) -> str:
        b = self.b
        wide = b.op("Cast", [x], f"{name}.int32", to=TensorProto.INT32)
        acc = b.op("ReduceSum", [wide, b.const(f"{name}.axes", np.array([2, 3], np.int64))], f"{name}.acc",
                   keepdims=1)
        return self.requantize(name, acc, (-1, 1, 1))

    def Flatten(self, name: str, x: str) -> str:
        return _reshape(self.b, self.ir, name, x)

    Reshape = Flatten

    def Add(self, name: str, x: str, y: str) -> str:
        """vadd: t = (a - za)·ma + (b - zb)·mb in int64 (|t| < 2^40), then the shared rounding."""
        b, q = self.b, self.ir.node(name)["qop"]
        za, zb = q.extra["zp_in"]

        def scalar(base: str, v: int | np.ndarray) -> str:
            return b.const(f"{name}.{base}", np.asarray(v, dtype=np.int64).reshape(()))

        def term(v: str, zp: int, mul: int, tag: str) -> str:
            wide = b.op("Cast", [v], f"{name}.{tag}64", to=TensorProto.INT64)
            centred = b.op("Sub", [wide, scalar(f"z{tag}", zp)], f"{name}.{tag}c")
            return b.op("Mul", [centred, scalar(f"m{tag}", mul)], f"{name}.{tag}m")

        t = b.op("Add", [term(x, za, int(q.mul[0]), "a"), term(y, zb, int(q.mul[1]), "b")], f"{name}.sum")
        return self.round_clamp(name, t, q.shift, scalar)

    Sub = Add  # the sign is in mb


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
        if form == "integer" and not int8_outputs:
            final = _dequantize(b, final, node["act_q"], f"{name}.out")
        b.rename(final, value)
        graph_outputs.append(helper.make_tensor_value_info(
            value, TensorProto.INT8 if int8_outputs else TensorProto.FLOAT, ["N", *node["shape"][1:]]))
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
