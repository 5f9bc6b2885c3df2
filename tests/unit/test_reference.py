"""The float reference and the quantize/dequantize helpers."""

from __future__ import annotations

import numpy as np
import pytest

from npuc.ir import IR, ActQ, IRError
from npuc.reference import dequantize, quantize_input, run_float


def chain_ir() -> IR:
    """x(1,2,5,5) -> Conv 3x3 pad 1 (relu fused) -> MaxPool 2x2 -> Flatten -> Gemm."""
    rng = np.random.default_rng(0)
    ir = IR()
    ir.add("x", "Input", shape=(1, 2, 5, 5))
    ir.inputs = ["x"]
    ir.add("c", "Conv", ["x"], shape=(1, 3, 5, 5),
           attrs={"kernel": (3, 3), "strides": (1, 1), "dilations": (1, 1), "pads": (1, 1, 1, 1), "group": 1,
                  "act": ("relu", 0.0, float("inf"))},
           consts={"W": rng.standard_normal((3, 2, 3, 3)).astype(np.float32),
                   "B": rng.standard_normal(3).astype(np.float32)})
    ir.add("p", "MaxPool", ["c"], shape=(1, 3, 2, 2),
           attrs={"kernel": (2, 2), "strides": (2, 2), "dilations": (1, 1), "pads": (0, 0, 0, 0)})
    ir.add("f", "Flatten", ["p"], shape=(1, 12), attrs={"axis": 1})
    ir.add("g", "Gemm", ["f"], shape=(1, 4), consts={"W": rng.standard_normal((4, 12)).astype(np.float32),
                                                     "B": np.zeros(4, np.float32)})
    ir.outputs = ["g"]
    return ir


def naive(ir: IR, x: np.ndarray) -> np.ndarray:
    c = ir.node("c")["consts"]
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.zeros((x.shape[0], 3, 5, 5))
    for o in range(3):
        for i in range(5):
            for j in range(5):
                y[:, o, i, j] = (xp[:, :, i:i + 3, j:j + 3] * c["W"][o]).sum(axis=(1, 2, 3)) + c["B"][o]
    y = np.maximum(y, 0)[:, :, :4, :4].reshape(x.shape[0], 3, 2, 2, 2, 2).max(axis=(3, 5))
    g = ir.node("g")["consts"]
    return y.reshape(x.shape[0], -1) @ g["W"].T + g["B"]


def test_float_chain_matches_naive_loops_batched():
    ir = chain_ir()
    x = np.random.default_rng(1).standard_normal((3, 2, 5, 5)).astype(np.float32)
    out = run_float(ir, {"x": x})
    assert list(out) == ["g"]
    np.testing.assert_allclose(out["g"], naive(ir, x), rtol=1e-5, atol=1e-5)


def test_intermediates_returns_every_node():
    ir = chain_ir()
    out = run_float(ir, {"x": np.zeros((1, 2, 5, 5), np.float32)}, intermediates=True)
    assert set(out) == {"x", "c", "p", "f", "g"}
    assert out["p"].shape == (1, 3, 2, 2)


def test_feed_errors():
    ir = chain_ir()
    with pytest.raises(IRError, match="no value fed for input 'x'"):
        run_float(ir, {})
    with pytest.raises(IRError, match=r"expected \(batch, 2, 5, 5\)"):
        run_float(ir, {"x": np.zeros((1, 2, 4, 5), np.float32)})


def test_quantize_input_rounds_half_even_and_saturates():
    q = ActQ(scale=0.5, zp=-2, exp=1)
    x = np.array([0.25, 0.75, -0.25, -0.75, 1000.0, -1000.0])
    np.testing.assert_array_equal(quantize_input(x, q), [-2, 0, -2, -4, 127, -128])
    assert quantize_input(x, q).dtype == np.int8


def test_dequantize_inverts_on_the_grid():
    q = ActQ(scale=2.0 ** -4, zp=6, exp=4)
    levels = np.arange(-128, 128, dtype=np.int8)
    np.testing.assert_array_equal(quantize_input(dequantize(levels, q), q), levels)
