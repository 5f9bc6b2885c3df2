"""A fixed sample of the onnx wheel's backend test models, as shipped, through npuc (`bench/onnx_backend.py`
runs all 105: `python bench/onnx_backend.py`).

Each model is compiled calibrated on its own test input, simulated on it, and every output compared
with the reference output: SQNR >= 20 dB. The sample covers what issue 13 opened: opset 6 models
(converted), fixed batches of 2 to 20 compiled as batch 1, 1-D models on the NPU ((N, C, L) as
(N, C, L, 1)), 3-D convolutions and 6-D reshapes on the host, rank-1 inputs, the legacy per-channel
PRelu slope, a flattened map as a graph output; and two
models that stay refused with a one-line error saying why."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("onnx_backend_bench", ROOT / "bench" / "onnx_backend.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench  # its dataclasses look their module up
_spec.loader.exec_module(bench)  # type: ignore[union-attr]

# model -> what must run on the host (ONNX op types), or None for "anything"
SAMPLE = {
    "pytorch-converted/test_Conv1d_groups": set(),
    "pytorch-converted/test_Conv1d_pad2size1": set(),
    "pytorch-converted/test_MaxPool1d_stride": set(),
    "pytorch-converted/test_AvgPool1d_stride": set(),
    "pytorch-converted/test_BatchNorm1d_3d_input_eval": set(),
    "pytorch-converted/test_PReLU_1d_multiparam": set(),
    "pytorch-converted/test_PReLU_2d_multiparam": set(),
    "pytorch-converted/test_Conv3d_stride_padding": {"Conv"},
    "pytorch-converted/test_PixelShuffle": {"Reshape", "Transpose"},
    "pytorch-converted/test_GLU_dim": None,
    "pytorch-converted/test_ConvTranspose2d": set(),
    "pytorch-converted/test_log_softmax_dim3": {"LogSoftmax"},
    "pytorch-operator/test_operator_flatten": set(),
    "pytorch-operator/test_operator_maxpool": set(),
    "simple/test_sign_model": {"Sign"},
}
REFUSED = {
    "pytorch-operator/test_operator_chunk": "node '1' (op Split, opset 11) mixes the samples: it works along axis 0",
    "pytorch-converted/test_PoissonNLLLLoss_no_reduce": "constant '1' of shape (10, 10) differs along the batch axis",
}
CASES = {c.name: c for c in bench.cases()}


def test_the_suite_is_the_105_models():
    assert len(CASES) == 105


@pytest.mark.parametrize("name", sorted(SAMPLE))
def test_compiles_and_simulates_within_20db(name, tmp_path):
    o = bench.run_case(CASES[name], tmp_path)
    assert o.status == "pass", (o.status, o.sqnr_db, o.detail)
    if SAMPLE[name] is not None:
        assert set(o.host_ops) == SAMPLE[name]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_with_a_one_line_reason(name, tmp_path):
    o = bench.run_case(CASES[name], tmp_path)
    assert o.status == "error"
    assert "\n" not in o.detail
    assert REFUSED[name] in o.detail and "fixed batch" in o.detail
