"""Fuse Relu / Clip into the Conv, Gemm, Add, Sub, Mul or Lut that produces their input.

The activation becomes ``attrs["act"] = (kind, lo, hi)`` on the producer, a
clamp to float bounds (relu: ``("relu", 0.0, inf)``; clip: ``("clip", a, b)``),
which quantization turns into the requantizer's (or `vadd`'s) saturation
bounds — free on the NPU. Because a clamp is monotone it commutes with
MaxPool, Flatten and Reshape, so ``relu(maxpool(conv(x)))`` fuses into the
conv as well, provided every node on the way has that one consumer and is
not a graph output.
A second activation on an already-activated op intersects the bounds.
(A two-input Mul clamps in `vmul`; a Lut's table is clamped.)
An activation with nothing to fuse into (after an input, an op on the host,
or a Conv with several consumers) becomes a ``Lut`` node (``fn`` "relu" or
"clip" with ``lo``/``hi``): one `vlut` on the NPU.

Pre: BatchNormalization folded. Post: no Relu or Clip node.
"""

from __future__ import annotations

import math

from ..ir import IR

ACTIVATIONS = ("Relu", "Clip")
# ops whose requantization ends in a clamp (Add/Sub: `vadd` clamps too, ResNet's Add -> Relu)
PRODUCERS = ("Conv", "ConvTranspose", "AveragePool", "Gemm", "Add", "Sub", "Mul", "Lut")
# a clamp is monotone, so it commutes with these (they keep their input's quantization)
MONOTONE_PASSTHROUGH = ("MaxPool", "GlobalMaxPool", "Flatten", "Reshape")


def fuse_activation(ir: IR, fallback: bool = False) -> IR:
    """`fallback` is kept for the pipeline's signature: a standalone activation is a Lut, never the host's."""
    ir = ir.copy()
    for act in [n for n in ir.topo() if ir.op(n) in ACTIVATIONS]:
        target = _producer(ir, act)
        kind, lo, hi = _bounds(ir, act)
        if target is None:
            node = ir.node(act)
            node["op"] = "Lut"
            node["attrs"] = {"fn": "relu"} if kind == "relu" else {"fn": "clip", "lo": lo, "hi": hi}
            continue
        attrs = ir.node(target)["attrs"]
        if "act" in attrs:
            _, lo0, hi0 = attrs["act"]
            kind, lo, hi = "clip", max(lo, lo0), min(hi, hi0)
        attrs["act"] = (kind, lo, hi)
        ir.remove_passthrough(act)
    return ir


def _bounds(ir: IR, act: str) -> tuple[str, float, float]:
    if ir.op(act) == "Relu":
        return ("relu", 0.0, math.inf)
    a = ir.node(act)["attrs"]
    return ("clip", float(a["lo"]), float(a["hi"]))


def _producer(ir: IR, act: str) -> str | None:
    """Walk up through single-consumer monotone pass-throughs to a Conv/Gemm/Add/Sub, or None."""
    (node,) = ir.preds(act)
    while True:
        if len(ir.succs(node)) != 1 or node in ir.outputs:
            return None
        if ir.op(node) in PRODUCERS and not (ir.op(node) == "Mul" and len(ir.preds(node)) != 2):
            return node  # a one-input Mul by a constant is folded into a conv later: it cannot clamp
        if ir.op(node) not in MONOTONE_PASSTHROUGH:
            return None
        (node,) = ir.preds(node)
