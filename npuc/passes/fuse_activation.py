"""Fuse Relu / Clip into the Conv, Gemm, Add or Sub that produces their input.

The activation becomes ``attrs["act"] = (kind, lo, hi)`` on the producer, a
clamp to float bounds (relu: ``("relu", 0.0, inf)``; clip: ``("clip", a, b)``),
which quantization turns into the requantizer's (or `vadd`'s) saturation
bounds — free on the NPU. Because a clamp is monotone it commutes with
MaxPool, Flatten and Reshape, so ``relu(maxpool(conv(x)))`` fuses into the
conv as well, provided every node on the way has that one consumer and is
not a graph output.
A second activation on an already-activated op intersects the bounds.
With `fallback`, an activation with nothing to fuse into (after an op on
the host, or after a Conv with several consumers) runs on the host instead
of being an error.

Pre: BatchNormalization folded. Post: no Relu or Clip node.
"""

from __future__ import annotations

import math

from ..ir import IR
from .errors import PassError
from .host_fallback import to_host

ACTIVATIONS = ("Relu", "Clip")
PRODUCERS = ("Conv", "Gemm", "Add", "Sub")  # Add/Sub: `vadd` clamps too (ResNet's Add -> Relu)
MONOTONE_PASSTHROUGH = ("MaxPool", "Flatten", "Reshape")


def fuse_activation(ir: IR, fallback: bool = False) -> IR:
    ir = ir.copy()
    for act in [n for n in ir.topo() if ir.op(n) in ACTIVATIONS]:
        target = _producer(ir, act)
        if target is None:
            why = (f"no Conv or Gemm to fuse into (input from {ir.op(ir.preds(act)[0])} "
                   f"{ir.preds(act)[0]!r})")
            if fallback:
                to_host(ir, act, why)
                continue
            raise PassError(f"node {act!r} (op {ir.op(act)}): {why}; standalone activations are "
                            "not supported yet")
        kind, lo, hi = _bounds(ir, act)
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
        if ir.op(node) in PRODUCERS:
            return node
        if ir.op(node) not in MONOTONE_PASSTHROUGH:
            return None
        (node,) = ir.preds(node)
