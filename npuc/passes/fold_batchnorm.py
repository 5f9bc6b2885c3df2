"""Fold BatchNormalization, and an Add of a per-channel constant, into the Conv or Gemm before it.

Pre: frontend IR. Post: no BatchNormalization node and no one-input Add
(a tensor plus a constant ``consts["B"]``, see `npuc/frontend/elementwise.py`);
each folded Conv/Gemm computes exactly what Conv/Gemm -> BN (-> Add) did (up
to float rounding), so calibration and quantization see one op with one set
of weights. Both kinds are folded in one walk in topological order, so
Conv -> Add -> BN and Conv -> BN -> Add both end in the Conv. With
`fallback`, a node that cannot be folded runs on the host.
"""

from __future__ import annotations

import numpy as np

from ..ir import IR
from .errors import PassError
from .host_fallback import to_host

FOLDABLE = ("Conv", "Gemm")


def fold_batchnorm(ir: IR, fallback: bool = False) -> IR:
    ir = ir.copy()
    for bn in [n for n in ir.topo() if ir.op(n) == "BatchNormalization" or _is_bias_add(ir, n)]:
        if ir.op(bn) == "Add":
            _fold_bias_add(ir, bn, fallback)
            continue
        (src,) = ir.preds(bn)
        if ir.op(src) not in FOLDABLE or ir.succs(src) != [bn] or src in ir.outputs:
            if fallback:
                to_host(ir, bn, f"not the sole consumer of a Conv or Gemm (input from {ir.op(src)} {src!r})")
                continue
            raise PassError(f"node {bn!r} (op BatchNormalization): only a BatchNormalization that is the sole "
                            f"consumer of a Conv or Gemm can be folded (its input comes from {ir.op(src)} "
                            f"{src!r}); standalone BatchNormalization is not supported yet")
        _fold(ir.node(src), ir.node(bn))
        ir.remove_passthrough(bn)
    return ir


def _fold(dst: dict, bn: dict) -> None:
    """y = (x·W + B - mean)·s + beta with s = gamma / sqrt(var + eps), per output channel."""
    c = bn["consts"]
    s = c["scale"].astype(np.float64) / np.sqrt(c["var"].astype(np.float64) + bn["attrs"]["epsilon"])
    w, b = dst["consts"]["W"].astype(np.float64), dst["consts"]["B"].astype(np.float64)
    dst["consts"]["W"] = (w * s.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
    dst["consts"]["B"] = ((b - c["mean"]) * s + c["B"]).astype(np.float32)


def _is_bias_add(ir: IR, name: str) -> bool:
    return ir.op(name) == "Add" and "B" in ir.node(name)["consts"]


def _fold_bias_add(ir: IR, add: str, fallback: bool) -> None:
    """x + B (per channel) into the bias of the Conv/Gemm computing x, when it is x's only consumer."""
    (src,) = ir.preds(add)
    if ir.op(src) not in FOLDABLE or ir.succs(src) != [add] or src in ir.outputs:
        why = f"not the sole consumer of a Conv or Gemm (input from {ir.op(src)} {src!r})"
        if fallback:
            to_host(ir, add, why)
            return
        raise PassError(f"node {add!r} (op Add): a constant can only be added as the bias of the Conv or Gemm "
                        f"before it, and this Add is {why}; adding a constant elsewhere is not supported yet")
    c = ir.node(src)["consts"]
    c["B"] = (c["B"].astype(np.float64) + ir.node(add)["consts"]["B"]).astype(np.float32)
    ir.remove_passthrough(add)
