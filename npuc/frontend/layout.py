"""Layout ops: Concat, Split, Slice, Squeeze, Unsqueeze, Transpose, Resize, Pad, and the channel shuffle.

IR produced (semantics in `npuc/reference/layout.py`):

* ``Concat`` ``{"axis": 1}`` — channels of 4-D maps, or axis 1 of (1, K)
  tensors; ``{"axis": 2}`` — rows of 4-D maps (a (1, C, L) sequence is
  lifted to (1, C, L, 1), so YOLO's concatenation of anchors over scales is
  one of rows: contiguous bytes); other axes, constant inputs and one tensor
  twice run on the host.
* ``ChannelSlice`` ``{"start", "end"}`` — one IR node per Split output (opset
  11 ``split`` attribute, opset 13 ``split`` input, opset 18
  ``num_outputs``), and a Slice along channels with step 1 (the other axes
  whole).
* ``Reshape`` — a Squeeze, Unsqueeze or Transpose that leaves the DRAM bytes
  alone (`npuc.nhwc.same_bytes`, e.g. (1, C, 1, 1) <-> (1, C)); any other
  Transpose runs on the host, but for the channel shuffle.
* ``ChannelShuffle`` ``{"groups"}`` — Reshape (N, g, C/g, H, W) ->
  Transpose (0, 2, 1, 3, 4) -> Reshape (N, C, H, W). The 5-D steps are
  emitted as Host nodes (correct on their own), and the last Reshape
  replaces the chain by one ChannelShuffle of the 4-D source: the Host nodes
  are then dead and pruned. A chain that does not complete stays on the host.
* ``Resize`` ``{"mode": "nearest", "scales": (sh, sw)}`` — nearest with
  integer scales whose coordinate mapping is plain replication (checked on
  the actual sizes, see `_nearest_is_replication`); anything else on the host.
* ``Pad`` ``{"pads": (pt, pl, pb, pr), "value"}`` — constant mode, spatial
  axes only, pads >= 0.
* ``EdgePad`` ``{"pads": (pt, pl, pb, pr), "mode": "edge" | "reflect"}`` —
  the Pad modes whose border copies the map's own pixels (reflect: pads
  smaller than the axis). An op of its own, not a Pad attribute, so code that
  knows only constant Pads (the Pad-into-Conv merge, the exporters) cannot
  mistake it for one.
* ``Resize`` mode linear at integer scales with half_pixel,
  pytorch_half_pixel, half_pixel_symmetric or asymmetric coordinates:
  ``EdgePad`` + a depthwise ``ConvTranspose`` with fixed weights (see
  `npuc/frontend/resize_linear.py`); align_corners and the rest on the host.
"""

from __future__ import annotations

import math
from weakref import WeakKeyDictionary

import numpy as np

from ..nhwc import same_bytes
from . import fallback
from .registry import Graph, NodeCtx, handler
from .resize_linear import axis_plan, source_coord

# graph -> {IR node name: (step, groups, 4-D source)} for the Host nodes of a channel shuffle in progress
_SHUFFLE: WeakKeyDictionary[Graph, dict[str, tuple[str, int, str]]] = WeakKeyDictionary()


