"""Stage invariants of the IR, checked between passes (tests, `--verify`).

Stages, in pipeline order; each includes the checks of the ones before it.
Which op may appear where, with how many inputs and which quantized record,
comes from the op set (`npuc.ops.OPS`), not from lists here:

* ``frontend``   — acyclic; inputs/outputs exist; every op declared in `OPS`
  and its input count within the declared range; every shape static and
  positive; edge slots 0..n-1; consts of Conv/Gemm shaped as the backend
  expects; a Host node carries its serialized model and a float32/int64
  output with a batch axis of 1; an Add/Sub reads two tensors of its own
  shape, or (Add only) one tensor and a per-channel constant ``consts["B"]``;
* ``prepared``   — no op of kind FLOAT left (BatchNormalization, Relu, Clip:
  folded / fused), no constant Add or Mul;
* ``calibrated`` — every float node has a finite ``range`` with lo <= hi
  (integer tensors, from host ops, are not quantized);
* ``quantized``  — every node has ``act_q`` (zp = 0 when symmetric, even in
  [-128, 126] when asymmetric; scale = 2^-exp exactly under pow2); an op whose
  `OpDef.qparams` is set holds exactly that record, legal for the hardware
  (int32 multipliers and biases, shifts in [0, 62], int8 weights and tables,
  -128 <= lo <= hi <= 127, the input zero points it was built for); an op that
  keeps its input's quantization has it.

`verify` raises `IRError` naming the node and the broken invariant.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import networkx as nx
import numpy as np

from ..host import DTYPES
from ..hw import HwConfig
from ..ir import IR, AccQ, AddQ, IRError, LutQ, MatQ, MulQ, PoolQ, QParams
from ..ops import OPS, Kind

HOST_DTYPES = tuple(DTYPES.values())

STAGES = ("frontend", "prepared", "calibrated", "quantized")
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1

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
    opdef = OPS.get(node["op"])
    if opdef is None:
        raise _fail(ir, name, "unknown op (not in npuc.ops.OPS)")
    n_in, (lo, hi) = ir.g.in_degree(name), opdef.inputs
    if n_in < lo or (hi is not None and n_in > hi):
        raise _fail(ir, name, f"{n_in} inputs; {node['op']} takes {lo}..{'any' if hi is None else hi}")
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
        if node["dtype"] not in HOST_DTYPES:  # any shape: a host tensor's axis 0 need not be the batch
            raise _fail(ir, name, f"host output {node['dtype']} {shape}: one of {', '.join(HOST_DTYPES)} expected")
    elif node["dtype"] != "float32":
        raise _fail(ir, name, f"dtype {node['dtype']}: only Host nodes produce non-float tensors")
    if node["op"] in ("Conv", "Gemm", "ConvTranspose"):
        w, b = node["consts"].get("W"), node["consts"].get("B")
        cout = shape[1]
        if w is None or b is None or w.shape[0] != cout or b.shape != (cout,):
            raise _fail(ir, name, f"consts W/B missing or not shaped ({cout}, ...)/({cout},)")
    if node["op"] in ("Add", "Sub"):
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
    if OPS[ir.op(name)].kind is Kind.FLOAT or affine:
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
    if node["dtype"] != "float32" or node["attrs"].get("float_out"):  # a float graph output is not quantized
        return
    q = node.get("act_q")
    if q is None:
        raise _fail(ir, name, "no act_q")
    if not -128 <= q.zp <= 126 or (q.zp % 2 and (hw is None or hw.zero_point == "even")):
        raise _fail(ir, name, f"zero point {q.zp} is not even in [-128, 126]")
    if hw is not None and hw.act_mode == "symmetric" and q.zp != 0:
        raise _fail(ir, name, f"zero point {q.zp} under symmetric activations")
    free = node.get("free_scale", False)  # its scale absorbed by Conv/Gemm weights (`fold_act_scales`)
    if hw is not None and hw.scale_rule == "pow2" and not free and (q.exp is None or q.scale != 2.0 ** -q.exp):
        raise _fail(ir, name, f"scale {q.scale} is not 2^-exp (exp={q.exp})")
    opdef = OPS[node["op"]]
    if opdef.keeps_act_q and q != ir.node(ir.preds(name)[0])["act_q"]:
        raise _fail(ir, name, "a pass-through op must keep its input's act_q")
    if opdef.qparams is None:
        return
    qp = node.get("qop")
    if qp is None:
        raise _fail(ir, name, "no qop")
    if type(qp) is not opdef.qparams:
        raise _fail(ir, name, f"qop is a {type(qp).__name__}; a {node['op']} holds a {opdef.qparams.__name__}")
    _bounds_and_zp(ir, name, node, qp)
    RECORD_CHECKS[type(qp)](ir, name, node, qp)


def _bounds_and_zp(ir: IR, name: str, node: dict, q: QParams) -> None:
    if not -128 <= q.lo <= q.hi <= 127:
        raise _fail(ir, name, f"bounds lo={q.lo} hi={q.hi} not within int8 with lo <= hi")
    if q.zp_out != node["act_q"].zp:
        raise _fail(ir, name, f"qop.zp_out {q.zp_out} != act_q.zp {node['act_q'].zp}")


def _in_zps(ir: IR, name: str) -> tuple[int, ...]:
    return tuple(ir.node(p)["act_q"].zp for p in ir.preds(name))


def _int32_arrays(ir: IR, name: str, q: QParams, fields: tuple[str, ...], n: int) -> None:
    for field in fields:
        arr = getattr(q, field)
        if not isinstance(arr, np.ndarray) or arr.dtype != np.int32 or arr.shape != (n,):
            raise _fail(ir, name, f"qop.{field} must be an int32 array of shape ({n},)")


def _shifts_and_muls(ir: IR, name: str, shift: np.ndarray, mul: np.ndarray, signed: bool) -> None:
    if np.any((shift < 0) | (shift > 62)):
        raise _fail(ir, name, f"shift {int(np.min(shift))}..{int(np.max(shift))} outside [0, 62]")
    if not signed and np.any(mul < 0):
        raise _fail(ir, name, "negative multiplier")
    if np.any(np.abs(np.asarray(mul, dtype=np.int64)) > INT32_MAX):
        raise _fail(ir, name, "multiplier does not fit int32")


def _acc_q(ir: IR, name: str, node: dict, q: AccQ) -> None:
    """`vrq` per output column: int32 mul, shift, bias for each of the node's channels."""
    _int32_arrays(ir, name, q, ("mul", "shift", "bias"), node["shape"][1])
    _shifts_and_muls(ir, name, q.shift, q.mul, signed=False)
    if q.zp_in != _in_zps(ir, name)[0]:
        raise _fail(ir, name, f"qop.zp_in {q.zp_in} != the input's zero point {_in_zps(ir, name)[0]}")


