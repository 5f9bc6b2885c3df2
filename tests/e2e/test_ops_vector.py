"""Lut activations and Mul on the NPU (`vlut`, `vmul`): float reference == onnxruntime, and the C
simulator == the numpy integer reference bit for bit, on the default and tiny presets, no host op."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from npuc.compiler import compile_model
from npuc.frontend import load_onnx
from npuc.hw import load_hw
from npuc.passes import prepare
from npuc.reference import run_float, run_quantized
from npuc.sim.driver import quantize, run_program

from .models import make_model

HWS = {"default": load_hw("default"), "tiny": load_hw("tiny")}
SHAPE = (1, 8, 6, 10)


def _multi(nodes, inits, inputs: dict[str, tuple[int, ...]], out_shape, opset=13) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(s))
                                           for k, s in inputs.items()],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _feeds(inputs: dict[str, tuple[int, ...]], rng, n: int, spread: float = 3.0) -> dict[str, np.ndarray]:
    return {k: (spread * rng.normal(size=(n, *s[1:]))).astype(np.float32) for k, s in inputs.items()}


def _check(model, inputs: dict[str, tuple[int, ...]], want_ops: set[str], seed: int = 0) -> dict[str, int]:
    """ORT == float reference; per preset: compile, no Host node, C == numpy. Returns cycles per preset."""
    rng = np.random.default_rng(seed)
    x = _feeds(inputs, rng, 3)
    ir = prepare(load_onnx(model))
    ops = {ir.op(n) for n in ir.g.nodes} - {"Input"}
    assert ops == want_ops, ops
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for b in range(3):
        one = {k: v[b:b + 1] for k, v in x.items()}
        (want,) = sess.run(None, one)
        (got,) = run_float(ir, one).values()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    cycles = {}
    for hw_name, hw in HWS.items():
        calib = [{k: v[0] for k, v in _feeds(inputs, rng, 1).items()} for _ in range(8)]
        c = compile_model(model, hw, calib=calib)
        assert not any(c.ir.op(n) == "Host" for n in c.ir.g.nodes)
        run = run_program(c.program, x)
        feeds_q = {t.name: quantize(x[t.name], t) for t in c.program.inputs()}
        ref = run_quantized(c.ir, {n: feeds_q[c.ir.node(n)["value"]] for n in c.ir.inputs})
        out = c.ir.outputs[0]
        sim = run.raw[c.ir.node(out)["value"]]
        np.testing.assert_array_equal(sim, ref[out].reshape(sim.shape))
        assert len(set(np.unique(sim).tolist())) > 4  # a table that is not degenerate
        cycles[hw_name] = run.stats[0].cycles
    return cycles


def _unary(op: str, shape=SHAPE, opset: int = 13, **attrs) -> onnx.ModelProto:
    return make_model([helper.make_node(op, ["x"], ["y"], **attrs)], {}, shape, opset=opset)


@pytest.mark.parametrize("op,attrs,opset", [
    ("Sigmoid", {}, 13), ("Tanh", {}, 13), ("HardSigmoid", {"alpha": 0.25, "beta": 0.4}, 13),
    ("HardSwish", {}, 14), ("LeakyRelu", {"alpha": 0.1}, 13), ("Elu", {"alpha": 0.7}, 13),
    ("Softplus", {}, 13), ("Gelu", {}, 20), ("Gelu", {"approximate": "tanh"}, 20), ("Selu", {}, 13),
    ("Softsign", {}, 13), ("Relu", {}, 13),
])
def test_lut_activation(op, attrs, opset):
    _check(_unary(op, opset=opset, **attrs), {"x": SHAPE}, {"Lut"})


def test_clip_with_nothing_to_fuse_into_is_a_lut():
    lo, hi = np.array(-1.5, np.float32), np.array(2.0, np.float32)
    model = make_model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])], {"lo": lo, "hi": hi}, SHAPE)
    _check(model, {"x": SHAPE}, {"Lut"})


@pytest.mark.parametrize("shape", [SHAPE, (1, 40, 7, 9)])  # 40 tables of 256 bytes overflow tiny's 8 KiB
def test_prelu_per_channel(shape):
    slope = np.linspace(-0.6, 0.9, shape[1]).astype(np.float32).reshape(-1, 1, 1)
    model = make_model([helper.make_node("PRelu", ["x", "s"], ["y"])], {"s": slope}, shape)
    _check(model, {"x": shape}, {"Lut"})


def test_mul_of_two_tensors():
    model = _multi([helper.make_node("Mul", ["a", "b"], ["y"])], {}, {"a": SHAPE, "b": SHAPE}, SHAPE)
    _check(model, {"a": SHAPE, "b": SHAPE}, {"Mul"})


@pytest.mark.parametrize("swap", [False, True])
def test_mul_squeeze_excite_channel_broadcast(swap):
    shape, s = (1, 24, 9, 7), (1, 24, 1, 1)
    ins = ["s", "x"] if swap else ["x", "s"]
    model = _multi([helper.make_node("Mul", ins, ["y"])], {}, {"x": shape, "s": s}, shape)
    _check(model, {"x": shape, "s": s}, {"Mul"})


def test_squeeze_excite_block_gap_sigmoid_mul():
    shape = (1, 16, 8, 8)
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"]), helper.make_node("Sigmoid", ["g"], ["s"]),
             helper.make_node("Mul", ["x", "s"], ["y"])]
    _check(make_model(nodes, {}, shape), {"x": shape}, {"GlobalAveragePool", "Lut", "Mul"})


def test_sum_of_three_is_a_chain_of_adds():
    model = _multi([helper.make_node("Sum", ["a", "b", "c"], ["y"])], {}, {"a": SHAPE, "b": SHAPE, "c": SHAPE},
                   SHAPE)
    _check(model, {"a": SHAPE, "b": SHAPE, "c": SHAPE}, {"Add"})


def _c(v: float) -> np.ndarray:
    return np.array(v, np.float32)


SILU = [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])]
HARDSWISH = {  # the forms PyTorch exports below opset 14, and hand-written variants
    "clip-div": ([helper.make_node("Add", ["x", "three"], ["a"]), helper.make_node("Clip", ["a", "zero", "six"], ["r"]),
                  helper.make_node("Mul", ["x", "r"], ["m"]), helper.make_node("Div", ["m", "six"], ["y"])],
                 {"three": _c(3), "zero": _c(0), "six": _c(6)}),
    "relu6-scaled-first": ([helper.make_node("Add", ["x", "three"], ["a"]),
                            helper.make_node("Clip", ["a", "zero", "six"], ["r"]),
                            helper.make_node("Mul", ["r", "sixth"], ["h"]), helper.make_node("Mul", ["h", "x"], ["y"])],
                           {"three": _c(3), "zero": _c(0), "six": _c(6), "sixth": _c(1 / 6)}),
    "hardsigmoid": ([helper.make_node("HardSigmoid", ["x"], ["h"], alpha=1 / 6, beta=0.5),
                     helper.make_node("Mul", ["x", "h"], ["y"])], {}),
}


def test_silu_pattern_becomes_one_lut():
    cycles = _check(make_model(SILU, {}, SHAPE), {"x": SHAPE}, {"Lut"})
    assert cycles["tiny"] > cycles["default"] > 0
    ir = prepare(load_onnx(make_model(SILU, {}, SHAPE)))
    (lut,) = [n for n in ir.g.nodes if ir.op(n) == "Lut"]
    assert ir.node(lut)["attrs"] == {"fn": "silu"}


@pytest.mark.parametrize("form", sorted(HARDSWISH))
def test_hardswish_pattern_becomes_one_lut(form):
    nodes, inits = HARDSWISH[form]
    model = make_model(nodes, inits, SHAPE, opset=13)
    _check(model, {"x": SHAPE}, {"Lut"})
    ir = prepare(load_onnx(model))
    (lut,) = [n for n in ir.g.nodes if ir.op(n) == "Lut"]
    assert ir.node(lut)["attrs"]["fn"] == "hardswish"


def test_a_product_that_is_no_known_function_stays_a_mul():
    nodes = [helper.make_node("Tanh", ["x"], ["t"]), helper.make_node("Mul", ["x", "t"], ["y"])]
    _check(make_model(nodes, {}, SHAPE), {"x": SHAPE}, {"Lut", "Mul"})


def test_cycles_of_sigmoid_and_mul_at_1x32x16x16():
    shape = (1, 32, 16, 16)
    sig = _check(_unary("Sigmoid", shape), {"x": shape}, {"Lut"})
    mul = _check(_multi([helper.make_node("Mul", ["a", "b"], ["y"])], {}, {"a": shape, "b": shape}, shape),
                 {"a": shape, "b": shape}, {"Mul"})
    # DRAM-bound: 8 KiB in and 8 KiB out (Mul: 16 KiB in) over one channel of dram_bw bytes a cycle
    hw = HWS["default"]
    assert 2 * 8192 / hw.dram_bw <= sig["default"] < 1.5 * 2 * 8192 / hw.dram_bw
    assert 3 * 8192 / hw.dram_bw <= mul["default"] < 1.5 * 3 * 8192 / hw.dram_bw


def test_a_sigmoid_with_another_consumer_is_not_fused():
    """x·sigmoid(x) where sigmoid(x) is also a graph output: the Lut must stay, so no silu."""
    nodes = SILU + [helper.make_node("Add", ["y", "s"], ["z"])]
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, list(SHAPE))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    ir = prepare(load_onnx(model))
    assert sorted(ir.op(n) for n in ir.g.nodes) == ["Add", "Input", "Lut", "Mul"]
