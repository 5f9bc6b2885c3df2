"""The trained digits CNN (npuc/examples/digits_cnn.onnx) through the whole flow: accuracy, oracle, analysis.

No torch here: the committed .onnx is the model; scikit-learn ships the data.
"""

from __future__ import annotations

import functools

import numpy as np
import onnxruntime as ort
import pytest

from npuc.analyze import analyze, format_analysis
from npuc.compiler import compile_model
from npuc.digits import MODEL, digits_split
from npuc.export_qdq import export_qdq, ort_session
from npuc.hw import HwConfig
from npuc.sim.driver import run_program


@functools.cache
def _data():
    return digits_split()


@functools.cache
def _compiled():
    c = compile_model(MODEL, HwConfig(), calib=[{"x": s} for s in _data()["calib"].x])  # pow2, per-channel
    return c, run_program(c.program, {"x": _data()["test"].x})


def _fp32_logits(x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])


def test_split_is_disjoint_and_fixed():
    d = _data()
    assert [len(d[k].y) for k in ("train", "calib", "test")] == [1197, 200, 400]
    assert np.bincount(d["test"].y, minlength=10).min() >= 25
    flat = {k: {v.tobytes() for v in d[k].x} for k in d}
    assert not (flat["test"] & flat["calib"])


def test_int8_simulator_accuracy_within_half_a_point_of_fp32():
    test = _data()["test"]
    _, run = _compiled()
    fp32 = np.mean(_fp32_logits(test.x).argmax(1) == test.y)
    int8 = np.mean(run.outputs["logits"].argmax(1) == test.y)
    assert fp32 >= 0.95  # the committed model is really trained
    assert abs(int8 - fp32) <= 0.005


@pytest.mark.parametrize("optimize", [False, True], ids=["opt-off", "opt-on"])
def test_digits_qdq_export_equals_simulator(optimize):
    c, run = _compiled()
    got = ort_session(export_qdq(c.ir, "qdq", int8_outputs=True), optimize).run(None, {"x": _data()["test"].x})[0]
    np.testing.assert_array_equal(got, run.raw["logits"])


def test_analyze_reports_every_layer_with_cycles_and_accuracy():
    c, run = _compiled()
    test = _data()["test"]
    cycles = {ls.name: ls.cycles for ls in run.layers}
    a = analyze(c.ir, HwConfig(), {"x": test.x[:32]}, test.y[:32], cycles)
    names = [r.name for r in a.layers]
    assert names == ["conv1", "conv2", "pool", "conv3", "fc1", "logits"]
    assert all(r.cycles and r.cycles > 0 for r in a.layers)
    assert a.most_sensitive in names
    worst = min(r.isolated_db for r in a.layers)
    assert next(r for r in a.layers if r.name == a.most_sensitive).isolated_db == worst
    for r in a.layers:
        assert 10 < r.sqnr_db < 80 and 10 < r.local_db < 80
        assert (r.clip_db == np.inf) == (r.saturated == 0)  # clipping noise exactly where values were cut
    assert a.accuracy_fp32 is not None and a.accuracy_int8 is not None
    text = format_analysis(a)
    assert "most sensitive layer" in text and "accuracy: fp32" in text
