"""The whole compiler as one function that reads as the pipeline it is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from . import calib as calib_data
from .backend import generate
from .frontend import load_onnx
from .hw import HwConfig
from .ir import IR
from .isa.program import Program
from .passes import Watch, prepare, quantize_ir


@dataclass
class Compiled:
    float_ir: IR  # after cleanup and fusion, before quantization
    ir: IR  # quantized
    program: Program
    calib_samples: int
    calib_source: str


def compile_model(
    model: str | Path,
    hw: HwConfig,
    *,
    calib: str | Path | Iterable[dict[str, np.ndarray]] | None = None,
    method: str = "minmax",
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    dump_ir: str | Path | None = None,
    verify: bool = False,
) -> Compiled:
    """ONNX file -> quantized IR -> NPU program."""
    watch = Watch(check=verify, dump_dir=dump_ir)
    ir = load_onnx(model, input_shapes)  # ONNX -> IR, shapes resolved
    float_ir = prepare(ir, watch=watch)  # fold BN, fuse activations: the float graph the NPU runs
    if calib is None:
        samples = calib_data.random_calibration(float_ir, n=32, seed=0)
        source = "random (no --calib given)"
    elif isinstance(calib, (str, Path)):
        samples = calib_data.load_calibration(calib, float_ir)
        source = str(calib)
    else:
        samples = list(calib)
        source = "<iterable>"
    qir = quantize_ir(float_ir, hw, samples, method=method, watch=watch)  # calibrate, quantize, legalize
    program = generate(qir, hw)  # tile, emit instructions, insert tokens
    return Compiled(float_ir, qir, program, len(samples), source)
