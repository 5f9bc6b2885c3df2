"""Lowerings of the conv family built on `lower_conv`: AveragePool, ConvTranspose, GlobalMaxPool.

* AveragePool is a depthwise convolution whose weight is 1 at every tap
  (one identity `gemm` per tap and cout tile, the input box padded with
  zp_in), plus the bias −kh·kw·zp_in, so the accumulator holds
  Σ_window (q − zp_in) exactly; then the division by the pixel's count is a
  `vrq` per run of output pixels of equal count, each with its own (mul,
  shift) vector pair kept in the accumulator SRAM with the bias (`_runs`).
* ConvTranspose with stride s is s_h·s_w ordinary convolutions ("phases"):
  output pixels oy = s·t + r (r the phase) receive exactly the taps
  ky ≡ r + pt (mod s), from input row t + (r + pt − ky·d)/s. Those taps,
  flipped, are a stride-1 convolution of the input (dilation d/gcd(s, d),
  top pad −offset of the last tap, possibly negative: a crop) whose output is
  a strided view of the output tensor (pixel stride s_w·C, row stride
  s_h·OW·C), written in place by `lower_conv`. Each phase folds its own
  −zp_in·ΣW into its bias (the taps differ by phase). A phase with no tap
  (kernel smaller than the stride) is bias only.
* GlobalMaxPool is in `pool.py` (`vmax` tree).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from ..geometry import pool_counts
from ..isa.program import LayerWork
from .context import Context, lowering
from .conv import ConvGeom, Run, cdiv, expand_groups, lower_conv
from .emit import BackendError, Buf
from .pool import lower_global_maxpool

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _geom(ctx: Context, name: str, x: Buf, y: Buf, group: int) -> ConvGeom:
    a = ctx.ir.node(name)["attrs"]
    dil = a.get("dilations", (1, 1))
    return ConvGeom(cin=x.c, h=x.h, w=x.w, cout=y.c, oh=y.h, ow=y.w, kh=a["kernel"][0], kw=a["kernel"][1],
                    sh=a["strides"][0], sw=a["strides"][1], dh=dil[0], dw=dil[1], pt=a["pads"][0],
                    pl=a["pads"][1], group=group)


def _in_zp(ctx: Context, name: str) -> int:
    return ctx.ir.node(ctx.ir.preds(name)[0])["act_q"].zp


@lowering("AveragePool")
def _avgpool(ctx: Context, name: str) -> Buf:
    node = ctx.ir.node(name)
    q = node["qop"]
    x = ctx.input_buf(name)
    y = ctx.new_buf(name)
    g = _geom(ctx, name, x, y, x.c)
    counts = pool_counts(node["attrs"], (x.h, x.w), (y.h, y.w))
    which = np.searchsorted(np.asarray(q.counts), counts)  # (OH, OW): index of the (mul, shift) pair
    rows = [np.full(x.c, int(q.bias[0]))]
    for mul, sh in zip(q.mul, q.shift):
        rows += [np.full(x.c, int(mul)), np.full(x.c, int(sh))]
    ones = np.ones((x.c, 1, g.kh, g.kw), dtype=np.int8)
    ctx.em.begin_layer(name)
    lower_conv(ctx.em, g, x, y, expand_groups(ones, x.c), q, _in_zp(ctx, name), ctx.what(name),
               params=np.stack(rows), runs=lambda r0, th, c0, tw: _runs(which[r0:r0 + th, c0:c0 + tw]))
    return y


def _runs(which: np.ndarray) -> list[Run]:
    """The `vrq`s of one output tile whose pixel (i, j) takes pair which[i, j]: per band of equal
    rows one `vrq` over the band with its most common pair, then the other column spans of the band
    overwritten — one `vrq` per row or per column of the span, whichever is fewer (counts are a row
    count times a column count, so a band is a few spans: the interior and the borders)."""
    th, tw = which.shape
    out: list[Run] = []
    i0 = 0
    while i0 < th:
        i1 = i0 + 1
        while i1 < th and np.array_equal(which[i1], which[i0]):
            i1 += 1
        row = which[i0]
        main = Counter(row.tolist()).most_common(1)[0][0]
        out.append((i0 * tw, (i1 - i0) * tw, 1, main))
        j0 = 0
        while j0 < tw:
            j1 = j0 + 1
            while j1 < tw and row[j1] == row[j0]:
                j1 += 1
            k = int(row[j0])
            if k != main:
                if i1 - i0 <= j1 - j0:
                    out += [(i * tw + j0, j1 - j0, 1, k) for i in range(i0, i1)]
                else:
                    out += [(i0 * tw + j, i1 - i0, tw, k) for j in range(j0, j1)]
            j0 = j1
        i0 = i1
    return out


@lowering("GlobalMaxPool")
def _global_maxpool(ctx: Context, name: str) -> Buf:
    x = ctx.input_buf(name)
    y = ctx.new_buf(name)
    ctx.em.begin_layer(name)
    lower_global_maxpool(ctx.em, x, y, ctx.what(name))
    return y


def phase_taps(r: int, pad: int, k: int, s: int, d: int) -> tuple[list[int], int, int]:
    """Output phase r of one axis of a transposed conv as a stride-1 conv of the input:
    (its kernel taps in conv order — the original indices, flipped —, dilation, top pad)."""
    taps = [t for t in range(k) if (r + pad - t * d) % s == 0]
    if not taps:
        return [], 1, 0
    offset = [(r + pad - t * d) // s for t in taps]  # input index = output index t' + offset
    return taps[::-1], d // math.gcd(s, d), -offset[-1]


@lowering("ConvTranspose")
def _conv_transpose(ctx: Context, name: str) -> Buf:
    node = ctx.ir.node(name)
    a, q = node["attrs"], node["qop"]
    x = ctx.input_buf(name)
    y = ctx.new_buf(name)
    (sh, sw), (dh, dw) = a["strides"], a["dilations"]
    wq = expand_groups(q.weight, a["group"])  # (Cout, Cin, kh, kw)
    zp = _in_zp(ctx, name)
    em = ctx.em
    # every input pixel meets every weight of its group once: H*W*Cin*(Cout/group)*kh*kw MACs
    em.begin_layer(name, LayerWork(x.h * x.w * int(q.weight.size), x.nbytes + y.nbytes + int(q.weight.size)))
    for ry in range(min(sh, y.h)):
        for rx in range(min(sw, y.w)):
            ty, dy, py = phase_taps(ry, a["pads"][0], a["kernel"][0], sh, dh)
            tx, dx, px = phase_taps(rx, a["pads"][1], a["kernel"][1], sw, dw)
            if ty and tx:
                wp = np.ascontiguousarray(wq[:, :, ty][:, :, :, tx])
            else:  # no tap reaches this phase: bias only (lower_conv emits no gemm for zero weights)
                wp = np.zeros((*wq.shape[:2], 1, 1), dtype=np.int8)
            bias = q.bias.astype(np.int64) - zp * wp.reshape(wp.shape[0], -1).astype(np.int64).sum(axis=1)
            if bias.min() < INT32_MIN or bias.max() > INT32_MAX:
                raise BackendError(f"{ctx.what(name)}: phase ({ry}, {rx})'s bias does not fit int32")
            g = ConvGeom(cin=x.c, h=x.h, w=x.w, cout=y.c, oh=cdiv(y.h - ry, sh), ow=cdiv(y.w - rx, sw),
                         kh=wp.shape[2], kw=wp.shape[3], dh=dy, dw=dx, pt=py, pl=px, group=a["group"])
            view = Buf(y.at(ry, rx), y.c, g.oh, g.ow, ps=sw * y.ps, rs=sh * y.rs)
            em.spad.reset()  # each phase is a convolution of its own: fresh SRAM arenas
            em.acc.reset()
            lower_conv(em, g, x, view, wp, q, zp, ctx.what(name),
                       params=np.stack([bias, q.mul.astype(np.int64), q.shift.astype(np.int64)]))
    return y
