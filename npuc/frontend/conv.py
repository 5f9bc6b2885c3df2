"""Sliding-window ops: Conv, MaxPool, GlobalAveragePool.

Spatial attributes are normalized for the backend: ``kernel=(kh, kw)``,
``strides=(sh, sw)``, ``dilations=(dh, dw)``, ``pads=(pt, pl, pb, pr)`` with
``auto_pad`` resolved. For MaxPool, ``ceil_mode`` is folded into the pads:
the bottom/right pads grow by what the last (partial) window needs, so the
plain floor formula ``out = (in + pt + pb - (k-1)*d - 1) // s + 1`` holds for
every node the backend sees (MaxPool pads with -inf, so this is exact).
"""

from __future__ import annotations

import math

import numpy as np

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
    if group != 1:
        raise ctx.unsupported(f"group={group} is not supported yet")
    if weight.ndim != 4 or weight.shape[1] != c:
        raise ctx.error(f"weight shape {weight.shape} does not match an input with {c} channels")
    cout, kh, kw = weight.shape[0], weight.shape[2], weight.shape[3]
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
    win = _window(ctx, (h, w), kernel)
    oh, ow = _out_hw(win, (h, w), ceil_mode)
    if oh < 1 or ow < 1:
        raise ctx.error(f"output would be empty ({oh}x{ow})")
    # fold ceil_mode into the end pads: the floor formula then gives (oh, ow)
    pt, pl, pb, pr = win["pads"]
    (kh, kw), (sh, sw), (dh, dw) = win["kernel"], win["strides"], win["dilations"]
    pb = max(pb, (oh - 1) * sh + (kh - 1) * dh + 1 - h - pt)
    pr = max(pr, (ow - 1) * sw + (kw - 1) * dw + 1 - w - pl)
    win["pads"] = (pt, pl, pb, pr)
    # ONNX shape inference (1.23) keeps a last window that starts in the end padding; ORT drops it, and
    # so do we (`out_size`) — the runtime's answer is the one users compare against
    ctx.emit("MaxPool", [ctx.data(0)], shape=(n, c, oh, ow), attrs={**win, "ceil_mode": ceil_mode},
             check_inferred=not ceil_mode)


@handler("GlobalAveragePool")
def GlobalAveragePool(ctx: NodeCtx) -> None:
    n, c, _, _ = _image(ctx)
    ctx.emit("GlobalAveragePool", [ctx.data(0)], shape=(n, c, 1, 1))
