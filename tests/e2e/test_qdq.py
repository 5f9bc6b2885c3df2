"""The QDQ export as an oracle: ONNX Runtime on the exported model == the C simulator, int8 for int8.

ORT runs with graph optimizations off and on (`ort_session`); the QDQ form
must be exact for pow2 scales with half-even rounding, the integer form for
every rule and rounding mode.
"""

from __future__ import annotations

import functools

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from npuc.compiler import compile_model
from npuc.examples import SMALL_CNN as MODEL
from npuc.examples import SMALL_CNN_SAMPLES as SAMPLES
from npuc.export.qdq import default_form, export_qdq, ort_session
from npuc.hw import HwConfig
from npuc.ir import IR, AccQ
from npuc.isa.arith import requantize
from npuc.reference import dequantize, quantize_input, run_quantized
from npuc.sim.driver import run_program

from .models import make_model

DATA = np.load(SAMPLES)
CALIB = [{"x": s} for s in DATA[:48]]
HELD_OUT = DATA[48:]


@functools.cache
def _small_cnn(act_mode: str):
    c = compile_model(MODEL, HwConfig(act_mode=act_mode), calib=CALIB)
    return c, run_program(c.program, {"x": HELD_OUT})


def _ort_int8(model: onnx.ModelProto, x: np.ndarray, optimize: bool) -> np.ndarray:
    return ort_session(model, optimize).run(None, {"x": x})[0]


def _mixed_model() -> onnx.ModelProto:
    """conv-relu6 (Clip), stride-2 conv-relu, maxpool, conv, GAP over 3x3 (not a power of two), gemm."""
    rng = np.random.default_rng(7)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    inits = {"W1": w(8, 3, 3, 3), "B1": w(8) * 0.1, "W2": w(12, 8, 3, 3), "B2": w(12) * 0.1,
             "W3": w(16, 12, 1, 1), "B3": w(16) * 0.1, "W4": w(5, 16), "B4": w(5) * 0.1,
             "lo": np.float32(0.0), "hi": np.float32(6.0)}
    nodes = [
        helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="c1"),
        helper.make_node("Clip", ["c1", "lo", "hi"], ["r1"], name="r1"),
        helper.make_node("Conv", ["r1", "W2", "B2"], ["c2"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1], name="c2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="r2"),
        helper.make_node("MaxPool", ["r2"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="p"),
        helper.make_node("Conv", ["p", "W3", "B3"], ["c3"], kernel_shape=[1, 1], name="c3"),
        helper.make_node("GlobalAveragePool", ["c3"], ["g"], name="g"),
        helper.make_node("Flatten", ["g"], ["f"], axis=1, name="f"),
        helper.make_node("Gemm", ["f", "W4", "B4"], ["y"], transB=1, name="fc"),
    ]
    return make_model(nodes, inits, [1, 3, 12, 12], "y", [1, 5], name="mixed")


@pytest.mark.parametrize("optimize", [False, True], ids=["opt-off", "opt-on"])
@pytest.mark.parametrize("act_mode", ["asymmetric", "symmetric"])
def test_small_cnn_qdq_equals_simulator(optimize, act_mode):
    c, run = _small_cnn(act_mode)
    sim = run.raw["logits"]
    got = _ort_int8(export_qdq(c.ir, "qdq", int8_outputs=True), HELD_OUT, optimize)
    np.testing.assert_array_equal(got, sim)


def test_small_cnn_qdq_float_outputs_equal_simulator_dequantized():
    c, run = _small_cnn("asymmetric")
    got = ort_session(export_qdq(c.ir, "qdq"), optimize=False).run(None, {"x": HELD_OUT})[0]
    np.testing.assert_array_equal(got, run.outputs["logits"])  # pow2 scales: both dequantize exactly


@pytest.fixture(scope="module")
def mixed_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("qdq") / "mixed.onnx"
    onnx.save(_mixed_model(), path)
    return path


def _mixed_data(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, 12, 12)).astype(np.float32)


@pytest.mark.parametrize("optimize", [False, True], ids=["opt-off", "opt-on"])
def test_mixed_model_qdq_within_gap_tolerance(mixed_path, optimize):
    """Clip, MaxPool, GAP over 9 pixels: GAP's 31-bit reciprocal vs ORT's float32 divide may differ
    by 1 LSB at near-ties; every other op is exact, so the final output stays within that."""
    c = compile_model(mixed_path, HwConfig(), calib=[{"x": s} for s in _mixed_data(32, 0)])
    x = _mixed_data(64, 1)
    sim = run_program(c.program, {"x": x}).raw["y"].astype(int)
    got = _ort_int8(export_qdq(c.ir, "qdq", int8_outputs=True), x, optimize).astype(int)
    assert np.abs(got - sim).max() <= 1
    assert np.mean(got == sim) >= 0.95


@pytest.mark.parametrize("optimize", [False, True], ids=["opt-off", "opt-on"])
@pytest.mark.parametrize("rule,rounding", [("pow2", "half_up"), ("pow2", "truncate"), ("pow2", "half_even"),
                                           ("fixed_point", "half_even"), ("fixed_point", "half_up")])
def test_integer_form_is_exact_for_every_rule(mixed_path, rule, rounding, optimize):
    hw = HwConfig(scale_rule=rule, rounding=rounding)
    c = compile_model(mixed_path, hw, calib=[{"x": s} for s in _mixed_data(32, 0)])
    # inputs on exact quantization levels: the input QuantizeLinear (float32) and the simulator's (float64)
    # then agree for any scale, so the comparison sees only the model's arithmetic
    q_in = c.ir.node("x")["act_q"]
    x = dequantize(quantize_input(_mixed_data(64, 1), q_in), q_in)
    sim = run_program(c.program, {"x": x}).raw["y"]
    got = _ort_int8(export_qdq(c.ir, "integer", int8_outputs=True), x, optimize)
    np.testing.assert_array_equal(got, sim)


