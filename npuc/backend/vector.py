"""Lut and Mul on the vector unit: tiles streamed through the scratchpad, one `vlut` / `vmul` each.

A tensor is pixels × channels (NHWC; a (1, K) tensor is one pixel of K
channels), read through its Buf's strides, so a view (a channel slice of a
Concat, a strided phase) is read and written in place. The channels are cut
into chunks whose per-channel data fits the scratchpad (a Lut's tables, 256
bytes a channel; a squeeze-excite Mul's row of scales), loaded once per
chunk; the pixels of a chunk are cut into tiles of whole image rows (or
pieces of one row). Each tile is `ld` (two for a Mul of two tensors), one
compute instruction in place and `st`, in one of three slots, so the loads
of tile k+1 and the store of tile k-1 overlap the compute of tile k; the
dependency pass orders the slots' reuse. As in `elementwise.py` a tile is
at most an eighth of the tensor (not below `MIN_TILE` bytes), so load,
compute and store overlap even when the tensor would fit whole.

* Lut, one shared table: `vlut` m = 1, n = the tile's bytes, ts = 0 — the
  lanes are filled whatever the channel count; per-channel tables (PReLU):
  m = pixels, n = channels, ts = 256, the channel as the column.
* Mul of two tensors: `vmul` m = 1 over the tile's bytes; squeeze-excite
  (``broadcast = "channel"``): m = pixels, n = channels, bs = 0 over the
  chunk's one row of scales.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..ir import MulQ
from ..isa.arith import ROUNDING_BY_NAME
from .context import Context, lowering
from .emit import SPAD_ALIGN, BackendError, Buf, Emitter, align_up

MIN_TILE = 512  # bytes: below this the per-instruction latencies dominate
TILES = 8  # target tile count of a tensor that is large enough
SLOTS = 3  # rotating tile slots: load, compute and store of three tiles in flight
TABLE = 256  # bytes of one vlut table


@dataclass(frozen=True)
class Tile:
    """Pixels [y, y+ny) × [x, x+nx) (nx = the row's width when ny > 1), channels [k, k+nk)."""

    y: int
    ny: int
    x: int
    nx: int
    k: int
    nk: int

    @property
    def pixels(self) -> int:
        return self.ny * self.nx

    @property
    def nbytes(self) -> int:
        return self.pixels * self.nk


@dataclass(frozen=True)
class Plan:
    chunk: int  # channels per chunk
    tile: int  # bytes of one tile buffer


def plan(spad_bytes: int, c: int, pixels: int, fixed_per_channel: int, bufs_per_slot: int) -> Plan:
    """The largest channel chunk whose fixed data and SLOTS × bufs_per_slot tile buffers fit the scratchpad."""
    chunk = c
    while True:
        fixed = align_up(chunk * fixed_per_channel, SPAD_ALIGN) if fixed_per_channel else 0
        room = (spad_bytes - fixed) // (SLOTS * bufs_per_slot) // SPAD_ALIGN * SPAD_ALIGN
        if room >= chunk:
            total = pixels * chunk
            want = max(MIN_TILE, align_up(-(-total // TILES), SPAD_ALIGN))
            return Plan(chunk, max(chunk, min(room, want, align_up(total, SPAD_ALIGN))))
        if chunk == 1:
            raise BackendError(f"a scratchpad of {spad_bytes} bytes cannot hold the tiles of one channel")
        chunk = -(-chunk // 2)


def tiles(buf: Buf, chunk: int, tile_bytes: int) -> Iterator[Tile]:
    """The tiles of `buf`, channel chunk by chunk (chunk-major: per-chunk data loads once)."""
    for k in range(0, buf.c, chunk):
        nk = min(chunk, buf.c - k)
        per = max(1, tile_bytes // nk)  # pixels per tile
        if per >= buf.w:
            rows = min(buf.h, per // buf.w)
            for y in range(0, buf.h, rows):
                yield Tile(y, min(rows, buf.h - y), 0, buf.w, k, nk)
        else:
            for y in range(buf.h):
                for x in range(0, buf.w, per):
                    yield Tile(y, 1, x, min(per, buf.w - x), k, nk)


def _dram_box(buf: Buf, t: Tile) -> dict[str, int]:
    """n0/n1/n2 and the DRAM strides of a tile; whole rows of a row-dense tensor are one run."""
    if t.ny > 1 and t.nx == buf.w and buf.rows_dense:
        return {"n0": 1, "n1": t.pixels, "n2": t.nk, "s0": 0, "s1": buf.ps}
    return {"n0": t.ny, "n1": t.nx, "n2": t.nk, "s0": buf.rs, "s1": buf.ps}


def load(em: Emitter, buf: Buf, t: Tile, dst: int) -> None:
    b = _dram_box(buf, t)
    em.emit("ld", dst=dst, src=buf.at(t.y, t.x, t.k), n0=b["n0"], n1=b["n1"], n2=b["n2"], ss0=b["s0"],
            ss1=b["s1"], ds0=b["n1"] * t.nk, ds1=t.nk)


def store(em: Emitter, buf: Buf, t: Tile, src: int) -> None:
    b = _dram_box(buf, t)
    em.emit("st", dst=buf.at(t.y, t.x, t.k), src=src, n0=b["n0"], n1=b["n1"], n2=b["n2"], ds0=b["s0"],
            ds1=b["s1"], ss0=b["n1"] * t.nk, ss1=t.nk)


def _same_geometry(what: str, *bufs: Buf) -> None:
    ref = bufs[0]
    for b in bufs[1:]:
        if (b.c, b.h, b.w, b.flat_of) != (ref.c, ref.h, ref.w, ref.flat_of):
            raise BackendError(f"{what}: tensors of {(b.c, b.h, b.w)} (flattened from {b.flat_of}) and "
                               f"{(ref.c, ref.h, ref.w)} (flattened from {ref.flat_of}) do not lie alike in DRAM")


def lower_lut(em: Emitter, x: Buf, y: Buf, table: np.ndarray, what: str) -> None:
    """Emit y = vlut(x) with `table`: int8 (256,) shared, or (C, 256) one per channel."""
    _same_geometry(what, x, y)
    per_channel = table.ndim == 2
    if per_channel and (table.shape != (x.c, TABLE) or x.flat_of is not None):
        raise BackendError(f"{what}: per-channel tables {table.shape} need an NHWC tensor of {x.c} channels")
    tab_dram = em.add_data(np.ascontiguousarray(table, dtype=np.int8))
    if per_channel:
        p = plan(em.spad.capacity, x.c, x.h * x.w, TABLE, 1)
    else:  # layout-blind: a dense tensor is one run of bytes
        p = plan(em.spad.capacity - TABLE, x.c, x.h * x.w, 0, 1)
    tab = em.spad.take(p.chunk * TABLE if per_channel else TABLE, what)
    slots = [em.spad.take(p.tile, what) for _ in range(SLOTS)]
    if not per_channel:
        em.emit("ld", dst=tab, src=tab_dram, n0=1, n1=1, n2=TABLE)
    chunk = -1
    for i, t in enumerate(tiles(x, p.chunk, p.tile)):
        if per_channel and t.k != chunk:  # this chunk's tables, once
            chunk = t.k
            em.emit("ld", dst=tab, src=tab_dram + t.k * TABLE, n0=1, n1=1, n2=t.nk * TABLE)
        s = slots[i % SLOTS]
        load(em, x, t, s)
        if per_channel:
            em.emit("vlut", dst=s, src=s, tab=tab, m=t.pixels, n=t.nk, ds=t.nk, ss=t.nk, ts=TABLE)
        else:
            em.emit("vlut", dst=s, src=s, tab=tab, m=1, n=t.nbytes, ds=t.nbytes, ss=t.nbytes, ts=0)
        store(em, y, t, s)


def lower_mul(em: Emitter, a: Buf, b: Buf, y: Buf, qop: MulQ, broadcast: bool,
              what: str) -> None:
    """Emit y = vmul(a, b) with the node's parameters (`npuc/passes/quantize_vector.py`, mul_q)."""
    f = {"za": qop.za, "zb": qop.zb, "mul": qop.mul, "sh": qop.sh, "zp": qop.zp_out,
         "lo": qop.lo, "hi": qop.hi, "rnd": int(ROUNDING_BY_NAME[qop.rounding])}
    _same_geometry(what, a, y)
    if broadcast:
        if (b.c, b.h, b.w) != (a.c, 1, 1) or a.flat_of is not None:
            raise BackendError(f"{what}: a channel broadcast needs a (1, {a.c}, 1, 1) scale tensor, got "
                               f"{(b.c, b.h, b.w)}")
        p = plan(em.spad.capacity, a.c, a.h * a.w, 1, 1)
        row = em.spad.take(p.chunk, what)
    else:
        _same_geometry(what, a, b)
        p = plan(em.spad.capacity, a.c, a.h * a.w, 0, 2)
    slots = [tuple(em.spad.take(p.tile, what) for _ in range(1 if broadcast else 2)) for _ in range(SLOTS)]
    chunk = -1
    for i, t in enumerate(tiles(a, p.chunk, p.tile)):
        s = slots[i % SLOTS]
        load(em, a, t, s[0])
        if broadcast:
            if t.k != chunk:  # this chunk's scales, once
                chunk = t.k
                em.emit("ld", dst=row, src=b.at(0, 0, t.k), n0=1, n1=1, n2=t.nk)
            em.emit("vmul", dst=s[0], a=s[0], b=row, m=t.pixels, n=t.nk, ds=t.nk, bs=0, **{"as": t.nk}, **f)
        else:
            load(em, b, t, s[1])
            n = t.nbytes
            em.emit("vmul", dst=s[0], a=s[0], b=s[1], m=1, n=n, ds=n, bs=n, **{"as": n}, **f)
        store(em, y, t, s[0])


@lowering("Lut")
def _lut(ctx: Context, name: str) -> Buf:
    x = ctx.input_buf(name)
    y = dataclasses.replace(ctx.new_buf(name), flat_of=x.flat_of)  # same bytes as the input
    ctx.em.begin_layer(name)
    lower_lut(ctx.em, x, y, ctx.ir.node(name)["qop"].table, ctx.what(name))
    return y


@lowering("Mul")
def _mul(ctx: Context, name: str) -> Buf:
    node = ctx.ir.node(name)
    if len(ctx.ir.preds(name)) != 2:
        raise BackendError(f"{ctx.what(name)}: a Mul by a constant should have been folded into a conv")
    a, b = ctx.input_buf(name, 0), ctx.input_buf(name, 1)
    y = dataclasses.replace(ctx.new_buf(name), flat_of=a.flat_of)
    ctx.em.begin_layer(name)
    lower_mul(ctx.em, a, b, y, node["qop"], node["attrs"].get("broadcast") == "channel", ctx.what(name))
    return y
