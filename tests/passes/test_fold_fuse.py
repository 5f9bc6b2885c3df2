"""fold_batchnorm and fuse_activation: structure and float equivalence."""

from __future__ import annotations

import math

import numpy as np
from onnx import helper

from npuc.passes import fold_batchnorm, fuse_activation, prepare, verify
from npuc.reference import run_float

RNG = np.random.default_rng(3)
W = RNG.standard_normal((4, 2, 3, 3)).astype(np.float32)
BN = {"s": RNG.uniform(0.5, 2, 4), "b": RNG.standard_normal(4), "m": RNG.standard_normal(4),
      "v": RNG.uniform(0.5, 2, 4)}


def conv(out="c", inp="x", name=None):
    return helper.make_node("Conv", [inp, "W"], [out], name=name or out, pads=[1, 1, 1, 1])


def bn(inp="c", out="y"):
    return helper.make_node("BatchNormalization", [inp, "s", "b", "m", "v"], [out], name=out)


def test_prepare_keeps_the_float_function(small_cnn, images):
    from npuc.frontend import load_onnx

    ir = load_onnx(small_cnn)
    prepared = prepare(ir, check=True)
    assert {prepared.op(n) for n in prepared.g} == {"Input", "Conv", "MaxPool", "Flatten", "Gemm"}
    before = run_float(ir, {"x": images})[ir.outputs[0]]
    after = run_float(prepared, {"x": images})[prepared.outputs[0]]
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4)


