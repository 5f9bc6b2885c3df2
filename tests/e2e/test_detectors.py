"""The two detector structures of issue 13, trained on synthetic scenes (examples/make_detectors.py,
torch 2.13.0, committed in tests/e2e/data/detectors/ with their calibration and test scenes).

* YOLOv8-style (Ultralytics' head at opset 17 with a dynamic batch, height and width: DFL decoder,
  anchor grid from Shape/Range/Expand, Sigmoid class scores, a final Concat of boxes in pixels with
  scores in 0..1), compiled with `--input-shape images:1,3,64,64`;
* DB-style (paddle2onnx's text detector at opset 12: Resize with empty `roi`/`scales` constants,
  ConvTranspose upsampling, a sigmoid probability map).

Per model, through the command line as a user runs it (`npuc compile` + `npuc sim -o`): no error; the
simulator's outputs equal the numpy integer reference bit for bit; the float IR equals onnxruntime
fp32; and the quantized answer is good enough to use — YOLO: class-score SQNR >= 20 dB and box SQNR
>= 25 dB against fp32 (the final Concat is concatenated at dequantization: one shared scale would
round every score to 0); DB: IoU of (p > 0.3) with fp32's >= 0.9. The numbers are printed (-s).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from npuc.cli import main
from npuc.compiler import compile_model
from npuc.hw import load_hw
from npuc.quant.metrics import sqnr_db
from npuc.reference import run_float, run_quantized
from npuc.sim.driver import quantize, run_program

DATA = Path(__file__).parent / "data" / "detectors"
CALIB, TEST = DATA / "calib.npy", DATA / "test.npy"
MODELS = {  # file -> (input name, --input-shape)
    "yolov8_style.onnx": ("images", "images:1,3,64,64"),
    "db_style.onnx": ("x", None),
}


def ort_fp32(path: Path, name: str, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    """file -> its run, each built once for the module (`_build`)."""
    runs: dict[str, tuple] = {}

    def get(file: str) -> tuple:
        if file not in runs:
            runs[file] = _build(file, tmp_path_factory)
        return runs[file]
    return get


@pytest.fixture(params=sorted(MODELS))
def detector(request, detectors):
    return detectors(request.param)


def _build(file: str, tmp_path_factory) -> tuple:
    """CLI compile + sim of the test scenes; the same compile through the API for the IR."""
    name, shape = MODELS[file]
    tmp = tmp_path_factory.mktemp(file.split(".")[0])
    extra = ["--input-shape", shape] if shape else []
    assert main(["compile", str(DATA / file), "-o", str(tmp / "prog.s"), "--calib", str(CALIB), *extra]) == 0
    assert main(["sim", str(tmp / "prog.s"), "--input", str(TEST), "-o", str(tmp / "out.npz")]) == 0
    out = np.load(tmp / "out.npz")
    shapes = {name: tuple(int(d) for d in shape.split(":")[1].split(","))} if shape else {}
    compiled = compile_model(DATA / file, load_hw("default"), calib=str(CALIB), input_shapes=shapes)
    x = np.load(TEST)
    return file, name, compiled, x, out, ort_fp32(DATA / file, name, x)


def test_paddle_style_empty_constants_are_in_the_db_model():
    m = onnx.load(str(DATA / "db_style.onnx"))
    consts = {n.output[0]: onnx.numpy_helper.to_array(n.attribute[0].t)
              for n in m.graph.node if n.op_type == "Constant"}
    resizes = [n for n in m.graph.node if n.op_type == "Resize"]
    assert resizes and all(consts[n.input[1]].size == 0 and consts[n.input[2]].size == 0 for n in resizes)


def test_simulator_equals_integer_reference(detector):
    _, name, c, x, out, _ = detector
    (t_in,) = c.program.inputs()
    ref = run_quantized(c.ir, {name: quantize(x, t_in)})
    (o,) = c.ir.outputs
    value = c.ir.node(o)["value"]
    raw = out[f"{value}:int8"]
    np.testing.assert_array_equal(raw, ref[o].reshape(raw.shape))
    sim = run_program(c.program, {name: x})  # the API run equals the CLI's
    np.testing.assert_array_equal(sim.raw[value], raw)


def test_float_ir_equals_onnxruntime(detector):
    _, name, c, x, _, fp32 = detector
    got = run_float(c.float_ir, {name: x})[c.float_ir.outputs[0]].reshape(fp32.shape)
    assert np.abs(got - fp32).max() <= 1e-4 * np.abs(fp32).max()


def test_yolo_boxes_and_scores_survive_int8(detectors):
    file, _, c, _, out, fp32 = detectors("yolov8_style.onnx")
    got = out["output0"].reshape(fp32.shape)
    boxes, scores = sqnr_db(fp32[:, :4], got[:, :4]), sqnr_db(fp32[:, 4:], got[:, 4:])
    print(f"\n{file}: box SQNR {boxes:.1f} dB, class-score SQNR {scores:.1f} dB; host ops "
          f"{sorted({f.op for f in c.fallbacks})}")
    assert fp32[:, 4:].max() > 0.5 and fp32[:, 4:].min() < 0.05  # the scores mean something
    assert boxes >= 25 and scores >= 20
    final = [f for f in c.fallbacks if f.op == "Concat" and "dequantization" in f.reason]
    assert len(final) == 1


def test_db_map_survives_int8(detectors):
    file, _, c, _, out, fp32 = detectors("db_style.onnx")
    got = out["maps"].reshape(fp32.shape)
    a, b = fp32 > 0.3, got > 0.3
    iou = float(np.sum(a & b) / max(np.sum(a | b), 1))
    print(f"\n{file}: IoU(p > 0.3) {iou:.3f}, SQNR {sqnr_db(fp32, got):.1f} dB; host ops "
          f"{sorted({f.op for f in c.fallbacks})}")
    assert a.mean() > 0.02  # the map finds the bars
    assert iou >= 0.9


def test_one_shared_scale_would_kill_the_scores(monkeypatch):
    """The failure the dequantized Concat avoids: forced to unify (as ONNX Runtime's PTQ does), the
    final Concat's one scale is the boxes' and every class score rounds to the same level."""
    import sys

    import npuc.passes.unify_concat  # noqa: F401  (the module; the package exports its function)

    monkeypatch.setattr(sys.modules["npuc.passes.unify_concat"], "MAX_LOSS_DB", float("inf"))
    x = np.load(TEST)
    c = compile_model(DATA / "yolov8_style.onnx", load_hw("default"), calib=str(CALIB),
                      input_shapes={"images": (1, 3, 64, 64)})
    assert not [f for f in c.fallbacks if "dequantization" in f.reason]
    got = run_program(c.program, {"images": x}).outputs["output0"]
    fp32 = ort_fp32(DATA / "yolov8_style.onnx", "images", x)
    assert len(np.unique(got[:, 4:])) <= 2 and sqnr_db(fp32[:, 4:], got[:, 4:]) < 3


@pytest.mark.parametrize("form", ["qdq", "integer"])
def test_exports_agree_with_the_simulator(detector, form):
    """ONNX Runtime on the exported model (host ops inlined in float, the final Concat on dequantized
    inputs) reproduces the simulator's outputs exactly, optimizations off."""
    from npuc.export import export_qdq

    _, name, c, x, out, _ = detector
    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.qdqisint8allowed", "1")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(export_qdq(c.ir, form).SerializeToString(), opts, providers=["CPUExecutionProvider"])
    got = np.concatenate([sess.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])
    value = c.ir.node(c.ir.outputs[0])["value"]
    np.testing.assert_array_equal(got, out[value].reshape(got.shape))
