"""Issue 4, item 3: simulator == onnxruntime on the QDQ export of a multi-layer model with a residual Add.

The model is a small ResNet block built with onnx.helper:

    x -> conv-bn-relu -> conv-bn -> Add(skip = x) -> Relu -> conv -> GAP -> Flatten -> Gemm

compiled with the default rules (pow2 scales, asymmetric activations, half-even
rounding), simulated in C, exported as QDQ ONNX and run by ONNX Runtime with
graph optimizations off and on: the int8 outputs must be equal, sample for
sample. The simulator must also equal the numpy integer reference
(`run_quantized`) bit for bit, intermediates included.
"""

from __future__ import annotations

import functools

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from npuc.compiler import compile_model
from npuc.export.qdq import export_qdq, ort_session
from npuc.hw import HwConfig, load_hw
from npuc.reference import dequantize, quantize_input, run_quantized
from npuc.sim.driver import run_program

from .models import make_model

C, H, W = 8, 16, 16


def _bn(rng: np.random.Generator, name: str, c: int) -> tuple[list, dict]:
    inits = {f"{name}.s": rng.uniform(0.5, 1.5, c), f"{name}.b": rng.normal(0, 0.2, c),
             f"{name}.m": rng.normal(0, 0.2, c), f"{name}.v": rng.uniform(0.5, 1.5, c)}
    return list(inits), {k: v.astype(np.float32) for k, v in inits.items()}


def residual_model(op: str = "Add", seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    bn1, i1 = _bn(rng, "bn1", C)
    bn2, i2 = _bn(rng, "bn2", C)
    inits = {"W1": w(C, C, 3, 3), "W2": w(C, C, 3, 3), "W3": w(16, C, 3, 3), "B3": w(16) * 0.1,
             "W4": w(10, 16), "B4": w(10) * 0.1, **i1, **i2}
    conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Conv", ["x", "W1"], ["c1"], name="conv1", **conv),
        helper.make_node("BatchNormalization", ["c1", *bn1], ["b1"], name="bn1"),
        helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "W2"], ["c2"], name="conv2", **conv),
        helper.make_node("BatchNormalization", ["c2", *bn2], ["b2"], name="bn2"),
        helper.make_node(op, ["b2", "x"], ["s"], name="residual"),
        helper.make_node("Relu", ["s"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "W3", "B3"], ["c3"], name="conv3", strides=[2, 2], **conv),
        helper.make_node("GlobalAveragePool", ["c3"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "W4", "B4"], ["y"], name="fc", transB=1),
    ]
    return make_model(nodes, inits, [1, C, H, W], "y", [1, 10], name="resblock", check=True)


def _data(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, C, H, W)).astype(np.float32)


@functools.cache
def _compiled(tmp_dir: str, op: str, act_mode: str):
    path = f"{tmp_dir}/res_{op}.onnx"
    onnx.save(residual_model(op), path)
    c = compile_model(path, HwConfig(act_mode=act_mode), calib=[{"x": s} for s in _data(32, 0)], verify=True)
    x = _data(64, 1)
    return c, x, run_program(c.program, {"x": x})


@pytest.fixture(scope="module")
def tmp_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("residual"))


def test_the_residual_add_runs_on_the_npu_with_its_relu_fused(tmp_dir):
    c, _, _ = _compiled(tmp_dir, "Add", "asymmetric")
    ops = {c.ir.op(n) for n in c.ir.g.nodes}
    assert "Add" in ops and "Host" not in ops and "Relu" not in ops and "BatchNormalization" not in ops
    add = c.ir.node("residual")
    assert add["attrs"]["act"][0] == "relu" and add["qop"].lo == add["act_q"].zp  # relu: the clamp's lo
    assert "vadd" in {i.op for i in c.program.insns}


@pytest.mark.parametrize("op", ["Add", "Sub"])
@pytest.mark.parametrize("act_mode", ["asymmetric", "symmetric"])
def test_simulator_equals_the_integer_reference_bit_for_bit(tmp_dir, op, act_mode):
    c, x, run = _compiled(tmp_dir, op, act_mode)
    ref = run_quantized(c.ir, {"x": quantize_input(x, c.ir.node("x")["act_q"])})
    np.testing.assert_array_equal(run.raw["y"], ref[c.ir.outputs[0]])


@pytest.mark.parametrize("optimize", [False, True], ids=["opt-off", "opt-on"])
@pytest.mark.parametrize("op", ["Add", "Sub"])
@pytest.mark.parametrize("act_mode", ["asymmetric", "symmetric"])
def test_simulator_equals_onnxruntime_on_the_qdq_export(tmp_dir, op, act_mode, optimize):
    c, x, run = _compiled(tmp_dir, op, act_mode)
    got = ort_session(export_qdq(c.ir, "qdq", int8_outputs=True), optimize).run(None, {"x": x})[0]
    assert got.dtype == np.int8 and got.shape == run.raw["y"].shape == (64, 10)
    np.testing.assert_array_equal(got, run.raw["y"])


