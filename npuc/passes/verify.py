"""Stage invariants of the IR, checked between passes (tests, `--verify`).

Stages, in pipeline order; each includes the checks of the ones before it:

* ``frontend``   — acyclic; inputs/outputs exist; every op known to the float
  reference; every shape static and positive; edge slots 0..n-1; consts of
  Conv/Gemm shaped as the backend expects; a Host node carries its
  serialized model and a float32/int64 output with a batch axis of 1; an
  Add/Sub reads two tensors of its own shape, or (Add only) one tensor and
  a per-channel constant ``consts["B"]``;
* ``prepared``   — no BatchNormalization, Relu, Clip or constant Add left
  (folded / fused);
* ``calibrated`` — every float node has a finite ``range`` with lo <= hi
  (integer tensors, from host ops, are not quantized);
* ``quantized``  — every node has ``act_q`` (zp = 0 when symmetric, even in
  [-128, 126] when asymmetric; scale = 2^-exp exactly under pow2); every
  compute node a ``qop`` with int8 weights, int32 bias, shift in [0, 62],
  0 <= mul < 2^31, -128 <= lo <= hi <= 127; every Add/Sub a `vadd` qop
  (mul = [ma, mb] int32, shift = [sh] in [0, 62], bounds as above, the
  input zero points in extra["zp_in"]); pass-through ops share their
  input's act_q.

`verify` raises `IRError` naming the node and the broken invariant.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import networkx as nx
import numpy as np

from ..hw import HwConfig
from ..ir import IR, IRError
from ..reference import FLOAT_OPS

STAGES = ("frontend", "prepared", "calibrated", "quantized")
COMPUTE_OPS = ("Conv", "Gemm", "GlobalAveragePool", "ConvTranspose")
ELEMENTWISE_OPS = ("Add", "Sub")  # two-input, one `vadd`
PASSTHROUGH_OPS = ("MaxPool", "Flatten", "Reshape", "ChannelSlice", "ChannelShuffle", "Resize", "Pad", "GlobalMaxPool",
                   "EdgePad")

Check = Callable[[IR, str, HwConfig | None], None]


def verify(ir: IR, stage: str, hw: HwConfig | None = None) -> None:
    """Check every invariant up to `stage`; `hw` (the quant rules) sharpens the `quantized` checks."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r} (stages: {', '.join(STAGES)})")
    _graph(ir)
    for check_stage, checks in CHECKS.items():
        for name in ir.topo():
            for check in checks:
                check(ir, name, hw)
        if check_stage == stage:
            return


def _fail(ir: IR, name: str, msg: str) -> IRError:
    return IRError(f"node {name!r} (op {ir.op(name)}): {msg}")


def _graph(ir: IR) -> None:
    if not nx.is_directed_acyclic_graph(ir.g):
        raise IRError("the graph has a cycle")
    for kind, names in (("input", ir.inputs), ("output", ir.outputs)):
        for n in names:
            if n not in ir.g:
                raise IRError(f"graph {kind} {n!r} is not a node")
    for n in ir.inputs:
        if ir.op(n) != "Input":
            raise IRError(f"graph input {n!r} is a {ir.op(n)} node")


