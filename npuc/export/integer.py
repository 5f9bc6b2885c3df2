"""The integer form of `npuc.export_qdq`: every IR op as ONNX ops on int8/int64 tensors, exact in ORT.

Each `_Integer` method maps its inputs' int8 values (one per IR input, in
slot order) to the node's int8 value with the NPU's arithmetic spelled in
ONNX ops whose results ORT computes exactly whatever the rounding mode or
optimization level:

* accumulators: ConvInteger / MatMulInteger / ReduceSum (int32), ConvInteger
  with an all-ones depthwise kernel for an AveragePool's window sum, and
  ConvInteger with ``x_zero_point`` over a zero-stuffed input for a
  ConvTranspose (every stuffed or padded pixel holds zp_in, so it adds 0);
* every requantizer (`vrq`, `vadd`, `vmul`): the exact int64 product or sum,
  then `round_clamp` — the rounding shift in Add/Mod/Div/Equal, + zp, clamp;
* `vlut`: Gather of the int8 table at index q + 128 (per-channel tables
  flattened, index c·256 + q + 128);
* layout ops (Concat, Slice, Reshape/Transpose, Resize nearest, Pad, ReduceMax)
  run on the int8 tensors themselves: they move values without arithmetic;
* a Host node (an op the NPU does not run) is what the driver does: DQ, its
  single-node ONNX model inlined in float (converted to the export's opset),
  Q — ORT's float kernels against onnx.reference's: 1 LSB near a tie.

`_Builder` and the Q/DQ helpers are shared with the QDQ form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, version_converter

from ..geometry import pool_counts
from ..ir import IR, AccQ, ActQ, IRError, MatQ, PoolQ

OPSET = 13  # of the exported model


class ExportError(IRError):
    """The quantized IR holds something the export cannot express; the message names the node."""


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


def _window_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """The IR's window attributes as ONNX's (MaxPool has no `group`)."""
    pt, pl, pb, pr = attrs["pads"]
    return {"kernel_shape": list(attrs["kernel"]), "strides": list(attrs["strides"]),
            "dilations": list(attrs["dilations"]), "pads": [pt, pl, pb, pr]}


def _conv_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """Conv's: the window's and `group` (grouped and depthwise convolutions)."""
    return {**_window_attrs(attrs), "group": int(attrs.get("group", 1))}


def _ints(v: Any) -> np.ndarray:
    return np.asarray(v, dtype=np.int64)


def _reshape(b: _Builder, x: str, shape: tuple[int, ...], base: str) -> str:
    """Reshape to `shape` with the batch axis left free (-1): any batch runs."""
    return b.op("Reshape", [x, b.const(f"{base}.shape", _ints((-1, *shape[1:])))], f"{base}.reshape")


def _channel_shape(ndim: int) -> tuple[int, ...]:
    """The shape that broadcasts a (C,) vector onto axis 1 of an (N, C, ...) tensor."""
    return (1, -1) + (1,) * (ndim - 2)


def _host_float(b: _Builder, name: str, model_bytes: bytes, xs: list[str],
                shapes: list[tuple[int, ...]] | None = None) -> str:
    """A Host node's single-node ONNX model (`npuc.host`) inlined on float (or raw integer) values `xs`:
    converted to the export's opset (Softmax before 13 gains its Flatten/Reshape; a node the converter
    has no adapter for, Reshape-14 without `allowzero`, kept when it is valid at the export's opset as it
    is), every inner name prefixed by the IR node's. `shapes` are the IR shapes of `xs`: an input whose
    IR tensor has another shape than the model's (a (1, C, L) value held as (1, C, L, 1)) is reshaped
    first, keeping the batch axis, as the driver reshapes by element count. Returns its output value."""
    model = onnx.load_from_string(model_bytes)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), OPSET)
    if opset != OPSET:
        try:
            model = version_converter.convert_version(model, OPSET)
        except (RuntimeError, version_converter.ConvertError) as e:
            model = _relabelled(model, OPSET)
            if model is None:
                raise ExportError(f"node {name!r} (op Host): opset {opset} -> {OPSET}: {e}") from None
    g = model.graph
    xs = list(xs)
    for i, vi in enumerate(g.input):
        want = tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)
        if shapes is not None and i < len(shapes) and tuple(shapes[i]) != want and want and want[0] == 1:
            xs[i] = b.op("Reshape", [xs[i], b.const(f"{name}.in{i}_shape", np.array([-1, *want[1:]], np.int64))],
                         f"{name}.in{i}_reshaped")
    names = {i.name: x for i, x in zip(g.input, xs)}
    for init in g.initializer:
        names[init.name] = b.const(f"{name}/host/{init.name}", numpy_helper.to_array(init))
    for node in g.node:
        for v in node.output:
            names[v] = b.fresh(f"{name}/host/{v}")
        inner = helper.make_node(node.op_type, [names[v] if v else "" for v in node.input],
                                 [names[v] for v in node.output], name=b.fresh(f"{name}/host/{node.op_type}"),
                                 domain=node.domain)
        inner.attribute.extend(node.attribute)
        b.nodes.append(inner)
    return names[g.output[0].name]


def _relabelled(model: onnx.ModelProto, opset: int) -> onnx.ModelProto | None:
    """`model` declared at `opset` as it is, when its node is valid there (checked; an attribute the older
    op does not know is dropped when it holds the newer op's default, Reshape's allowzero=0); else None."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    new = next((o.version for o in out.opset_import if o.domain in ("", "ai.onnx")), opset)
    for o in out.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = opset
    for node in out.graph.node:
        try:
            old_attrs = onnx.defs.get_schema(node.op_type, opset, "").attributes
            new_attrs = onnx.defs.get_schema(node.op_type, new, "").attributes
        except onnx.defs.SchemaError:
            return None
        keep = []
        for a in node.attribute:
            default = new_attrs[a.name].default_value if a.name in new_attrs else None
            if a.name in old_attrs:
                keep.append(a)
            elif default is None or helper.get_attribute_value(a) != helper.get_attribute_value(default):
                return None
        del node.attribute[:]
        node.attribute.extend(keep)
    try:
        onnx.checker.check_model(out, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError):
        return None
    return out