def _mat_q(ir: IR, name: str, node: dict, q: MatQ) -> None:
    _acc_q(ir, name, node, q)
    w = node["consts"]["W"]
    if not isinstance(q.weight, np.ndarray) or q.weight.dtype != np.int8 or q.weight.shape != w.shape:
        raise _fail(ir, name, f"qop.weight must be int8 of shape {w.shape}")


def _pool_q(ir: IR, name: str, node: dict, q: PoolQ) -> None:
    """One (mul, shift) per distinct divisor, sorted; one bias."""
    counts = q.counts
    if not counts or list(counts) != sorted(set(counts)) or counts[0] < 1:
        raise _fail(ir, name, f"qop.counts {counts} must be distinct positive divisors, sorted")
    _int32_arrays(ir, name, q, ("mul", "shift"), len(counts))
    _int32_arrays(ir, name, q, ("bias",), 1)
    _shifts_and_muls(ir, name, q.shift, q.mul, signed=False)
    if q.zp_in != _in_zps(ir, name)[0]:
        raise _fail(ir, name, f"qop.zp_in {q.zp_in} != the input's zero point {_in_zps(ir, name)[0]}")


def _add_q(ir: IR, name: str, node: dict, q: AddQ) -> None:
    """One `vadd`: two signed int32 multipliers, one shift, the inputs' zero points (Requant: one input)."""
    _shifts_and_muls(ir, name, np.array([q.sh]), np.array([q.ma, q.mb]), signed=True)
    zps = _in_zps(ir, name)
    want = zps if len(zps) == 2 else (zps[0], 0)
    if len(zps) == 1 and q.mb != 0:
        raise _fail(ir, name, f"a one-input vadd needs mb = 0, not {q.mb}")
    if (q.za, q.zb) != want:
        raise _fail(ir, name, f"qop zero points {(q.za, q.zb)} != the inputs' zero points {zps}")


def _mul_q(ir: IR, name: str, node: dict, q: MulQ) -> None:
    """One `vmul`: one int32 multiplier, one shift, the inputs' zero points."""
    _shifts_and_muls(ir, name, np.array([q.sh]), np.array([q.mul]), signed=True)
    zps = _in_zps(ir, name)
    if (q.za, q.zb) != zps:
        raise _fail(ir, name, f"qop zero points {(q.za, q.zb)} != the inputs' zero points {zps}")


def _lut_q(ir: IR, name: str, node: dict, q: LutQ) -> None:
    """One `vlut`: an int8 table of 256 entries, or one per channel, inside the clamp bounds."""
    table, channels = q.table, node["shape"][1]
    if not isinstance(table, np.ndarray) or table.dtype != np.int8 or table.shape not in ((256,), (channels, 256)):
        raise _fail(ir, name, f"qop.table must be int8 of shape (256,) or ({channels}, 256)")
    if table.min() < q.lo or table.max() > q.hi:
        raise _fail(ir, name, f"table entries {table.min()}..{table.max()} outside the bounds [{q.lo}, {q.hi}]")
    if q.zp_in != _in_zps(ir, name)[0]:
        raise _fail(ir, name, f"qop.zp_in {q.zp_in} != the input's zero point {_in_zps(ir, name)[0]}")


RECORD_CHECKS: dict[type, Callable[[IR, str, dict, Any], None]] = {
    AccQ: _acc_q, MatQ: _mat_q, PoolQ: _pool_q, AddQ: _add_q, MulQ: _mul_q, LutQ: _lut_q,
}


CHECKS: dict[str, list[Check]] = {
    "frontend": [_known_and_shaped],
    "prepared": [_prepared],
    "calibrated": [_calibrated],
    "quantized": [_quantized],
}
