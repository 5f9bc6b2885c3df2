"""Mixed precision, host-float variant: a search for the layers that must run in float.

A tool above the pipeline, not a pass in it: every candidate is compiled and
simulated. The chosen Conv/Gemm layers then run in float on the host
(`npuc/passes/host_float.py` applies the choice: `CompileOptions.float_layers`);
a host layer's input is dequantized, computed in float (float weights, no
requantization rounding) and its output quantized back to int8 for the NPU.

The choice is greedy, by the sensitivity `npuc analyze` reports
(`analyze.isolated_output_sqnr`: the model's output SQNR when only that
layer is quantized — one piece of code for both): the most sensitive layer
moves first, and layers move until the budget is met — an output SQNR
target (dB, against fp32) or an accuracy loss (percentage points, needs
labels). Each step is measured, not predicted: the model is re-quantized and
run through the integer reference (equal to the simulator bit for bit), and
its program generated for the NPU cycles it saves. `float_layers` names
layers to move whatever the budget (the manual override).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..compiler import Compiled, CompileOptions, calibration_samples, compile_model, options_with, prepare_model
from ..hw import HwConfig
from ..ir import IR
from ..passes.errors import PassError
from ..passes.host_float import HOST_FLOAT_OPS, layer_macs, move_to_host_float, validate_layers
from ..quant.calib_data import Sample
from ..quant.metrics import sqnr_db


@dataclass(frozen=True)
class Budget:
    """What the plan must reach: an output SQNR (dB), or at most `keep_accuracy_pp` points of accuracy lost."""

    sqnr_db: float | None = None
    keep_accuracy_pp: float | None = None


@dataclass(frozen=True)
class Choice:
    """One layer moved to host float, with what it bought and what it cost."""

    layer: str
    op: str
    why: str  # "manual" or "sensitivity (only this layer quantized: X dB)"
    sqnr_before: float
    sqnr_after: float
    accuracy_before: float | None
    accuracy_after: float | None
    npu_cycles_delta: int  # per sample, negative = saved
    host_macs: int  # float multiply-adds the host now does per sample

    def __str__(self) -> str:
        s = (f"mixed precision: {self.layer} ({self.op}) -> host float [{self.why}]: output SQNR "
             f"{self.sqnr_before:.2f} -> {self.sqnr_after:.2f} dB ({self.sqnr_after - self.sqnr_before:+.2f})")
        if self.accuracy_before is not None and self.accuracy_after is not None:
            s += f", accuracy {100 * self.accuracy_before:.2f} -> {100 * self.accuracy_after:.2f}%"
        return s + f"; NPU cycles {self.npu_cycles_delta:+d}/sample, host +{self.host_macs} MACs/sample"


@dataclass(frozen=True)
class Plan:
    ir: IR  # prepared float IR with the chosen layers on the host
    choices: list[Choice]
    sqnr_db: float  # final output SQNR on the evaluation samples
    accuracy: float | None
    accuracy_fp32: float | None
    met: bool

    @property
    def layers(self) -> tuple[str, ...]:
        """The layers moved to host float, in the order they moved."""
        return tuple(c.layer for c in self.choices)

    def summary(self) -> list[str]:
        lines = [str(c) for c in self.choices]
        acc = "" if self.accuracy is None else (f", accuracy {100 * self.accuracy:.2f}% "
                                                f"(fp32 {100 * (self.accuracy_fp32 or 0):.2f}%)")
        lines.append(f"mixed precision: {len(self.choices)} layer(s) in host float; output SQNR "
                     f"{self.sqnr_db:.2f} dB{acc}; budget {'met' if self.met else 'NOT met'}")
        return lines


def plan_mixed_precision(float_ir: IR, hw: HwConfig, samples: list[Sample], budget: Budget,
                         *, method: str = "minmax", float_layers: Sequence[str] = (),
                         data: np.ndarray | None = None, labels: np.ndarray | None = None,
                         max_layers: int | None = None, calib_batch: int = 16) -> Plan:
    """Move `float_layers`, then the most sensitive Conv/Gemm layers, to host float until `budget` is met.

    The budget is measured on `data` (batched first input; default: the calibration samples)."""
    from ..backend import generate
    from ..passes import quantize_ir
    from ..reference import quantize_input, run_float, run_quantized
    from ..sim.driver import run_program
    from .analyze import isolated_output_sqnr

    validate_layers(float_ir, float_layers)
    if budget.keep_accuracy_pp is not None and labels is None:
        raise PassError("--keep-accuracy needs labelled data (--data and --labels)")
    first = float_ir.inputs[0]
    x = {first: np.stack([s[first] for s in samples]) if data is None else np.asarray(data, np.float32)}
    ref = run_float(float_ir, x, intermediates=True)
    out = float_ir.outputs[0]
    acc_fp32 = None if labels is None else float(np.mean(np.argmax(ref[out].reshape(len(labels), -1), 1) == labels))

    def measure(ir: IR) -> tuple[IR, float, float | None, int]:
        qir = quantize_ir(ir, hw, samples, method=method, batch_size=calib_batch)
        q = run_quantized(qir, {n: quantize_input(x[n], qir.node(n)["act_q"]) for n in qir.inputs})
        o = qir.outputs[0]
        y = (q[o].astype(np.float64) - qir.node(o)["act_q"].zp) * qir.node(o)["act_q"].scale
        acc = None if labels is None else float(np.mean(np.argmax(y.reshape(len(labels), -1), 1) == labels))
        prog = generate(qir, hw)
        cycles = run_program(prog, {qir.node(n)["value"]: x[n][:1] for n in qir.inputs}).stats[0].cycles
        return qir, sqnr_db(ref[out], y.reshape(ref[out].shape)), acc, cycles

    def met(db: float, acc: float | None) -> bool:
        if budget.sqnr_db is not None and not db >= budget.sqnr_db:
            return False
        if budget.keep_accuracy_pp is not None:
            assert acc is not None and acc_fp32 is not None
            return 100 * (acc_fp32 - acc) <= budget.keep_accuracy_pp + 1e-9
        return True

    ir = float_ir.copy()
    qir, db, acc, cycles = measure(ir)
    choices: list[Choice] = []

    def move(name: str, why: str) -> None:
        nonlocal qir, db, acc, cycles
        op, macs = ir.op(name), layer_macs(ir, name)
        move_to_host_float(ir, name, f"mixed precision ({why})")
        qir, db2, acc2, cycles2 = measure(ir)
        choices.append(Choice(name, op, why, db, db2, acc, acc2, cycles2 - cycles, macs))
        db, acc, cycles = db2, acc2, cycles2

    for name in float_layers:
        move(name, "manual")
    if budget.sqnr_db is not None or budget.keep_accuracy_pp is not None:
        # sensitivity of each remaining NPU layer, measured on the all-int8 model as `npuc analyze` does
        sens = {n: isolated_output_sqnr(qir, x, n, ref) for n in qir.topo() if qir.op(n) in HOST_FLOAT_OPS}
        order = sorted(sens, key=lambda n: (sens[n], n))
        for name in order[:max_layers]:
            if met(db, acc):
                break
            v = sens[name]
            move(name, f"sensitivity: only this layer quantized, output SQNR "
                       f"{'inf' if math.isinf(v) else f'{v:.1f}'} dB")
    return Plan(ir, choices, db, acc, acc_fp32, met(db, acc))


def compile_mixed(model: str | Path, hw: HwConfig, budget: Budget | None = None,
                  options: CompileOptions | None = None, *, data: np.ndarray | None = None,
                  labels: np.ndarray | None = None, **changes: Any) -> tuple[Compiled, Plan]:
    """Search the layers to move to host float (`options.float_layers` first, then by sensitivity until
    `budget` is met on `data`, default the calibration samples), then compile with that choice."""
    options = options_with(options, changes)
    float_ir = prepare_model(model, options.replace(float_layers=()))  # the plan moves float_layers itself
    samples, _ = calibration_samples(float_ir, options)
    plan = plan_mixed_precision(float_ir, hw, samples, budget or Budget(), method=options.calib_method,
                                float_layers=options.float_layers, data=data, labels=labels,
                                calib_batch=options.calib_batch)
    compiled = compile_model(model, hw, options.replace(float_layers=plan.layers))
    return compiled, plan
