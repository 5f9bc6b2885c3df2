"""ReduceMean / ReduceMax over the spatial axes: global pooling as real exports spell it.

`x.mean([2, 3])` (ShuffleNetV2, MNASNet) and `x.amax((2, 3), keepdim=True)`
export as ReduceMean / ReduceMax rather than GlobalAveragePool /
GlobalMaxPool. Over exactly H and W of a 4-D map they are those pools;
with keepdims=0 a Flatten to (N, C) follows (its bytes are the pooled map's,
so it is free). Any other axes set stays a host op.
"""

from __future__ import annotations

from .registry import NodeCtx, handler


def _spatial_reduce(ctx: NodeCtx, pool: str) -> None:
    shape = ctx.in_shape(0)
    # opset 18 moved `axes` from an attribute to an optional input
    if ctx.has_input(1):
        axes = [int(a) for a in ctx.const(1, "axes").reshape(-1)]
    else:
        axes = [int(a) for a in (ctx.attr("axes") or [])]
    if not axes:
        if int(ctx.attr("noop_with_empty_axes", 0)):
            raise ctx.unsupported("noop_with_empty_axes=1 with no axes is not supported")
        axes = list(range(len(shape)))
    if any(not -len(shape) <= a < len(shape) for a in axes):
        raise ctx.error(f"axes {axes} are out of range for rank {len(shape)}")
    axes_set = {a % len(shape) for a in axes}
    if len(shape) != 4 or axes_set != {2, 3}:
        raise ctx.unsupported(f"reduction over axes {sorted(axes_set)} of shape {shape}: "
                              "only H and W of a 4-D map run on the NPU")
    n, c = shape[0], shape[1]
    if int(ctx.attr("keepdims", 1)):
        ctx.emit(pool, [ctx.data(0)], shape=(n, c, 1, 1))
        return
    g = ctx.graph
    g.order += 1
    pooled = g.ir.add(g.unique_name(f"{ctx.name}/pool"), pool, [ctx.data(0)], shape=(n, c, 1, 1))
    g.ir.node(pooled)["order"] = g.order
    ctx.emit("Flatten", [pooled], shape=(n, c), attrs={"axis": 1})


@handler("ReduceMean")
def ReduceMean(ctx: NodeCtx) -> None:
    _spatial_reduce(ctx, "GlobalAveragePool")


@handler("ReduceMax")
def ReduceMax(ctx: NodeCtx) -> None:
    _spatial_reduce(ctx, "GlobalMaxPool")
