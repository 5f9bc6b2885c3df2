"""calibrate: every tensor's range from the float reference, independent of batching."""

from __future__ import annotations

import numpy as np
import pytest

from npuc.frontend import load_onnx
from npuc.passes import PassError, calibrate, prepare
from npuc.reference import run_float


@pytest.fixture(scope="module")
def prepared(gap_cnn):
    return prepare(load_onnx(gap_cnn))


def data(n):
    rng = np.random.default_rng(1)
    return [{"x": rng.standard_normal((3, 32, 32)).astype(np.float32)} for _ in range(n)]


def test_ranges_are_min_max_of_every_tensor(prepared):
    samples = data(5)
    ir = calibrate(prepared, samples)
    values = run_float(prepared, {"x": np.stack([s["x"] for s in samples])}, intermediates=True)
    for name in prepared.g:
        lo, hi = ir.node(name)["range"]
        assert (lo, hi) == pytest.approx((values[name].min(), values[name].max()), rel=1e-6), name
    assert ir.node("conv1")["range"][0] == 0.0  # the fused ReLU is part of the tensor
    assert "range" not in prepared.node("x")  # the input IR is untouched


def test_batching_does_not_change_ranges(prepared):
    a = calibrate(prepared, iter(data(5)), batch_size=1)
    b = calibrate(prepared, data(5), batch_size=3)
    for name in prepared.g:
        assert a.node(name)["range"] == pytest.approx(b.node(name)["range"], rel=1e-6)


@pytest.mark.parametrize("method", ["percentile", "mse", "entropy"])
def test_other_methods_stay_inside_min_max(prepared, method):
    ref = calibrate(prepared, data(3))
    ir = calibrate(prepared, data(3), method)
    for name in prepared.g:
        lo, hi = ir.node(name)["range"]
        rlo, rhi = ref.node(name)["range"]
        assert rlo - 1e-6 <= lo <= hi <= rhi + 1e-6


def test_errors(prepared):
    with pytest.raises(PassError, match="no samples"):
        calibrate(prepared, [])
    with pytest.raises(PassError, match="no value for input 'x'"):
        calibrate(prepared, [{"y": np.zeros((3, 32, 32))}])
    with pytest.raises(PassError, match=r"shape \(3, 16, 16\), expected \(3, 32, 32\)"):
        calibrate(prepared, [{"x": np.zeros((3, 16, 16))}])
