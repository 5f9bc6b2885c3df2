"""The whole pipeline on the example CNNs: every stage verifies, and the int8 model tracks fp32 ORT."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from npuc.frontend import load_onnx
from npuc.hw import HwConfig
from npuc.passes import prepare, quantize_ir
from npuc.quant.calib_data import load_calibration
from npuc.reference import run_quantized_float

from .conftest import REPO

SYM = HwConfig(act_mode="symmetric")  # these tests check the symmetric rule

EXAMPLES = REPO / "npuc" / "examples"


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    return float(10 * np.log10((ref.astype(np.float64) ** 2).sum() / ((ref - got.astype(np.float64)) ** 2).sum()))


def ort_outputs(model: onnx.ModelProto, images: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"x": x[None]})[0] for x in images])


@pytest.fixture(scope="module")
def calib(small_cnn):
    return load_calibration(EXAMPLES / "small_cnn_calib.npy", load_onnx(small_cnn))


def test_committed_example_is_what_make_cnn_builds(small_cnn, make_cnn):
    assert onnx.load(str(EXAMPLES / "small_cnn.onnx")).SerializeToString() == small_cnn.SerializeToString()
    np.testing.assert_array_equal(np.load(EXAMPLES / "small_cnn_calib.npy"), make_cnn.smooth_images(64, seed=1234))


# measured on 16 held-out images (the full report uses more); floors leave ~1 dB of margin
SQNR_FLOOR = [
    (SYM, "minmax", 26.0),
    (SYM, "mse", 27.0),
    (HwConfig(act_mode="asymmetric"), "minmax", 30.0),
    (HwConfig(scale_rule="fixed_point", act_mode="asymmetric"), "percentile", 28.0),
    (HwConfig(weight_granularity="per_tensor"), "minmax", 25.0),
]


@pytest.mark.parametrize("hw, method, floor", SQNR_FLOOR, ids=lambda v: getattr(v, "act_mode", v))
def test_small_cnn_sqnr_against_onnxruntime(small_cnn, images, calib, hw, method, floor):
    ir = quantize_ir(prepare(load_onnx(small_cnn)), hw, calib, method, check=True)
    got = run_quantized_float(ir, {"x": images})[ir.outputs[0]]
    assert sqnr_db(ort_outputs(small_cnn, images), got) >= floor


def test_gap_cnn_pipeline(gap_cnn, images, make_cnn):
    hw = HwConfig(act_mode="asymmetric")
    samples = [{"x": x} for x in make_cnn.smooth_images(32, seed=5)]
    ir = quantize_ir(prepare(load_onnx(gap_cnn)), hw, samples, check=True)
    q = ir.node("gap")["qop"]
    assert q.bias.tolist() == [-256 * q.zp_in] * len(q.bias)  # the sum of 16x16 pixels, centred
    got = run_quantized_float(ir, {"x": images})[ir.outputs[0]]
    assert sqnr_db(ort_outputs(gap_cnn, images), got) >= 35.0