def _known_and_shaped(ir: IR, name: str, hw: HwConfig | None) -> None:
    node = ir.node(name)
    if node["op"] != "Input" and node["op"] not in FLOAT_OPS:
        raise _fail(ir, name, "unknown op")
    shape = node["shape"]
    if not shape or any(not isinstance(d, int) or d < 1 for d in shape):
        raise _fail(ir, name, f"shape {shape} is not static and positive")
    slots = sorted(s for _, _, s in ir.g.in_edges(name, data="slot"))
    if slots != list(range(len(slots))):
        raise _fail(ir, name, f"input slots {slots} are not 0..n-1")
    if node["op"] == "Host":
        a = node["attrs"]
        if not isinstance(a.get("model"), bytes) or not a.get("onnx_op") or not a.get("reason"):
            raise _fail(ir, name, "a Host node needs attrs model (bytes), onnx_op and reason")
        if node["dtype"] not in ("float32", "int64") or shape[0] != 1:
            raise _fail(ir, name, f"host output {node['dtype']} {shape}: float32 or int64 with batch 1 expected")
    elif node["dtype"] != "float32":
        raise _fail(ir, name, f"dtype {node['dtype']}: only Host nodes produce non-float tensors")
    if node["op"] in ("Conv", "Gemm", "ConvTranspose"):
        w, b = node["consts"].get("W"), node["consts"].get("B")
        cout = shape[1]
        if w is None or b is None or w.shape[0] != cout or b.shape != (cout,):
            raise _fail(ir, name, f"consts W/B missing or not shaped ({cout}, ...)/({cout},)")
    if node["op"] in ELEMENTWISE_OPS:
        _elementwise_inputs(ir, name, node)


def _elementwise_inputs(ir: IR, name: str, node: dict) -> None:
    preds, b = ir.preds(name), node["consts"].get("B")
    if len(preds) == 2 and b is None:
        shapes = [tuple(ir.node(p)["shape"]) for p in preds]
        if any(s != tuple(node["shape"]) for s in shapes):
            raise _fail(ir, name, f"input shapes {shapes} differ from the output's {node['shape']}")
    elif not (len(preds) == 1 and node["op"] == "Add" and b is not None and b.shape == (node["shape"][1],)
              and tuple(ir.node(preds[0])["shape"]) == tuple(node["shape"])):
        raise _fail(ir, name, "needs two inputs of its shape, or one input and a per-channel const B")


def _prepared(ir: IR, name: str, hw: HwConfig | None) -> None:
    consts = ir.node(name)["consts"]
    affine = (ir.op(name) == "Add" and "B" in consts) or (ir.op(name) == "Mul" and "S" in consts)
    if ir.op(name) in ("BatchNormalization", "Relu", "Clip") or affine:
        raise _fail(ir, name, "should have been folded or fused by now")


def _calibrated(ir: IR, name: str, hw: HwConfig | None) -> None:
    if ir.node(name)["dtype"] != "float32":
        return
    rng = ir.node(name).get("range")
    if rng is None:
        raise _fail(ir, name, "no calibrated range")
    lo, hi = rng
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise _fail(ir, name, f"range {rng} is not finite with lo <= hi")


def _quantized(ir: IR, name: str, hw: HwConfig | None) -> None:
    node = ir.node(name)
    if node["dtype"] != "float32":
        return
    q = node.get("act_q")
    if q is None:
        raise _fail(ir, name, "no act_q")
    if not -128 <= q.zp <= 126 or q.zp % 2:
        raise _fail(ir, name, f"zero point {q.zp} is not even in [-128, 126]")
    if hw is not None and hw.act_mode == "symmetric" and q.zp != 0:
        raise _fail(ir, name, f"zero point {q.zp} under symmetric activations")
    if hw is not None and hw.scale_rule == "pow2" and (q.exp is None or q.scale != 2.0 ** -q.exp):
        raise _fail(ir, name, f"scale {q.scale} is not 2^-exp (exp={q.exp})")
    if node["op"] in PASSTHROUGH_OPS and q != ir.node(ir.preds(name)[0])["act_q"]:
        raise _fail(ir, name, "a pass-through op must keep its input's act_q")
    if node["op"] in COMPUTE_OPS:
        _qop(ir, name, node)
    if node["op"] in ELEMENTWISE_OPS:
        _vadd_qop(ir, name, node)
    if node["op"] == "Mul":
        _vmul_qop(ir, name, node)
    if node["op"] == "Lut":
        _lut_qop(ir, name, node)


