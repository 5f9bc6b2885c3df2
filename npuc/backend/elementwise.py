"""Elementwise Add and Sub on the vector unit: one `vadd` per tile.

Both inputs and the output are int8 tensors of one shape stored the same way
in DRAM (NHWC, or the same flattened order), so the op is blind to the layout:
the bytes are cut into tiles, and each tile is two `ld`s, one `vadd` (both
inputs rescaled by their multipliers, summed exactly, rounded once, the fused
activation as the clamp) and one `st`. Every buffer has two slots, so the
loads of tile k+1 and the store of tile k-1 overlap the `vadd` of tile k; the
dependency pass orders the slots' reuse. Tiles are at most an eighth of the
tensor (not below `MIN_TILE` bytes), so even a tensor that fits the
scratchpad whole streams through DRAM, load, compute and store overlapping.
A strided view (a channel slice of a Concat or a Split) is cut into boxes of
pixels instead, each loaded and stored at the view's pixel and row strides.
"""

from __future__ import annotations

from ..ir import AddQ
from ..isa.arith import ROUNDING_BY_NAME
from .conv import _spans, cdiv
from .emit import SPAD_ALIGN, BackendError, Buf, Emitter, align_up, box_tiles, ld_box, st_box

MIN_TILE = 512  # bytes: below this the per-instruction latencies dominate
TILES = 8  # target tile count of a tensor that is large enough


def plan_add(total: int, spad_bytes: int) -> int:
    """Tile size in bytes: six slots (a, b, out; two each) fit the scratchpad."""
    fit = (spad_bytes // 6) // SPAD_ALIGN * SPAD_ALIGN
    return min(total, fit, max(MIN_TILE, align_up(cdiv(total, TILES), SPAD_ALIGN)))


def vadd_fields(qop: AddQ) -> dict[str, int]:
    """The `vadd` fields of an Add / Sub node besides its boxes."""
    return {"za": qop.za, "zb": qop.zb, "ma": qop.ma, "mb": qop.mb, "sh": qop.sh,
            "zp": qop.zp_out, "lo": qop.lo, "hi": qop.hi, "rnd": int(ROUNDING_BY_NAME[qop.rounding])}


def lower_add(em: Emitter, a: Buf, b: Buf, y: Buf, qop: AddQ, what: str) -> None:
    """Emit y = vadd(a, b) with the node's `vadd` parameters (an `AddQ`: `npuc/passes/quantize/core.py`, add_q)."""
    total = y.nbytes
    if a.nbytes != total or b.nbytes != total or a.flat_of != b.flat_of:
        raise BackendError(f"{what}: inputs of {a.nbytes} and {b.nbytes} bytes (flattened from {a.flat_of} and "
                           f"{b.flat_of}) do not lie in DRAM like the {total}-byte output")
    if (a.c, a.h, a.w) != (y.c, y.h, y.w) or (b.c, b.h, b.w) != (y.c, y.h, y.w):
        raise BackendError(f"{what}: inputs {a.c}x{a.h}x{a.w} and {b.c}x{b.h}x{b.w} differ from the output "
                           f"{y.c}x{y.h}x{y.w}")
    tile = plan_add(total, em.spad.capacity)
    if tile < 1:
        raise BackendError(f"{what}: the scratchpad cannot hold six tiles")
    slots = [tuple(em.spad.take(tile, what) for _ in range(3)) for _ in range(2)]
    f = vadd_fields(qop)
    if not (a.dense and b.dense and y.dense):
        # a view (a channel slice of a Concat or Split): boxes of pixels, each moved at its strides
        for k, box in enumerate(box_tiles(y.h, y.w, y.c, tile)):
            sa, sb, so = slots[k % 2]
            n = box[1] * box[3] * box[5]
            ld_box(em, a, sa, box)
            ld_box(em, b, sb, box)
            em.emit("vadd", dst=so, a=sa, b=sb, m=1, n=n, ds=n, bs=n, **{"as": n}, **f)
            st_box(em, y, so, box)
        return
    for k, (off, n) in enumerate(_spans(total, tile)):
        sa, sb, so = slots[k % 2]
        em.emit("ld", dst=sa, src=a.addr + off, n0=1, n1=1, n2=n)
        em.emit("ld", dst=sb, src=b.addr + off, n0=1, n1=1, n2=n)
        em.emit("vadd", dst=so, a=sa, b=sb, m=1, n=n, ds=n, bs=n, **{"as": n}, **f)
        em.emit("st", dst=y.addr + off, src=so, n0=1, n1=1, n2=n)
