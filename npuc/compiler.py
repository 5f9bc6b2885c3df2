"""The whole compiler as one function that reads as the pipeline it is.

`CompileOptions` holds every choice of a compile other than the hardware
(`HwConfig`): calibration, fallback, the optional error-correcting passes,
layers forced to host float, debugging. The command line builds one from its
arguments (`npuc/cli/options.py`), a sweep one per grid point; scripts and
tests may pass the same fields as keywords (`compile_model(m, hw, calib=x)`).

This module imports neither the simulator nor its C core: a program compiles
on a machine that never simulates it (a test checks).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .backend import BackendError, check_backend_resources, generate, too_big
from .backend.schedule import DEFAULT, Schedule
from .frontend import load_onnx
from .hw import HwConfig
from .ir import IR
from .isa.program import Program
from .passes import Statistics, Watch, collect_statistics, prepare, quantize_ir
from .passes.bias_correction import correct_bias
from .passes.equalize import equalize as equalize_layers
from .passes.fold_act_scales import FOLD_MODES, fold_act_scales
from .passes.host_fallback import to_host
from .passes.host_float import host_float
from .passes.learn_rounding import learn_rounding
from .passes.weight_bits import mark_weight_bits
from .quant import CALIBRATORS
from .quant.calib_data import CalibrationError, Sample, load_calibration, random_calibration, stack

CalibSource = str | Path | Iterable[Sample] | None
RANDOM_CALIB_SAMPLES = 32  # without --calib: random samples over the input's plausible range


@dataclass(frozen=True)
class CompileOptions:
    """Everything a compile depends on besides the model and the hardware config."""

    calib: CalibSource = None  # .npy / .npz / directory, an iterable of samples, or None (random)
    calib_method: str = "minmax"  # a key of `npuc.quant.CALIBRATORS`
    calib_samples: int | None = None  # use the first N samples (None: all)
    calib_batch: int = 16  # samples per batch of the calibration runs
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # fixes dynamic dims
    allow_fallback: bool = True  # an op the NPU cannot run runs on the host (else: an error)
    float_layers: tuple[str, ...] = ()  # Conv/Gemm layers computed in host float
    int4_layers: tuple[str, ...] = ()  # Conv/Gemm layers with int4 weights on the array (gemm w4)
    equalize: bool = False  # cross-layer equalization before calibration
    learn_rounding: bool = False  # weights rounded up or down to minimise each layer's output error
    fold_act_scales: str = "off"  # activation scales finer than 2^-e, absorbed by the weights (FOLD_MODES)
    bias_correction: bool = False  # empirical bias correction after legalization
    verify: bool = False  # check the IR's stage invariants between passes
    dump_ir: str | Path | None = None  # write the IR after every pass into this directory
    progress: bool = False  # a progress bar for calibration on terminals
    schedule: Schedule = DEFAULT  # the code generator's schedule choices (each can be switched off to measure it)

    def __post_init__(self) -> None:
        if self.calib_method not in CALIBRATORS:
            raise CalibrationError(f"calibration method {self.calib_method!r}: must be one of "
                                   f"{', '.join(CALIBRATORS)}")
        for name in ("calib_samples", "calib_batch"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise CalibrationError(f"{name} = {v!r}: must be a positive integer")
        if self.fold_act_scales not in FOLD_MODES:
            raise CalibrationError(f"fold_act_scales {self.fold_act_scales!r}: must be one of {', '.join(FOLD_MODES)}")
        object.__setattr__(self, "float_layers", tuple(self.float_layers))
        object.__setattr__(self, "int4_layers", tuple(self.int4_layers))

    def replace(self, **changes: Any) -> CompileOptions:
        return dataclasses.replace(self, **changes)


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


def options_with(options: CompileOptions | None, changes: Mapping[str, Any]) -> CompileOptions:
    """`options` (default: all defaults) with keyword `changes` applied; an unknown name is a TypeError."""
    return dataclasses.replace(options or CompileOptions(), **changes)


def prepare_model(model: str | Path, options: CompileOptions, watch: Watch | None = None) -> IR:
    """ONNX file -> the prepared float IR the NPU runs (frontend, cleanup, folding, fusion, equalization,
    the layers asked for in host float): the graph calibration observes."""
    watch = watch or Watch(options.verify, options.dump_ir)
    ir = load_onnx(model, dict(options.input_shapes), options.allow_fallback)  # shapes resolved; the rest to the host
    # fold BN, fuse activations: the float graph the NPU runs (what cannot be fused: to the host)
    float_ir = prepare(ir, watch=watch, fallback=options.allow_fallback)
    if options.equalize:  # same float function, equal weight ranges per channel: before anything measures ranges
        float_ir = watch("equalize", equalize_layers(float_ir), "prepared")
    if options.float_layers:  # chosen layers in host float: no weight or requantization error
        float_ir = watch("host_float", host_float(float_ir, options.float_layers), "prepared")
    if options.int4_layers:  # chosen layers with int4 weights: the quantizer reads the mark
        float_ir = mark_weight_bits(float_ir, options.int4_layers, 4)
    return float_ir


def calibration_samples(float_ir: IR, options: CompileOptions) -> tuple[list[Sample], str]:
    """The calibration samples of `options.calib` for `float_ir`, and a description of their source."""
    calib = options.calib
    if calib is None:
        samples = random_calibration(float_ir, n=RANDOM_CALIB_SAMPLES, seed=0)
        source = "random (no --calib given)"
    elif isinstance(calib, (str, Path)):
        samples, source = load_calibration(calib, float_ir), str(calib)
    else:
        samples, source = list(itertools.islice(calib, options.calib_samples)), "<iterable>"
    if options.calib_samples is not None:
        samples = samples[:options.calib_samples]  # the first N, so a sweep over N is reproducible
    return samples, source


def host_too_big(ir: IR, hw: HwConfig, allow_fallback: bool) -> IR:
    """Nodes no tiling fits into `hw` (a 60x80 MaxPool window) on the host; an error without fallback."""
    big = too_big(ir, hw)
    if not big:
        return ir
    if not allow_fallback:
        name, why = next(iter(big.items()))
        raise BackendError(f"node {name!r} ({ir.op(name)}): {why}")
    ir = ir.copy()
    for name, why in big.items():
        to_host(ir, name, why)
    return ir


def compile_model(model: str | Path, hw: HwConfig, options: CompileOptions | None = None, *,
                  statistics: Statistics | None = None, **changes: Any) -> Compiled:
    """ONNX file -> quantized IR -> NPU program, under `hw` and `options` (plus keyword `changes`).

    With `allow_fallback` an op the NPU cannot run runs on the host (`Compiled.fallbacks`); without,
    it is an error naming the node, op and opset. `statistics` (`collect_statistics` on
    `prepare_model`'s IR and the same samples and method) skips re-observing the samples: the result
    is the same program, made faster (a sweep's cache)."""
    options = options_with(options, changes)
    watch = Watch(check=options.verify, dump_dir=options.dump_ir)
    check_backend_resources(hw)  # an absurd SRAM size fails before the slow steps
    float_ir = prepare_model(model, options, watch)
    samples, source = calibration_samples(float_ir, options)
    # what no tiling fits into this hardware (a 60x80 MaxPool window) runs on the host
    float_ir = watch("host_too_big", host_too_big(float_ir, hw, options.allow_fallback), "prepared")
    if options.fold_act_scales != "off":  # scales finer than a power of two, the weights absorb the rest
        if statistics is None:  # ranges stay those of the unfolded tensors, which every folded channel fits
            statistics = collect_statistics(float_ir, samples, options.calib_method, options.calib_batch,
                                            options.progress)
        folded = fold_act_scales(float_ir, hw, statistics, samples, options.fold_act_scales, options.calib_batch)
        float_ir = watch("fold_act_scales", folded, "prepared")
    qir = quantize_ir(float_ir, hw, samples, method=options.calib_method, watch=watch, batch_size=options.calib_batch,
                      progress=options.progress, statistics=statistics)  # calibrate, quantize, legalize
    if options.learn_rounding:  # each int8 weight up or down, fitted to the layer's output (AdaRound)
        qir = watch("learn_rounding", learn_rounding(qir, samples), "quantized", hw)
    if options.bias_correction:  # int32 biases absorb the mean error of the int8 layers, layer by layer
        qir = watch("bias_correction", correct_bias(qir, samples), "quantized", hw)
    program = generate(qir, hw, options.schedule)  # tile, emit instructions, insert tokens
    return Compiled(float_ir, qir, program, len(samples), source)


def stack_samples(samples: Sequence[Sample], ir: IR | None = None) -> dict[str, np.ndarray]:
    """A list of samples as one batch per input (axis 0; an input of `ir` whose axis 0 is not the batch,
    as MultiheadAttention's (L, 1, E), stacks its whole samples along axis 0)."""
    if ir is None:
        return {k: np.stack([s[k] for s in samples]) for k in samples[0]}
    return {k: stack(tuple(ir.node(k)["shape"]), [s[k] for s in samples]) for k in samples[0]}
