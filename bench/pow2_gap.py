"""How much of the gap between npuc's power-of-two PTQ and ONNX Runtime's float-scale PTQ each tool closes.

    python bench/pow2_gap.py [--model digits|resnet ...] [--fold off,io,...] [--calib-method minmax,...]
                             [--learn-rounding no,yes]

Models: the bundled digits CNN (calibration on its 200-image split, SQNR on the 400-image test split)
and the PyTorch-exported ResNet-18-style model of tests/e2e/data (64x64, width 12; 32 standard-normal
calibration images, seed 0; 32 test images, seed 1). For every combination of `--fold-act-scales`
mode, calibrator and `--learn-rounding`, the output SQNR (dB) of npuc's integer model against the float
model (the numpy integer reference, equal to the simulator bit for bit: tests/passes/test_fold_act_scales.py),
its gain over today's default (pow2 per-channel, minmax, no flag) and the gap that remains to onnxruntime
`quantize_static` (QDQ, MinMax, per-channel int8 weights, int8 asymmetric activations, float scales) on
the same calibration and test data, evaluated in ORT with graph optimizations off.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

sys.path.insert(0, str(Path(__file__).parent))
from ort_quantize import _Reader, run  # noqa: E402

from npuc.compiler import compile_model  # noqa: E402
from npuc.examples import DIGITS_CNN, digits  # noqa: E402
from npuc.hw import HwConfig  # noqa: E402
from npuc.quant.metrics import sqnr_db  # noqa: E402
from npuc.reference import run_float, run_quantized_float  # noqa: E402

RESNET = Path(__file__).parent.parent / "tests" / "e2e" / "data" / "resnet18_opset13.onnx"


@dataclass(frozen=True)
class Bench:
    path: Path
    calib: np.ndarray
    test: np.ndarray


def bench_model(name: str) -> Bench:
    if name == "digits":
        return Bench(DIGITS_CNN, digits("calib").x, digits("test").x)
    shape = (32, 3, 64, 64)
    return Bench(RESNET, np.random.default_rng(0).standard_normal(shape).astype(np.float32),
                 np.random.default_rng(1).standard_normal(shape).astype(np.float32))


def ort_sqnr(b: Bench) -> float:
    """onnxruntime quantize_static, float scales, MinMax, per-channel: output SQNR vs ORT fp32."""
    fp32 = run(str(b.path), b.test)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "ort_qdq.onnx"
        quantize_static(str(b.path), str(out), _Reader(b.calib), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        return sqnr_db(fp32, run(onnx.load(str(out)), b.test))


def npuc_sqnr(b: Bench, fold: str, method: str, learn: bool) -> float:
    c = compile_model(b.path, HwConfig(), calib=[{"x": s} for s in b.calib], calib_method=method,
                      fold_act_scales=fold, learn_rounding=learn)
    out = c.ir.outputs[0]
    want = run_float(c.float_ir, {"x": b.test})[out]
    return sqnr_db(want, run_quantized_float(c.ir, {"x": b.test})[out])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", choices=("digits", "resnet"), default=None)
    p.add_argument("--fold", default="off,pow2,io,io+pow2,all")
    p.add_argument("--calib-method", default="minmax,percentile,mse,entropy")
    p.add_argument("--learn-rounding", default="no,yes")
    args = p.parse_args(argv)
    for name in args.model or ["digits", "resnet"]:
        b = bench_model(name)
        ort = ort_sqnr(b)
        base = npuc_sqnr(b, "off", "minmax", False)
        print(f"\n{name}: onnxruntime quantize_static (float scales, MinMax, per-channel) {ort:.2f} dB; "
              f"npuc default (pow2, minmax) {base:.2f} dB\n")
        print("| --fold-act-scales | --calib-method | --learn-rounding | SQNR dB | gain dB | gap to ORT dB | s |")
        print("|---|---|---|---|---|---|---|")
        for fold, method, learn in itertools.product(args.fold.split(","), args.calib_method.split(","),
                                                     args.learn_rounding.split(",")):
            t = time.time()
            snr = npuc_sqnr(b, fold, method, learn == "yes")
            print(f"| {fold} | {method} | {learn} | {snr:.2f} | {snr - base:+.2f} | {ort - snr:+.2f} | "
                  f"{time.time() - t:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
