"""Patterns found in real PyTorch exports (torchvision models, torch 2.13, opsets 13/17) that once fell
back to the host or broke: each as a small hand-built model, compiled for the default and tiny presets,
float reference == onnxruntime, no Host node, C simulator == numpy integer reference bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from .models import make_model
from .test_ops_conv import _check, _w


@pytest.mark.parametrize("hw_", [(7, 7), (12, 10)])
def test_mean_over_hw_then_gemm(hw_):
    """ShuffleNetV2 / MNASNet head: Conv -> Relu -> ReduceMean([2, 3], keepdims=0) -> Gemm."""
    inits = {"W": _w(24, 8, 3, 3), "B": _w(24, fan=10), "F": _w(10, 24), "C": _w(10, fan=10)}
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("ReduceMean", ["r"], ["m"], axes=[2, 3], keepdims=0),
             helper.make_node("Gemm", ["m", "F", "C"], ["y"], transB=1)]
    _check(make_model(nodes, inits, (1, 8, *hw_)), (1, 8, *hw_), {"Conv", "GlobalAveragePool", "Flatten", "Gemm"})


def test_max_over_hw_keepdims():
    inits = {"W": _w(20, 4, 3, 3), "B": _w(20, fan=10)}
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("ReduceMax", ["c"], ["y"], axes=[-2, -1], keepdims=1)]
    _check(make_model(nodes, inits, (1, 4, 9, 9)), (1, 4, 9, 9), {"Conv", "GlobalMaxPool"})


def _conv(out: str = "c") -> tuple[list, dict[str, np.ndarray]]:
    inits = {"W": _w(12, 4, 3, 3), "B": _w(12, fan=10)}
    return [helper.make_node("Conv", ["x", "W", "B"], [out], pads=[1, 1, 1, 1])], inits


def _const(name: str, value: float) -> object:
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, 1, [], [value]))


def test_exact_gelu_as_torch_exports_it_is_one_lut():
    """torch < opset 20: Div(x, √2) -> Erf -> Add 1 -> Mul x -> Mul 0.5, fused into Lut gelu."""
    nodes, inits = _conv()
    nodes += [_const("r2", float(np.float32(np.sqrt(2.0)))), helper.make_node("Div", ["c", "r2"], ["d"]),
              helper.make_node("Erf", ["d"], ["e"]), _const("one", 1.0), helper.make_node("Add", ["e", "one"], ["e1"]),
              helper.make_node("Mul", ["c", "e1"], ["m"]), _const("h", 0.5), helper.make_node("Mul", ["m", "h"], ["y"])]
    runs = _check(make_model(nodes, inits, (1, 4, 9, 9)), (1, 4, 9, 9), {"Conv", "Lut"})
    c, _ = runs["default"]
    assert [c.ir.node(n)["attrs"]["fn"] for n in c.ir.g.nodes if c.ir.op(n) == "Lut"] == ["gelu"]


@pytest.mark.parametrize("op", ["Erf", "Abs"])
def test_erf_and_abs_are_luts(op):
    nodes, inits = _conv()
    nodes.append(helper.make_node(op, ["c"], ["y"]))
    _check(make_model(nodes, inits, (1, 4, 8, 8)), (1, 4, 8, 8), {"Conv", "Lut"})


def test_neg_and_constant_minus_tensor_fold_into_the_conv():
    """Neg(x) and `1.5 - x` (Sub with the constant first) are channel affines: no node of their own."""
    nodes, inits = _conv()
    nodes += [helper.make_node("Neg", ["c"], ["n"]), helper.make_node("Relu", ["n"], ["r"]), _const("s", 1.5),
              helper.make_node("Sub", ["s", "r"], ["y"])]
    _check(make_model(nodes, inits, (1, 4, 8, 8)), (1, 4, 8, 8), {"Conv"})


def test_constant_minus_the_input_per_channel():
    """Input normalization written as mean - x with a (1, C, 1, 1) constant, then a conv."""
    m = np.array([0.1, -0.2, 0.3, 0.05], np.float32).reshape(1, 4, 1, 1)
    nodes, inits = _conv()
    nodes = [helper.make_node("Sub", ["m", "x"], ["s"]), helper.make_node("Conv", ["s", "W", "B"], ["y"],
                                                                         pads=[1, 1, 1, 1])]
    _check(make_model(nodes, {**inits, "m": m}, (1, 4, 8, 8)), (1, 4, 8, 8), {"Conv"})


def test_token_tensors_of_a_transformer_block_run_on_the_host():
    """A (1, L, D) residual Add and activation whose inputs come from a host Transpose: once the elementwise
    handlers took them and the backend refused the compile ("tensor shape (1, 64, 32) is not ..."); now
    the (1, 64, 12) tokens lie channels last as a (1, 64, 12, 1) map, and Sigmoid, Add and Relu run on
    the NPU (the Reshape to (1, 12, 64) keeps the bytes: an alias)."""
    nodes, inits = _conv()
    nodes += [helper.make_node("Constant", [], ["shp"], value=helper.make_tensor("shp", 7, [3], [1, 12, 64])),
              helper.make_node("Reshape", ["c", "shp"], ["r"]),
              helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1]),
              helper.make_node("Sigmoid", ["t"], ["s"]), helper.make_node("Add", ["t", "s"], ["a"]),
              helper.make_node("Relu", ["a"], ["y"])]
    runs = _check(make_model(nodes, inits, (1, 4, 8, 8)), (1, 4, 8, 8), {"Conv", "Host", "Lut", "Add", "Reshape"})
    c, _ = runs["default"]
    host = sorted(c.ir.node(n)["attrs"]["onnx_op"] for n in c.ir.g.nodes if c.ir.op(n) == "Host")
    assert host == ["Transpose"]