def test_default_form_follows_the_rounding():
    assert default_form("half_even") == "qdq"
    assert default_form("half_up") == default_form("truncate") == "integer"


@pytest.mark.parametrize("rounding", ["half_even", "half_up", "truncate", "half_away"])
def test_integer_requantizer_matches_arith_on_ties_and_extremes(rounding):
    """The int64 ONNX spelling of `vrq` against `npuc.isa.arith.requantize`, ties and shift 0 included."""
    from npuc.export.qdq import _Builder, _Integer

    shifts = np.array([0, 1, 2, 5, 17, 31, 40, 62], dtype=np.int32)
    muls = np.array([1, 3, 1, 1 << 30, 12345, (1 << 31) - 1, 7, 1 << 30], dtype=np.int32)
    ir = IR()
    ir.add("g", "Gemm", shape=(1, len(shifts)))
    ir.node("g")["qop"] = AccQ(mul=muls, shift=shifts, bias=np.arange(len(shifts), dtype=np.int32) - 3,
                               zp_out=-6, lo=-100, hi=120, rounding=rounding, zp_in=0, rescale=np.ones(len(shifts)))
    b = _Builder()
    out = _Integer(b, ir).requantize("g", "acc", (-1,))
    graph = helper.make_graph(b.nodes, "rq", [helper.make_tensor_value_info("acc", TensorProto.INT32, None)],
                              [helper.make_tensor_value_info(out, TensorProto.INT8, None)], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    rng = np.random.default_rng(0)
    acc = rng.integers(-(1 << 20), 1 << 20, size=(4000, len(shifts))).astype(np.int64)
    acc[:64] = np.arange(-32, 32)[:, None] * 2  # small values: every tie of the small shifts
    acc[64:72] = np.array([-(1 << 30), (1 << 30) - 100] * 4)[:, None]
    acc = acc.astype(np.int32)
    want = requantize(acc.astype(np.int64) + ir.node("g")["qop"].bias, muls, shifts, -6, -100, 120, rounding)
    for optimize in (False, True):
        got = ort_session(model, optimize).run(None, {"acc": acc})[0]
        np.testing.assert_array_equal(got, want)


def test_export_keeps_the_ir_scales(mixed_path):
    c = compile_model(mixed_path, HwConfig(), calib=[{"x": s} for s in _mixed_data(8, 0)])
    inits = {i.name: numpy_helper.to_array(i) for i in export_qdq(c.ir, "qdq").graph.initializer}
    for name in c.ir.topo():
        q = c.ir.node(name)["act_q"]
        assert inits[f"{name}.scale"] == np.float32(q.scale) and inits[f"{name}.zp"] == q.zp
    q = c.ir.node("c1")["qop"]
    np.testing.assert_array_equal(inits["c1.Wq"], q.weight)
    np.testing.assert_array_equal(inits["c1.Wscale"], q.w_scale.astype(np.float32))


def test_quantized_reference_agrees_on_the_mixed_model(mixed_path):
    """Sanity: the simulator equals the numpy reference here, so the oracle compares the arithmetic."""
    c = compile_model(mixed_path, HwConfig(), calib=[{"x": s} for s in _mixed_data(32, 0)])
    x = _mixed_data(16, 3)
    q_in = c.ir.node("x")["act_q"]
    ref = run_quantized(c.ir, {"x": quantize_input(x, q_in)})[c.ir.outputs[0]]
    np.testing.assert_array_equal(run_program(c.program, {"x": x}).raw["y"], ref)


def test_cli_export_qdq_and_analyze(tmp_path, capsys):
    from npuc.cli import main

    out = tmp_path / "cnn_qdq.onnx"
    assert main(["export-qdq", str(MODEL), "--calib", str(SAMPLES), "-o", str(out), "--rounding", "half_up"]) == 0
    model = onnx.load(str(out))
    assert "ConvInteger" in {n.op_type for n in model.graph.node}  # half_up: the integer form
    assert main(["analyze", str(MODEL), "--calib", str(SAMPLES), "--max-samples", "8"]) == 0
    text = capsys.readouterr().out
    assert "| conv1 | Conv |" in text and "most sensitive layer:" in text
    assert main(["analyze", str(MODEL)]) == 1  # no data: a one-line user error


@pytest.mark.parametrize("optimize", [False, True], ids=["opt-off", "opt-on"])
def test_int4_layers_export_and_equal_the_simulator(optimize):
    """Layers with int4 weights (gemm w4) export as int8 DequantizeLinear of the same values in
    [-7, 7]: ONNX's INT4 needs opset 21 and the export is opset 13 (README, Accumulator and weight
    widths), so the numbers, not the type, carry the width."""
    c = compile_model(MODEL, HwConfig(), calib=CALIB, int4_layers=("conv2", "fc1"))
    sim = run_program(c.program, {"x": HELD_OUT}).raw["logits"]
    model = export_qdq(c.ir, "qdq", int8_outputs=True)
    wq = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.name.endswith(".Wq")}
    assert np.abs(wq["conv2.Wq"]).max() <= 7 and np.abs(wq["conv1.Wq"]).max() > 7
    np.testing.assert_array_equal(_ort_int8(model, HELD_OUT, optimize), sim)
