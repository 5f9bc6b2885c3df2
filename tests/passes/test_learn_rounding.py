"""Learned weight rounding (`npuc/passes/learn_rounding.py`): every weight rounded up or down, the
layer's output error no worse, the program still the reference bit for bit, deterministic."""

from __future__ import annotations

import functools

import numpy as np

from npuc.compiler import compile_model
from npuc.examples import DIGITS_CNN, digits
from npuc.hw import HwConfig
from npuc.ir import MatQ
from npuc.passes.learn_rounding import learn_rounding
from npuc.quant.metrics import sqnr_db
from npuc.reference import run_float, run_quantized, run_quantized_float
from npuc.sim.driver import run_program


@functools.cache
def _data():
    return [{"x": s} for s in digits("calib").x[:96]], digits("test").x[:96]


@functools.cache
def _compiled(flag: bool):
    calib, _ = _data()
    return compile_model(DIGITS_CNN, HwConfig(), calib=calib, learn_rounding=flag, verify=True)


def test_each_weight_is_rounded_down_or_up_and_some_change():
    plain, learned = _compiled(False).ir, _compiled(True).ir
    changed = 0
    for n in plain.topo():
        q = plain.node(n).get("qop")
        if not isinstance(q, MatQ):
            continue
        w, s = plain.node(n)["consts"]["W"].astype(np.float64), q.w_scale.reshape((-1,) + (1,) * (q.weight.ndim - 1))
        new = learned.node(n)["qop"].weight.astype(np.int64)
        assert np.all((new == np.floor(w / s)) | (new == np.floor(w / s) + 1)), n  # a rounding, nothing else
        changed += int(np.sum(new != q.weight))
    assert changed > 0


def test_output_error_drops_and_the_simulator_still_equals_the_reference():
    _, x = _data()
    ref = run_float(_compiled(False).float_ir, {"x": x})[_compiled(False).float_ir.outputs[0]]
    db = {f: sqnr_db(ref, run_quantized_float(_compiled(f).ir, {"x": x})[_compiled(f).ir.outputs[0]])
          for f in (False, True)}
    assert db[True] > db[False] + 0.1, db  # measured +0.3 dB on the test split
    c = _compiled(True)
    sim = run_program(c.program, {"x": x}).raw["logits"]
    q = run_quantized(c.ir, {"x": c.ir.node("x")["act_q"].quantize(x)})[c.ir.outputs[0]]
    np.testing.assert_array_equal(sim, q.reshape(sim.shape))


def test_deterministic_for_a_seed():
    calib, _ = _data()
    ir = _compiled(False).ir
    a, b = learn_rounding(ir, calib, iters=50), learn_rounding(ir, calib, iters=50)
    for n in ir.topo():
        if isinstance(ir.node(n).get("qop"), MatQ):
            np.testing.assert_array_equal(a.node(n)["qop"].weight, b.node(n)["qop"].weight)