def test_fold_batchnorm_into_conv(tiny):
    ir = tiny([conv(), bn()], [1, 2, 6, 6], {"W": W, **BN})
    folded = fold_batchnorm(ir)
    assert "y" not in folded.g and folded.outputs == ["c"] and folded.node("c")["value"] == "y"
    x = RNG.standard_normal((2, 2, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(run_float(folded, {"x": x})["c"], run_float(ir, {"x": x})["y"], rtol=1e-4,
                               atol=1e-5)
    assert "BatchNormalization" in {ir.op(n) for n in ir.g}  # the input IR is untouched


def test_fold_batchnorm_into_gemm(tiny):
    nodes = [helper.make_node("Gemm", ["x", "G"], ["g"], name="g", transB=1), bn("g", "y")]
    ir = tiny(nodes, [3, 5], {"G": RNG.standard_normal((4, 5)), **BN})
    x = RNG.standard_normal((3, 5)).astype(np.float32)
    np.testing.assert_allclose(run_float(fold_batchnorm(ir), {"x": x})["g"], run_float(ir, {"x": x})["y"],
                               rtol=1e-4, atol=1e-5)


def test_standalone_batchnorm_is_a_depthwise_1x1_conv(tiny):
    ir = tiny([bn("x", "y")], [1, 4, 3, 3], BN)
    folded = fold_batchnorm(ir)
    assert [folded.op(n) for n in folded.topo()] == ["Input", "Conv"]
    node = folded.node("y")
    assert node["attrs"]["group"] == 4 and node["consts"]["W"].shape == (4, 1, 1, 1)
    verify(folded, "prepared")
    x = RNG.standard_normal((2, 4, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(run_float(folded, {"x": x})["y"], run_float(ir, {"x": x})["y"], rtol=1e-5,
                               atol=1e-6)


def test_batchnorm_after_a_shared_conv_is_a_depthwise_conv(tiny):
    nodes = [conv(), bn("c", "y"), helper.make_node("Relu", ["c"], ["z"], name="z")]
    folded = fold_batchnorm(tiny(nodes, [1, 2, 4, 4], {"W": W, **BN}, outputs=("y", "z")))
    assert folded.op("c") == "Conv" and folded.node("c")["attrs"].get("group", 1) == 1
    assert folded.op("y") == "Conv" and folded.node("y")["attrs"]["group"] == 4


def test_batchnorm_on_a_2d_tensor_is_a_diagonal_gemm(tiny):
    ir = tiny([bn("x", "y")], [3, 4], BN)
    folded = fold_batchnorm(ir)
    np.testing.assert_array_equal(folded.node("y")["consts"]["W"] != 0, np.eye(4, dtype=bool))
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(run_float(folded, {"x": x})["y"], run_float(ir, {"x": x})["y"], rtol=1e-5,
                               atol=1e-6)


def _affine_chain(head: str, tail: str) -> list:
    """BN -> Mul (per channel) -> Add (per channel) -> Relu: DenseNet's and Inception's pattern."""
    return [bn(head, "b1"), helper.make_node("Mul", ["b1", "S"], ["m1"], name="m1"),
            helper.make_node("Add", ["m1", "A"], ["a1"], name="a1"),
            helper.make_node("Relu", ["a1"], [tail], name=tail)]


CHAIN = {"S": RNG.uniform(-2, 2, (4, 1, 1)).astype(np.float32), "A": RNG.standard_normal((1, 4, 1, 1))}


def test_affine_chain_after_an_input_is_one_depthwise_conv_with_the_relu(tiny):
    ir = tiny(_affine_chain("x", "y"), [1, 4, 5, 5], {**BN, **CHAIN})
    prepared = prepare(ir, check=True)
    assert [prepared.op(n) for n in prepared.topo()] == ["Input", "Conv"]
    node = prepared.node("b1")
    assert node["attrs"]["group"] == 4 and node["attrs"]["act"][0] == "relu" and node["value"] == "y"
    x = RNG.standard_normal((2, 4, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(run_float(prepared, {"x": x})["b1"], run_float(ir, {"x": x})["y"], rtol=1e-5,
                               atol=1e-6)


def test_affine_chain_after_a_conv_folds_into_it(tiny):
    w4 = RNG.standard_normal((4, 2, 3, 3)).astype(np.float32)
    ir = tiny([conv()] + _affine_chain("c", "y"), [1, 2, 5, 5], {"W": w4, **BN, **CHAIN})
    prepared = prepare(ir, check=True)
    assert [prepared.op(n) for n in prepared.topo()] == ["Input", "Conv"]
    x = RNG.standard_normal((2, 2, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(run_float(prepared, {"x": x})["c"], run_float(ir, {"x": x})["y"], rtol=1e-4,
                               atol=1e-5)


def test_affine_chain_after_an_activated_conv_is_not_folded(tiny):
    """Conv -> Relu -> BN: folding would move the scale before the clamp, so the BN becomes its own conv."""
    nodes = [conv(), helper.make_node("Relu", ["c"], ["r"], name="r"), bn("r", "y")]
    prepared = prepare(tiny(nodes, [1, 2, 4, 4], {"W": W, **BN}), check=True)
    assert [prepared.op(n) for n in prepared.topo()] == ["Input", "Conv", "Conv"]
    assert prepared.node("c")["attrs"]["act"][0] == "relu" and prepared.node("y")["attrs"]["group"] == 4


def test_relu_fuses_into_conv(tiny):
    ir = fuse_activation(tiny([conv(), helper.make_node("Relu", ["c"], ["y"])], [1, 2, 4, 4], {"W": W}))
    assert ir.outputs == ["c"] and ir.node("c")["attrs"]["act"] == ("relu", 0.0, math.inf)
    verify(ir, "prepared")


def test_clip_fuses_through_maxpool_and_flatten(tiny):
    nodes = [conv(), helper.make_node("MaxPool", ["c"], ["p"], name="p", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], name="f"),
             helper.make_node("Clip", ["f", "lo", "hi"], ["y"], name="y")]
    ir = tiny(nodes, [1, 2, 4, 4], {"W": W, "lo": np.float32(-0.5), "hi": np.float32(1.5)})
    fused = fuse_activation(ir)
    assert fused.node("c")["attrs"]["act"] == ("clip", -0.5, 1.5)
    assert fused.outputs == ["f"] and fused.node("f")["value"] == "y"
    x = RNG.standard_normal((4, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(run_float(fused, {"x": x})["f"], run_float(ir, {"x": x})["y"], rtol=1e-5)


def test_two_activations_intersect(tiny):
    nodes = [conv(), helper.make_node("Clip", ["c", "lo", "hi"], ["k"], name="k"),
             helper.make_node("Relu", ["k"], ["y"], name="y")]
    fused = fuse_activation(tiny(nodes, [1, 2, 4, 4], {"W": W, "lo": np.float32(-1), "hi": np.float32(6)}))
    assert fused.node("c")["attrs"]["act"] == ("clip", 0.0, 6.0)


def test_standalone_relu_becomes_a_lut(tiny):
    ir = fuse_activation(tiny([helper.make_node("Relu", ["x"], ["y"], name="y")], [1, 4], {}))
    assert ir.op("y") == "Lut" and ir.node("y")["attrs"] == {"fn": "relu"} and ir.preds("y") == ["x"]


def test_clip_after_a_shared_conv_becomes_a_lut(tiny):
    lo, hi = helper.make_node("Constant", [], ["lo"], value_float=-1.0), helper.make_node("Constant", [], ["hi"],
                                                                                           value_float=2.5)
    nodes = [conv(), lo, hi, helper.make_node("Clip", ["c", "lo", "hi"], ["y"], name="y"),
             helper.make_node("GlobalAveragePool", ["c"], ["z"], name="z")]
    ir = fuse_activation(tiny(nodes, [1, 2, 4, 4], {"W": W}, outputs=("y", "z")))
    assert ir.op("y") == "Lut" and ir.node("y")["attrs"] == {"fn": "clip", "lo": -1.0, "hi": 2.5}
    assert "act" not in ir.node("c")["attrs"]
