"""Sliding-window ops: Conv, ConvTranspose, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.

Spatial attributes are normalized for the backend: ``kernel=(kh, kw)``,
``strides=(sh, sw)``, ``dilations=(dh, dw)``, ``pads=(pt, pl, pb, pr)`` with
``auto_pad`` resolved. For MaxPool and AveragePool, ``ceil_mode`` is folded
into the pads: the bottom/right pads grow by what the last (partial) window
needs, so the plain floor formula ``out = (in + pt + pb - (k-1)*d - 1) // s + 1``
holds for every node the backend sees (MaxPool pads with -inf, so this is
exact; AveragePool keeps the ONNX pads as ``count_pads``, see below).

IR contract of the ops added for the conv family:

* ``Conv``: ``attrs["group"]``; ``consts["W"]`` of the ONNX shape
  (Cout, Cin/group, kh, kw): output channel o reads input channels
  [g·Cin/group, (g+1)·Cin/group) of its group g = o // (Cout/group).
* ``AveragePool``: ``kernel, strides, dilations, pads`` (ceil_mode folded),
  ``count_include_pad`` (0/1) and ``count_pads`` — the ONNX pads before the
  fold. The divisor of output pixel (r, c) is ``pool_counts`` in
  `npuc/geometry.py`: the taps inside the image (count_include_pad=0)
  or inside the image plus ``count_pads`` (=1), which is ONNX Runtime's rule
  also under ceil_mode (a tap in the extra ceil padding is never counted).
* ``GlobalMaxPool``: no attributes, output (N, C, 1, 1).
* ``ConvTranspose``: ``kernel, strides, dilations, pads, output_padding,
  group``; ``consts["W"]`` converted to the conv layout (Cout, Cin/group, kh,
  kw), un-flipped: W[o, i, ky, kx] is ONNX's W[g·Cin/group + i, o mod
  (Cout/group), ky, kx]; input pixel iy reaches output row
  oy = iy·sh − pt + ky·dh. ``consts["B"]`` (Cout,).
"""

from __future__ import annotations

import math

import numpy as np

from ..geometry import pool_counts  # the one definition of an AveragePool's divisors
from .registry import NodeCtx, handler, ints


