"""Give the inputs of every Concat one quantization, so the concatenation is a copy — where that is
cheap; where it is not, keep each input's own scale.

Pre: calibrated IR. Post: the same graph, but for the Concats whose unification would cost too
much. Every Concat, every other Concat connected to it (nested, or sharing an input — a *group*)
and every input of theirs whose producer chooses its own output scale from its calibrated range
(`OWN_SCALE`: Conv, Gemm, Add, ...) carry the group's range, the union of the member concats'
ranges. `quantize` then gives them all one act_q, and the Concat quantizer
(`quantize_layout.concat_q`) puts a `Requant` node in front of any input that still differs.

The cost of unification is measured, not guessed: an input of calibrated range r and signal
power P (its mean square over the calibration samples, `calibrate`) quantized with the step
s = span/255 of a range keeps SQNR(s) = 10·log10(P / (s²/12)) dB; unified, its step is that of
the group's range. `concat_costs` reports, per input, both SQNRs (`npuc analyze` prints them).

* A Concat that is a graph output (through alias Reshapes only) whose unification costs an input
  more than `MAX_LOSS_DB` and leaves it below `MIN_SQNR_DB` — YOLO's boxes in pixels (0..640)
  next to class scores (0..1), whose scores all round to 0 at the boxes' scale — is
  *concatenated at dequantization*: it becomes a Host Concat whose inputs keep their own scales
  and whose float output is the program's (``attrs["float_out"]``: no act_q; the driver writes
  float32). Nothing is requantized, so the scores keep their 8 bits.
* Each Concat records ``unify = (decision, ((input, own dB, unified dB), ...))`` ("unified" or
  "dequantized"), which `npuc analyze` prints.
* A producer is widened to the group's range only when its other consumers lose little by it
  (at most `MAX_LOSS_DB`); otherwise it keeps its own scale for them and the Concat gets a
  `Requant` of it — the same care for a tensor whose consumers need different ranges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from onnx import helper

from .. import host
from ..ir import IR

# producers whose quantizer takes act_q from the node's own calibrated range
OWN_SCALE = frozenset({"Input", "Const", "Host", "Conv", "ConvTranspose", "Gemm", "Add", "Sub", "GlobalAveragePool",
                       "AveragePool", "Mul", "Lut", "Requant"})
MAX_LOSS_DB = 6.0  # one bit: unify when no input loses more
MIN_SQNR_DB = 20.0  # ... or when every input keeps at least this at the unified scale
ALIASES = frozenset({"Reshape", "Flatten"})


@dataclass(frozen=True)
class InputCost:
    """What unifying a Concat costs one of its inputs (SQNR at its own and at the unified scale)."""

    concat: str
    producer: str
    own_db: float
    unified_db: float

    @property
    def loss_db(self) -> float:
        return self.own_db - self.unified_db


def sqnr_at(power: float, lo: float, hi: float) -> float:
    """SQNR (dB) of a signal of mean square `power` quantized to 8 bits over [lo, hi] (uniform noise)."""
    step = max(max(hi, 0.0) - min(lo, 0.0), 1e-30) / 255.0
    return 10.0 * math.log10(max(power, 1e-30) / (step * step / 12.0))


def concat_groups(ir: IR) -> list[list[str]]:
    """Concats linked by nesting or by a shared input, each group in topological order."""
    concats = [n for n in ir.topo() if ir.op(n) == "Concat"]
    parent = {c: c for c in concats}

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    first_reader: dict[str, str] = {}
    for c in concats:
        for p in ir.preds(c):
            if p in parent:
                parent[find(p)] = find(c)
            if p in first_reader:
                parent[find(first_reader[p])] = find(c)
            first_reader.setdefault(p, c)
    groups: dict[str, list[str]] = {}
    for c in concats:
        groups.setdefault(find(c), []).append(c)
    return list(groups.values())


def concat_costs(ir: IR) -> list[InputCost]:
    """Per Concat input of a calibrated IR, its SQNR at its own range and at its group's range."""
    out = []
    for group in concat_groups(ir):
        lo, hi = _group_range(ir, group)
        for c in group:
            for p in ir.preds(c):
                d = ir.node(p)
                if "range" not in d or "power" not in d:
                    continue
                out.append(InputCost(c, p, sqnr_at(d["power"], *d["range"]), sqnr_at(d["power"], lo, hi)))
    return out