class _Integer:
    """The integer form: one method per IR op, mapping the inputs' int8 values to this node's int8 value."""

    def __init__(self, b: _Builder, ir: IR) -> None:
        self.b, self.ir = b, ir
        self.int8: dict[str, str] = {}  # values are int8 already

    def _in_q(self, name: str, slot: int = 0) -> ActQ:
        return self.ir.node(self.ir.preds(name)[slot])["act_q"]

    def _scalar(self, name: str) -> Callable[[str, int | np.ndarray], str]:
        return lambda base, v: self.b.const(f"{name}.{base}", _ints(v).reshape(()))

    def _wide(self, name: str, x: str, tag: str, zp: int = 0) -> str:
        """int8 `x` as int64, minus `zp` when it is not 0."""
        t = self.b.op("Cast", [x], f"{name}.{tag}64", to=TensorProto.INT64)
        if zp:
            t = self.b.op("Sub", [t, self.b.const(f"{name}.z{tag}", np.int64(zp))], f"{name}.{tag}c")
        return t

    def Input(self, name: str, x: str) -> str:
        return _quantize(self.b, x, self.ir.node(name)["act_q"], name)

    def Const(self, name: str) -> str:
        """The int8 constant, quantized as the compiler writes it into DRAM."""
        node = self.ir.node(name)
        return self.b.const(f"{name}.q", node["act_q"].quantize(np.asarray(node["consts"]["value"], np.float32)))

    def Host(self, name: str, *xs: str) -> str:
        """What the driver does at a host point: dequantize the int8 inputs (integer tensors pass as they
        are), run the ONNX op in float, quantize the output (round half to even, saturate) if it is float."""
        reals = [x if self.ir.node(p).get("act_q") is None else _dequantize(self.b, x, self.ir.node(p)["act_q"],
                                                                             f"{name}.in{i}")
                 for i, (p, x) in enumerate(zip(self.ir.preds(name), xs))]
        y = _host_float(self.b, name, self.ir.node(name)["attrs"]["model"], reals,
                        [self.ir.node(p)["shape"] for p in self.ir.preds(name)])
        q = self.ir.node(name).get("act_q")
        return y if q is None else _quantize(self.b, y, q, name)

    # -- the requantizer ------------------------------------------------------------------

    def requantize(self, name: str, acc: str, channel_shape: tuple[int, ...]) -> str:
        """int32 acc -> int8, exactly `npuc.isa.arith.requantize` (any rounding), in int64 ONNX ops."""
        b, node = self.b, self.ir.node(name)
        q: AccQ = node["qop"]

        def per_channel(base: str, v: np.ndarray) -> str:
            return b.const(f"{name}.{base}", _ints(v).reshape(channel_shape))

        t = b.op("Cast", [acc], f"{name}.acc64", to=TensorProto.INT64)
        t = b.op("Add", [t, per_channel("bias", q.bias)], f"{name}.biased")
        t = b.op("Mul", [t, per_channel("mul", q.mul)], f"{name}.scaled")
        return self.round_clamp(name, t, q.shift, per_channel)

    def round_clamp(self, name: str, t: str, shifts: np.ndarray, per_channel: Callable[[str, np.ndarray], str]) -> str:
        """int64 t -> int8: round_shift(t, shifts) (the record's rounding), + zp_out, clamp [lo, hi], in ONNX ops;
        `per_channel` makes a constant broadcasting like `shifts` against t."""
        b, q = self.b, self.ir.node(name)["qop"]
        shift = np.asarray(shifts).astype(np.int64)
        pos = shift > 0
        half = np.where(pos, np.int64(1) << np.maximum(shift - 1, 0), 0)
        d = per_channel("pow2shift", np.int64(1) << shift)
        sign = None
        if q.rounding == "half_away":  # round |t| half up, then restore the sign: ties away from zero
            sign = b.op("Sign", [t], f"{name}.sign")
            t = b.op("Abs", [t], f"{name}.abs")
        if q.rounding in ("half_up", "half_even", "half_away"):
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
        if sign is not None:
            r = b.op("Mul", [r, sign], f"{name}.signed")
        r = b.op("Add", [r, b.const(f"{name}.zp_out", np.int64(q.zp_out))], f"{name}.zp")
        r = b.op("Max", [r, b.const(f"{name}.qlo", np.int64(q.lo))], f"{name}.lo")
        r = b.op("Min", [r, b.const(f"{name}.qhi", np.int64(q.hi))], f"{name}.hi")
        return b.op("Cast", [r], f"{name}.int8", to=TensorProto.INT8)

    # -- weighted ops ----------------------------------------------------------------------

    def _pad(self, name: str, x: str, pads: tuple[int, int, int, int], fill: int) -> str:
        """Pad the spatial axes by (top, left, bottom, right) with the int8 `fill`; negative pads crop."""
        if not any(pads):
            return x
        pt, pl, pb, pr = pads
        return self.b.op("Pad", [x, self.b.const(f"{name}.pads", _ints([0, 0, pt, pl, 0, 0, pb, pr])),
                                 self.b.const(f"{name}.fill", np.int8(fill))], f"{name}.pad")

    def Conv(self, name: str, x: str) -> str:
        """Pad with zp_in explicitly (as the hardware's `ld fill=`), then ConvInteger with no padding:
        acc = Σ x·W over the padded input; the IR's bias already subtracts zp_in·ΣW. Grouped and depthwise
        convolutions are ConvInteger's `group`."""
        b, node = self.b, self.ir.node(name)
        q: MatQ = node["qop"]
        attrs = _conv_attrs(node["attrs"])
        x = self._pad(name, x, tuple(attrs.pop("pads")), q.zp_in)
        acc = b.op("ConvInteger", [x, b.const(f"{name}.Wq", q.weight.astype(np.int8))], f"{name}.acc", **attrs)
        return self.requantize(name, acc, (-1, 1, 1))

    def Gemm(self, name: str, x: str) -> str:
        q: MatQ = self.ir.node(name)["qop"]
        w = self.b.const(f"{name}.WqT", np.ascontiguousarray(q.weight.T.astype(np.int8)))
        return self.requantize(name, self.b.op("MatMulInteger", [x, w], f"{name}.acc"), (-1,))

    def ConvTranspose(self, name: str, x: str) -> str:
        """A transposed conv is a conv of the stuffed input (sh-1 and sw-1 pixels between input pixels)
        padded by (k-1)·d - p, with the kernel flipped. Stuffed and padded pixels hold zp_in and
        ConvInteger's x_zero_point subtracts it, so they add exactly 0: acc = Σ (q - zp_in)·w over the taps
        that reach the pixel, as the reference. The bias has no zero-point fold (see `npuc/passes/quantize/conv.py`)."""
        b, node = self.b, self.ir.node(name)
        q: MatQ = node["qop"]
        a = node["attrs"]
        zp = q.zp_in
        n, c, h, w = self.ir.node(self.ir.preds(name)[0])["shape"]
        (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["strides"], a["dilations"]
        pt, pl = a["pads"][:2]
        oh, ow = node["shape"][2:4]
        if sh > 1 or sw > 1:
            # (N, C, H, 1, W, 1) padded to (N, C, H, sh, W, sw) with zp_in: each pixel followed by its zeros
            x = _reshape(b, x, (n, c, h, 1, w, 1), f"{name}.split")
            pads = _ints([0, 0, 0, 0, 0, 0, 0, 0, 0, sh - 1, 0, sw - 1])
            x = b.op("Pad", [x, b.const(f"{name}.stuff", pads), b.const(f"{name}.stuff_fill", np.int8(zp))],
                     f"{name}.stuffed")
            x = _reshape(b, x, (n, c, h * sh, w * sw), f"{name}.merge")
        # the stuffed length is H·sh (sh - 1 extra pixels at the end); conv output length = padded - (k-1)·d
        top, left = (kh - 1) * dh - pt, (kw - 1) * dw - pl
        bottom = oh + (kh - 1) * dh - top - h * sh
        right = ow + (kw - 1) * dw - left - w * sw
        x = self._pad(name, x, (top, left, bottom, right), zp)
        wq = np.ascontiguousarray(q.weight[:, :, ::-1, ::-1].astype(np.int8))
        acc = b.op("ConvInteger", [x, b.const(f"{name}.Wflip", wq), b.const(f"{name}.zx", np.int8(zp))],
                   f"{name}.acc", kernel_shape=[kh, kw], dilations=[dh, dw], group=int(a["group"]))
        return self.requantize(name, acc, (-1, 1, 1))

    # -- pooling -------------------------------------------------------------------------------

    def MaxPool(self, name: str, x: str) -> str:
        return self.b.op("MaxPool", [x], f"{name}.maxpool", **_window_attrs(self.ir.node(name)["attrs"]))

    def GlobalMaxPool(self, name: str, x: str) -> str:
        return self.b.op("ReduceMax", [x], f"{name}.gmp", axes=[2, 3], keepdims=1)

    def GlobalAveragePool(self, name: str, x: str) -> str:
        b = self.b
        wide = b.op("Cast", [x], f"{name}.int32", to=TensorProto.INT32)
        acc = b.op("ReduceSum", [wide, b.const(f"{name}.axes", _ints([2, 3]))], f"{name}.acc", keepdims=1)
        return self.requantize(name, acc, (-1, 1, 1))

    def AveragePool(self, name: str, x: str) -> str:
        """Window sum of the zp_in-padded input (a depthwise ConvInteger of ones), + bias -kh·kw·zp_in, then
        each output pixel's (mul, shift) — that of its window's count (`pool_counts`) — in int64 ops."""
        b, node = self.b, self.ir.node(name)
        q: PoolQ = node["qop"]
        a = node["attrs"]
        c, h, w = self.ir.node(self.ir.preds(name)[0])["shape"][1:4]
        x = self._pad(name, x, tuple(a["pads"]), q.zp_in)
        ones = b.const(f"{name}.ones", np.ones((c, 1, *a["kernel"]), np.int8))
        acc = b.op("ConvInteger", [x, ones], f"{name}.acc", kernel_shape=list(a["kernel"]),
                   strides=list(a["strides"]), dilations=list(a["dilations"]), group=c)
        counts = pool_counts(a, (h, w), tuple(node["shape"][2:4]))
        k = np.searchsorted(np.asarray(q.counts), counts)  # (OH, OW): which (mul, shift)

        def per_pixel(base: str, v: np.ndarray) -> str:
            return b.const(f"{name}.{base}", _ints(v).reshape((1, 1, *counts.shape)))

        t = b.op("Cast", [acc], f"{name}.acc64", to=TensorProto.INT64)
        t = b.op("Add", [t, b.const(f"{name}.bias", np.int64(q.bias[0]))], f"{name}.biased")
        t = b.op("Mul", [t, per_pixel("mul", _ints(q.mul)[k])], f"{name}.scaled")
        return self.round_clamp(name, t, _ints(q.shift)[k], per_pixel)

    # -- vector unit --------------------------------------------------------------------------

    def Add(self, name: str, x: str, y: str) -> str:
        """vadd: t = (a - za)·ma + (b - zb)·mb in int64 (|t| < 2^40), then the shared rounding."""
        b, q = self.b, self.ir.node(name)["qop"]
        scalar = self._scalar(name)
        ta = b.op("Mul", [self._wide(name, x, "a", q.za), scalar("ma", q.ma)], f"{name}.am")
        tb = b.op("Mul", [self._wide(name, y, "b", q.zb), scalar("mb", q.mb)], f"{name}.bm")
        return self.round_clamp(name, b.op("Add", [ta, tb], f"{name}.sum"), np.array([q.sh]), scalar)

    Sub = Add  # the sign is in mb

    def Requant(self, name: str, x: str) -> str:
        """A one-input vadd (mb = 0): round_shift((q - za)·ma, sh) + zp, clamped."""
        b, q = self.b, self.ir.node(name)["qop"]
        scalar = self._scalar(name)
        t = b.op("Mul", [self._wide(name, x, "a", q.za), scalar("ma", q.ma)], f"{name}.am")
        return self.round_clamp(name, t, np.array([q.sh]), scalar)

    def Mul(self, name: str, x: str, y: str) -> str:
        """vmul: t = (a - za)·(b - zb)·mul in int64 (|t| < 2^47); a (N, C, 1, 1) b broadcasts (squeeze-excite)."""
        b, q = self.b, self.ir.node(name)["qop"]
        scalar = self._scalar(name)
        t = b.op("Mul", [self._wide(name, x, "a", q.za), self._wide(name, y, "b", q.zb)], f"{name}.prod")
        t = b.op("Mul", [t, scalar("mul", q.mul)], f"{name}.scaled")
        return self.round_clamp(name, t, np.array([q.sh]), scalar)

    def Lut(self, name: str, x: str) -> str:
        """vlut: Gather of the int8 table at q + 128; a (C, 256) table is flattened and channel c reads
        its row at c·256 + q + 128."""
        b, node = self.b, self.ir.node(name)
        table = np.asarray(node["qop"].table, dtype=np.int8)
        offset = np.int64(128) if table.ndim == 1 else \
            (np.arange(table.shape[0], dtype=np.int64) * 256 + 128).reshape(_channel_shape(len(node["shape"])))
        idx = b.op("Add", [self._wide(name, x, "x"), b.const(f"{name}.offset", offset)], f"{name}.index")
        return b.op("Gather", [b.const(f"{name}.table", table.reshape(-1)), idx], f"{name}.lut", axis=0)

    # -- layout ---------------------------------------------------------------------------------

    def Flatten(self, name: str, x: str) -> str:
        return _reshape(self.b, x, tuple(self.ir.node(name)["shape"]), name)

    Reshape = Flatten

    def Concat(self, name: str, *xs: str) -> str:
        for p in self.ir.preds(name):
            if self.ir.node(p)["act_q"] != self.ir.node(name)["act_q"]:
                raise ExportError(f"node {name!r} (op Concat): input {p!r} has another act_q than the output")
        return self.b.op("Concat", list(xs), f"{name}.concat", axis=int(self.ir.node(name)["attrs"].get("axis", 1)))

    def ChannelSlice(self, name: str, x: str) -> str:
        a, b = self.ir.node(name)["attrs"], self.b
        start, end = b.const(f"{name}.start", _ints([a["start"]])), b.const(f"{name}.end", _ints([a["end"]]))
        return b.op("Slice", [x, start, end, b.const(f"{name}.axis", _ints([1]))], f"{name}.slice")

    def ChannelShuffle(self, name: str, x: str) -> str:
        n, c, h, w = self.ir.node(name)["shape"]
        g = int(self.ir.node(name)["attrs"]["groups"])
        t = _reshape(self.b, x, (n, g, c // g, h, w), f"{name}.split")
        t = self.b.op("Transpose", [t], f"{name}.transpose", perm=[0, 2, 1, 3, 4])
        return _reshape(self.b, t, (n, c, h, w), f"{name}.merge")

    def Resize(self, name: str, x: str) -> str:
        """Nearest with integer scales is replication: asymmetric coordinates with floor are exactly that."""
        a = self.ir.node(name)["attrs"]
        if a.get("mode", "nearest") != "nearest":
            raise ExportError(f"node {name!r} (op Resize): mode {a['mode']!r} has no export")
        scales = self.b.const(f"{name}.scales", np.array([1, 1, *a["scales"]], np.float32))
        return self.b.op("Resize", [x, "", scales], f"{name}.resize", mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor")

    def Pad(self, name: str, x: str) -> str:
        a = self.ir.node(name)["attrs"]
        if not any(a["pads"]):
            return self.b.op("Identity", [x], f"{name}.pad")
        return self._pad(name, x, tuple(a["pads"]), self._in_q(name).code(float(a["value"])))

    def EdgePad(self, name: str, x: str) -> str:
        """ONNX Pad mode "edge" or "reflect" on the spatial axes: copies of the map's own values."""
        pt, pl, pb, pr = self.ir.node(name)["attrs"]["pads"]
        pads = self.b.const(f"{name}.pads", _ints([0, 0, pt, pl, 0, 0, pb, pr]))
        return self.b.op("Pad", [x, pads], f"{name}.pad", mode=self.ir.node(name)["attrs"]["mode"])