def _window(ctx: NodeCtx, in_hw: tuple[int, int], kernel: tuple[int, ...]) -> dict:
    """Resolve strides, dilations and pads (incl. auto_pad) of a 2-D window."""
    strides = ints(ctx.attr("strides"), 2, 1, "strides", ctx)
    dilations = ints(ctx.attr("dilations"), 2, 1, "dilations", ctx)
    if min(strides) < 1 or min(dilations) < 1 or min(kernel) < 1:
        raise ctx.error(f"kernel {kernel}, strides {strides} and dilations {dilations} must be >= 1")
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad in ("NOTSET", ""):
        p = ints(ctx.attr("pads"), 4, 0, "pads", ctx)
        pads = (p[0], p[1], p[2], p[3])  # ONNX order: begins (t, l), ends (b, r) -> (pt, pl, pb, pr)
        if min(pads) < 0:
            raise ctx.unsupported(f"negative pads {pads} are not supported")
    elif auto_pad == "VALID":
        pads = (0, 0, 0, 0)
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for n, k, s, d in zip(in_hw, kernel, strides, dilations):
            total = max(0, (math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n)
            small, big = total // 2, total - total // 2
            begin.append(small if auto_pad == "SAME_UPPER" else big)
            end.append(big if auto_pad == "SAME_UPPER" else small)
        pads = (begin[0], begin[1], end[0], end[1])
    else:
        raise ctx.error(f"auto_pad={auto_pad!r} is not a valid value")
    return {"kernel": kernel, "strides": strides, "dilations": dilations, "pads": pads}


def out_size(n: int, k: int, s: int, d: int, p0: int, p1: int, ceil_mode: bool = False) -> int:
    """Output extent of a window along one axis (ONNX/ONNX Runtime rule).

    With ceil_mode a last partial window is kept unless it would start in the
    end padding (ONNX Runtime's rule, and PyTorch's).
    """
    span = n + p0 + p1 - (k - 1) * d - 1
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + p0:
        out -= 1
    return out


def _out_hw(win: dict, in_hw: tuple[int, int], ceil_mode: bool = False) -> tuple[int, int]:
    pt, pl, pb, pr = win["pads"]
    return (
        out_size(in_hw[0], win["kernel"][0], win["strides"][0], win["dilations"][0], pt, pb, ceil_mode),
        out_size(in_hw[1], win["kernel"][1], win["strides"][1], win["dilations"][1], pl, pr, ceil_mode),
    )


def _image(ctx: NodeCtx) -> tuple[int, int, int, int]:
    shape = ctx.in_shape(0)
    if len(shape) != 4:
        raise ctx.unsupported(f"input has shape {shape}; only 4-D NCHW tensors are supported")
    return shape  # type: ignore[return-value]


@handler("Conv")
def Conv(ctx: NodeCtx) -> None:
    n, c, h, w = _image(ctx)
    weight = ctx.const(1, "W").astype(np.float32)
    group = int(ctx.attr("group", 1))
    if group < 1 or c % group:
        raise ctx.error(f"group={group} does not divide the input's {c} channels")
    if weight.ndim != 4 or weight.shape[1] * group != c:
        raise ctx.error(f"weight shape {weight.shape} does not match an input with {c} channels"
                        + (f" in {group} groups" if group != 1 else ""))
    cout, kh, kw = weight.shape[0], weight.shape[2], weight.shape[3]
    if cout % group:
        raise ctx.error(f"group={group} does not divide the weight's {cout} output channels")
    kernel = ints(ctx.attr("kernel_shape", (kh, kw)), 2, 0, "kernel_shape", ctx)
    if kernel != (kh, kw):
        raise ctx.error(f"kernel_shape {kernel} disagrees with the weight's {(kh, kw)}")
    bias = ctx.const_or(2, np.zeros(cout, np.float32))
    assert bias is not None
    if bias.shape != (cout,):
        raise ctx.error(f"bias shape {bias.shape} is not ({cout},)")
    win = _window(ctx, (h, w), kernel)
    oh, ow = _out_hw(win, (h, w))
    if oh < 1 or ow < 1:
        raise ctx.error(f"output would be empty ({oh}x{ow})")
    ctx.emit(
        "Conv",
        [ctx.data(0)],
        shape=(n, cout, oh, ow),
        attrs={**win, "group": group},
        consts={"W": weight, "B": bias.astype(np.float32)},
    )


@handler("MaxPool")
def MaxPool(ctx: NodeCtx) -> None:
    n, c, h, w = _image(ctx)
    ctx.check_unused_outputs(1)
    if int(ctx.attr("storage_order", 0)) != 0:
        raise ctx.unsupported("storage_order=1 is not supported")
    kernel = ints(ctx.attr("kernel_shape"), 2, 0, "kernel_shape", ctx)
    ceil_mode = bool(ctx.attr("ceil_mode", 0))
    win, oh, ow = _pool_window(ctx, (h, w), kernel, ceil_mode)
    # ONNX shape inference (1.23) keeps a last window that starts in the end padding; ORT drops it, and
    # so do we (`out_size`) — the runtime's answer is the one users compare against
    ctx.emit("MaxPool", [ctx.data(0)], shape=(n, c, oh, ow), attrs={**win, "ceil_mode": ceil_mode},
             check_inferred=not ceil_mode)


def _pool_window(ctx: NodeCtx, in_hw: tuple[int, int], kernel: tuple[int, ...],
                 ceil_mode: bool) -> tuple[dict, int, int]:
    """The window with ceil_mode folded into the end pads: the floor formula then gives (oh, ow)."""
    h, w = in_hw
    win = _window(ctx, in_hw, kernel)
    oh, ow = _out_hw(win, in_hw, ceil_mode)
    if oh < 1 or ow < 1:
        raise ctx.error(f"output would be empty ({oh}x{ow})")
    pt, pl, pb, pr = win["pads"]
    (kh, kw), (sh, sw), (dh, dw) = win["kernel"], win["strides"], win["dilations"]
    pb = max(pb, (oh - 1) * sh + (kh - 1) * dh + 1 - h - pt)
    pr = max(pr, (ow - 1) * sw + (kw - 1) * dw + 1 - w - pl)
    win["pads"] = (pt, pl, pb, pr)
    return win, oh, ow


@handler("AveragePool")
def AveragePool(ctx: NodeCtx) -> None:
    n, c, h, w = _image(ctx)
    kernel = ints(ctx.attr("kernel_shape"), 2, 0, "kernel_shape", ctx)
    ceil_mode = bool(ctx.attr("ceil_mode", 0))
    count_include_pad = int(ctx.attr("count_include_pad", 0))
    count_pads = _window(ctx, (h, w), kernel)["pads"]
    win, oh, ow = _pool_window(ctx, (h, w), kernel, ceil_mode)
    attrs = {**win, "count_include_pad": count_include_pad, "count_pads": count_pads}
    if pool_counts(attrs, (h, w), (oh, ow)).min() < 1:
        raise ctx.unsupported("a window lies entirely in the padding (no input pixel to average)")
    ctx.emit("AveragePool", [ctx.data(0)], shape=(n, c, oh, ow), attrs=attrs, check_inferred=not ceil_mode)


@handler("GlobalMaxPool")
def GlobalMaxPool(ctx: NodeCtx) -> None:
    n, c, _, _ = _image(ctx)
    ctx.emit("GlobalMaxPool", [ctx.data(0)], shape=(n, c, 1, 1))


@handler("ConvTranspose")
def ConvTranspose(ctx: NodeCtx) -> None:
    n, c, h, w = _image(ctx)
    weight = ctx.const(1, "W").astype(np.float32)
    group = int(ctx.attr("group", 1))
    if weight.ndim != 4 or weight.shape[0] != c or group < 1 or c % group:
        raise ctx.error(f"weight shape {weight.shape} does not match an input with {c} channels in {group} groups")
    cig, cog, kh, kw = c // group, weight.shape[1], weight.shape[2], weight.shape[3]
    cout = cog * group
    kernel = ints(ctx.attr("kernel_shape", (kh, kw)), 2, 0, "kernel_shape", ctx)
    if kernel != (kh, kw):
        raise ctx.error(f"kernel_shape {kernel} disagrees with the weight's {(kh, kw)}")
    strides = ints(ctx.attr("strides"), 2, 1, "strides", ctx)
    dilations = ints(ctx.attr("dilations"), 2, 1, "dilations", ctx)
    out_pad = ints(ctx.attr("output_padding"), 2, 0, "output_padding", ctx)
    if min(strides) < 1 or min(dilations) < 1 or min(kernel) < 1 or min(out_pad) < 0:
        raise ctx.error(f"kernel {kernel}, strides {strides}, dilations {dilations} must be >= 1, "
                        f"output_padding {out_pad} >= 0")
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    full = [(n_ - 1) * s + op + (k - 1) * d + 1
            for n_, s, op, k, d in zip((h, w), strides, out_pad, kernel, dilations)]
    want = None
    if ctx.has_attr("output_shape"):
        want = tuple(int(v) for v in ctx.attr("output_shape"))[-2:]
        if len(want) != 2:
            raise ctx.error(f"output_shape {ctx.attr('output_shape')} does not name two spatial sizes")
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        want = (h * strides[0], w * strides[1])
    elif auto_pad not in ("NOTSET", "", "VALID"):
        raise ctx.error(f"auto_pad={auto_pad!r} is not a valid value")
    if want is not None:
        if any(o > f for f, o in zip(full, want)):
            raise ctx.unsupported(f"output_shape {want} is larger than the full output {tuple(full)}")
        total = [f - o for f, o in zip(full, want)]
        # ONNX Runtime's rule (measured): the odd pixel of padding is cut at the end under SAME_UPPER,
        # at the start otherwise
        head = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total]
        pads = (head[0], head[1], total[0] - head[0], total[1] - head[1])
    elif auto_pad == "VALID":
        pads = (0, 0, 0, 0)
    else:
        p = ints(ctx.attr("pads"), 4, 0, "pads", ctx)
        pads = (p[0], p[1], p[2], p[3])
    if min(pads) < 0:
        raise ctx.unsupported(f"negative pads {pads} are not supported")
    oh, ow = full[0] - pads[0] - pads[2], full[1] - pads[1] - pads[3]
    if oh < 1 or ow < 1:
        raise ctx.error(f"output would be empty ({oh}x{ow})")
    bias = ctx.const_or(2, np.zeros(cout, np.float32))
    assert bias is not None
    if bias.shape != (cout,):
        raise ctx.error(f"bias shape {bias.shape} is not ({cout},)")
    # (Cin, Cout/g, kh, kw) -> (Cout, Cin/g, kh, kw): one output channel a row, like Conv's
    wc = weight.reshape(group, cig, cog, kh, kw).transpose(0, 2, 1, 3, 4).reshape(cout, cig, kh, kw)
    attrs = {"kernel": kernel, "strides": strides, "dilations": dilations, "pads": pads,
             "output_padding": out_pad, "group": group}
    ctx.emit("ConvTranspose", [ctx.data(0)], shape=(n, cout, oh, ow), attrs=attrs,
             consts={"W": np.ascontiguousarray(wc), "B": bias.astype(np.float32)})


@handler("GlobalAveragePool")
def GlobalAveragePool(ctx: NodeCtx) -> None:
    n, c, _, _ = _image(ctx)
    ctx.emit("GlobalAveragePool", [ctx.data(0)], shape=(n, c, 1, 1))
