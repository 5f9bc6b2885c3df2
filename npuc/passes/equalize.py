"""Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization"): equal weight ranges per channel.

Pre: prepared float IR (activations fused). Post: the same function (float
outputs equal up to float rounding), with each pair producer → consumer of
Conv/Gemm layers rescaled channel by channel: for channel i of the
producer, with r1 = max|W1[i]| and r2 = max|W2[:, i]|, s = sqrt(r1·r2) / r2,

    W1[i] /= s,  B1[i] /= s,  W2[:, i] *= s

so both ranges become sqrt(r1·r2). This is exact because what lies between
the two commutes with a positive per-channel scale: nothing, a fused ReLU
(or Clip to [0, inf)) — positive-homogeneous, unlike ReLU6 —, a MaxPool, or
a Flatten (Conv -> Gemm: channel i owns H·W consecutive columns). The
producer's output must feed only that chain. Sweeps repeat until the scales
settle (a layer in the middle belongs to two pairs).
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import IR

LAYERS = ("Conv", "Gemm")
BETWEEN = ("MaxPool", "Flatten", "Reshape")


def _homogeneous(act: tuple[str, float, float] | None) -> bool:
    return act is None or (act[1] == 0.0 and math.isinf(act[2]) and act[2] > 0)


def _pairs(ir: IR) -> list[tuple[str, str, int]]:
    """(producer, consumer, columns per channel) of every pair that can be equalized."""
    pairs = []
    for a in ir.topo():
        if ir.op(a) not in LAYERS or not _homogeneous(ir.node(a)["attrs"].get("act")) or a in ir.outputs:
            continue
        cur = a
        while len(ir.succs(cur)) == 1 and ir.op(ir.succs(cur)[0]) in BETWEEN and cur not in ir.outputs:
            cur = ir.succs(cur)[0]
        if len(ir.succs(cur)) != 1 or cur in ir.outputs:
            continue
        (b,) = ir.succs(cur)
        if ir.op(b) not in LAYERS or ir.preds(b) != [cur]:
            continue
        cin = ir.node(b)["consts"]["W"].shape[1]
        cout = ir.node(a)["consts"]["W"].shape[0]
        if cin % cout or (ir.node(b)["consts"]["W"].ndim == 4 and cin != cout):
            continue
        if ir.op(a) == "Gemm" and cin != cout:
            continue
        pairs.append((a, b, cin // cout))
    return pairs


def equalize(ir: IR, sweeps: int = 20, tol: float = 1e-3) -> IR:
    ir = ir.copy()
    pairs = _pairs(ir)
    for _ in range(sweeps):
        worst = 0.0
        for a, b, per in pairs:
            ca, cb = ir.node(a)["consts"], ir.node(b)["consts"]
            w1, b1, w2 = ca["W"].astype(np.float64), ca["B"].astype(np.float64), cb["W"].astype(np.float64)
            cout = w1.shape[0]
            r1 = np.abs(w1.reshape(cout, -1)).max(axis=1)
            # consumer's columns of channel i: W2[:, i] (Conv) or W2[:, i*per:(i+1)*per] (Gemm after Flatten)
            w2c = w2.reshape(w2.shape[0], cout, per, -1) if w2.ndim == 4 else w2.reshape(w2.shape[0], cout, per)
            r2 = np.abs(np.moveaxis(w2c, 1, 0).reshape(cout, -1)).max(axis=1)
            s = np.where((r1 > 0) & (r2 > 0), np.sqrt(r1 * r2) / np.where(r2 > 0, r2, 1), 1.0)
            worst = max(worst, float(np.max(np.abs(np.log(s)))))
            shape1 = (-1,) + (1,) * (w1.ndim - 1)
            ca["W"] = (w1 / s.reshape(shape1)).astype(np.float32)
            ca["B"] = (b1 / s).astype(np.float32)
            bshape = (1, cout) + (1,) * (w2c.ndim - 2)
            cb["W"] = (w2c * s.reshape(bshape)).reshape(w2.shape).astype(np.float32)
        if worst < tol:
            break
    return ir
