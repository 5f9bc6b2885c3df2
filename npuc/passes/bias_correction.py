"""Empirical bias correction: remove the mean error quantization adds to each Conv/Gemm output channel.

Pre: quantized, legalized IR; calibration samples. Post: the same IR with
each Conv/Gemm's int32 bias changed by −rint(mean error / (s_in·s_w)) per
output channel, where the error is the layer's pre-activation output in the
quantized model (its int8 input as the quantized network delivers it —
earlier corrections included —, int8 weights, int32 bias; dequantized
before requantization) minus the float model's, averaged over samples and
positions. Layers are corrected one by one in topological order, so each
sees its producers already corrected. Host nodes are left alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ..ir import IR
from ..reference import FLOAT_OPS, dequantize, quantize_input, run_float, run_quantized

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _pre_activation(node: dict) -> dict:
    return {**node, "attrs": {k: v for k, v in node["attrs"].items() if k != "act"}}


def correct_bias(ir: IR, samples: Sequence[dict[str, np.ndarray]]) -> IR:
    ir = ir.copy()
    x = {n: np.stack([s[n] for s in samples]).astype(np.float32) for n in ir.inputs}
    ref = run_float(ir, x, intermediates=True)
    feeds = {n: quantize_input(x[n], ir.node(n)["act_q"]) for n in ir.inputs}
    for name in ir.topo():
        node = ir.node(name)
        q = node.get("qop")
        if ir.op(name) not in ("Conv", "Gemm") or q is None:
            continue
        src = ir.preds(name)[0]
        in_q = ir.node(src)["act_q"]
        x_q = dequantize(run_quantized(ir, feeds, intermediates=True)[src], in_q)
        shape = (-1,) + (1,) * (q.weight.ndim - 1)
        zp_fold = in_q.zp * q.weight.reshape(q.weight.shape[0], -1).astype(np.int64).sum(axis=1)
        consts = {"W": (q.weight * q.w_scale.reshape(shape)).astype(np.float32),
                  "B": ((q.bias.astype(np.int64) + zp_fold) * in_q.scale * q.w_scale).astype(np.float32)}
        f = FLOAT_OPS[node["op"]]
        y_q = f({**_pre_activation(node), "consts": consts}, [x_q]).astype(np.float64)
        y_f = f(_pre_activation(node), [ref[src]]).astype(np.float64)
        axes = (0,) + tuple(range(2, y_q.ndim))
        err = (y_q - y_f).mean(axis=axes)
        delta = np.rint(err / (in_q.scale * q.w_scale)).astype(np.int64)
        bias = np.clip(q.bias.astype(np.int64) - delta, INT32_MIN, INT32_MAX).astype(np.int32)
        node["qop"] = dataclasses.replace(q, bias=bias)
    return ir