def _group_range(ir: IR, group: list[str]) -> tuple[float, float]:
    return (min(ir.node(c)["range"][0] for c in group), max(ir.node(c)["range"][1] for c in group))


def _costly(cost: InputCost) -> bool:
    return cost.loss_db > MAX_LOSS_DB and cost.unified_db < MIN_SQNR_DB


def _output_chain(ir: IR, c: str) -> list[str] | None:
    """[c, alias, ..., graph output] when Concat `c` reaches a graph output through alias Reshapes only,
    each node with one consumer (the last none)."""
    chain = [c]
    while chain[-1] not in ir.outputs:
        succs = ir.succs(chain[-1])
        if len(succs) != 1 or ir.op(succs[0]) not in ALIASES:
            return None
        chain.append(succs[0])
    return chain if not ir.succs(chain[-1]) else None


def dequantized_concat(ir: IR, chain: list[str], reason: str) -> str:
    """Replace Concat chain[0] (and its alias chain up to the graph output chain[-1]) by a Host Concat
    with a float output: each input dequantized with its own scale, concatenated in float."""
    c, last = chain[0], chain[-1]
    out = ir.node(last)
    shape = tuple(out["shape"])
    preds = ir.preds(c)
    specs = []
    for i, p in enumerate(preds):
        pd = ir.node(p)
        k = int(np.prod(pd["shape"])) // int(np.prod(shape[2:], dtype=np.int64)) if len(shape) > 2 else pd["shape"][1]
        specs.append(host.ValueSpec(f"{c}.in{i}", pd["dtype"], (shape[0], k, *shape[2:])))
    y = host.ValueSpec(out["value"], "float32", shape)
    node = helper.make_node("Concat", [s.name for s in specs], [y.name], name=c, axis=1)
    model = host.build_model(node, specs, y, {}, ir.opset)
    name = f"{c}.dequantized"
    ir.add(name, "Host", preds, attrs={"onnx_op": "Concat", "opset": ir.opset, "reason": reason, "model": model,
                                       "float_out": True}, shape=shape, value=out["value"])
    ir.node(name)["order"] = ir.node(c).get("order", 0)
    ir.node(name)["range"] = ir.node(c)["range"]
    ir.node(name)["unify"] = ir.node(c).get("unify")
    ir.outputs = [name if o == last else o for o in ir.outputs]
    ir.g.remove_nodes_from(chain)
    return name


def unify_concat(ir: IR) -> IR:
    ir = ir.copy()
    costs = concat_costs(ir)
    for group in concat_groups(ir):
        mine = [k for k in costs if k.concat in group]
        for c in group:  # what `npuc analyze` reports: the measured cost, and what was done
            ir.node(c)["unify"] = ("unified", tuple((k.producer, k.own_db, k.unified_db) for k in mine
                                                    if k.concat == c))
        if len(group) == 1 and ir.node(group[0])["attrs"].get("axis", 1) == 1 and any(_costly(k) for k in mine):
            chain = _output_chain(ir, group[0])
            if chain is not None:
                ir.node(group[0])["unify"] = ("dequantized", ir.node(group[0])["unify"][1])
                worst = max(mine, key=lambda k: k.loss_db)
                dequantized_concat(ir, chain, f"one scale would cost input {worst.producer!r} "
                                   f"{worst.loss_db:.0f} dB ({worst.own_db:.0f} -> {worst.unified_db:.0f} dB "
                                   "SQNR): concatenated at dequantization, each input at its own scale")
                continue
        lo, hi = _group_range(ir, group)
        for c in group:
            ir.node(c)["range"] = (lo, hi)
            for p in ir.preds(c):
                d = ir.node(p)
                if ir.op(p) not in OWN_SCALE or d["dtype"] != "float32":
                    continue
                others = [s for s in ir.succs(p) if s not in group]
                loss = sqnr_at(d["power"], *d["range"]) - sqnr_at(d["power"], lo, hi) if "power" in d else 0.0
                if others and loss > MAX_LOSS_DB:
                    continue  # its other consumers keep its own scale; the Concat requantizes it
                d["range"] = (lo, hi)
    return ir
