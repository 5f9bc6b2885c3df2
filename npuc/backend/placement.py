"""Where tensors live so that a concatenation costs no copy (placement, before lowering).

Activations are NHWC in DRAM, so channels [c0, c0 + c) of a Concat output are
a `Buf` view (addr + c0, pixel stride = the concat's channels). An input of a
Concat is *placed* there — its producer's lowering writes straight into the
slice, and the Concat emits nothing for it — when

* its op writes its output through the view (`VIEW_WRITERS`),
* it is not a graph input or output (those are dense tensors of the program),
* it is in no other Concat's slice already (the first Concat wins),
* every other consumer reads through views (`VIEW_READERS`), and
* it carries the Concat's act_q (so the bytes are the Concat's bytes).

A Concat placed in another Concat is a view itself, so nested concats (and
DenseNet's chains, where each concat also feeds its dense layer) share one
buffer. Every other input is copied into its slice by DMA (`copy_view`: ld,
st; no compute). Views reach consumers as they are; one that needs dense
bytes (a Host op, a graph output, a Reshape) gets a dense copy, made once per
tensor (`Context.dense`).
"""

from __future__ import annotations

from ..ir import IR
from .emit import SPAD_ALIGN, BackendError, Buf, Emitter, box_tiles, ld_box, st_box

# ops whose lowering takes its output from `ctx.new_buf` and writes it through the Buf's strides
# (an op of another family joins once its lowering is checked to use `Buf.at`, `ps` and `rs`)
VIEW_WRITERS = frozenset({"Conv", "Gemm", "MaxPool", "GlobalAveragePool", "Add", "Sub", "Concat", "Requant",
                          "ChannelShuffle", "Resize", "Pad", "Lut", "Mul", "EdgePad"})
# ops whose lowering reads its inputs through the Buf's strides (any view of rows_dense pixels)
VIEW_READERS = frozenset({"Conv", "Gemm", "MaxPool", "GlobalAveragePool", "Add", "Sub", "Concat", "Requant",
                          "ChannelSlice", "ChannelShuffle", "Resize", "Pad", "Lut", "Mul", "EdgePad"})


# -- placement ---------------------------------------------------------------------

def plan_concats(ir: IR) -> dict[str, tuple[str, int]]:
    """Node -> (Concat, first channel) for every tensor produced in place inside a Concat's output."""
    placed: dict[str, tuple[str, int]] = {}
    outputs, inputs = set(ir.outputs), set(ir.inputs)
    for c in ir.topo():
        if ir.op(c) != "Concat" or ir.node(c)["attrs"].get("axis", 1) != 1:
            continue  # a row concatenation copies its inputs
        q = ir.node(c).get("act_q")
        c0 = 0
        for p in ir.preds(c):
            ok = (ir.op(p) in VIEW_WRITERS and p not in outputs and p not in inputs and p not in placed
                  and ir.node(p).get("act_q") == q
                  and all(ir.op(s) in VIEW_READERS for s in ir.succs(p) if s != c))
            if ok:
                placed[p] = (c, c0)
            c0 += ir.node(p)["shape"][1]
    return placed


def plan_fused_adds(ir: IR, placed: dict[str, tuple[str, int]]) -> dict[str, str]:
    """Conv -> the Add (or Sub) it feeds, for every Conv whose output only that elementwise op reads:
    the conv's lowering applies the `vadd` to each output tile while it is in the scratchpad (the
    residual branch's tile loaded beside it) and stores the sum, so the conv's output never makes a
    DRAM round trip and the Add costs no pass of its own."""
    out: dict[str, str] = {}
    outputs = set(ir.outputs)
    for conv in ir.topo():
        if ir.op(conv) != "Conv" or conv in outputs or conv in placed:
            continue
        succs = ir.succs(conv)
        if len(succs) != 1 or ir.op(succs[0]) not in ("Add", "Sub"):
            continue
        add = succs[0]
        if add in out.values():
            continue  # both inputs are such convs: the first one takes the Add
        preds = ir.preds(add)
        shape = tuple(ir.node(conv)["shape"])
        if (len(preds) == 2 and preds[0] != preds[1] and len(shape) == 4 and shape[0] == 1
                and all(tuple(ir.node(p)["shape"]) == shape for p in preds) and tuple(ir.node(add)["shape"]) == shape):
            out[conv] = add
    return out


def plan_onchip(ir: IR, placed: dict[str, tuple[str, int]], fused: dict[str, str]) -> dict[str, str]:
    """Conv -> the Conv that alone reads its output: the pairs whose tensor may stay in the scratchpad
    (`codegen` keeps it there when both layers' plans fit beside it and cost no more). A producer is
    not itself a consumer of such a pair (no chains)."""
    out: dict[str, str] = {}
    outputs = set(ir.outputs)
    for p in ir.topo():
        if ir.op(p) != "Conv" or p in outputs or p in placed or p in fused or p in out.values():
            continue
        succs = ir.succs(p)
        if len(succs) == 1 and ir.op(succs[0]) == "Conv" and ir.preds(succs[0]) == [p]:
            out[p] = succs[0]
    return out


def fused_order(ir: IR, fused: dict[str, str], onchip: dict[str, str] | None = None) -> list[str]:
    """The topological order with each fused Conv moved right before its Add, so the Add's other
    input is lowered first (it cannot depend on the Conv: the Conv's only reader is the Add), and
    each on-chip producer right before its consumer (no layer between them takes the SRAM they share)."""
    order = ir.topo()
    for conv, add in fused.items():
        order.remove(conv)
        order.insert(order.index(add), conv)
    for p, q in (onchip or {}).items():
        order.remove(p)
        order.insert(order.index(q), p)
    return order


# -- DMA helpers -------------------------------------------------------------------

def copy_budget(em: Emitter) -> int:
    return max(SPAD_ALIGN, (em.spad.capacity // 2) // SPAD_ALIGN * SPAD_ALIGN)


def copy_view(em: Emitter, x: Buf, y: Buf, what: str, slots: list[int] | None = None) -> None:
    """y = x by DMA (ld, st through two scratchpad slots, taken here unless given), any strides."""
    if (x.c, x.h, x.w) != (y.c, y.h, y.w):
        raise BackendError(f"{what}: copying a {x.c}x{x.h}x{x.w} tensor into a {y.c}x{y.h}x{y.w} one")
    budget = copy_budget(em)
    slots = slots or [em.spad.take(budget, what) for _ in range(2)]
    for k, box in enumerate(box_tiles(x.h, x.w, x.c, budget)):
        ld_box(em, x, slots[k % 2], box)
        st_box(em, y, slots[k % 2], box)