def test_the_residual_tensor_itself_matches_onnxruntime(tmp_dir):
    """Not only the logits: the Add's own int8 output, exported as a graph output, sample for sample."""
    c, x, _ = _compiled(tmp_dir, "Add", "asymmetric")
    model = export_qdq(c.ir, "qdq", int8_outputs=True)
    q_value = "residual.q"  # the QuantizeLinear output of the IR node 'residual'
    assert any(q_value in n.output for n in model.graph.node)
    model.graph.output.append(helper.make_tensor_value_info(q_value, TensorProto.INT8, None))
    ref = run_quantized(c.ir, {"x": quantize_input(x, c.ir.node("x")["act_q"])}, intermediates=True)
    for optimize in (False, True):
        got = ort_session(model, optimize).run([q_value], {"x": x})[0]
        np.testing.assert_array_equal(got, ref["residual"])


@pytest.mark.parametrize("optimize", [False, True], ids=["opt-off", "opt-on"])
@pytest.mark.parametrize("rule,rounding", [("pow2", "half_up"), ("pow2", "truncate"), ("fixed_point", "half_away"),
                                           ("fixed_point", "half_even"), ("fixed_point", "half_up")])
def test_integer_export_is_exact_for_other_rules(tmp_path, rule, rounding, optimize):
    path = tmp_path / "res.onnx"
    onnx.save(residual_model("Add"), path)
    c = compile_model(path, HwConfig(scale_rule=rule, rounding=rounding), calib=[{"x": s} for s in _data(16, 0)],
                      verify=True)
    q_in = c.ir.node("x")["act_q"]
    x = dequantize(quantize_input(_data(32, 2), q_in), q_in)  # on exact levels: see test_qdq.py
    sim = run_program(c.program, {"x": x}).raw["y"]
    np.testing.assert_array_equal(sim, run_quantized(c.ir, {"x": quantize_input(x, q_in)})[c.ir.outputs[0]])
    got = ort_session(export_qdq(c.ir, "integer", int8_outputs=True), optimize).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, sim)


def test_tiny_hardware_tiles_the_add(tmp_path):
    """On the tiny preset (8 KiB scratchpad) the 2 KiB tensors stream through in tiles; still bit-exact."""
    path = tmp_path / "res.onnx"
    onnx.save(residual_model("Add"), path)
    c = compile_model(path, load_hw("tiny"), calib=[{"x": s} for s in _data(16, 0)], verify=True)
    assert sum(i.op == "vadd" for i in c.program.insns) > 1
    x = _data(8, 3)
    ref = run_quantized(c.ir, {"x": quantize_input(x, c.ir.node("x")["act_q"])})
    np.testing.assert_array_equal(run_program(c.program, {"x": x}).raw["y"], ref[c.ir.outputs[0]])


def _two_branch_model() -> onnx.ModelProto:
    """Add(conv3x3(x), conv1x1(x)) as the graph output: no Relu, the output coarser than both inputs,
    so the sum is rounded (sh > 0) — with optimizations on, ORT fuses DQ-Add-Q into QLinearAdd."""
    rng = np.random.default_rng(4)
    inits = {"W1": (rng.standard_normal((C, C, 3, 3)) / np.sqrt(9 * C)).astype(np.float32),
             "W2": (3 * rng.standard_normal((C, C, 1, 1)) / np.sqrt(C)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "W1"], ["a"], name="a", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "W2"], ["b"], name="b", kernel_shape=[1, 1]),
             helper.make_node("Add", ["a", "b"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "two_branch",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, C, 8, 8])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("act_mode", ["asymmetric", "symmetric"])
def test_rounded_sum_equals_onnxruntime_qlinearadd(tmp_path, act_mode):
    import onnxruntime as ort

    path = tmp_path / "two_branch.onnx"
    onnx.save(_two_branch_model(), path)
    rng = np.random.default_rng(5)
    c = compile_model(path, HwConfig(act_mode=act_mode), calib=[{"x": s} for s in rng.standard_normal((32, C, 8, 8))],
                      verify=True)
    q = c.ir.node("add")["qop"]
    assert q.sh > 0 and q.ma != q.mb  # a real rescale and a real rounding
    x = rng.standard_normal((64, C, 8, 8)).astype(np.float32)
    sim = run_program(c.program, {"x": x}).raw["y"]
    model = export_qdq(c.ir, "qdq", int8_outputs=True)
    for optimize in (False, True):
        np.testing.assert_array_equal(ort_session(model, optimize).run(None, {"x": x})[0], sim)
    # the optimized graph really is ORT's integer kernel, not a float Add
    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.qdqisint8allowed", "1")
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    opts.log_severity_level = 3
    ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    assert "QLinearAdd" in {n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node}
