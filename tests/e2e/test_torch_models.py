"""PyTorch-exported CNNs (examples/export_torch.py, torch 2.13.0, committed in tests/e2e/data/): ResNet-18,
MobileNetV2, MobileNetV3-small-style and a small YOLO-style detector, at opset 13 and/or 17, 64x64.

Per model, one compile on the default preset (module-scoped fixture; calibration on 4 random samples),
then: the prepared float IR equals onnxruntime fp32 (max|a - b| <= 1e-4 · max|b| per output), nothing
runs on the host, and the C simulator equals the numpy integer reference bit for bit. The compared
outputs are the NPU's own (logits, detection maps: no host op after them), and the test checks they are
not saturated, so that the comparison sees an NPU error. The SQNR of the NPU's answer against
onnxruntime fp32 and the cycles are printed (pytest -s)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from npuc.compiler import Compiled, compile_model
from npuc.hw import load_hw
from npuc.reference import run_float, run_quantized
from npuc.sim.driver import quantize, run_program

DATA = Path(__file__).parent / "data"
MODELS = sorted(p.name for p in DATA.glob("*.onnx"))
SHAPE = (1, 3, 64, 64)


@dataclass
class Torch:
    name: str
    compiled: Compiled
    x: np.ndarray  # two test samples
    ort: dict[str, np.ndarray]  # onnxruntime fp32 on x, by output name


@pytest.fixture(scope="module", params=MODELS)
def torch_model(request) -> Torch:
    path = DATA / request.param
    rng = np.random.default_rng(0)
    calib = [{"x": rng.standard_normal(SHAPE[1:], dtype=np.float32)} for _ in range(4)]
    c = compile_model(path, load_hw("default"), calib=calib)
    x = rng.standard_normal((2, *SHAPE[1:]), dtype=np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    runs = [dict(zip(names, sess.run(None, {"x": x[i:i + 1]}))) for i in range(len(x))]
    want = {n: np.concatenate([r[n] for r in runs]) for n in names}
    return Torch(request.param, c, x, want)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).max() / max(float(np.abs(b).max()), 1e-30))


def test_float_ir_equals_onnxruntime(torch_model: Torch):
    ir = torch_model.compiled.float_ir
    got = run_float(ir, {"x": torch_model.x})
    for out in ir.outputs:
        want = torch_model.ort[ir.node(out)["value"]]
        assert _rel(got[out].reshape(want.shape), want) <= 1e-4, out


def test_nothing_runs_on_the_host(torch_model: Torch):
    assert not torch_model.compiled.fallbacks
    assert "Host" not in {torch_model.compiled.ir.op(n) for n in torch_model.compiled.ir.g.nodes}


def test_simulator_equals_integer_reference(torch_model: Torch):
    c = torch_model.compiled
    run = run_program(c.program, {"x": torch_model.x})
    (t_in,) = c.program.inputs()
    ref = run_quantized(c.ir, {"x": quantize(torch_model.x, t_in)})
    sqnr = {}
    for out in c.ir.outputs:
        value = c.ir.node(out)["value"]
        sim = run.raw[value]
        np.testing.assert_array_equal(sim, ref[out].reshape(sim.shape), err_msg=value)
        assert len(np.unique(sim)) >= 8 and np.mean((sim == -128) | (sim == 127)) <= 0.25, value
        want = torch_model.ort[value].astype(np.float64)
        got = run.outputs[value].reshape(want.shape)
        sqnr[value] = round(float(10 * np.log10(np.sum(want ** 2) / max(np.sum((got - want) ** 2), 1e-30))), 1)
    print(f"\n{torch_model.name}: cycles {run.stats[0].cycles}, SQNR vs fp32 {sqnr} dB")
    # an int8 network this size keeps its answer well above the noise
    assert min(sqnr.values()) > 10, sqnr
