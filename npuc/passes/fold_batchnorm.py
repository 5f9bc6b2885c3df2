"""Fold BatchNormalization into the Conv or Gemm before it.

Pre: frontend IR. Post: no BatchNormalization node; each folded Conv/Gemm
computes exactly what Conv/Gemm -> BN did (up to float rounding), so
calibration and quantization see one op with one set of weights.
"""

from __future__ import annotations

import numpy as np

from ..ir import IR
from .errors import PassError

FOLDABLE = ("Conv", "Gemm")


def fold_batchnorm(ir: IR) -> IR:
    ir = ir.copy()
    for bn in [n for n in ir.topo() if ir.op(n) == "BatchNormalization"]:
        (src,) = ir.preds(bn)
        if ir.op(src) not in FOLDABLE or ir.succs(src) != [bn] or src in ir.outputs:
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
