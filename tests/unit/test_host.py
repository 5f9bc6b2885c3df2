"""npuc.host: single-node models run by onnx.reference (with its known bugs patched) and the
int8 <-> float conversions at host points."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

from npuc import host

RNG = np.random.default_rng(5)


def _ort(model: bytes, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _one(node, shape=(1, 6, 3, 2), inits=None, opset=13) -> bytes:
    return host.build_model(node, [host.ValueSpec("x", "float32", shape)], host.ValueSpec("y", "float32", shape),
                            inits or {}, opset)


@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn_normalizes_every_channel(size):
    """onnx/onnx#7805: stock onnx.reference normalizes channel 0 only when the batch is 1."""
    model = _one(helper.make_node("LRN", ["x"], ["y"], size=size, alpha=0.2, beta=0.6, bias=1.5))
    x = 3 * RNG.random((1, 6, 3, 2)).astype(np.float32)
    np.testing.assert_allclose(host.kernel(model).run([x]), _ort(model, x), rtol=1e-6)


@pytest.mark.parametrize("opset", [9, 13, 15])
def test_batchnorm_uses_running_statistics(opset):
    """onnx/onnx#8442: stock onnx.reference (opsets 9-13) normalizes with the batch's statistics."""
    c = {k: RNG.uniform(0.5, 1.5, 6).astype(np.float32) for k in ("s", "b", "m", "v")}
    model = _one(helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3),
                 inits=c, opset=opset)
    x = RNG.normal(size=(1, 6, 3, 2)).astype(np.float32)
    np.testing.assert_allclose(host.kernel(model).run([x]), _ort(model, x), rtol=1e-5, atol=1e-6)


def test_run_reshapes_to_the_declared_input_and_checks_counts():
    model = _one(helper.make_node("Softmax", ["x"], ["y"], axis=1), shape=(1, 6))
    k = host.kernel(model)
    x = RNG.normal(size=(6,)).astype(np.float64)  # any layout with the right count; cast to float32
    assert k.run([x]).shape == (1, 6) and k.run([x]).dtype == np.float32
    with pytest.raises(host.HostError, match="has 5 elements, expects shape"):
        k.run([x[:5]])
    assert host.kernel(model) is k  # cached per model


def test_batched_runs_are_independent_samples():
    model = _one(helper.make_node("Softmax", ["x"], ["y"], axis=1), shape=(1, 6))
    x = RNG.normal(size=(4, 6)).astype(np.float32)
    got = host.run_batched(model, [x])
    np.testing.assert_array_equal(got, np.concatenate([host.kernel(model).run([x[b:b + 1]]) for b in range(4)]))


def test_quantize_rounds_half_to_even_and_saturates():
    np.testing.assert_array_equal(host.quantize(np.array([0.5, 1.5, -2.5, 1e3, -1e3]), 1.0, 0),
                                  [0, 2, -2, 127, -128])
    assert host.quantize(np.array([0.25]), 0.5, -3)[0] == -3  # 0.5 rounds to 0, then + zp
    np.testing.assert_array_equal(host.dequantize(np.array([-128, 0, 127], np.int8), 0.25, -2), [-31.5, 0.5, 32.25])
    with pytest.raises(host.HostError, match="NaN or infinity"):
        host.quantize(np.array([np.nan]), 1.0, 0)


def test_a_model_that_is_not_one_is_an_error():
    with pytest.raises(host.HostError, match="not a serialized ONNX model"):
        host.kernel(b"\xff\x00garbage")
