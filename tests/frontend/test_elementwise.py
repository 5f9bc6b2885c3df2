"""Add, Sub, Sum, Mul, Div: the IR they become, their float meaning (against onnxruntime) and what they refuse."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from npuc.frontend import FrontendError, load_onnx
from npuc.passes import verify
from npuc.reference import run_float

R = np.random.default_rng(5)


def _relu(out: str = "r") -> helper.NodeProto:
    return helper.make_node("Relu", ["x"], [out], name=out)


def _w(*shape: int) -> np.ndarray:
    return R.standard_normal(shape).astype(np.float32)


CASES = [
    pytest.param([_relu(), helper.make_node("Add", ["r", "x"], ["y"], name="y")], (1, 3, 4, 5), {}, id="add"),
    pytest.param([_relu(), helper.make_node("Sub", ["x", "r"], ["y"], name="y")], (1, 3, 4, 5), {}, id="sub"),
    pytest.param([_relu(), helper.make_node("Add", ["x", "r"], ["y"], name="y")], (2, 7), {}, id="add-2d"),
    pytest.param([_relu(), helper.make_node("Sum", ["r", "x"], ["y"], name="y")], (1, 2, 3, 3), {}, id="sum-2"),
    pytest.param([_relu(), helper.make_node("Sum", ["r"], ["y"], name="y")], (1, 2, 3, 3), {}, id="sum-1"),
    pytest.param([helper.make_node("Add", ["x", "k"], ["y"], name="y")], (1, 3, 4, 4), {"k": _w(3, 1, 1)},
                 id="add-const-c11"),
    pytest.param([helper.make_node("Add", ["k", "x"], ["y"], name="y")], (1, 3, 4, 4), {"k": _w(1, 3, 1, 1)},
                 id="const-add-1c11"),
    pytest.param([helper.make_node("Sub", ["x", "k"], ["y"], name="y")], (1, 3, 4, 4), {"k": _w()},
                 id="sub-scalar"),
    pytest.param([helper.make_node("Add", ["x", "k"], ["y"], name="y")], (2, 6), {"k": _w(6)}, id="add-const-2d"),
    pytest.param([_relu(), _relu("s"), helper.make_node("Sum", ["x", "r", "s"], ["y"], name="y")], (1, 2, 3, 3),
                 {}, id="sum-3"),
    pytest.param([_relu(), helper.make_node("Mul", ["r", "x"], ["y"], name="y")], (1, 3, 4, 5), {}, id="mul"),
    pytest.param([helper.make_node("GlobalAveragePool", ["x"], ["g"], name="g"),
                  helper.make_node("Mul", ["g", "x"], ["y"], name="y")], (1, 3, 4, 5), {}, id="mul-se"),
    pytest.param([helper.make_node("Mul", ["k", "x"], ["y"], name="y")], (1, 3, 4, 4), {"k": _w(3, 1, 1)},
                 id="mul-const"),
    pytest.param([helper.make_node("Div", ["x", "k"], ["y"], name="y")], (1, 3, 4, 4), {"k": np.float32(6)},
                 id="div-scalar"),
]


@pytest.mark.parametrize("nodes, x_shape, inits", CASES)
def test_matches_onnxruntime(build, oracle, nodes, x_shape, inits):
    model = build(nodes, {"x": list(x_shape)}, ["y"], inits)
    ir = load_onnx(model, allow_fallback=False)
    verify(ir, "frontend")
    x = R.standard_normal(x_shape).astype(np.float32)
    (want,) = oracle(model, {"x": x})
    got = run_float(ir, {"x": x})[ir.outputs[0]]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_two_tensors_become_a_two_input_node_in_onnx_input_order(build):
    model = build([_relu(), helper.make_node("Sub", ["r", "x"], ["y"], name="d")], {"x": [1, 2, 3, 3]}, ["y"])
    ir = load_onnx(model)
    assert ir.op("d") == "Sub" and ir.preds("d") == ["r", "x"] and not ir.node("d")["consts"]


def test_sum_of_three_is_a_chain_of_two_input_adds(build):
    nodes = [_relu(), _relu("s"), helper.make_node("Sum", ["x", "r", "s"], ["y"], name="n")]
    ir = load_onnx(build(nodes, {"x": [1, 2, 3, 3]}, ["y"]))
    (inner,) = ir.preds("n")[:1]
    assert ir.op("n") == "Add" and ir.preds("n") == [inner, "s"]
    assert inner == "n/sum1" and ir.op(inner) == "Add" and ir.preds(inner) == ["x", "r"]


def test_mul_forms(build):
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"], name="g"),
             helper.make_node("Mul", ["g", "x"], ["m"], name="se"),
             helper.make_node("Div", ["m", "k"], ["y"], name="d")]
    ir = load_onnx(build(nodes, {"x": [1, 3, 2, 2]}, ["y"], {"k": np.array([2, 4, 8], np.float32).reshape(3, 1, 1)}))
    assert ir.op("se") == "Mul" and ir.preds("se") == ["x", "g"] and ir.node("se")["attrs"] == {"broadcast": "channel"}
    assert ir.op("d") == "Mul" and ir.preds("d") == ["se"]
    np.testing.assert_array_equal(ir.node("d")["consts"]["S"], [0.5, 0.25, 0.125])


def test_a_per_channel_constant_becomes_a_bias_vector(build):
    k = _w(1, 4, 1, 1)
    model = build([helper.make_node("Sub", ["x", "k"], ["y"], name="d")], {"x": [1, 4, 2, 2]}, ["y"], {"k": k})
    ir = load_onnx(model)
    assert ir.op("d") == "Add" and ir.preds("d") == ["x"]
    np.testing.assert_array_equal(ir.node("d")["consts"]["B"], -k.reshape(4))


@pytest.mark.parametrize("op, order", [("Add", ["x", "k"]), ("Sub", ["k", "x"]), ("Sub", ["x", "k"]),
                                       ("Mul", ["k", "x"]), ("Div", ["x", "k"])])
def test_a_constant_tensor_operand_is_a_const_node(build, oracle, op, order):
    """A constant that is not one value per channel (YOLO's anchor grid) but broadcasts to the tensor."""
    k = _w(1, 1, 4, 4) + (3.0 if op == "Div" else 0.0)
    model = build([helper.make_node(op, order, ["y"], name="n")], {"x": ["N", 3, 4, 4]}, ["y"], {"k": k})
    ir = load_onnx(model)
    (const,) = [n for n in ir.g if ir.op(n) == "Const"]
    assert ir.node(const)["shape"] == (1, 3, 4, 4)
    assert ir.op("n") == ("Mul" if op == "Div" else op)
    assert ir.preds("n") == ([const, "x"] if op == "Sub" and order[0] == "k" else ["x", const])
    x = np.random.default_rng(1).normal(size=(2, 3, 4, 4)).astype(np.float32)
    got = run_float(ir, {"x": x})["n"]
    np.testing.assert_allclose(got, oracle(model, {"x": x})[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("nodes, inits, match", [
    ([helper.make_node("MaxPool", ["x"], ["q"], name="q", kernel_shape=[4, 1]),
      helper.make_node("Add", ["x", "q"], ["y"], name="n")], {}, "shapes (1, 3, 4, 4) and (1, 3, 1, 4)"),
    ([_relu(), helper.make_node("Sum", ["x", "r", "x"], ["y"], name="n")], {}, "an input appears twice"),
    ([_relu(), helper.make_node("Div", ["x", "r"], ["y"], name="n")], {}, "division by a run-time tensor"),
    ([helper.make_node("MaxPool", ["x"], ["q"], name="q", kernel_shape=[4, 1]),
      helper.make_node("Mul", ["x", "q"], ["y"], name="n")], {}, "(1, C, H, W) times (1, C, 1, 1)"),
    ([_relu(), helper.make_node("Add", ["r", "r"], ["y"], name="n")], {}, "both inputs are the same tensor"),
])
def test_refusals_name_the_node_and_fall_back_to_the_host(build, nodes, inits, match):
    model = build(nodes, {"x": [1, 3, 4, 4]}, ["y"], inits)
    with pytest.raises(FrontendError) as e:
        load_onnx(model, allow_fallback=False)
    assert "node 'n' (op " in str(e.value) and "opset 13" in str(e.value) and match in str(e.value)
    ir = load_onnx(model)
    assert ir.op("n") == "Host"
