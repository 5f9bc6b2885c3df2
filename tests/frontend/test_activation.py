"""Activation handlers: the Lut node each becomes (fn and parameters), PRelu's slope forms, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from npuc.frontend import FrontendError, load_onnx


def _one(build, node, shape=(1, 3, 2, 2), inits=None, opset=None):
    model = build([node], {"x": list(shape)}, ["y"], inits or {})
    if opset is not None:
        model.opset_import[0].version = opset
    ir = load_onnx(model, allow_fallback=False)
    (n,) = [k for k in ir.g.nodes if ir.op(k) != "Input"]
    return ir, n


@pytest.mark.parametrize("op,attrs,want", [
    ("Sigmoid", {}, {"fn": "sigmoid"}),
    ("HardSigmoid", {}, {"fn": "hardsigmoid", "alpha": 0.2, "beta": 0.5}),
    ("LeakyRelu", {"alpha": 0.25}, {"fn": "leakyrelu", "alpha": 0.25}),
    ("Elu", {}, {"fn": "elu", "alpha": 1.0}),
    ("HardSwish", {}, {"fn": "hardswish"}),
    ("Erf", {}, {"fn": "erf"}),
    ("Abs", {}, {"fn": "abs"}),
])
def test_activation_is_a_lut(build, op, attrs, want):
    ir, n = _one(build, helper.make_node(op, ["x"], ["y"], name="a", **attrs), opset=14)
    attrs = ir.node(n)["attrs"]
    assert ir.op(n) == "Lut" and attrs.keys() == want.keys()
    assert all(attrs[k] == pytest.approx(v) if isinstance(v, float) else attrs[k] == v for k, v in want.items())


def test_gelu_tanh_and_a_bad_approximation(build):
    ir, n = _one(build, helper.make_node("Gelu", ["x"], ["y"], name="g", approximate="tanh"), opset=20)
    assert ir.node(n)["attrs"] == {"fn": "gelu", "approximate": "tanh"}
    with pytest.raises(FrontendError, match="approximate='fast'"):
        _one(build, helper.make_node("Gelu", ["x"], ["y"], name="g", approximate="fast"), opset=20)


@pytest.mark.parametrize("slope,fn", [(np.float32(0.3), "leakyrelu"),
                                      (np.full((3, 1, 1), 0.3, np.float32), "leakyrelu"),
                                      (np.array([0.1, 0.2, 0.3], np.float32).reshape(3, 1, 1), "prelu")])
def test_prelu_slope_forms(build, slope, fn):
    ir, n = _one(build, helper.make_node("PRelu", ["x", "s"], ["y"], name="p"), inits={"s": slope})
    assert ir.node(n)["attrs"]["fn"] == fn
    if fn == "prelu":
        np.testing.assert_array_equal(ir.node(n)["consts"]["slope"], np.float32([0.1, 0.2, 0.3]))
    else:
        assert ir.node(n)["attrs"]["alpha"] == pytest.approx(0.3)


def test_prelu_slope_that_is_not_per_channel_is_refused(build):
    with pytest.raises(FrontendError, match="not one value per channel"):
        _one(build, helper.make_node("PRelu", ["x", "s"], ["y"], name="p"),
             inits={"s": np.arange(4, dtype=np.float32).reshape(1, 2, 2)})
