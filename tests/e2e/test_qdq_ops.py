"""The QDQ export of every NPU op family: ONNX Runtime on the exported model == the C simulator, int8 for int8.

One small model per op family (Lut, Mul, Add chains, Concat + Requant, ChannelSlice, ChannelShuffle,
Reshape aliases, Resize, Pad, grouped/depthwise Conv, AveragePool, GlobalMaxPool, ConvTranspose), compiled
on the default preset; ORT runs with graph optimizations off and on. Pow2 scales with half-even rounding:
both forms exact; fixed-point scales with half-up rounding (or truncation): the integer form exact.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from npuc.backend.codegen import LOWERINGS
from npuc.compiler import compile_model
from npuc.export.qdq import _Integer, _Qdq, export_qdq, ort_session
from npuc.hw import load_hw
from npuc.reference import dequantize, quantize_input
from npuc.sim.driver import run_program

from .models import make_model
from .test_ops_layout import (
    _anchor_arithmetic,
    _anchor_concat,
    _concat_model,
    _conv,
    _inception,
    _resize_model,
    _split_model,
)
from .test_ops_vector import SILU, _multi, _unary

HW = load_hw("default")
CONFIGS = {  # config -> (hw, the forms exact under it)
    "pow2-half_even": (HW, ("qdq", "integer")),
    "fixed_point-half_up": (HW.replace(scale_rule="fixed_point", rounding="half_up"), ("integer",)),
    "pow2-truncate-sym": (HW.replace(rounding="truncate", act_mode="symmetric"), ("integer",)),
}
RNG = np.random.default_rng(11)


def _w(*shape: int) -> np.ndarray:
    return (RNG.normal(size=shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)


def _inputs(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    init = {i.name for i in model.graph.initializer}
    return {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim)
            for i in model.graph.input if i.name not in init}


def _roundtrip(model: onnx.ModelProto, config: str, want_ops: set[str], n: int = 3, seed: int = 0):
    """Compile under `config`; for each exact form and optimization level, ORT's int8 outputs == the simulator's."""
    hw, forms = CONFIGS[config]
    shapes = _inputs(model)
    rng = np.random.default_rng(seed)
    calib = [{k: (2 * rng.normal(size=s[1:])).astype(np.float32) for k, s in shapes.items()} for _ in range(8)]
    c = compile_model(model, hw, calib=calib, allow_fallback=False)
    ops = {c.ir.op(m) for m in c.ir.g.nodes}
    assert want_ops <= ops, (want_ops, ops)
    assert "Host" not in ops
    # inputs on exact quantization levels: ORT's float32 QuantizeLinear then equals the driver's for any scale
    feeds = {}
    for name in c.ir.inputs:
        q, value = c.ir.node(name)["act_q"], c.ir.node(name)["value"]
        feeds[value] = dequantize(quantize_input(2 * rng.normal(size=(n, *shapes[value][1:])), q), q)
    run = run_program(c.program, feeds)
    outs = [c.ir.node(o)["value"] for o in c.ir.outputs]
    for form in forms:
        exported = export_qdq(c.ir, form, int8_outputs=True)
        for optimize in (False, True):
            got = ort_session(exported, optimize).run(outs, feeds)
            for value, g in zip(outs, got):
                sim = run.raw[value]
                assert len(np.unique(sim)) > 3, value  # a comparison that can fail
                np.testing.assert_array_equal(g.reshape(sim.shape), sim, err_msg=f"{form} opt={optimize} {value}")
    return c.ir


def _lut_tables(ir) -> list[np.ndarray]:
    return [ir.node(m)["qop"].table for m in ir.g.nodes if ir.op(m) == "Lut"]


ALL = list(CONFIGS)


# -- vector unit: Lut, Mul, Add chains ------------------------------------------------------------

SHAPE = (1, 8, 6, 10)


@pytest.mark.parametrize("config", ALL)
def test_lut_shared_table(config):
    _roundtrip(make_model(SILU, {}, SHAPE), config, {"Lut"})


@pytest.mark.parametrize("config", ALL[:2])
def test_lut_per_channel_tables(config):
    slope = np.linspace(-0.6, 0.9, 8).astype(np.float32).reshape(-1, 1, 1)
    model = make_model([helper.make_node("PRelu", ["x", "s"], ["p"]), helper.make_node("Tanh", ["p"], ["y"])],
                       {"s": slope}, SHAPE)
    assert sorted(t.shape for t in _lut_tables(_roundtrip(model, config, {"Lut"}))) == [(8, 256), (256,)]


@pytest.mark.parametrize("config", ALL[:2])
def test_lut_per_channel_tables_on_a_vector(config):
    """PReLU after a Gemm: (N, K) with one table per column."""
    rng = np.random.default_rng(4)
    inits = {"W": (rng.normal(size=(10, 12)) / 3).astype(np.float32),
             "s": np.linspace(-0.8, 0.5, 10).astype(np.float32)}
    nodes = [helper.make_node("Gemm", ["x", "W"], ["g"], transB=1), helper.make_node("PRelu", ["g", "s"], ["y"])]
    ir = _roundtrip(make_model(nodes, inits, (1, 12)), config, {"Lut", "Gemm"})
    assert [t.shape for t in _lut_tables(ir)] == [(10, 256)]


@pytest.mark.parametrize("config", ALL)
def test_mul_of_two_tensors(config):
    model = _multi([helper.make_node("Mul", ["a", "b"], ["y"])], {}, {"a": SHAPE, "b": SHAPE}, SHAPE)
    _roundtrip(model, config, {"Mul"})


@pytest.mark.parametrize("config", ALL)
def test_squeeze_excite_gap_sigmoid_channel_mul(config):
    shape = (1, 16, 4, 8)  # GAP over 32 pixels: a power of two, so the QDQ form's float GAP is exact too
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"]), helper.make_node("Sigmoid", ["g"], ["s"]),
             helper.make_node("Mul", ["x", "s"], ["y"])]
    _roundtrip(make_model(nodes, {}, shape), config, {"GlobalAveragePool", "Lut", "Mul"})


@pytest.mark.parametrize("config", ALL[:2])
def test_channel_broadcast_mul_of_two_inputs(config):
    shape, s = (1, 12, 5, 7), (1, 12, 1, 1)
    model = _multi([helper.make_node("Mul", ["s", "x"], ["y"])], {}, {"x": shape, "s": s}, shape)
    _roundtrip(model, config, {"Mul"})


@pytest.mark.parametrize("config", ALL[:2])
def test_sum_of_three_is_an_add_chain(config):
    model = _multi([helper.make_node("Sum", ["a", "b", "c"], ["y"])], {}, {"a": SHAPE, "b": SHAPE, "c": SHAPE},
                   SHAPE)
    _roundtrip(model, config, {"Add"})


# -- layout ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("config", ALL)
def test_concat_with_a_requant(config):
    model, _ = _inception(pool_branch=False)
    _roundtrip(model, config, {"Concat", "Requant", "MaxPool"})


def test_concat_of_inputs_of_different_ranges_and_of_2d_tensors():
    model, _ = _concat_model(3)
    _roundtrip(model, ALL[0], {"Concat"})
    rng = np.random.default_rng(5)
    inits = {"W1": (rng.normal(size=(6, 12)) / 3).astype(np.float32),
             "W2": (rng.normal(size=(9, 12)) / 3).astype(np.float32)}
    nodes = [helper.make_node("Gemm", ["x", "W1"], ["a"], transB=1),
             helper.make_node("Gemm", ["x", "W2"], ["b"], transB=1),
             helper.make_node("Concat", ["a", "b"], ["y"], axis=1)]
    _roundtrip(make_model(nodes, inits, (1, 12)), ALL[1], {"Concat"})


@pytest.mark.parametrize("config", ALL[:2])
def test_row_concat_of_3d_tensors(config):
    model, _ = _anchor_concat()
    ir = _roundtrip(model, config, {"Concat", "Reshape"})
    assert 2 in {ir.node(n)["attrs"].get("axis") for n in ir.g.nodes if ir.op(n) == "Concat"}


@pytest.mark.parametrize("config", ALL[:2])
def test_constant_tensor_operands(config):
    model, _ = _anchor_arithmetic()
    _roundtrip(model, config, {"Const", "Add", "Sub", "Mul"})


@pytest.mark.parametrize("config", ALL[:2])
def test_split_into_channel_slices_three_outputs(config):
    model, _ = _split_model("input")
    _roundtrip(model, config, {"ChannelSlice"})


@pytest.mark.parametrize("config", ALL[:2])
def test_channel_shuffle(config):
    rng = np.random.default_rng(3)
    inits: dict[str, np.ndarray] = {"s5": np.array([1, 3, 4, 5, 6], np.int64), "s4": np.array([1, 12, 5, 6], np.int64)}
    nodes = _conv("a", "x", "a", 3, 12, rng, inits, k=3)
    nodes += [helper.make_node("Reshape", ["a", "s5"], ["r5"]),
              helper.make_node("Transpose", ["r5"], ["t5"], perm=[0, 2, 1, 3, 4]),
              helper.make_node("Reshape", ["t5", "s4"], ["y"])]
    _roundtrip(make_model(nodes, inits, (1, 3, 5, 6)), config, {"ChannelShuffle"})


def test_squeeze_unsqueeze_transpose_aliases():
    rng = np.random.default_rng(6)
    inits = {"W": (rng.normal(size=(7, 6)) / 3).astype(np.float32), "ax": np.array([2, 3], np.int64)}
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"]), helper.make_node("Squeeze", ["g", "ax"], ["s"]),
             helper.make_node("Gemm", ["s", "W"], ["m"], transB=1), helper.make_node("Unsqueeze", ["m", "ax"], ["u"]),
             helper.make_node("Transpose", ["u"], ["t"], perm=[0, 2, 3, 1]), helper.make_node("Flatten", ["t"], ["y"])]
    _roundtrip(make_model(nodes, inits, (1, 6, 4, 4)), ALL[0], {"Reshape", "Gemm"})


@pytest.mark.parametrize("config", ALL[:2])
def test_resize_nearest(config):
    _roundtrip(_resize_model((3, 2), "asymmetric", "floor"), config, {"Resize"})


@pytest.mark.parametrize("config", ALL)
def test_pad_constant(config):
    rng = np.random.default_rng(8)
    inits: dict[str, np.ndarray] = {"pads": np.array([0, 0, 0, 2, 0, 0, 3, 1], np.int64),
                                    "v": np.array(0.5, np.float32)}
    nodes = _conv("a", "x", "a", 3, 6, rng, inits, k=3)
    nodes += [helper.make_node("Pad", ["a", "pads", "v"], ["p"], mode="constant"),
              helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[2, 2])]
    _roundtrip(make_model(nodes, inits, (1, 3, 9, 7)), config, {"Pad"})


@pytest.mark.parametrize("mode", ["edge", "reflect"])
def test_edge_and_reflect_pad(mode):
    rng = np.random.default_rng(8)
    inits: dict[str, np.ndarray] = {"pads": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)}
    nodes = _conv("a", "x", "a", 3, 6, rng, inits, k=3)
    nodes += [helper.make_node("Pad", ["a", "pads"], ["p"], mode=mode),
              helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[2, 2])]
    _roundtrip(make_model(nodes, inits, (1, 3, 9, 7)), ALL[0], {"EdgePad"})


# -- conv family ------------------------------------------------------------------------------------

@pytest.mark.parametrize("config", ALL)
def test_grouped_and_depthwise_conv(config):
    inits = {"W1": _w(12, 2, 3, 3), "B1": _w(12) * 0.1, "W2": _w(24, 1, 3, 3), "B2": _w(24) * 0.1}
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], group=4, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "W2", "B2"], ["y"], group=12, kernel_shape=[3, 3], strides=[2, 2],
                              dilations=[2, 1], pads=[2, 1, 1, 0])]
    _roundtrip(make_model(nodes, inits, (1, 8, 9, 9)), config, {"Conv"})


@pytest.mark.parametrize("count_include_pad,ceil_mode,k,strides,pads", [
    (0, 1, (3, 3), (2, 2), (1, 1, 1, 1)),
    (1, 0, (3, 2), (2, 3), (1, 0, 0, 1)),
    (0, 0, (2, 2), (2, 2), (0, 0, 0, 0)),
])
@pytest.mark.parametrize("config", ALL)
def test_average_pool(config, count_include_pad, ceil_mode, k, strides, pads):
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=list(k), strides=list(strides),
                            pads=list(pads), ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    _roundtrip(make_model([node], {}, (1, 6, 9, 8), opset=19), config, {"AveragePool"})


@pytest.mark.parametrize("config", ALL[:2])
def test_global_max_pool(config):
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1] * 4), helper.make_node("GlobalMaxPool", ["c"], ["y"])]
    _roundtrip(make_model(nodes, {"W": _w(8, 4, 3, 3)}, (1, 4, 5, 7)), config, {"GlobalMaxPool"})


@pytest.mark.parametrize("cin,cout,group,k,attrs,hw_", [
    (4, 6, 1, 3, {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}, (5, 6)),
    (6, 5, 1, 3, {"strides": [3, 2], "pads": [1, 0, 2, 1], "output_padding": [2, 1]}, (4, 5)),
    (8, 8, 8, 3, {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}, (5, 5)),  # depthwise
    (4, 8, 2, 3, {"strides": [2, 3], "pads": [0, 1, 1, 0], "dilations": [2, 1]}, (5, 6)),
    (3, 4, 1, 3, {"strides": [4, 4], "pads": [3, 0, 0, 2]}, (3, 4)),  # kernel < stride, pad > (k-1)·d: a crop
    (4, 6, 1, 3, {"strides": [2, 2], "output_shape": [10, 11]}, (5, 6)),
    (4, 8, 1, 3, {"pads": [1, 1, 1, 1]}, (5, 6)),  # stride 1: nothing stuffed
])
@pytest.mark.parametrize("config", ALL)
def test_conv_transpose(config, cin, cout, group, k, attrs, hw_):
    inits = {"W": _w(cin, cout // group, k, k), "B": _w(cout) * 0.3}
    node = helper.make_node("ConvTranspose", ["x", "W", "B"], ["y"], group=group, **attrs)
    _roundtrip(make_model([node], inits, (1, cin, *hw_)), config, {"ConvTranspose"})


@pytest.mark.parametrize("config", ALL[:2])
def test_resize_linear_edge_pad_and_depthwise_conv_transpose(config):
    rng = np.random.default_rng(10)
    inits: dict[str, np.ndarray] = {"sc": np.array([1, 1, 2, 2], np.float32)}
    nodes = _conv("a", "x", "a", 3, 4, rng, inits, k=3)
    nodes.append(helper.make_node("Resize", ["a", "", "sc"], ["y"], mode="linear",
                                  coordinate_transformation_mode="half_pixel"))
    _roundtrip(make_model(nodes, inits, (1, 3, 5, 6)), config, {"EdgePad", "ConvTranspose"})


def test_every_npu_op_exports_in_both_forms():
    """Every op the backend lowers (a Host node included) has a QDQ and an integer export."""
    for op in LOWERINGS:
        assert callable(getattr(_Qdq, op, None)) and callable(getattr(_Integer, op, None)), op


def test_lut_export_is_a_gather_of_the_table():
    model = _unary("Sigmoid")
    c = compile_model(model, HW, calib=[{"x": RNG.normal(size=SHAPE[1:]).astype(np.float32)} for _ in range(4)])
    for form in ("qdq", "integer"):
        ops = [n.op_type for n in export_qdq(c.ir, form).graph.node]
        assert "Gather" in ops and "Sigmoid" not in ops


@pytest.mark.parametrize("optimize", [False, True], ids=["opt-off", "opt-on"])
def test_qdq_form_mul_with_fixed_point_scales_within_one_lsb(optimize):
    """ORACLE_NOTES["Mul"]: vmul's 31-bit multiplier against ORT's float32 ratio, 1 LSB at near-ties."""
    model = _multi([helper.make_node("Mul", ["a", "b"], ["y"])], {}, {"a": SHAPE, "b": SHAPE}, SHAPE)
    rng = np.random.default_rng(2)
    hw = HW.replace(scale_rule="fixed_point")
    c = compile_model(model, hw, calib=[{k: rng.normal(size=SHAPE[1:]).astype(np.float32) for k in "ab"}
                                        for _ in range(8)])
    feeds = {}
    for name in c.ir.inputs:
        q = c.ir.node(name)["act_q"]
        feeds[c.ir.node(name)["value"]] = dequantize(quantize_input(rng.normal(size=(8, *SHAPE[1:])), q), q)
    sim = run_program(c.program, feeds).raw["y"].astype(int)
    got = ort_session(export_qdq(c.ir, "qdq", int8_outputs=True), optimize).run(None, feeds)[0].astype(int)
    assert np.abs(got - sim).max() <= 1 and np.mean(got == sim) >= 0.99


def _host_model() -> onnx.ModelProto:
    """conv -> LRN (host) -> conv -> GAP -> Gemm -> Softmax (host, opset 11: over the flattened axis 1)."""
    inits = {"W1": _w(8, 3, 3, 3), "W2": _w(8, 8, 3, 3), "W3": _w(10, 8)}
    nodes = [helper.make_node("Conv", ["x", "W1"], ["c1"], pads=[1] * 4),
             helper.make_node("LRN", ["c1"], ["l"], size=3),
             helper.make_node("Conv", ["l", "W2"], ["c2"], pads=[1] * 4),
             helper.make_node("GlobalAveragePool", ["c2"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "W3"], ["logits"], transB=1),
             helper.make_node("Softmax", ["logits"], ["y"], axis=1)]
    return make_model(nodes, inits, (1, 3, 8, 8), opset=11)


@pytest.mark.parametrize("form", ["qdq", "integer"])
def test_host_ops_export_as_float_onnx_within_one_lsb(form):
    """A Host node is its ONNX op in float between DQ and Q, as the driver runs it (onnx.reference there,
    ORT's kernels here: float32 results may differ in the last bits, so 1 LSB near a rounding tie)."""
    rng = np.random.default_rng(9)
    c = compile_model(_host_model(), HW, calib=[{"x": rng.normal(size=(3, 8, 8)).astype(np.float32)} for _ in range(8)])
    assert sorted(c.ir.node(n)["attrs"]["onnx_op"] for n in c.ir.g.nodes if c.ir.op(n) == "Host") == ["LRN", "Softmax"]
    q = c.ir.node(c.ir.inputs[0])["act_q"]
    x = dequantize(quantize_input(rng.normal(size=(16, 3, 8, 8)), q), q)
    sim = run_program(c.program, {"x": x}).raw["y"].astype(int)
    exported = export_qdq(c.ir, form, int8_outputs=True)
    for optimize in (False, True):
        got = ort_session(exported, optimize).run(None, {"x": x})[0].astype(int)
        assert len(np.unique(sim)) > 3
        assert np.abs(got - sim).max() <= 1 and np.mean(got == sim) >= 0.95, (form, optimize)


def test_host_argmax_integer_output_exports_raw():
    inits = {"W": _w(10, 12)}
    nodes = [helper.make_node("Gemm", ["x", "W"], ["g"], transB=1),
             helper.make_node("ArgMax", ["g"], ["y"], axis=1, keepdims=1)]
    model = make_model(nodes, inits, (1, 12), y_type=onnx.TensorProto.INT64)
    rng = np.random.default_rng(1)
    c = compile_model(model, HW, calib=[{"x": rng.normal(size=12).astype(np.float32)} for _ in range(8)])
    x = rng.normal(size=(32, 12)).astype(np.float32)
    sim = run_program(c.program, {"x": x}).raw["y"]
    for form in ("qdq", "integer"):
        for int8_outputs in (False, True):
            got = ort_session(export_qdq(c.ir, form, int8_outputs=int8_outputs), False).run(None, {"x": x})[0]
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got.reshape(sim.shape), sim)
