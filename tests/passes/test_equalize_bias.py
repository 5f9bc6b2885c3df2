"""Issue 4: cross-layer equalization (`passes/equalize.py`) and bias correction (`passes/bias_correction.py`).

CLE must keep the float function and equalize each pair's per-channel ranges; on a model whose channels
were deliberately unbalanced (conv1's output channel i scaled by k_i, conv2's input column i by 1/k_i —
the same float function, through the ReLU) it must win back what per-tensor weights lose. Bias
correction must not break bit-exactness and must not lower the output SQNR on the bundled models.
"""

from __future__ import annotations

import functools

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from npuc.compiler import compile_model
from npuc.examples import DIGITS_CNN as MODEL
from npuc.examples import digits
from npuc.frontend import load_onnx
from npuc.hw import HwConfig
from npuc.passes import prepare
from npuc.passes.equalize import _pairs, equalize
from npuc.quant.metrics import sqnr_db
from npuc.reference import quantize_input, run_float, run_quantized
from npuc.sim.driver import run_program

SMALL = "npuc/examples/small_cnn.onnx"


@functools.cache
def _digits():
    return [{"x": s} for s in digits("calib").x[:100]], digits("test").x[:200]


def unbalanced_digits() -> onnx.ModelProto:
    model = onnx.load(MODEL)
    inits = {i.name: i for i in model.graph.initializer}
    k = 2.0 ** np.linspace(-4, 4, 16)  # conv1 (after BN, through the ReLU) by k, conv2's columns by 1/k
    get = {n: numpy_helper.to_array(inits[n]).copy() for n in ("bn1.scale", "bn1.B", "conv2.W")}
    new = {"bn1.scale": get["bn1.scale"] * k, "bn1.B": get["bn1.B"] * k,
           "conv2.W": get["conv2.W"] / k[None, :, None, None]}
    for n, v in new.items():
        inits[n].CopyFrom(numpy_helper.from_array(v.astype(np.float32), n))
    return model


def _small_calib():
    x = np.load("npuc/examples/small_cnn_calib.npy")
    name = onnx.load(SMALL).graph.input[0].name
    return name, x


@pytest.mark.parametrize("which", ["digits", "small_cnn", "unbalanced"])
def test_equalization_keeps_the_float_function_and_equalizes_ranges(which):
    if which == "small_cnn":
        _, x = _small_calib()
        ir = prepare(load_onnx(SMALL))
    else:
        ir = prepare(load_onnx(MODEL if which == "digits" else unbalanced_digits()))
        x = _digits()[1]
    eq = equalize(ir)
    pairs = _pairs(ir)
    assert pairs  # there is something to equalize
    feeds = {ir.inputs[0]: x[:32]}
    a, b = run_float(ir, feeds)[ir.outputs[0]], run_float(eq, feeds)[eq.outputs[0]]
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * np.abs(a).max())
    for p, c, per in _pairs(eq):
        w1, w2 = eq.node(p)["consts"]["W"], eq.node(c)["consts"]["W"]
        r1 = np.abs(w1.reshape(w1.shape[0], -1)).max(1)
        cols = w2.reshape(w2.shape[0], w1.shape[0], per, -1)
        r2 = np.abs(np.moveaxis(cols, 1, 0).reshape(w1.shape[0], -1)).max(1)
        np.testing.assert_allclose(r1, r2, rtol=2e-2)


def _sim_sqnr(path, hw, calib, x, **kw):
    c = compile_model(path, hw, calib=calib, **kw)
    name = c.ir.inputs[0]
    run = run_program(c.program, {c.ir.node(name)["value"]: x})
    q = run_quantized(c.ir, {name: quantize_input(x, c.ir.node(name)["act_q"])})[c.ir.outputs[0]]
    out_value = c.ir.node(c.ir.outputs[0])["value"]
    np.testing.assert_array_equal(run.raw[out_value], q.reshape(run.raw[out_value].shape))  # still bit-exact
    ref = run_float(prepare(load_onnx(path)), {name: x})[c.ir.outputs[0]]  # the model before any pass
    return sqnr_db(ref, run.outputs[out_value].reshape(ref.shape))


def test_equalization_recovers_an_unbalanced_model_under_per_tensor_weights(tmp_path):
    path = tmp_path / "unbalanced.onnx"
    onnx.save(unbalanced_digits(), path)
    calib, x = _digits()
    hw = HwConfig(weight_granularity="per_tensor")
    plain = _sim_sqnr(path, hw, calib, x)
    cle = _sim_sqnr(path, hw, calib, x, equalize=True)
    assert cle > plain + 5, (plain, cle)


@pytest.mark.parametrize("gran", ["per_channel", "per_tensor"])
def test_bias_correction_does_not_lower_sqnr(gran):
    hw = HwConfig(weight_granularity=gran)
    calib, x = _digits()
    assert _sim_sqnr(MODEL, hw, calib, x, bias_correction=True) >= _sim_sqnr(MODEL, hw, calib, x) - 0.05
    name, xs = _small_calib()
    small_calib = [{name: s} for s in xs]
    plain = _sim_sqnr(SMALL, hw, small_calib, xs)
    assert _sim_sqnr(SMALL, hw, small_calib, xs, bias_correction=True) > plain + 0.5
