"""Per-layer quantization error against fp32, split by cause, beside each layer's cycles.

For every layer of the quantized IR, on the same inputs:

* ``sqnr_db`` — the layer's dequantized int8 output (whole model quantized,
  `run_quantized` with intermediates) against the fp32 reference
  (`run_float`): the error accumulated up to this layer;
* the layer's *own* error, with its input taken from the fp32 reference and
  quantized with the input's scale, split along a telescoping chain
  y_fp32 → y1 (input quantized) → y2 (+ int8 weights, int32 bias) →
  y3 (+ clipping to the output's int8 range) → y4 (the integer op's actual
  output: requantization rounding). Each step's noise is given as an SQNR
  against y_fp32 (higher = less harm; ``inf`` = no error from that cause);
* ``pow2_cost_db`` — local SQNR with float scales (the same ranges
  quantized under the ``float`` rule) minus local SQNR under the configured
  rule: what restricting scales to powers of two costs this layer (0 when
  the rule is already float);
* ``saturated`` — fraction of the layer's outputs (y2 above) outside the
  output's int8 range: the values clipping cut off;
* ``isolated_db`` — output SQNR of the whole model when only this layer is
  quantized and every other runs in float: the largest drop names the most
  sensitive layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..hw import HwConfig
from ..ir import IR, ActQ, MatQ
from ..passes import legalize, quantize
from ..quant.metrics import sqnr_db
from ..reference import FLOAT_OPS, QUANT_OPS, dequantize, quantize_input, run_float, run_quantized

# the one-input layers whose error is split; Add/Sub/Mul/Concat (several inputs) and aliases are not
COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "GlobalAveragePool", "AveragePool", "MaxPool", "GlobalMaxPool", "Lut")


@dataclass(frozen=True)
class LayerReport:
    name: str
    op: str
    sqnr_db: float
    input_db: float
    weight_db: float
    clip_db: float
    rounding_db: float
    local_db: float
    pow2_cost_db: float
    saturated: float
    isolated_db: float
    cycles: int | None


@dataclass(frozen=True)
class ConcatReport:
    """What giving a Concat's inputs one scale costs each of them (`unify_concat`), and the choice."""

    name: str
    decision: str  # "unified": one scale; "dequantized": each input its own, concatenated in float
    inputs: tuple[tuple[str, float, float], ...]  # (producer, SQNR at its own scale, at the unified one)


@dataclass(frozen=True)
class Analysis:
    layers: list[LayerReport]
    output_sqnr_db: dict[str, float]
    most_sensitive: str
    accuracy_fp32: float | None = None
    accuracy_int8: float | None = None
    concats: tuple[ConcatReport, ...] = ()


def _fake_quant(x: np.ndarray, q: ActQ) -> np.ndarray:
    return q.dequantize(q.quantize(x))


