"""Mixed precision on the NPU: per layer, the weight width the array runs it at.

The hardware has int4 weights (gemm `w4`, `int4_pack` of them per PE: an int4
layer needs up to `int4_pack` times fewer column folds) and int8 weights; host
float is the last resort (`mixed_precision.py`). Each layer's int8 is an
error gain bought with cycles; the plan keeps int8 where the gain per cycle is
best and moves the rest to int4 while the budget holds:

1. each Conv/Gemm layer's cycle cost of int8 over int4 is measured once, from
   the per-layer statistics of two simulations (all int8, all int4);
2. each layer's error gain is measured once: the model's output SQNR (vs fp32,
   through the integer reference, which equals the simulator bit for bit) at
   all-int8 minus the SQNR with only that layer at int4 (error gains from an
   all-int4 start are drowned by the other layers' error, so the plan works
   down from int8);
3. layers whose int8 costs cycles are tried at int4 in order of least gain per
   cycle saved; each move is measured and kept only if the budget still holds;
4. if all-int8 does not meet the budget, the host-float search runs
   (`plan_mixed_precision`).

The plan is printed one layer a line: layer, width, error gain, cycle cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..compiler import Compiled, CompileOptions, calibration_samples, compile_model, options_with, prepare_model
from ..hw import HwConfig
from ..ir import IR
from ..passes.weight_bits import WEIGHT_OPS, mark_weight_bits
from ..quant.calib_data import Sample
from ..quant.metrics import sqnr_db
from .mixed_precision import Budget, Plan, plan_mixed_precision

NPU_WIDTHS = ("int4", "int8")  # weight widths the array runs (gemm w4 = 1, 0)


@dataclass(frozen=True)
class WidthChoice:
    """One layer's width in the plan, with the gain and cost measured when it was chosen."""

    layer: str
    width: str  # "int4" or "int8"
    gain_db: float  # output SQNR gained by this layer at int8 over int4 (alone, from all-int4)
    cycles: int  # NPU cycles per sample int8 costs over int4 for this layer (negative: int8 is cheaper)
    why: str

    def __str__(self) -> str:
        return (f"npu precision: {self.layer:<12} {self.width}  error gain {self.gain_db:+7.2f} dB  "
                f"cycle cost {self.cycles:+7d}  [{self.why}]")


@dataclass
class WidthPlan:
    choices: list[WidthChoice]
    sqnr_db: float  # measured with the plan's widths (before any host-float layer)
    cycles: int  # NPU cycles per sample of the plan's program
    met: bool
    steps: list[str] = field(default_factory=list)  # each measured move
    host: Plan | None = None  # the host-float plan, when all-int8 fell short

    @property
    def int4_layers(self) -> tuple[str, ...]:
        return tuple(c.layer for c in self.choices if c.width == "int4")

    def summary(self) -> list[str]:
        lines = [str(c) for c in self.choices] + self.steps
        lines.append(f"npu precision: {len(self.int4_layers)} of {len(self.choices)} layer(s) int4; output "
                     f"SQNR {self.sqnr_db:.2f} dB, {self.cycles} NPU cycles/sample; budget "
                     f"{'met' if self.met else 'NOT met on the NPU widths'}")
        if self.host is not None:
            lines += self.host.summary()
        return lines