def _bounds_and_zp(ir: IR, name: str, node: dict, q) -> None:
    if not -128 <= q.lo <= q.hi <= 127:
        raise _fail(ir, name, f"bounds lo={q.lo} hi={q.hi} not within int8 with lo <= hi")
    if q.zp_out != node["act_q"].zp:
        raise _fail(ir, name, f"qop.zp_out {q.zp_out} != act_q.zp {node['act_q'].zp}")


def _lut_qop(ir: IR, name: str, node: dict) -> None:
    """One `vlut`: an int8 table of 256 entries, or one per channel, inside the clamp bounds."""
    q = node.get("qop")
    if q is None:
        raise _fail(ir, name, "no qop")
    table = q.extra.get("table")
    channels = node["shape"][1]
    if not isinstance(table, np.ndarray) or table.dtype != np.int8 or table.shape not in ((256,), (channels, 256)):
        raise _fail(ir, name, f"qop.extra['table'] must be int8 of shape (256,) or ({channels}, 256)")
    _bounds_and_zp(ir, name, node, q)
    if table.min() < q.lo or table.max() > q.hi:
        raise _fail(ir, name, f"table entries {table.min()}..{table.max()} outside the bounds [{q.lo}, {q.hi}]")


def _vadd_qop(ir: IR, name: str, node: dict) -> None:
    """One `vadd`: two int32 multipliers, one shift in [0, 62], the inputs' zero points."""
    _vector_qop(ir, name, node, muls=2)


def _vmul_qop(ir: IR, name: str, node: dict) -> None:
    """One `vmul`: one int32 multiplier, one shift in [0, 62], the inputs' zero points."""
    _vector_qop(ir, name, node, muls=1)


def _vector_qop(ir: IR, name: str, node: dict, muls: int) -> None:
    q = node.get("qop")
    if q is None:
        raise _fail(ir, name, "no qop")
    for field, n in (("mul", muls), ("shift", 1)):
        arr = getattr(q, field)
        if not isinstance(arr, np.ndarray) or arr.dtype != np.int32 or arr.shape != (n,):
            raise _fail(ir, name, f"qop.{field} must be an int32 array of shape ({n},)")
    if not 0 <= int(q.shift[0]) <= 62:
        raise _fail(ir, name, f"shift {int(q.shift[0])} outside [0, 62]")
    _bounds_and_zp(ir, name, node, q)
    zps = tuple(ir.node(p)["act_q"].zp for p in ir.preds(name))
    if tuple(q.extra.get("zp_in", ())) != zps:
        raise _fail(ir, name, f"qop.extra['zp_in'] {q.extra.get('zp_in')} != the inputs' zero points {zps}")


def _qop(ir: IR, name: str, node: dict) -> None:
    q = node.get("qop")
    if q is None:
        raise _fail(ir, name, "no qop")
    cout = node["shape"][1]
    for field in ("mul", "shift", "bias"):
        arr = getattr(q, field)
        if not isinstance(arr, np.ndarray) or arr.dtype != np.int32 or arr.shape != (cout,):
            raise _fail(ir, name, f"qop.{field} must be an int32 array of shape ({cout},)")
    if np.any((q.shift < 0) | (q.shift > 62)):
        raise _fail(ir, name, f"shift {q.shift.min()}..{q.shift.max()} outside [0, 62]")
    if np.any(q.mul < 0):
        raise _fail(ir, name, "negative multiplier")
    _bounds_and_zp(ir, name, node, q)
    if node["op"] in ("Conv", "Gemm", "ConvTranspose"):
        w = node["consts"]["W"]
        if q.weight is None or q.weight.dtype != np.int8 or q.weight.shape != w.shape:
            raise _fail(ir, name, f"qop.weight must be int8 of shape {w.shape}")


CHECKS: dict[str, list[Check]] = {
    "frontend": [_known_and_shaped],
    "prepared": [_prepared],
    "calibrated": [_calibrated],
    "quantized": [_quantized],
}
