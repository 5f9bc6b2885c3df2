"""What every op of the golden model shares: the two registries and the window machinery.

Handler modules (`core`, `conv`, `layout`, `vector`) import this module and
register into `FLOAT_OPS` / `QUANT_OPS`; the package imports the handler
modules. Nothing here imports a handler, so registration needs no cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..ir import ActQ
from ..isa.arith import requantize, saturate, wrap_int32

Node = dict[str, Any]
FloatFn = Callable[[Node, list[np.ndarray]], np.ndarray]
QuantFn = Callable[[Node, list[np.ndarray], list[ActQ]], np.ndarray]
FLOAT_OPS: dict[str, FloatFn] = {}
QUANT_OPS: dict[str, QuantFn] = {}


def float_op(op: str) -> Callable[[FloatFn], FloatFn]:
    def register(fn: FloatFn) -> FloatFn:
        FLOAT_OPS[op] = fn
        return fn

    return register


def quant_op(op: str) -> Callable[[QuantFn], QuantFn]:
    def register(fn: QuantFn) -> QuantFn:
        QUANT_OPS[op] = fn
        return fn

    return register


# -- shared window machinery ---------------------------------------------------

def pad_nchw(x: np.ndarray, pads: tuple[int, int, int, int], value: float) -> np.ndarray:
    """Pad the two spatial axes of NCHW `x` by (top, left, bottom, right) with `value`."""
    pt, pl, pb, pr = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=value)


def taps(xp: np.ndarray, attrs: Node, out_hw: tuple[int, int]) -> Iterator[tuple[int, int, np.ndarray]]:
    """For each kernel tap (i, j): the (N, C, OH, OW) view of padded `xp` that tap reads."""
    (kh, kw), (sh, sw), (dh, dw) = attrs["kernel"], attrs["strides"], attrs["dilations"]
    oh, ow = out_hw
    for i in range(kh):
        for j in range(kw):
            y0, x0 = i * dh, j * dw
            yield i, j, xp[:, :, y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw]


def conv_nhwc(xp: np.ndarray, w: np.ndarray, attrs: Node, out_hw: tuple[int, int], dtype: type) -> np.ndarray:
    """Sum over taps of x·W in `dtype`: returns (N, OH, OW, Cout), channel last.

    Grouped (``attrs["group"]`` = G, W of shape (Cout, Cin/G, kh, kw)): output channel o
    reads only the Cin/G input channels of its group o // (Cout/G)."""
    n, cout = xp.shape[0], w.shape[0]
    acc: np.ndarray = np.zeros((n, *out_hw, cout), dtype=dtype)
    wt: np.ndarray = w.astype(dtype)
    group = int(attrs.get("group", 1))
    if group != 1 and not (w.shape[1] == 1 and group == cout):
        wg = wt.reshape(group, cout // group, w.shape[1], *w.shape[2:])
        for i, j, view in taps(xp, attrs, out_hw):
            v = view.astype(dtype).reshape(n, group, w.shape[1], *out_hw)
            acc += np.einsum("ngchw,goc->nhwgo", v, wg[..., i, j], optimize=True).reshape(acc.shape)
        return acc
    if w.shape[1] == 1 and group == cout:  # depthwise: one product per tap and channel, summed channels-first
        dw = np.zeros((n, cout, *out_hw), dtype=dtype)
        prod = np.empty_like(dw)
        for i, j, view in taps(xp, attrs, out_hw):
            np.multiply(view, wt[:, 0, i, j].reshape(1, cout, 1, 1), out=prod, casting="unsafe")
            dw += prod
        return dw.transpose(0, 2, 3, 1)
    # matrix products (BLAS): each output pixel's window a row, (OH*OW, kh*kw*Cin) @ (kh*kw*Cin, Cout)
    (kh, kw), (sh, sw), (dh, dw) = attrs["kernel"], attrs["strides"], attrs["dilations"]
    oh, ow = out_hw
    xt = xp.transpose(0, 2, 3, 1)  # channels last: a window's taps and channels are one row
    win = np.lib.stride_tricks.sliding_window_view(xt, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(1, 2))
    win = win[:, :(oh - 1) * sh + 1:sh, :(ow - 1) * sw + 1:sw, :, ::dh, ::dw]  # (N, OH, OW, Cin, kh, kw)
    wmat = wt.transpose(2, 3, 1, 0).reshape(-1, cout)
    # as many samples per product as fit in about 32 MB of rows: few, large BLAS calls
    step = max(1, (32 << 20) // max(1, oh * ow * wmat.shape[0] * np.dtype(dtype).itemsize))
    for b in range(0, n, step):
        cols = np.ascontiguousarray(win[b:b + step].transpose(0, 1, 2, 4, 5, 3), dtype=dtype)
        acc[b:b + step] = (cols.reshape(-1, wmat.shape[0]) @ wmat).reshape(-1, *acc.shape[1:])
    return acc


def out_hw(node: Node) -> tuple[int, int]:
    return tuple(node["shape"][2:4])  # type: ignore[return-value]


def apply_act(y: np.ndarray, node: Node) -> np.ndarray:
    """A fused activation is a clamp to its float bounds (relu: [0, inf))."""
    act = node["attrs"].get("act")
    return y if act is None else np.clip(y, act[1], act[2])


def keep_batch(x: np.ndarray, node: Node) -> np.ndarray:
    """Flatten/Reshape: the node's shape with the batch axis taken from `x` (batch preserved)."""
    return x.reshape((x.shape[0], *node["shape"][1:]))


def requant_acc(acc: np.ndarray, node: Node) -> np.ndarray:
    """int32 accumulators, channel last -> int8 through the node's `AccQ` (bias added mod 2^32, or
    saturated to a `MatQ`'s narrower ``acc_bits``).

    The sum saturates once, at the end; the array saturates at every fold's add (ISA.md, gemm), so
    the two agree unless a running sum leaves the range and a later fold brings it back — the
    simulator's per-layer `acc_sat` counter says when saturation happened at all."""
    q = node["qop"]
    total = np.asarray(acc, dtype=np.int64) + q.bias.astype(np.int64)
    bits = getattr(q, "acc_bits", 32)
    acc = wrap_int32(total) if bits == 32 else saturate(total, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return requantize(acc, q.mul, q.shift, q.zp_out, q.lo, q.hi, q.rounding)