def plan_npu_precision(float_ir: IR, hw: HwConfig, samples: list[Sample], budget: Budget, *,
                       method: str = "minmax", data: np.ndarray | None = None,
                       labels: np.ndarray | None = None, calib_batch: int = 16,
                       widths: Sequence[str] = NPU_WIDTHS) -> WidthPlan:
    """The weight width of every Conv/Gemm layer: int4 where the budget allows, int8 where its error
    gain per cycle is best, host float if even all-int8 falls short (module doc)."""
    from ..backend import generate
    from ..passes import quantize_ir
    from ..reference import quantize_input, run_float, run_quantized
    from ..sim.driver import run_program

    first = float_ir.inputs[0]
    x = {first: np.stack([s[first] for s in samples]) if data is None else np.asarray(data, np.float32)}
    out = float_ir.outputs[0]
    ref = run_float(float_ir, x)[out]
    acc_fp32 = None if labels is None else float(np.mean(np.argmax(ref.reshape(len(labels), -1), 1) == labels))
    layers = [n for n in float_ir.topo() if float_ir.op(n) in WEIGHT_OPS]

    def quantized(int4: Sequence[str]) -> IR:
        return quantize_ir(mark_weight_bits(float_ir, int4, 4), hw, samples, method=method, batch_size=calib_batch)

    def error(int4: Sequence[str]) -> tuple[float, float | None]:
        qir = quantized(int4)
        q = run_quantized(qir, {n: quantize_input(x[n], qir.node(n)["act_q"]) for n in qir.inputs})
        o = qir.outputs[0]
        y = (q[o].astype(np.float64) - qir.node(o)["act_q"].zp) * qir.node(o)["act_q"].scale
        acc = None if labels is None else float(np.mean(np.argmax(y.reshape(len(labels), -1), 1) == labels))
        return sqnr_db(ref, y.reshape(ref.shape)), acc

    def cycles(int4: Sequence[str]) -> tuple[int, dict[str, int]]:
        qir = quantized(int4)
        res = run_program(generate(qir, hw), {qir.node(n)["value"]: x[n][:1] for n in qir.inputs})
        return res.stats[0].cycles, {ls.name: ls.cycles for ls in res.layers}

    def met(db: float, acc: float | None) -> bool:
        if budget.sqnr_db is not None and not db >= budget.sqnr_db:
            return False
        if budget.keep_accuracy_pp is not None:
            assert acc is not None and acc_fp32 is not None
            return 100 * (acc_fp32 - acc) <= budget.keep_accuracy_pp + 1e-9
        return True

    use4 = "int4" in widths
    total8, per8 = cycles([])
    total4, per4 = cycles(layers) if use4 else (total8, per8)
    cost = {n: per8.get(n, 0) - per4.get(n, 0) for n in layers}
    db8, acc8 = error([])
    # each layer's error gain at int8: the SQNR all-int8 loses when only this layer is int4
    gain = {n: db8 - error([n])[0] for n in layers} if use4 and met(db8, acc8) else {}
    # give up the least error per cycle saved first; a layer whose int8 costs no cycles stays int8
    order = sorted((n for n in gain if cost[n] > 0), key=lambda n: (gain[n] / cost[n], n))
    int4: list[str] = []
    db, acc = db8, acc8
    steps: list[str] = []
    chosen: dict[str, str] = {n: "int8: costs no cycles over int4" for n in gain if cost[n] <= 0}
    for n in order:
        db2, acc2 = error([*int4, n])
        ok = met(db2, acc2)
        steps.append(f"npu precision: try {n} at int4: output SQNR {db:.2f} -> {db2:.2f} dB, "
                     f"{'kept' if ok else 'over budget, stays int8'}")
        if ok:
            int4.append(n)
            db, acc = db2, acc2
            chosen[n] = "int4: within budget"
        else:
            chosen[n] = "int8: int4 would break the budget"
    final_cycles = cycles(int4)[0] if int4 else total8
    choices = [WidthChoice(n, "int4" if n in int4 else "int8", gain.get(n, 0.0), cost[n],
                           chosen.get(n, "int8: int4 not offered" if not use4 else "int8: all-int8 misses the budget"))
               for n in layers]
    plan = WidthPlan(choices, db, final_cycles, met(db, acc), steps)
    if not plan.met:  # even all-int8 falls short: host float, the last resort
        plan.host = plan_mixed_precision(float_ir, hw, samples, budget, method=method, data=data, labels=labels,
                                         calib_batch=calib_batch)
    return plan


def compile_npu_mixed(model: str | Path, hw: HwConfig, budget: Budget | None = None,
                      options: CompileOptions | None = None, *, data: np.ndarray | None = None,
                      labels: np.ndarray | None = None, widths: Sequence[str] = NPU_WIDTHS,
                      **changes: Any) -> tuple[Compiled, WidthPlan]:
    """Plan the layers' widths (`plan_npu_precision`) under `budget`, then compile with that plan."""
    options = options_with(options, changes)
    float_ir = prepare_model(model, options.replace(float_layers=(), int4_layers=()))
    samples, _ = calibration_samples(float_ir, options)
    plan = plan_npu_precision(float_ir, hw, samples, budget or Budget(), method=options.calib_method, data=data,
                              labels=labels, calib_batch=options.calib_batch, widths=widths)
    host = plan.host.layers if plan.host is not None else ()
    compiled = compile_model(model, hw, options.replace(int4_layers=plan.int4_layers, float_layers=host))
    return compiled, plan
