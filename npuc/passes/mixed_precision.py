"""Mixed precision, host-float variant: the most sensitive layers run in float on the host.

Pre: prepared float IR (`prepare`), calibration samples.
Post: the same IR with the chosen Conv/Gemm layers turned into Host nodes
(their fused activation split off into a Host Relu/Clip after them); every
other node untouched. The caller quantizes the result as usual: a host
layer's input is dequantized, computed in float (float weights, no
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

import numpy as np
from onnx import helper

from .. import host
from ..hw import HwConfig
from ..ir import IR
from ..report import sqnr_db
from .errors import PassError
from .host_fallback import to_host

HOST_FLOAT_OPS = ("Conv", "Gemm")


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

    def summary(self) -> list[str]:
        lines = [str(c) for c in self.choices]
        acc = "" if self.accuracy is None else (f", accuracy {100 * self.accuracy:.2f}% "
                                                f"(fp32 {100 * (self.accuracy_fp32 or 0):.2f}%)")
        lines.append(f"mixed precision: {len(self.choices)} layer(s) in host float; output SQNR "
                     f"{self.sqnr_db:.2f} dB{acc}; budget {'met' if self.met else 'NOT met'}")
        return lines


def host_float(ir: IR, name: str, reason: str) -> None:
    """Make Conv/Gemm `name` a Host node computing it in float, in place; a fused activation becomes
    a Host Relu/Clip node after it (a host op is one ONNX node)."""
    d = ir.node(name)
    op = d["op"]
    if op not in HOST_FLOAT_OPS:
        raise PassError(f"node {name!r} (op {op}): only {', '.join(HOST_FLOAT_OPS)} can run in host float")
    act = d["attrs"].get("act")
    if act is not None:
        _split_activation(ir, name, act)
    (src,) = ir.preds(name)
    s = ir.node(src)
    x = host.ValueSpec(s["value"], s["dtype"], tuple(s["shape"]))
    y = host.ValueSpec(d["value"], "float32", tuple(d["shape"]))
    inits = {f"{name}.W": d["consts"]["W"].astype(np.float32), f"{name}.B": d["consts"]["B"].astype(np.float32)}
    a = d["attrs"]
    if op == "Conv":
        node = helper.make_node("Conv", [x.name, *inits], [y.name], name=name, kernel_shape=list(a["kernel"]),
                                strides=list(a["strides"]), dilations=list(a["dilations"]), pads=list(a["pads"]),
                                group=int(a.get("group", 1)))
    else:
        node = helper.make_node("Gemm", [x.name, *inits], [y.name], name=name, transB=1)
    d["op"] = "Host"
    d["attrs"] = {"onnx_op": op, "opset": ir.opset, "reason": reason,
                  "model": host.build_model(node, [x], y, inits, ir.opset)}
    d["consts"] = {}


def _split_activation(ir: IR, name: str, act: tuple[str, float, float]) -> None:
    """`name`'s fused activation as its own node after it (same value name on the final tensor)."""
    d = ir.node(name)
    kind, lo, hi = act
    act_name = f"{name}.act"
    op = "Relu" if kind == "relu" else "Clip"
    ir.add(act_name, op, [], attrs={"lo": lo, "hi": hi}, shape=tuple(d["shape"]), value=d["value"])
    ir.node(act_name)["order"] = d.get("order", 0)
    for _, dst, slot in list(ir.g.out_edges(name, data="slot")):
        ir.g.remove_edge(name, dst)
        ir.g.add_edge(act_name, dst, slot=slot)
    ir.g.add_edge(name, act_name, slot=0)
    ir.outputs = [act_name if o == name else o for o in ir.outputs]
    d["value"] = f"{d['value']}.preact"
    d["attrs"] = {k: v for k, v in d["attrs"].items() if k != "act"}
    to_host(ir, act_name, f"activation of {name}, which runs in host float")


def _macs(ir: IR, name: str) -> int:
    d = ir.node(name)
    w = d["consts"]["W"]
    per_out = int(np.prod(w.shape[1:]))
    return per_out * int(np.prod(d["shape"][1:]))


def validate_layers(ir: IR, names: Sequence[str]) -> None:
    """Unknown names, or layers that cannot run in host float: a one-line error naming them."""
    for n in names:
        if n not in ir.g:
            known = ", ".join(x for x in ir.topo() if ir.op(x) in HOST_FLOAT_OPS)
            raise PassError(f"--float-layers: no layer named {n!r} (Conv/Gemm layers: {known})")
        if ir.op(n) not in HOST_FLOAT_OPS:
            raise PassError(f"--float-layers: layer {n!r} is a {ir.op(n)}; only Conv and Gemm can run in host float")


def plan_mixed_precision(float_ir: IR, hw: HwConfig, samples: list[dict[str, np.ndarray]], budget: Budget,
                         *, method: str = "minmax", float_layers: Sequence[str] = (),
                         data: np.ndarray | None = None, labels: np.ndarray | None = None,
                         max_layers: int | None = None) -> Plan:
    """Move `float_layers`, then the most sensitive Conv/Gemm layers, to host float until `budget` is met.

    The budget is measured on `data` (batched first input; default: the calibration samples)."""
    from ..analyze import isolated_output_sqnr
    from ..backend import generate
    from ..reference import quantize_input, run_float, run_quantized
    from ..sim.driver import run_program
    from . import quantize_ir

    validate_layers(float_ir, float_layers)
    if budget.keep_accuracy_pp is not None and labels is None:
        raise PassError("--keep-accuracy needs labelled data (--data and --labels)")
    first = float_ir.inputs[0]
    x = {first: np.stack([s[first] for s in samples]) if data is None else np.asarray(data, np.float32)}
    ref = run_float(float_ir, x, intermediates=True)
    out = float_ir.outputs[0]
    acc_fp32 = None if labels is None else float(np.mean(np.argmax(ref[out].reshape(len(labels), -1), 1) == labels))

    def measure(ir: IR) -> tuple[IR, float, float | None, int]:
        qir = quantize_ir(ir, hw, samples, method=method)
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
        op, macs = ir.op(name), _macs(ir, name)
        host_float(ir, name, f"mixed precision ({why})")
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
