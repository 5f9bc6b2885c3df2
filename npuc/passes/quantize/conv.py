"""Quantizers of the conv family's pooling and transposed ops (registered into `common.QUANTIZERS`).

* AveragePool: acc = Σ_window (q − zp_in) — the hardware sums the window
  padded with zp_in and adds bias = −kh·kw·zp_in, so every padded tap
  contributes exactly 0 — then divides by the pixel's count K inside `vrq`:
  one (mul, shift) per distinct count, ratio s_in / (K·s_out). Under pow2 it
  is an exact shift only when that ratio is a power of two, else a 31-bit
  fixed-point multiplier (as GlobalAveragePool), rounded once by the
  rounding mode. `PoolQ`: ``mul[k], shift[k]`` belong to ``counts[k]``
  (sorted); ``bias = [−kh·kw·zp_in]``; a fused activation is the clamp.
* GlobalMaxPool: the input's act_q (a max is exact on int8).
* ConvTranspose: weights and requantization as Conv (W is (Cout, Cin/group,
  kh, kw), see `npuc/frontend/conv.py`), but the bias is rint(B / (s_in·s_w))
  without the zero-point fold: a transposed conv's border pixels see fewer
  taps, so −zp_in·ΣW is not one number per channel. The backend folds it per
  output phase, where it is (`npuc/backend/conv_ops.py`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ...geometry import pool_counts
from ...hw import HwConfig
from ...ir import IR, PoolQ
from ...quant.scales import ScaleRule
from .common import clamp_bounds, in_q, multipliers, out_q, output_stage, quantizer
from .core import passthrough_q, weighted_q


@quantizer("AveragePool")
def avgpool_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    node = ir.node(name)
    a = node["attrs"]
    in_hw = tuple(ir.node(ir.preds(name)[0])["shape"][2:4])
    counts = sorted({int(k) for k in pool_counts(a, in_hw, tuple(node["shape"][2:4])).ravel()})
    qi, qo = in_q(ir, name), out_q(ir, name, hw, rule)
    ratio = [qi.scale / (k * qo.scale) for k in counts]
    mul, shift = multipliers(rule, ratio)
    lo, hi = clamp_bounds(a.get("act"), qo)
    kh, kw = a["kernel"]
    node["act_q"] = qo
    node["qop"] = PoolQ(**output_stage(qo, lo, hi, hw), mul=mul, shift=shift,
                        bias=np.array([-kh * kw * qi.zp], dtype=np.int64), zp_in=qi.zp, counts=tuple(counts),
                        rescale=tuple(ratio))


quantizer("GlobalMaxPool")(passthrough_q)


@quantizer("ConvTranspose")
def conv_transpose_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    weighted_q(ir, name, hw, rule)
    q = ir.node(name)["qop"]
    wsum = q.weight.reshape(q.weight.shape[0], -1).astype(np.int64).sum(axis=1)
    # undo the zero-point fold: the backend folds it per output phase
    ir.node(name)["qop"] = dataclasses.replace(q, bias=q.bias + q.zp_in * wsum)
