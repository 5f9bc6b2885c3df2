"""One ONNX layer at a time through the whole flow: compile, simulate in C, and
compare bit for bit with the numpy integer reference — on hardware small enough
that every layer must be tiled."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper

from npuc.compiler import compile_model
from npuc.hw import load_hw
from npuc.sim.driver import run_program

from .bitexact import assert_sim_equals_reference
from .models import make_model

TINY = load_hw("tiny")


def _model(nodes, inits, x_shape, y_name, opset=13):
    return make_model(nodes, inits, x_shape, y_name, opset=opset)


def _check(tmp_path, model, x_shape, hw=TINY, n=4, seed=0, asymmetric=False):
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    rng = np.random.default_rng(seed)
    calib = [{"x": rng.normal(size=x_shape[1:]).astype(np.float32)} for _ in range(8)]
    if asymmetric:
        hw = hw.replace(act_mode="asymmetric")
        calib = [{"x": np.abs(s["x"]) + 0.5} for s in calib]
    c = compile_model(path, hw, calib=calib)
    x = rng.normal(size=(n,) + tuple(x_shape[1:])).astype(np.float32)
    if asymmetric:
        x = np.abs(x) + 0.5
    prog = c.program
    run = run_program(prog, {"x": x})
    assert_sim_equals_reference(c, run, x)
    macs = sum(s.macs for s in run.stats[:1])
    assert run.stats[0].cycles >= macs / (hw.rows * hw.cols)
    return c, run


def _conv_model(cin, cout, k, stride, pad, dil, h, w, relu=True, seed=0):
    rng = np.random.default_rng(seed)
    W = (rng.normal(size=(cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
    B = rng.normal(scale=0.1, size=cout).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], strides=[stride, stride], pads=[pad] * 4,
                              dilations=[dil, dil], kernel_shape=[k, k])]
    if relu:
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    return _model(nodes, {"W": W, "B": B}, (1, cin, h, w), "y" if relu else "c")


@pytest.mark.parametrize("cin,cout,k,stride,pad,dil,h,w", [
    (3, 5, 3, 1, 1, 1, 9, 11),
    (20, 19, 3, 2, 1, 1, 12, 10),
    (8, 8, 1, 1, 0, 1, 7, 7),
    (5, 24, 3, 1, 2, 2, 10, 9),
    (17, 3, 5, 3, 2, 1, 16, 13),
])
def test_conv_tiled_bit_exact(tmp_path, cin, cout, k, stride, pad, dil, h, w):
    _check(tmp_path, _conv_model(cin, cout, k, stride, pad, dil, h, w), (1, cin, h, w))


def test_conv_asymmetric_activation_bit_exact(tmp_path):
    _check(tmp_path, _conv_model(6, 10, 3, 1, 1, 1, 8, 8, relu=False), (1, 6, 8, 8), asymmetric=True)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cin=st.integers(1, 20), cout=st.integers(1, 20), k=st.integers(1, 4), stride=st.integers(1, 3),
       pad=st.integers(0, 2), h=st.integers(4, 12), w=st.integers(4, 12), seed=st.integers(0, 99))
def test_conv_random_geometry(tmp_path, cin, cout, k, stride, pad, h, w, seed):
    if h + 2 * pad < k or w + 2 * pad < k:
        return
    _check(tmp_path, _conv_model(cin, cout, k, stride, pad, 1, h, w, seed=seed), (1, cin, h, w), seed=seed)


def test_gemm_larger_than_sram(tmp_path):
    rng = np.random.default_rng(1)
    K, N = 600, 37  # 22 KB of weights against an 8 KiB scratchpad
    W = (rng.normal(size=(N, K)) / np.sqrt(K)).astype(np.float32)
    B = rng.normal(scale=0.1, size=N).astype(np.float32)
    m = _model([helper.make_node("Gemm", ["x", "W", "B"], ["y"], transB=1)], {"W": W, "B": B}, (1, K), "y")
    _check(tmp_path, m, (1, K))


def test_maxpool_and_flatten_into_gemm(tmp_path):
    rng = np.random.default_rng(2)
    W = (rng.normal(size=(10, 6 * 4 * 4)) / 10).astype(np.float32)
    B = np.zeros(10, np.float32)
    nodes = [
        helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "W", "B"], ["y"], transB=1),
    ]
    _check(tmp_path, _model(nodes, {"W": W, "B": B}, (1, 6, 8, 8), "y"), (1, 6, 8, 8))


@pytest.mark.parametrize("hw_name", ["tiny", "default"])
def test_global_average_pool(tmp_path, hw_name):
    m = _model([helper.make_node("GlobalAveragePool", ["x"], ["y"])], {}, (1, 12, 7, 5), "y")
    _check(tmp_path, m, (1, 12, 7, 5), hw=load_hw(hw_name))


def _add_model(op, c, h, w, relu=False, const=None, seed=0):
    """op(conv(x), x) — two tensors of one shape; or conv(x) op a per-channel constant (`const` its shape)."""
    rng = np.random.default_rng(seed)
    W = (rng.normal(size=(c, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    inits = {"W": W}
    other = "x"
    if const is not None:
        inits["k"] = rng.normal(size=const).astype(np.float32)
        other = "k"
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node(op, ["c", other], ["s"])]
    if relu:
        nodes.append(helper.make_node("Relu", ["s"], ["y"]))
    return _model(nodes, inits, (1, c, h, w), "y" if relu else "s")


@pytest.mark.parametrize("op", ["Add", "Sub", "Sum"])
@pytest.mark.parametrize("c,h,w,relu", [(3, 5, 7, False), (16, 12, 12, True), (20, 15, 13, False)])
@pytest.mark.parametrize("asymmetric", [False, True])
def test_add_sub_bit_exact(tmp_path, op, c, h, w, relu, asymmetric):
    """Tensors up to 3.4 KB against the tiny preset's 8 KiB scratchpad: several double-buffered tiles."""
    compiled, _ = _check(tmp_path, _add_model(op, c, h, w, relu), (1, c, h, w), asymmetric=asymmetric)
    assert "vadd" in {i.op for i in compiled.program.insns}


@pytest.mark.parametrize("op,shape", [("Add", (5, 1, 1)), ("Sub", (1, 5, 1, 1)), ("Add", ())])
def test_constant_add_folds_into_the_conv_bias(tmp_path, op, shape):
    compiled, _ = _check(tmp_path, _add_model(op, 5, 6, 6, const=shape), (1, 5, 6, 6))
    assert [compiled.ir.op(n) for n in compiled.ir.topo()] == ["Input", "Conv"]


def test_add_of_flattened_gemm_outputs(tmp_path):
    """2-D tensors: Add(Gemm(x), Gemm(x)) and a Relu fused into the Add."""
    rng = np.random.default_rng(4)
    inits = {f"W{i}": (rng.normal(size=(24, 40)) / 6).astype(np.float32) for i in (1, 2)}
    nodes = [helper.make_node("Gemm", ["x", "W1"], ["a"], transB=1),
             helper.make_node("Gemm", ["x", "W2"], ["b"], transB=1),
             helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    _check(tmp_path, _model(nodes, inits, (1, 40), "y"), (1, 40))
