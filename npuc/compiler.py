"""The whole compiler as one function that reads as the pipeline it is."""

from __future__ import annotations

import itertools

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import calib as calib_data
from .backend import generate
from .frontend import load_onnx
from .hw import HwConfig
from .ir import IR
from .isa.program import Program
from .passes import Watch, prepare, quantize_ir
from .passes.bias_correction import correct_bias
from .passes.equalize import equalize as equalize_layers
from .passes.mixed_precision import Budget, Plan, plan_mixed_precision


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
    mixed: Plan | None = None  # the layers mixed precision moved to host float, when asked

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
    float_layers: Sequence[str] = (),
    budget: Budget | None = None,
    eval_data: np.ndarray | None = None,
    eval_labels: np.ndarray | None = None,
    equalize: bool = False,
    bias_correction: bool = False,
    calib_samples: int | None = None,
    calib_batch: int = 16,
    progress: bool = False,
) -> Compiled:
    """ONNX file -> quantized IR -> NPU program.

    With `allow_fallback` an op the NPU cannot run runs on the host (`Compiled.fallbacks`);
    without, it is an error naming the node, op and opset.

    `float_layers` and `budget` ask for mixed precision (`passes/mixed_precision.py`): those layers, then
    the most sensitive ones until the budget is met on `eval_data` (default: the calibration samples),
    run in float on the host (`Compiled.mixed`). `equalize` (cross-layer equalization, before
    calibration) and `bias_correction` (after legalization) are the optional error-correcting passes."""
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
        samples = list(itertools.islice(calib, calib_samples))
        source = "<iterable>"
    if calib_samples is not None:
        samples = samples[:calib_samples]  # the first N, so a sweep over N is reproducible
    if equalize:  # same float function, equal weight ranges per channel: before anything measures ranges
        float_ir = watch("equalize", equalize_layers(float_ir), "prepared")
    plan = None
    if float_layers or budget is not None:
        # the most sensitive layers to host float until the budget is met (measured, layer by layer)
        plan = plan_mixed_precision(float_ir, hw, samples, budget or Budget(), method=method,
                                    float_layers=float_layers, data=eval_data, labels=eval_labels)
        float_ir = watch("mixed_precision", plan.ir, "prepared")
    qir = quantize_ir(float_ir, hw, samples, method=method, watch=watch, batch_size=calib_batch,
                      progress=progress)  # calibrate, quantize, legalize
    if bias_correction:  # int32 biases absorb the mean error of the int8 layers, layer by layer
        qir = watch("bias_correction", correct_bias(qir, samples), "quantized", hw)
    program = generate(qir, hw)  # tile, emit instructions, insert tokens
    return Compiled(float_ir, qir, program, len(samples), source, plan)
