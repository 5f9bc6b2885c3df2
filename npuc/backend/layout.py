"""Layout ops on the NPU (placement of concat inputs: `placement.py`).

Lowerings here: Concat (the copies), ChannelSlice (a view, no instruction),
ChannelShuffle (a 1x1 convolution with a 0/1 permutation matrix on the
systolic array: exact, mul 1, shift 0, no bias), Resize nearest (one ld per
tile, s·s strided st), Pad (ld with the quantized pad value as fill, st),
EdgePad (one ld per run of border / interior rows x columns, stride 0 or
negative in the border, st), Requant (ld, one `vadd` with mb = 0, st).
"""

from __future__ import annotations

import numpy as np

from ..ir import AccQ
from ..isa.arith import ROUNDING_BY_NAME
from .context import Context, chw, lowering
from .conv import ConvGeom, _clip, _spans, lower_conv
from .emit import SPAD_ALIGN, BackendError, Buf, box_tiles, channel_view, ld_box, st_box
from .placement import copy_budget, copy_view

# -- lowerings ---------------------------------------------------------------------

@lowering("Concat")
def _concat(ctx: Context, name: str) -> Buf:
    y = ctx.concat_buf(name)
    rows = ctx.ir.node(name)["attrs"].get("axis", 1) == 2
    c0, slots = 0, None
    for p in ctx.ir.preds(name):
        x = ctx.bufs[p]
        if x.flat_of is not None:
            raise BackendError(f"{ctx.what(name)}: input {p!r} is a flattened feature map")
        # a row concatenation: input i is rows [c0, c0 + h) of the output, at the output's strides
        target = Buf(y.at(c0, 0), y.c, x.h, y.w, None, y.ps, y.rs) if rows else channel_view(y, c0, x.c)
        if rows or ctx.placement.get(p) != (name, c0) or x != target:
            if slots is None:  # the first copy opens the layer; the copies share two slots
                ctx.em.begin_layer(name)
                slots = [ctx.em.spad.take(copy_budget(ctx.em), ctx.what(name)) for _ in range(2)]
            copy_view(ctx.em, x, target, ctx.what(name), slots)
        c0 += x.h if rows else x.c
    return y


@lowering("Const")
def _const(ctx: Context, name: str) -> Buf:
    """The quantized constant as DRAM data, laid out as any tensor of its shape (channels last)."""
    node = ctx.ir.node(name)
    q = node["act_q"].quantize(np.asarray(node["consts"]["value"], dtype=np.float32))
    shape = tuple(node["shape"])
    if len(shape) >= 3:
        q = np.moveaxis(q.reshape(shape), 1, -1)
    return Buf(ctx.em.add_data(np.ascontiguousarray(q, dtype=np.int8)), *chw(shape, ctx.what(name)))


@lowering("ChannelSlice")
def _channel_slice(ctx: Context, name: str) -> Buf:
    x = ctx.input_buf(name)
    a = ctx.ir.node(name)["attrs"]
    if x.flat_of is not None:
        raise BackendError(f"{ctx.what(name)}: slicing a flattened feature map is not supported")
    return channel_view(x, a["start"], a["end"] - a["start"])


def shuffle_weights(c: int, groups: int) -> np.ndarray:
    """int8 (C, C, 1, 1) 0/1 matrix: output channel j·g + i reads input channel i·(C/g) + j."""
    w = np.zeros((c, c, 1, 1), dtype=np.int8)
    per = c // groups
    for i in range(groups):
        for j in range(per):
            w[j * groups + i, i * per + j] = 1
    return w


@lowering("ChannelShuffle")
def _channel_shuffle(ctx: Context, name: str) -> Buf:
    x = ctx.input_buf(name)
    y = ctx.new_buf(name)
    q = ctx.ir.node(name)["act_q"]
    c = x.c
    # the accumulator holds the raw int8 value (zero point included): no bias, x1, no shift, no zp
    ident = AccQ(zp_out=0, lo=-128, hi=127, rounding=ctx.hw.rounding, mul=np.ones(c, np.int32),
                 shift=np.zeros(c, np.int32), bias=np.zeros(c, np.int32), zp_in=0, rescale=np.ones(c))
    g = ConvGeom(cin=c, h=x.h, w=x.w, cout=c, oh=y.h, ow=y.w)
    ctx.em.begin_layer(name)
    lower_conv(ctx.em, g, x, y, shuffle_weights(c, ctx.ir.node(name)["attrs"]["groups"]), ident, q.zp,
               ctx.what(name))
    return y


@lowering("Resize")
def _resize(ctx: Context, name: str) -> Buf:
    """Nearest, integer scales: each input tile is loaded once and stored sh·sw times, at the output
    pixels it replicates to (row stride sh·rs, pixel stride sw·ps)."""
    x = ctx.input_buf(name)
    y = ctx.new_buf(name)
    sh, sw = ctx.ir.node(name)["attrs"]["scales"]
    em = ctx.em
    em.begin_layer(name)
    budget = copy_budget(em)
    slots = [em.spad.take(budget, ctx.what(name)) for _ in range(2)]
    for k, (r0, nr, x0, nx, k0, nk) in enumerate(box_tiles(x.h, x.w, x.c, budget)):
        slot = slots[k % 2]
        ld_box(em, x, slot, (r0, nr, x0, nx, k0, nk))
        for dy in range(sh):
            for dx in range(sw):
                em.emit("st", dst=y.at(r0 * sh + dy, x0 * sw + dx, k0), src=slot, n0=nr, n1=nx, n2=nk,
                        ds0=sh * y.rs, ds1=sw * y.ps, ss0=nx * nk, ss1=nk)
    return y