def local_split(ir: IR, name: str, x_float: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """(input, weight, clip, rounding, local) SQNRs in dB and the saturated fraction of layer `name`."""
    node = ir.node(name)
    in_q = ir.node(ir.preds(name)[0])["act_q"]
    out_q: ActQ = node["act_q"]
    f = FLOAT_OPS[node["op"]]
    y_ref = f(node, [x_float])
    x_fq = _fake_quant(x_float, in_q)
    y1 = f(node, [x_fq])
    y2 = y1
    q = node.get("qop")
    if isinstance(q, MatQ):
        shape = (-1,) + (1,) * (q.weight.ndim - 1)
        # ConvTranspose's bias holds no zero-point fold (see npuc/passes/quantize/conv.py)
        zp_fold = 0 if node["op"] == "ConvTranspose" else \
            q.zp_in * q.weight.reshape(q.weight.shape[0], -1).astype(np.int64).sum(axis=1)
        consts = {"W": (q.weight * q.w_scale.reshape(shape)).astype(np.float32),
                  "B": ((q.bias.astype(np.int64) + zp_fold) * in_q.scale * q.w_scale).astype(np.float32)}
        y2 = f({**node, "consts": consts}, [x_fq])
    lo, hi = (out_q.qmin - out_q.zp) * out_q.scale, (out_q.qmax - out_q.zp) * out_q.scale
    y3 = np.clip(y2, lo, hi)
    qo = QUANT_OPS[node["op"]](node, [quantize_input(x_float, in_q)], [in_q])
    y4 = dequantize(qo, out_q)

    def step_db(a: np.ndarray, b: np.ndarray) -> float:
        noise = np.sum((np.asarray(a, np.float64) - b) ** 2)
        signal = np.sum(np.asarray(y_ref, np.float64) ** 2)
        return math.inf if noise == 0 else float(10 * np.log10(signal / noise)) if signal > 0 else -math.inf

    clipped = (y2 < lo) | (y2 > hi)
    return (step_db(y_ref, y1), step_db(y1, y2), step_db(y2, y3), step_db(y3, y4), step_db(y_ref, y4),
            float(np.mean(clipped)))


def isolated_output_sqnr(ir: IR, feeds: dict[str, np.ndarray], only: str, ref: dict[str, np.ndarray]) -> float:
    """Whole-model output SQNR (first output) with only layer `only` quantized, all others in float."""
    values: dict[str, np.ndarray] = dict(feeds)
    for name in ir.topo():
        if name in values:
            continue
        node = ir.node(name)
        ins = [values[p] for p in ir.preds(name)]
        if name == only:
            in_q = ir.node(ir.preds(name)[0])["act_q"]
            q = QUANT_OPS[node["op"]](node, [quantize_input(ins[0], in_q)], [in_q])
            values[name] = dequantize(q, node["act_q"])
        else:
            values[name] = FLOAT_OPS[node["op"]](node, ins)
    out = ir.outputs[0]
    return sqnr_db(ref[out], values[out])


def analyze(ir: IR, hw: HwConfig, x: dict[str, np.ndarray], labels: np.ndarray | None = None,
            cycles: dict[str, int] | None = None, int8_outputs: dict[str, np.ndarray] | None = None) -> Analysis:
    """`ir` quantized (with its calibrated ranges); `x` batched float inputs keyed by IR input name.

    `int8_outputs` are the simulator's dequantized outputs keyed by IR output node, used for the
    accuracy when given (else the numpy reference's, which the simulator equals bit for bit).
    """
    ref = run_float(ir, x, intermediates=True)
    feeds_q = {n: quantize_input(x[n], ir.node(n)["act_q"]) for n in ir.inputs}
    quant = run_quantized(ir, feeds_q, intermediates=True)
    float_rule = legalize(quantize(ir, hw.replace(scale_rule="float")), hw)
    layers = []
    for name in ir.topo():
        node = ir.node(name)
        if node["op"] not in COMPUTE_OPS:
            continue
        x_in = ref[ir.preds(name)[0]]
        i_db, w_db, c_db, r_db, local, sat = local_split(ir, name, x_in)
        float_local = local_split(float_rule, name, x_in)[4]
        cost = 0.0 if hw.scale_rule == "float" else _diff(float_local, local)
        layers.append(LayerReport(
            name, node["op"], sqnr_db(ref[name], dequantize(quant[name], node["act_q"])),
            i_db, w_db, c_db, r_db, local, cost, sat, isolated_output_sqnr(ir, x, name, ref),
            None if cycles is None else cycles.get(name)))
    outs = int8_outputs or {o: quant[o] if ir.node(o).get("act_q") is None
                            else dequantize(quant[o], ir.node(o)["act_q"]) for o in ir.outputs}
    out_sqnr = {ir.node(o)["value"]: sqnr_db(ref[o], outs[o]) for o in ir.outputs}
    worst = min(layers, key=lambda r: r.isolated_db).name if layers else ""
    acc_f = acc_q = None
    if labels is not None:
        first = ir.outputs[0]
        acc_f = float(np.mean(np.argmax(ref[first].reshape(len(labels), -1), 1) == labels))
        acc_q = float(np.mean(np.argmax(outs[first].reshape(len(labels), -1), 1) == labels))
    concats = tuple(ConcatReport(n, *ir.node(n)["unify"]) for n in ir.topo() if ir.node(n).get("unify"))
    return Analysis(layers, out_sqnr, worst, acc_f, acc_q, concats)


def _diff(a: float, b: float) -> float:
    if math.isinf(a) and math.isinf(b):
        return 0.0
    return a - b


def _fmt(v: float) -> str:
    return "inf" if math.isinf(v) and v > 0 else f"{v:.1f}"


def format_analysis(a: Analysis) -> str:
    """A markdown table, then the summary lines."""
    head = ("| layer | op | SQNR dB | local dB | input dB | weights dB | clip dB | rounding dB | pow2 cost dB "
            "| sat % | only-this-layer dB | cycles |")
    lines = [head, "|" + "---|" * 12]
    for r in a.layers:
        lines.append(f"| {r.name} | {r.op} | {_fmt(r.sqnr_db)} | {_fmt(r.local_db)} | {_fmt(r.input_db)} | "
                     f"{_fmt(r.weight_db)} | {_fmt(r.clip_db)} | {_fmt(r.rounding_db)} | {r.pow2_cost_db:+.1f} | "
                     f"{100 * r.saturated:.2f} | {_fmt(r.isolated_db)} | "
                     f"{'' if r.cycles is None else r.cycles} |")
    lines.append("")
    for name, v in a.output_sqnr_db.items():
        lines.append(f"output {name}: SQNR {_fmt(v)} dB vs fp32")
    if a.most_sensitive:
        worst = next(r for r in a.layers if r.name == a.most_sensitive)
        lines.append(f"most sensitive layer: {a.most_sensitive} (quantized alone, the output SQNR is "
                     f"{_fmt(worst.isolated_db)} dB)")
    for c in a.concats:
        what = ("one scale for all inputs" if c.decision == "unified"
                else "concatenated at dequantization (each input keeps its own scale)")
        costs = ", ".join(f"{p} {own:.1f} -> {uni:.1f} dB" for p, own, uni in c.inputs)
        lines.append(f"concat {c.name}: {what}; one scale would take each input's SQNR: {costs}")
    if a.accuracy_fp32 is not None and a.accuracy_int8 is not None:
        lines.append(f"accuracy: fp32 {100 * a.accuracy_fp32:.2f}%, int8 {100 * a.accuracy_int8:.2f}% "
                     f"({100 * (a.accuracy_int8 - a.accuracy_fp32):+.2f} pp)")
    return "\n".join(lines)
