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


@dataclass(frozen=True)
class Fallback:
    """A node that runs on the host, and why (`npuc/host.py`)."""

    node: str
    op: str  # the ONNX op type
    opset: int
    reason: str

    def __str__(self) -> str:
        return f"node '{self.node}' ({self.op}, opset {self.opset}) runs on the host: {self.reason}"


@dataclass
class Compiled:
    float_ir: IR  # after cleanup and fusion, before quantization
    ir: IR  # quantized
    program: Program
    calib_samples: int
    calib_source: str

    @property
    def fallbacks(self) -> list[Fallback]:
        """The nodes that fell back to the host, in program order."""
        return [Fallback(n, a["onnx_op"], a["opset"], a["reason"])
                for n in self.ir.topo() if self.ir.op(n) == "Host" for a in [self.ir.node(n)["attrs"]]]


def compile_model(
    model: str | Path,
    hw: HwConfig,
    *,
    calib: str | Path | Iterable[dict[str, np.ndarray]] | None = None,
    method: str = "minmax",
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    dump_ir: str | Path | None = None,
    verify: bool = False,
    allow_fallback: bool = True,
) -> Compiled:
    """ONNX file -> quantized IR -> NPU program.

    With `allow_fallback` an op the NPU cannot run runs on the host (`Compiled.fallbacks`);
    without, it is an error naming the node, op and opset."""
    watch = Watch(check=verify, dump_dir=dump_ir)
    ir = load_onnx(model, input_shapes, allow_fallback)  # ONNX -> IR, shapes resolved; the rest to the host
    # fold BN, fuse activations: the float graph the NPU runs (what cannot be fused: to the host)
    float_ir = prepare(ir, watch=watch, fallback=allow_fallback)
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
