"""npuc's pow2 PTQ against ONNX Runtime's quantize_static on the digits CNN, same calibration data.

    python bench/ort_quantize.py

ORT: QDQ format, int8 per-channel weights, int8 asymmetric activations,
MinMax calibration on the 200-image calibration split; evaluated in ORT with
graph optimizations off (so every op runs exactly as the QDQ model says).
Then the same ORT model with every scale moved to a power of two — rounded
to the nearest (log2) and rounded up (no new clipping) — weights and bias
re-quantized to the new scales, zero points kept. npuc: minmax, per-channel,
simulated. Accuracy on the 400-image test split, SQNR of the logits vs fp32.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

from npuc.compiler import compile_model
from npuc.examples import DIGITS_CNN as MODEL
from npuc.examples import digits
from npuc.hw import HwConfig
from npuc.quant.metrics import sqnr_db
from npuc.sim.driver import run_program


class _Reader(CalibrationDataReader):
    def __init__(self, x: np.ndarray) -> None:
        self.it = iter([{"x": s[None]} for s in x])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.it, None)


def ort_quantized(calib: np.ndarray, out: Path) -> onnx.ModelProto:
    quantize_static(str(MODEL), str(out), _Reader(calib), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    return onnx.load(str(out))


def to_pow2(model: onnx.ModelProto, mode: str) -> onnx.ModelProto:
    """Every Q/DQ scale -> a power of two; constant int tensors behind a DQ re-quantized to it."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inits = {i.name: i for i in m.graph.initializer}
    pick = (lambda s: 2.0 ** np.round(np.log2(s))) if mode == "nearest" else (lambda s: 2.0 ** np.ceil(np.log2(s)))
    new_scale: dict[str, np.ndarray] = {}
    for node in m.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and node.input[1] in inits:
            old = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
            new_scale.setdefault(node.input[1], pick(old))
    for node in m.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            continue
        data = numpy_helper.to_array(inits[node.input[0]])
        old = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        ratio = old / new_scale[node.input[1]]
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if ratio.ndim:
            ratio = ratio.reshape([-1 if d == axis % data.ndim else 1 for d in range(data.ndim)])
        info = np.iinfo(data.dtype)
        lim = (-info.max, info.max) if data.dtype == np.int8 else (info.min, info.max)  # weights stay symmetric
        q = np.clip(np.rint(data.astype(np.float64) * ratio), *lim).astype(data.dtype)
        inits[node.input[0]].CopyFrom(numpy_helper.from_array(q, node.input[0]))
    for name, s in new_scale.items():
        inits[name].CopyFrom(numpy_helper.from_array(s.astype(np.float32), name))
    return m


def run(model: onnx.ModelProto | str, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    src = model if isinstance(model, str) else model.SerializeToString()
    sess = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])


def main() -> int:
    data = {part: digits(part) for part in ("calib", "test")}
    calib, test = data["calib"], data["test"]
    fp32 = run(str(MODEL), test.x)
    rows = [("fp32 (onnxruntime)", fp32)]
    with tempfile.TemporaryDirectory() as d:
        q = ort_quantized(calib.x, Path(d) / "ort_qdq.onnx")
    rows.append(("ORT quantize_static, float scales", run(q, test.x)))
    rows.append(("ORT scales rounded to nearest 2^k", run(to_pow2(q, "nearest"), test.x)))
    rows.append(("ORT scales rounded up to 2^k", run(to_pow2(q, "up"), test.x)))
    for rule in ("pow2", "fixed_point"):
        c = compile_model(MODEL, HwConfig(scale_rule=rule), calib=[{"x": s} for s in calib.x])
        rows.append((f"npuc {rule} (simulator)", run_program(c.program, {"x": test.x}).outputs["logits"]))
    print("| quantizer | accuracy % | logits SQNR vs fp32 dB |")
    print("|---|---|---|")
    for name, out in rows:
        snr = sqnr_db(fp32, out)
        print(f"| {name} | {100 * np.mean(out.argmax(1) == test.y):.2f} | "
              f"{'—' if math.isinf(snr) else f'{snr:.2f}'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
