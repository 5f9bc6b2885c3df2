"""The code generator's workbench: the growing instruction list, DRAM image and SRAM arenas."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from ..hw import HwConfig
from ..isa.program import Insn, LayerWork, make_insn
from .schedule import DEFAULT, Schedule


class BackendError(ValueError):
    """The backend cannot map a node onto the NPU; the message names the node."""


def align_up(x: int, a: int) -> int:
    return -(-x // a) * a


DRAM_ALIGN = 64
SPAD_ALIGN = 32  # matches the dependency tracker's SPAD page
ACC_ALIGN = 8


@dataclass(frozen=True)
class Buf:
    """An int8 activation in DRAM, stored NHWC (batch 1): channel k of pixel (y, x) at
    addr + y*rs + x*ps + k.

    A dense tensor has ps = c and rs = w*c (the defaults, given as 0). A view
    is a window of a larger tensor: a channel slice of a Concat output or a
    Split input (ps = the full tensor's channels), or one phase of a strided
    output (rs, ps multiples of the dense strides), so producers and consumers
    read and write it in place, without copies.
    A 2-D tensor (1, K) is a Buf with h = w = 1 and c = K. `flat_of` records the
    (C, H, W) it was flattened from, in which case its bytes are in H, W, C order.
    """

    addr: int
    c: int
    h: int = 1
    w: int = 1
    flat_of: tuple[int, int, int] | None = None
    ps: int = 0  # bytes between horizontally adjacent pixels; 0: c
    rs: int = 0  # bytes between vertically adjacent pixels; 0: w * ps

    def __post_init__(self) -> None:
        if self.ps == 0:
            object.__setattr__(self, "ps", self.c)
        if self.rs == 0:
            object.__setattr__(self, "rs", self.w * self.ps)

    @property
    def nbytes(self) -> int:
        """The tensor's own bytes (c*h*w), not the span of a view."""
        return self.c * self.h * self.w

    @property
    def dense(self) -> bool:
        """True when the bytes are contiguous, in NHWC order."""
        return self.ps == self.c and self.rs == self.w * self.c

    @property
    def rows_dense(self) -> bool:
        """True when pixels follow each other at stride ps across row ends (pixel p at addr + p*ps)."""
        return self.rs == self.w * self.ps

    def at(self, y: int, x: int, k: int = 0) -> int:
        """DRAM address of channel k of pixel (y, x)."""
        return self.addr + y * self.rs + x * self.ps + k


class Arena:
    """A bump allocator over a window [lo, hi) of one on-chip memory, reset for every layer.

    Consecutive layers take alternate halves of each memory (`Emitter.begin_layer`), so the next
    layer's first loads do not wait for the previous layer's last readers of the same bytes: the
    load of layer i+1's first tile overlaps the last tiles of layer i. A layer that does not fit
    half widens its window to the whole memory (`Emitter.use_whole`)."""

    def __init__(self, name: str, size: int, align: int) -> None:
        self.name, self.size, self.align = name, size, align
        self.lo, self.hi = 0, size
        self.top = 0

    @property
    def capacity(self) -> int:
        """The units of the window, from its (aligned) start."""
        return self.hi - align_up(self.lo, self.align)

    def window(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.reset()

    def reset(self) -> None:
        self.top = self.lo

    def take(self, n: int, what: str) -> int:
        addr = align_up(self.top, self.align)
        if addr + n > self.hi:
            raise BackendError(f"{what}: needs {n} more {self.name} units at {addr}, only {self.hi} exist")
        self.top = addr + n
        return addr


class SlotCache:
    """A few equal buffers in SRAM holding tiles by key, least recently used evicted.

    `get(key)` returns (address, hit). On a miss the caller loads the tile; the
    dependency pass later orders the load after the last reader of the slot.
    """

    def __init__(self, addrs: list[int]) -> None:
        self.free = list(addrs)
        self.held: OrderedDict[Hashable, int] = OrderedDict()

    def get(self, key: Hashable) -> tuple[int, bool]:
        if key in self.held:
            self.held.move_to_end(key)
            return self.held[key], True
        if self.free:
            addr = self.free.pop(0)
        else:
            _, addr = self.held.popitem(last=False)
        self.held[key] = addr
        return addr, False


class Emitter:
    """Collects instructions (tagged with their layer), DRAM data and allocations."""

    def __init__(self, hw: HwConfig, schedule: Schedule = DEFAULT) -> None:
        self.hw = hw
        self.schedule = schedule
        self.insns: list[Insn] = []
        self.layers: list[str] = []
        self.work: dict[int, LayerWork] = {}  # the Conv/Gemm layers' useful MACs and roofline bytes
        self.data: list[tuple[int, bytes]] = []
        self.dram_top = 0
        self.spad = Arena("SPAD byte", hw.spad_bytes, SPAD_ALIGN)
        self.acc = Arena("ACC word", hw.acc_words, ACC_ALIGN)
        self._layer = 0
        self._half = 1  # the first layer takes the lower halves

    def begin_layer(self, name: str, work: LayerWork | None = None) -> None:
        """A new layer: its instructions are tagged with its id; the SRAM arenas take the other half
        of each memory than the previous layer's (see `Arena`)."""
        self._layer = len(self.layers)
        self.layers.append(name)
        if work is not None:
            self.work[self._layer] = work
        self._half = 1 - self._half
        for arena in (self.spad, self.acc):
            arena.window(*self.half_window(arena, self._half))
        if not self.schedule.alternate_halves:
            self.use_whole()

    @staticmethod
    def half_window(arena: Arena, half: int) -> tuple[int, int]:
        """Half `half` (0 lower, 1 upper) of a memory: a layer's window (the whole one if tiny)."""
        h = arena.size // 2 // arena.align * arena.align
        if h < arena.align:
            return 0, arena.size
        return (0, h) if half == 0 else (h, arena.size)

    def next_window(self, arena: Arena) -> tuple[int, int]:
        """The window the next layer's `begin_layer` gives `arena`."""
        if not self.schedule.alternate_halves:
            return 0, arena.size
        return self.half_window(arena, 1 - self._half)

    def add_layer(self, name: str) -> int:
        """Register a layer whose instructions the current layer's loop emits (`emit(layer=...)`):
        its id, without switching to it."""
        self.layers.append(name)
        return len(self.layers) - 1

    def use_whole(self) -> None:
        """Widen this layer's arenas to the whole memories (it does not fit half of them)."""
        for arena in (self.spad, self.acc):
            arena.window(0, arena.size)

    def layer_id(self) -> int:
        return self._layer

    def emit(self, op: str, layer: int | None = None, **fields: int) -> None:
        """Append an instruction of the current layer (or of layer id `layer`: a layer fused into
        another's loop, whose instructions interleave with it)."""
        self.insns.append(make_insn(op, layer=self._layer if layer is None else layer, **fields))

    def alloc_dram(self, nbytes: int) -> int:
        addr = align_up(self.dram_top, DRAM_ALIGN)
        self.dram_top = addr + max(nbytes, 1)
        return addr

    def add_data(self, array: np.ndarray) -> int:
        payload = np.ascontiguousarray(array).tobytes()
        addr = self.alloc_dram(len(payload))
        self.data.append((addr, payload))
        return addr

    @property
    def dram_size(self) -> int:
        return align_up(self.dram_top, DRAM_ALIGN)


def channel_view(base: Buf, c0: int, c: int) -> Buf:
    """Channels [c0, c0 + c) of every pixel of `base`: a view at the same pixel and row strides
    (a single pixel, or a single column's pixel stride, is normalized so `dense` stays exact)."""
    ps = base.ps if base.w > 1 else c
    rs = base.rs if base.h > 1 else base.w * ps
    return Buf(base.addr + c0, c, base.h, base.w, None, ps, rs)


Box = tuple[int, int, int, int, int, int]  # r0, rows, x0, cols, k0, channels


def box_tiles(h: int, w: int, c: int, budget: int) -> list[Box]:
    """Cut an h x w x c tensor into boxes of at most `budget` bytes: whole rows first, then part
    of a row, then part of the channels — so a dense tensor moves in few long bursts."""
    nk = min(c, budget)
    nx = min(w, max(1, budget // nk))
    nr = min(h, max(1, budget // (nx * nk))) if nx == w else 1
    return [(r0, min(nr, h - r0), x0, min(nx, w - x0), k0, min(nk, c - k0))
            for r0 in range(0, h, nr) for x0 in range(0, w, nx) for k0 in range(0, c, nk)]


def ld_box(em: Emitter, x: Buf, dst: int, box: Box) -> None:
    """DMA one box of view `x` into a dense box (rows x cols x channels) in the scratchpad."""
    r0, nr, x0, nx, k0, nk = box
    em.emit("ld", dst=dst, src=x.at(r0, x0, k0), n0=nr, n1=nx, n2=nk, ss0=x.rs, ss1=x.ps, ds0=nx * nk, ds1=nk)


def st_box(em: Emitter, y: Buf, src: int, box: Box) -> None:
    """DMA a dense scratchpad box into the same box of view `y`."""
    r0, nr, x0, nx, k0, nk = box
    em.emit("st", dst=y.at(r0, x0, k0), src=src, n0=nr, n1=nx, n2=nk, ds0=y.rs, ds1=y.ps, ss0=nx * nk, ss1=nk)
