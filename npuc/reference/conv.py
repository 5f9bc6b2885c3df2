"""Float and integer golden model of the conv family's pooling and transposed ops.

Registered into `npuc.reference.common`'s registries:

* ``AveragePool`` — float: the window sum of the zero-padded input divided by
  the pixel's count (`pool_counts`). Integer: acc = Σ_window (q − zp_in)
  (padding holds zp_in, so it contributes 0; written as Σ q_padded plus the
  `PoolQ`'s bias −kh·kw·zp_in, what the hardware computes), then `vrq` with the
  (mul, shift) of the pixel's count: `PoolQ` ``counts[k]`` uses
  ``mul[k], shift[k]`` (ratio s_in / (count·s_out)).
* ``GlobalMaxPool`` — the maximum over H, W; exact on int8.
* ``ConvTranspose`` — float: every input pixel scatters x·W into the output
  (oy = iy·sh − pt + ky·dh), then the bias. Integer: acc = Σ (q − zp_in)·wq
  over the taps that reach the pixel (no padding term at all), plus the
  `MatQ`'s bias rint(B / (s_in·s_w)), wrapped to int32, then `vrq` per channel.
"""

from __future__ import annotations

import numpy as np

from ..geometry import pool_counts
from ..ir import ActQ
from ..isa.arith import requantize, wrap_int32
from .common import Node, apply_act, float_op, out_hw, pad_nchw, quant_op, requant_acc, taps

# -- AveragePool ----------------------------------------------------------------

def _window_sum(xp: np.ndarray, node: Node, dtype: type) -> np.ndarray:
    acc: np.ndarray | None = None
    for _, _, view in taps(xp, node["attrs"], out_hw(node)):
        acc = view.astype(dtype) if acc is None else acc + view
    assert acc is not None
    return acc


@float_op("AveragePool")
def avgpool_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    a = node["attrs"]
    total = _window_sum(pad_nchw(ins[0], a["pads"], 0.0), node, np.float64)
    counts = pool_counts(a, ins[0].shape[2:4], out_hw(node))
    return apply_act(total / counts, node).astype(np.float32)


@quant_op("AveragePool")
def avgpool_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    a, q = node["attrs"], node["qop"]
    xp = pad_nchw(ins[0].astype(np.int64), a["pads"], in_q[0].zp)
    acc = _window_sum(xp, node, np.int64).transpose(0, 2, 3, 1)  # N, OH, OW, C
    acc = wrap_int32(acc + np.int64(q.bias[0]))
    counts = pool_counts(a, ins[0].shape[2:4], out_hw(node))
    k = np.searchsorted(np.asarray(q.counts), counts)[..., None]  # (OH, OW, 1): which (mul, shift)
    out = requantize(acc, q.mul.astype(np.int64)[k], q.shift.astype(np.int64)[k], q.zp_out, q.lo, q.hi, q.rounding)
    return out.transpose(0, 3, 1, 2)


# -- GlobalMaxPool --------------------------------------------------------------

@float_op("GlobalMaxPool")
def global_maxpool_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    return ins[0].max(axis=(2, 3), keepdims=True).astype(np.float32)


@quant_op("GlobalMaxPool")
def global_maxpool_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    return ins[0].max(axis=(2, 3), keepdims=True)


# -- ConvTranspose --------------------------------------------------------------

def conv_transpose_nhwc(x: np.ndarray, w: np.ndarray, attrs: Node, out_hw: tuple[int, int],
                        dtype: type) -> np.ndarray:
    """Σ over taps of the input scattered by x·W, cropped by the pads: (N, OH, OW, Cout)."""
    n, _, h, wd = x.shape
    cout, cig, kh, kw = w.shape
    group = int(attrs["group"])
    (sh, sw), (dh, dw) = attrs["strides"], attrs["dilations"]
    pt, pl = attrs["pads"][:2]
    full_h = max((h - 1) * sh + (kh - 1) * dh + 1, pt + out_hw[0])
    full_w = max((wd - 1) * sw + (kw - 1) * dw + 1, pl + out_hw[1])
    acc = np.zeros((n, full_h, full_w, cout), dtype=dtype)
    xg: np.ndarray = x.astype(dtype).reshape(n, group, cig, h, wd)
    wg: np.ndarray = w.astype(dtype).reshape(group, cout // group, cig, kh, kw)
    for ky in range(kh):
        for kx in range(kw):
            part = np.einsum("ngchw,goc->nhwgo", xg, wg[..., ky, kx], optimize=True).reshape(n, h, wd, cout)
            acc[:, ky * dh:ky * dh + (h - 1) * sh + 1:sh, kx * dw:kx * dw + (wd - 1) * sw + 1:sw] += part
    return acc[:, pt:pt + out_hw[0], pl:pl + out_hw[1]]


@float_op("ConvTranspose")
def conv_transpose_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    c = node["consts"]
    acc = conv_transpose_nhwc(ins[0], c["W"], node["attrs"], out_hw(node), np.float64)
    return apply_act(acc + c["B"], node).transpose(0, 3, 1, 2).astype(np.float32)


@quant_op("ConvTranspose")
def conv_transpose_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    """(q − zp_in) is exact in float64; only the taps that reach a pixel contribute."""
    x = ins[0].astype(np.int64) - in_q[0].zp
    acc = conv_transpose_nhwc(x, node["qop"].weight, node["attrs"], out_hw(node), np.float64)
    return requant_acc(acc.astype(np.int64), node).transpose(0, 3, 1, 2)