def _axis(ctx: NodeCtx, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ctx.error(f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _flattened_map(ctx: NodeCtx, src: str) -> bool:
    """True when 2-D IR tensor `src` is a flattened H·W > 1 feature map: its DRAM bytes are in H, W, C
    order, so a slice or a concatenation of it along axis 1 is not one of its byte ranges."""
    ir = ctx.graph.ir
    while ir.op(src) in ("Flatten", "Reshape"):
        (src,) = ir.preds(src)
        shape = ir.node(src)["shape"]
        if len(shape) == 4 and shape[2] * shape[3] > 1 and shape[1] > 1:
            return True
    return False


def _emit_output(ctx: NodeCtx, i: int, op: str, inputs: list[str], shape: tuple[int, ...], attrs: dict) -> str:
    """The IR node for output `i` of a multi-output ONNX node (output 0 is `ctx.emit`'s)."""
    if i == 0:
        return ctx.emit(op, inputs, shape=shape, attrs=attrs)
    g, value = ctx.graph, ctx.node.output[i]
    inferred = g.shapes.get(value)
    if inferred is not None and inferred != shape:
        raise ctx.error(f"output {i} shape {shape} disagrees with ONNX shape inference {inferred}")
    g.order += 1
    name = g.ir.add(g.unique_name(value), op, inputs, attrs=attrs, shape=shape, value=value)
    g.ir.node(name)["order"] = g.order
    g.producer[value] = name
    return name


# -- Concat / Split / Slice -------------------------------------------------------

@handler("Concat")
def Concat(ctx: NodeCtx) -> None:
    inputs = [v for v in ctx.node.input if v]
    shapes = [ctx.in_shape(i) for i in range(len(inputs))]  # a constant input is refused by ctx.data
    rank = len(shapes[0])
    axis = _axis(ctx, int(ctx.attr("axis", 1)), rank)
    if rank not in (2, 4) or axis not in (1, 2) or (axis == 2 and rank != 4):
        raise ctx.unsupported(f"concatenation along axis {axis} of rank-{rank} tensors: only channels "
                              "(axis 1 of 4-D or 2-D) or rows (axis 2 of 4-D) are supported")
    srcs = [ctx.data(i) for i in range(len(inputs))]
    if len(set(srcs)) != len(srcs):
        raise ctx.unsupported("one tensor is concatenated more than once")
    if len(srcs) == 1:
        ctx.alias(0)
        return
    if rank == 2 and any(_flattened_map(ctx, s) for s in srcs):
        raise ctx.unsupported("an input is a flattened feature map (its bytes are in H, W, C order)")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    ctx.emit("Concat", srcs, shape=tuple(out), attrs={"axis": axis})


def _slice_outputs(ctx: NodeCtx, bounds: list[tuple[int, int]]) -> None:
    shape = ctx.in_shape(0)
    src = ctx.data(0)
    if len(shape) not in (2, 4):
        raise ctx.unsupported(f"rank-{len(shape)} input: only 4-D and 2-D tensors are supported")
    if len(shape) == 2 and _flattened_map(ctx, src):
        raise ctx.unsupported("the input is a flattened feature map (its bytes are in H, W, C order)")
    for i, (start, end) in enumerate(bounds):
        if not ctx.node.output[i]:
            continue
        if start == 0 and end == shape[1]:
            ctx.graph.producer[ctx.node.output[i]] = src  # the whole tensor: no node
            continue
        _emit_output(ctx, i, "ChannelSlice", [src], (shape[0], end - start, *shape[2:]),
                     {"start": start, "end": end})


@handler("Split")
def Split(ctx: NodeCtx) -> None:
    shape = ctx.in_shape(0)
    axis = _axis(ctx, int(ctx.attr("axis", 0)), len(shape))
    if axis != 1:
        raise ctx.unsupported(f"split along axis {axis}: only channels (axis 1) are supported")
    n_out = len(ctx.node.output)
    if ctx.has_input(1):
        sizes = [int(s) for s in ctx.const(1, "split").reshape(-1)]
    elif ctx.has_attr("split"):
        sizes = [int(s) for s in ctx.attr("split")]
    else:
        n = int(ctx.attr("num_outputs", n_out))
        chunk = math.ceil(shape[1] / n) if ctx.has_attr("num_outputs") else shape[1] // n
        sizes = [min(chunk, shape[1] - k * chunk) for k in range(n)]
    if len(sizes) != n_out or sum(sizes) != shape[1] or min(sizes) < 1:
        raise ctx.error(f"split sizes {sizes} do not cut {shape[1]} channels into {n_out} outputs")
    starts = np.cumsum([0, *sizes])
    _slice_outputs(ctx, [(int(starts[k]), int(starts[k + 1])) for k in range(n_out)])


@handler("Slice")
def Slice(ctx: NodeCtx) -> None:
    shape = ctx.in_shape(0)
    rank = len(shape)
    starts = [int(v) for v in ctx.const(1, "starts").reshape(-1)]
    ends = [int(v) for v in ctx.const(2, "ends").reshape(-1)]
    axes = [int(v) for v in ctx.const(3, "axes").reshape(-1)] if ctx.has_input(3) else list(range(len(starts)))
    steps = [int(v) for v in ctx.const(4, "steps").reshape(-1)] if ctx.has_input(4) else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ctx.error("starts, ends, axes and steps differ in length")
    lo, hi = [0] * rank, list(shape)
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = _axis(ctx, a, rank)
        if st != 1:
            raise ctx.unsupported(f"step {st} on axis {a}: only step 1 is supported")
        dim = shape[a]
        lo[a] = min(max(s + dim if s < 0 else s, 0), dim)
        hi[a] = min(max(e + dim if e < 0 else e, 0), dim)
    for a in range(rank):
        if a != 1 and (lo[a], hi[a]) != (0, shape[a]):
            raise ctx.unsupported(f"slicing axis {a}: only the channel axis (1) may be cut")
    if hi[1] <= lo[1]:
        raise ctx.error(f"empty slice [{lo[1]}, {hi[1]}) of axis 1")
    _slice_outputs(ctx, [(lo[1], hi[1])])


# -- Squeeze / Unsqueeze / Transpose: aliases, and the channel shuffle --------------

def _axes(ctx: NodeCtx, rank: int) -> list[int] | None:
    if ctx.has_input(1):
        return [_axis(ctx, int(a), rank) for a in ctx.const(1, "axes").reshape(-1)]
    if ctx.has_attr("axes"):
        return [_axis(ctx, int(a), rank) for a in ctx.attr("axes")]
    return None


def _alias_reshape(ctx: NodeCtx, out: tuple[int, ...]) -> None:
    shape = ctx.in_shape(0)
    if not same_bytes(shape, out):
        raise ctx.unsupported(f"{shape} -> {out} moves bytes in DRAM (NHWC): only layout-free forms are supported")
    ctx.emit("Reshape", [ctx.data(0)], shape=out, attrs={"shape": out})


@handler("Squeeze")
def Squeeze(ctx: NodeCtx) -> None:
    shape = ctx.in_shape(0)
    axes = _axes(ctx, len(shape))
    if axes is None:
        axes = [a for a, d in enumerate(shape) if d == 1]
    if any(shape[a] != 1 for a in axes):
        raise ctx.error(f"cannot squeeze axes {axes} of shape {shape}")
    _alias_reshape(ctx, tuple(d for a, d in enumerate(shape) if a not in axes))


@handler("Unsqueeze")
def Unsqueeze(ctx: NodeCtx) -> None:
    shape = ctx.in_shape(0)
    raw = ctx.const(1, "axes").reshape(-1) if ctx.has_input(1) else ctx.attr("axes", [])
    rank = len(shape) + len(raw)
    axes = sorted(_axis(ctx, int(a), rank) for a in raw)
    out, it = [], iter(shape)
    for a in range(rank):
        out.append(1 if a in axes else next(it))
    _alias_reshape(ctx, tuple(out))


@handler("Transpose")
def Transpose(ctx: NodeCtx) -> None:
    shape = ctx.in_shape(0)
    perm = tuple(int(p) for p in ctx.attr("perm", list(range(len(shape)))[::-1]))
    src = ctx.data(0)
    pending = _SHUFFLE.get(ctx.graph, {})
    if src in pending and pending[src][0] == "split" and perm == (0, 2, 1, 3, 4):
        name = fallback.emit_host(ctx, "a step of a channel shuffle")
        pending[name] = ("transpose", pending[src][1], pending[src][2])
        return
    out = tuple(shape[p] for p in perm)
    big = [p for p in perm if shape[p] > 1]
    if big != sorted(big) or len(shape) not in (2, 4):  # a reorder of real axes is a data movement
        raise ctx.unsupported(f"transpose {perm} of {shape} reorders data (only size-1 axes may move)")
    _alias_reshape(ctx, out)


def reshape_shuffle(ctx: NodeCtx, shape: tuple[int, ...], out: list[int]) -> bool:
    """Handle the Reshape steps of a channel shuffle; True when this Reshape was one."""
    src = ctx.data(0)
    g = ctx.graph
    if len(shape) == 4 and len(out) == 5 and out[0] == shape[0] and out[1] * out[2] == shape[1] \
            and tuple(out[3:]) == tuple(shape[2:]):
        name = fallback.emit_host(ctx, "a step of a channel shuffle")
        _SHUFFLE.setdefault(g, {})[name] = ("split", int(out[1]), src)
        return True
    step = _SHUFFLE.get(g, {}).get(src)
    if step is not None and step[0] == "transpose" and tuple(out) == tuple(g.ir.node(step[2])["shape"]):
        ctx.emit("ChannelShuffle", [step[2]], shape=tuple(out), attrs={"groups": step[1]})
        return True
    return False


# -- Resize ------------------------------------------------------------------------

def _nearest_source(o: np.ndarray, scale: float, n_in: int, n_out: int, ctm: str, mode: str) -> np.ndarray:
    """ONNX Resize's nearest input index for output indices `o` along one axis."""
    x = source_coord(o, scale, n_in, n_out, ctm)
    frac = x - np.floor(x)
    if mode == "floor":
        r = np.floor(x)
    elif mode == "ceil":
        r = np.ceil(x)
    elif mode == "round_prefer_floor":
        r = np.where(frac == 0.5, np.floor(x), np.round(x))
    elif mode == "round_prefer_ceil":
        r = np.where(frac == 0.5, np.ceil(x), np.round(x))
    else:
        raise ValueError(mode)
    return np.clip(r, 0, n_in - 1).astype(np.int64)


def _nearest_is_replication(n_in: int, s: int, ctm: str, mode: str) -> bool:
    o = np.arange(n_in * s)
    return bool(np.array_equal(_nearest_source(o, float(s), n_in, n_in * s, ctm, mode), o // s))


@handler("Resize")
def Resize(ctx: NodeCtx) -> None:
    shape = ctx.in_shape(0)
    if len(shape) != 4:
        raise ctx.unsupported(f"rank-{len(shape)} input: only 4-D maps are resized on the NPU")
    mode = ctx.attr("mode", "nearest")
    ctm = ctx.attr("coordinate_transformation_mode", "half_pixel")
    nearest = ctx.attr("nearest_mode", "round_prefer_floor")
    if ctx.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise ctx.unsupported("keep_aspect_ratio_policy other than stretch is not supported")
    axes = [_axis(ctx, int(a), 4) for a in ctx.attr("axes", [0, 1, 2, 3])]
    scales = ctx.const(2, "scales").reshape(-1) if ctx.has_input(2) else np.zeros(0)
    if scales.size:
        full = [1.0] * 4
        for a, s in zip(axes, scales):
            full[a] = float(s)
        out = [math.floor(d * s) for d, s in zip(shape, full)]
    elif ctx.has_input(3):
        sizes = ctx.const(3, "sizes").reshape(-1)
        out = list(shape)
        for a, s in zip(axes, sizes):
            out[a] = int(s)
    else:
        raise ctx.error("neither scales nor sizes is given")
    if out[0] != shape[0] or out[1] != shape[1]:
        raise ctx.unsupported(f"resizing {shape} to {tuple(out)} changes the batch or channel axis")
    factors = []
    for d_in, d_out in zip(shape[2:], out[2:]):
        if d_out % d_in:
            raise ctx.unsupported(f"{shape} -> {tuple(out)}: only integer scale factors are supported")
        factors.append(d_out // d_in)
    if mode == "linear":
        _resize_linear(ctx, shape, factors, ctm)
        return
    if mode != "nearest":
        raise ctx.unsupported(f"mode {mode!r}: only nearest and linear run on the NPU")
    if ctm == "tf_crop_and_resize":
        raise ctx.unsupported("coordinate_transformation_mode tf_crop_and_resize is not supported")
    for d_in, s in zip(shape[2:], factors):
        if not _nearest_is_replication(d_in, s, ctm, nearest):
            raise ctx.unsupported(f"nearest with {ctm} / {nearest} at scale {s} is not a plain replication")
    ctx.emit("Resize", [ctx.data(0)], shape=tuple(out), attrs={"mode": "nearest", "scales": tuple(factors)})


def _resize_linear(ctx: NodeCtx, shape: tuple[int, ...], factors: list[int], ctm: str) -> None:
    """EdgePad + depthwise ConvTranspose with fixed weights (`resize_linear`); the float IR is the
    float Resize, the quantized one an approximation of it (as any conv's)."""
    if int(ctx.attr("antialias", 0)):
        raise ctx.unsupported("linear with antialias is not supported")
    ph, pw = (axis_plan(n, s, ctm) for n, s in zip(shape[2:], factors))
    if ph is None or pw is None:
        raise ctx.unsupported(f"linear with {ctm} at scales {tuple(factors)} is not a fixed-kernel "
                              "transposed convolution")
    n, c, h, w = shape
    src = ctx.data(0)
    pads = (ph.before, pw.before, ph.after, pw.after)
    if any(pads):
        g = ctx.graph
        g.order += 1
        src = g.ir.add(g.unique_name(f"{ctx.name}/edge_pad"), "EdgePad", [src], attrs={"pads": pads, "mode": "edge"},
                       shape=(n, c, h + pads[0] + pads[2], w + pads[1] + pads[3]))
        g.ir.node(src)["order"] = g.order
    kernel = np.outer(ph.kernel, pw.kernel).astype(np.float32)
    attrs = {"kernel": kernel.shape, "strides": (ph.stride, pw.stride), "dilations": (1, 1),
             "pads": (ph.p0, pw.p0, ph.p1, pw.p1), "output_padding": (0, 0), "group": c}
    ctx.emit("ConvTranspose", [src], shape=(n, c, h * ph.stride, w * pw.stride), attrs=attrs,
             consts={"W": np.ascontiguousarray(np.broadcast_to(kernel, (c, 1, *kernel.shape))),
                     "B": np.zeros(c, np.float32)})


# -- Pad -----------------------------------------------------------------------------

@handler("Pad")
def Pad(ctx: NodeCtx) -> None:
    shape = ctx.in_shape(0)
    rank = len(shape)
    mode = ctx.attr("mode", "constant")
    if mode not in ("constant", "edge", "reflect"):
        raise ctx.unsupported(f"mode {mode!r}: only constant, edge and reflect padding run on the NPU")
    if rank != 4:
        raise ctx.unsupported(f"rank-{rank} input: only 4-D maps are padded on the NPU")
    raw = [int(p) for p in ctx.const(1, "pads").reshape(-1)] if ctx.has_input(1) else \
        [int(p) for p in ctx.attr("pads", [])]
    axes = [_axis(ctx, int(a), rank) for a in ctx.const(3, "axes").reshape(-1)] if ctx.has_input(3) \
        else list(range(rank))
    if len(raw) != 2 * len(axes):
        raise ctx.error(f"{len(raw)} pads for {len(axes)} axes")
    begin, end = [0] * rank, [0] * rank
    for k, a in enumerate(axes):
        begin[a], end[a] = raw[k], raw[k + len(axes)]
    if begin[0] or end[0] or begin[1] or end[1]:
        raise ctx.unsupported("padding the batch or channel axis is not supported")
    if min(begin + end) < 0:
        raise ctx.unsupported("negative pads (cropping) are not supported")
    out = (shape[0], shape[1], shape[2] + begin[2] + end[2], shape[3] + begin[3] + end[3])
    if mode != "constant":
        if mode == "reflect" and (max(begin[2], end[2]) >= shape[2] or max(begin[3], end[3]) >= shape[3]):
            raise ctx.unsupported(f"reflect pads {tuple(begin[2:] + end[2:])} reach past the mirrored "
                                  f"{shape[2]}x{shape[3]} map")
        ctx.emit("EdgePad", [ctx.data(0)], shape=out, attrs={"pads": (begin[2], begin[3], end[2], end[3]),
                                                             "mode": mode})
        return
    value = 0.0
    if ctx.has_input(2):
        value = float(ctx.const(2, "constant_value").reshape(()))
    elif ctx.has_attr("value"):
        value = float(ctx.attr("value"))
    ctx.emit("Pad", [ctx.data(0)], shape=out,
             attrs={"pads": (begin[2], begin[3], end[2], end[3]), "value": value})