@lowering("Pad")
def _pad(ctx: Context, name: str) -> Buf:
    """Output tiles of whole padded rows (or fewer channels): one ld whose border is the pad level,
    one st. Rows entirely in the padding are an ld with no DRAM interior."""
    x = ctx.input_buf(name)
    y = ctx.new_buf(name)
    a = ctx.ir.node(name)["attrs"]
    pt, pl, _, _ = a["pads"]
    fill = ctx.ir.node(ctx.ir.preds(name)[0])["act_q"].code(float(a["value"]))
    em = ctx.em
    em.begin_layer(name)
    budget = copy_budget(em)
    slots = [em.spad.take(budget, ctx.what(name)) for _ in range(2)]
    nk = min(y.c, max(1, budget // y.w))
    if y.w * min(nk, y.c) > budget:
        raise BackendError(f"{ctx.what(name)}: one padded row of {y.w} pixels does not fit the scratchpad")
    nr = max(1, budget // (y.w * nk))
    n = 0
    for r0, rows in _spans(y.h, nr):
        for k0, kc in _spans(y.c, nk):
            slot = slots[n % 2]
            n += 1
            top, n0, bottom = _clip(r0 - pt, rows, x.h)
            left, n1, right = pl, x.w, y.w - pl - x.w
            src = x.at(r0 - pt + top, 0, k0) if n0 else 0
            em.emit("ld", dst=slot, src=src, n0=n0, n1=n1 if n0 else 0, n2=kc, ss0=x.rs, ss1=x.ps,
                    ds0=y.w * kc, ds1=kc, pt=top, pb=bottom, pl=left if n0 else 0,
                    pr=right if n0 else y.w, fill=fill)
            em.emit("st", dst=y.at(r0, 0, k0), src=slot, n0=rows, n1=y.w, n2=kc, ds0=y.rs, ds1=y.ps,
                    ss0=y.w * kc, ss1=kc)
    return y


def _border_runs(start: int, count: int, before: int, n: int, mode: str) -> list[tuple[int, int, int, int]]:
    """Output indices [start, start + count) of an axis padded by `before` (edge or reflect) as runs
    (offset in the box, length, first source index, source step 0 / +1 / -1)."""
    runs = []
    o, stop = start, start + count
    edge = mode == "edge"
    while o < stop:
        i = o - before  # the source index, outside [0, n) in the borders
        if i < 0:
            end, src, step = min(stop, before), (0 if edge else -i), (0 if edge else -1)
        elif i < n:
            end, src, step = min(stop, before + n), i, 1
        else:
            end, src, step = stop, (n - 1 if edge else 2 * (n - 1) - i), (0 if edge else -1)
        runs.append((o - start, end - o, src, step))
        o = end
    return runs


@lowering("EdgePad")
def _edge_pad(ctx: Context, name: str) -> Buf:
    """Per output box (box_tiles): one ld per run of rows x run of columns — a border run of edge mode
    has DRAM stride 0 (the edge pixel, repeated), of reflect mode a negative stride (mirrored) — then one
    st. The border costs its bytes of transfer and nothing else."""
    x = ctx.input_buf(name)
    y = ctx.new_buf(name)
    a = ctx.ir.node(name)["attrs"]
    pt, pl, _, _ = a["pads"]
    mode = a["mode"]
    if mode not in ("edge", "reflect"):
        raise BackendError(f"{ctx.what(name)}: padding mode {mode!r} is not edge or reflect")
    em = ctx.em
    em.begin_layer(name)
    budget = copy_budget(em)
    slots = [em.spad.take(budget, ctx.what(name)) for _ in range(2)]
    for k, box in enumerate(box_tiles(y.h, y.w, y.c, budget)):
        r0, nr, c0, nc, k0, nk = box
        slot = slots[k % 2]
        for orow, rows, sr, stepr in _border_runs(r0, nr, pt, x.h, mode):
            for ocol, cols, sc, stepc in _border_runs(c0, nc, pl, x.w, mode):
                em.emit("ld", dst=slot + (orow * nc + ocol) * nk, src=x.at(sr, sc, k0), n0=rows, n1=cols, n2=nk,
                        ss0=stepr * x.rs, ss1=stepc * x.ps, ds0=nc * nk, ds1=nk)
        st_box(em, y, slot, box)
    return y


@lowering("Requant")
def _requant(ctx: Context, name: str) -> Buf:
    """y = vadd(x, x) with mb = 0: (x - za)·ma, one rounding shift, + zp, clamp."""
    x = ctx.input_buf(name)
    y = ctx.new_buf(name)
    q = ctx.ir.node(name)["qop"]
    em = ctx.em
    em.begin_layer(name)
    budget = max(SPAD_ALIGN, (em.spad.capacity // 4) // SPAD_ALIGN * SPAD_ALIGN)
    slots = [(em.spad.take(budget, ctx.what(name)), em.spad.take(budget, ctx.what(name))) for _ in range(2)]
    f = {"za": q.za, "zb": 0, "ma": q.ma, "mb": 0, "sh": q.sh, "zp": q.zp_out, "lo": q.lo,
         "hi": q.hi, "rnd": int(ROUNDING_BY_NAME[q.rounding])}
    for k, box in enumerate(box_tiles(x.h, x.w, x.c, budget)):
        si, so = slots[k % 2]
        n = box[1] * box[3] * box[5]
        ld_box(em, x, si, box)
        em.emit("vadd", dst=so, a=si, b=si, m=1, n=n, ds=n, bs=n, **{"as": n}, **f)
        st_box(em, y, so, box)
    return y
