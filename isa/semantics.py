"""What each instruction does: one small function per instruction, after its ISA.md Action.

Each function checks every box the Action touches (in the table order of the
boxes' address fields; a box the Action never reads, such as gemm's weights
when M = 0, is not checked), then any other condition, then counts its
traffic and runs the Action. It returns its cycles (for a DMA, the transfer
part `xfer`; the scheduler in `isa/emulator.py` adds the channel and the
latency). A failed check raises `Fault`; the scheduler names the instruction.

The Actions are sequential loops; these functions run them as numpy
gathers and scatters. That is exact when no element written is read by a
later iteration: a scatter to repeated addresses keeps the last value in
loop order, an accumulation into repeated addresses adds every term, and
vaddv/vmax/vadd/vlut/vmul, whose destination can overlap their sources, fall
back to the element loop unless the boxes are disjoint or the very same box.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from npuc.hw import HwConfig

from .arith import add_requantize, mul_requantize, round_shift, wrap_int32
from .stats import ACTION_COUNTERS
from .table import Rounding
from .timing import ArrayState, fold_phases, gemm_cycles

Dims = tuple[tuple[int, int], ...]  # (extent, stride) per dimension, outermost first


class Fault(Exception):
    """A run-time error of one instruction; the message starts with its mnemonic."""


class Traffic:
    """Counters an instruction adds to (ISA.md, Statistics), all starting at 0: the RunStats
    counters declared with `action=True` in isa/stats.py, so a new one needs no edit here."""

    __slots__ = ACTION_COUNTERS  # a misspelt counter is an AttributeError, not a new attribute

    def __init__(self) -> None:
        for name in ACTION_COUNTERS:
            setattr(self, name, 0)

    if TYPE_CHECKING:  # for the type checker: the attributes are the declared counters, all int
        def __getattr__(self, name: str) -> int: ...
        def __setattr__(self, name: str, value: int) -> None: ...


@dataclass
class Machine:
    """The memories an instruction acts on (ISA.md, Machine state)."""

    hw: HwConfig
    dram: np.ndarray  # uint8
    spad: np.ndarray  # int8
    acc: np.ndarray  # int32
    traffic: Traffic = field(default_factory=Traffic)
    array: ArrayState = field(default_factory=ArrayState)  # the fold pipeline (isa/timing.py)
    start: int = 0  # the executing instruction's start cycle and token readiness, set by the scheduler
    ready: int = 0

    def box(self, op: str, name: str, mem: str, base: int, dims: Dims) -> np.ndarray:
        """The addresses of a box (shape = its extents), after checking it lies inside `mem`."""
        size, units = {"DRAM": (self.dram.size, "bytes"), "SPAD": (self.spad.size, "bytes"),
                       "ACC": (self.acc.size, "words")}[mem]
        b = bounds(base, dims)
        if b is not None and not (b[0] >= 0 and b[1] < size):
            raise Fault(f"{op} {name}: address range [{b[0]}, {b[1]}] outside {mem} of {size} {units}")
        return addresses(base, dims) if b is not None else np.zeros([n for n, _ in dims], dtype=np.int64)


def bounds(base: int, dims: Dims) -> tuple[int, int] | None:
    """Lowest and highest address of a box, or None when it is empty (touches nothing)."""
    if any(n <= 0 for n, _ in dims):
        return None
    lo = hi = base
    for n, s in dims:
        span = (n - 1) * s
        if span > 0:
            hi += span
        else:
            lo += span
    return lo, hi


def addresses(base: int, dims: Dims) -> np.ndarray:
    """base + sum_i idx_i * stride_i over the box, as int64 (the box is inside its memory)."""
    out = np.full((), base, dtype=np.int64)
    for n, s in dims:
        out = out[..., None] + np.arange(n, dtype=np.int64) * s
    return out


def injective(dims: Dims) -> bool:
    """Whether no two elements of a box share an address (checked exactly on the addresses)."""
    idx = addresses(0, dims).ravel()
    return np.unique(idx).size == idx.size


def scatter(mem: np.ndarray, idx: np.ndarray, values: np.ndarray) -> None:
    """mem[idx] = values in loop (C) order: where an address repeats, the last value stays."""
    idx = idx.ravel()
    values = values.ravel()
    if idx.size > 1 and not (np.diff(idx) > 0).all() and np.unique(idx).size != idx.size:
        rev = idx[::-1]
        _, first_in_rev = np.unique(rev, return_index=True)
        keep = idx.size - 1 - first_in_rev
        idx, values = idx[keep], values[keep]
    mem[idx] = values


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def dma_xfer(hw: HwConfig, n0: int, n1: int, n2: int, one_burst_per_row: bool) -> int:
    """Transfer cycles of n0 rows of n1 runs of n2 bytes (ISA.md, Bursts)."""
    if one_burst_per_row:
        return n0 * _ceil_div(n1 * n2, hw.dram_bw)
    return n0 * n1 * _ceil_div(n2, hw.dram_bw)


def vec_cost(hw: HwConfig, m: int, n: int) -> int:
    return hw.vec_latency + m * _ceil_div(n, hw.vec_lanes)


# ---- the instructions ---------------------------------------------------------------------


def ld(m: Machine, f: dict[str, int]) -> int:
    e0 = f["pt"] + f["n0"] + f["pb"]
    e1 = f["pl"] + f["n1"] + f["pr"]
    d = m.box("ld", "dst", "SPAD", f["dst"], ((e0, f["ds0"]), (e1, f["ds1"]), (f["n2"], 1)))
    s = m.box("ld", "src", "DRAM", f["src"], ((f["n0"], f["ss0"]), (f["n1"], f["ss1"]), (f["n2"], 1)))
    m.traffic.dram_rd += s.size
    m.traffic.spad_wr += d.size
    if d.size:
        box = np.full(d.shape, f["fill"], dtype=np.int8)
        box[f["pt"]:f["pt"] + f["n0"], f["pl"]:f["pl"] + f["n1"], :] = m.dram[s].view(np.int8)
        scatter(m.spad, d, box)
    return dma_xfer(m.hw, f["n0"], f["n1"], f["n2"], f["ss1"] == f["n2"])


def lda(m: Machine, f: dict[str, int]) -> int:
    d = m.box("lda", "dst", "ACC", f["dst"], ((f["n0"], f["ds0"]), (f["n1"], 1)))
    s = m.box("lda", "src", "DRAM", f["src"], ((f["n0"], f["ss0"]), (4 * f["n1"], 1)))
    m.traffic.dram_rd += 4 * d.size
    m.traffic.acc_wr += 4 * d.size
    if d.size:
        words = np.ascontiguousarray(m.dram[s]).view("<i4").reshape(d.shape)
        scatter(m.acc, d, words.astype(np.int32))
    return dma_xfer(m.hw, f["n0"], 1, 4 * f["n1"], False)


def st(m: Machine, f: dict[str, int]) -> int:
    d = m.box("st", "dst", "DRAM", f["dst"], ((f["n0"], f["ds0"]), (f["n1"], f["ds1"]), (f["n2"], 1)))
    s = m.box("st", "src", "SPAD", f["src"], ((f["n0"], f["ss0"]), (f["n1"], f["ss1"]), (f["n2"], 1)))
    m.traffic.spad_rd += d.size
    m.traffic.dram_wr += d.size
    if d.size:
        scatter(m.dram, d, m.spad[s].view(np.uint8))
    return dma_xfer(m.hw, f["n0"], f["n1"], f["n2"], f["ds1"] == f["n2"])


def gemm(m: Machine, f: dict[str, int]) -> int:
    m0, m1, k, n, mode = f["m0"], f["m1"], f["k"], f["n"], f["acc"]
    rows = m0 * m1
    a16 = f.get("a16", 0)
    d = m.box("gemm", "dst", "ACC", f["dst"], ((m1, f["ds1"]), (m0, f["ds0"]), (n, 1)))
    cost, chained = gemm_cycles(m.hw, m.array, rows, k, n, m.start, m.ready, bool(a16))
    t = m.traffic
    t.gemm_chained += chained
    t.gemm_fill += cost - fold_phases(m.hw, rows, k, n, bool(a16))[1]
    if rows == 0:
        return cost
    a = m.box("gemm", "a", "SPAD", f["a"], ((m1, f["as1"]), (m0, f["as0"]), (2 * k if a16 else k, 1)))
    w4 = f.get("w4", 0)
    w = m.box("gemm", "w", "SPAD", f["w"], ((k, f["ws"]), ((n + 1) // 2 if w4 else n, 1)))
    b = m.box("gemm", "bias", "ACC", f["bias"], ((n, 1),)) if mode == 2 else None
    t.macs += rows * k * n
    t.spad_rd += a.size + w.size
    t.acc_rd += 4 * rows * n if mode == 1 else 4 * n if mode == 2 else 0
    t.acc_wr += 4 * rows * n
    wt = unpack_int4(m.spad[w], n) if w4 else m.spad[w]
    x = m.spad[a].reshape(rows, -1).astype(np.int64)
    if a16:  # little-endian int16: the low byte unsigned, the high byte signed
        x = (x[:, 0::2] & 0xFF) + x[:, 1::2] * 256
    s = x @ wt.astype(np.int64)  # exact: |s| <= k * 2^22
    bits = m.hw.acc_bits
    if b is not None:  # the bias row is read before any output is written
        s = s + m.acc[b].astype(np.int64)
    if mode != 1:
        out, sat = acc_add(s, bits)
        t.acc_sat += sat
        scatter(m.acc, d, out)
    elif injective(((m1, f["ds1"]), (m0, f["ds0"]), (n, 1))):
        out, sat = acc_add(m.acc[d].reshape(rows, n).astype(np.int64) + s, bits)
        t.acc_sat += sat
        m.acc[d.reshape(rows, n)] = out
    else:  # output rows share addresses: each row adds to what the rows before it left, in loop order
        rows_at = d.reshape(rows, n)
        for r in range(rows):
            out, sat = acc_add(m.acc[rows_at[r]].astype(np.int64) + s[r], bits)
            m.acc[rows_at[r]] = out
            t.acc_sat += sat
    return cost


DW_LATENCY = 3  # the depthwise engine's pipeline: multipliers, adder tree, requantizer


def dw_cost(hw: HwConfig, rows: int, c: int, taps: int) -> int:
    """dwc cycles: each output pixel takes ceil(c / lanes) channel groups of ceil(taps / T) steps."""
    return DW_LATENCY + rows * _ceil_div(c, hw.lanes) * _ceil_div(taps, hw.taps)


def dwc(m: Machine, f: dict[str, int]) -> int:
    m0, m1, c, kh, kw = f["m0"], f["m1"], f["c"], f["kh"], f["kw"]
    rows = m0 * m1
    d = m.box("dwc", "dst", "SPAD", f["dst"], ((m1, m0 * f["ds"]), (m0, f["ds"]), (c, 1)))
    a = w = par = None
    if rows > 0:
        a = m.box("dwc", "a", "SPAD", f["a"], ((m1, f["as1"]), (m0, f["as0"]), (kh, f["ts1"]), (kw, f["ts0"]),
                                               (c, 1)))
        w = m.box("dwc", "w", "SPAD", f["w"], ((kh * kw * c, 1),))
        par = m.box("dwc", "par", "ACC", f["par"], ((3, c), (c, 1)))
    if f["lo"] > f["hi"]:
        raise Fault(f"dwc: lo = {f['lo']} > hi = {f['hi']}")
    cost = dw_cost(m.hw, rows, c, kh * kw)
    if rows == 0:
        return cost
    assert a is not None and w is not None and par is not None
    bias, mul, shifts = (m.acc[par[i]].astype(np.int64) for i in range(3))
    bad = np.flatnonzero((shifts < 0) | (shifts > 62))
    if bad.size:
        j = int(bad[0])
        raise Fault(f"dwc par: shift {int(shifts[j])} at channel {j} outside [0, 62]")
    t = m.traffic
    t.macs += rows * kh * kw * c
    t.spad_rd += rows * kh * kw * c + kh * kw * c
    t.acc_rd += 4 * 3 * c
    t.spad_wr += rows * c
    def requant(s: np.ndarray, j: np.ndarray | slice) -> np.ndarray:
        acc = wrap_int32(s + bias[j]).astype(np.int64)  # the int32 sum from the bias, as gemm's acc = 2
        r = round_shift(acc * mul[j], shifts[j], Rounding(f["rnd"])) + f["zp"]
        return np.clip(r, f["lo"], f["hi"]).astype(np.int8)

    dst = (f["dst"], ((m1, m0 * f["ds"]), (m0, f["ds"]), (c, 1)))
    disjoint = all(_in_place_safe(dst, [(base, dims)]) for base, dims in (
        (f["a"], ((m1, f["as1"]), (m0, f["as0"]), (kh, f["ts1"]), (kw, f["ts0"]), (c, 1))),
        (f["w"], ((kh * kw * c, 1),))))
    if disjoint:  # one gather, one scatter
        x = m.spad[a].reshape(rows, kh * kw, c).astype(np.int64)
        s = (x * m.spad[w].reshape(1, kh * kw, c).astype(np.int64)).sum(axis=1)  # |s| < 2^16 * 2^14
        scatter(m.spad, d, requant(s, slice(None)).reshape(d.shape))
        return cost
    # outputs overwrite inputs: element by element, as the Action reads, each seeing earlier writes
    a_flat, w_flat, d_flat = a.reshape(rows, kh * kw, c), w.reshape(kh * kw, c), d.reshape(rows, c)
    for p in range(rows):
        for j in range(c):
            s = np.array([(m.spad[a_flat[p, :, j]].astype(np.int64) * m.spad[w_flat[:, j]]).sum()])
            m.spad[d_flat[p, j]] = requant(s, slice(j, j + 1))[0]
    return cost


def unpack_int4(packed: np.ndarray, n: int) -> np.ndarray:
    """Rows of int4 weights, two per byte (column 2i in the low nibble, 2i + 1 in the high one),
    sign-extended to int8: the first `n` columns (ISA.md, gemm, w4 = 1)."""
    b = packed.astype(np.uint8)
    nib = np.stack([b & 0xF, b >> 4], axis=-1).reshape(*b.shape[:-1], -1)[..., :n].astype(np.int8)
    return np.where(nib >= 8, nib - 16, nib).astype(np.int8)


def pack_int4(w: np.ndarray) -> np.ndarray:
    """The inverse of `unpack_int4`: int values in [-8, 7], last axis packed two per byte (int8)."""
    w = np.asarray(w)
    if w.shape[-1] % 2:
        w = np.concatenate([w, np.zeros((*w.shape[:-1], 1), w.dtype)], axis=-1)
    u = (w.astype(np.int64) & 0xF).astype(np.uint8)
    return (u[..., 0::2] | (u[..., 1::2] << 4)).view(np.int8)


def acc_add(v: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
    """The accumulator adder on exact int64 sums (ISA.md, gemm): int32 words, wrapped mod 2^32 when
    `bits` is 32, else saturated to `bits`; and how many sums left the `bits` range."""
    hi = (1 << (bits - 1)) - 1
    out = (v > hi) | (v < -hi - 1)
    return (wrap_int32(v) if bits == 32 else np.clip(v, -hi - 1, hi).astype(np.int32)), int(out.sum())


def _in_place_safe(write: tuple[int, Dims], reads: list[tuple[int, Dims]]) -> bool:
    """Whether an element loop from `reads` into `write` (same memory) can run as one gather + scatter.

    True when each read box is disjoint from the written one, or is the very
    same box with no repeated address (each element then reads only itself).
    """
    wb = bounds(*write)
    if wb is None:
        return True
    for base, dims in reads:
        rb = bounds(base, dims)
        if rb is None or rb[1] < wb[0] or wb[1] < rb[0]:
            continue
        if (base, dims) != write or not injective(write[1]):
            return False
    return True


def vaddv(m: Machine, f: dict[str, int]) -> int:
    rows, n = f["m"], f["n"]
    dst = (f["dst"], ((rows, f["ds"]), (n, 1)))
    src = (f["src"], ((rows, f["ss"]), (n, 1)))
    vec = (f["vec"], ((n, 1),))
    d = m.box("vaddv", "dst", "ACC", *dst)
    s = m.box("vaddv", "src", "ACC", *src)
    v = m.box("vaddv", "vec", "ACC", *vec) if rows > 0 else None
    cost = vec_cost(m.hw, rows, n)
    if d.size == 0:
        return cost
    assert v is not None
    m.traffic.acc_rd += 4 * (d.size + n)
    m.traffic.acc_wr += 4 * d.size
    m.traffic.vec_ops += d.size
    if _in_place_safe(dst, [src, vec]):
        scatter(m.acc, d, wrap_int32(m.acc[s].astype(np.int64) + m.acc[v].astype(np.int64)))
    else:
        _elementwise(m.acc, d, [s, np.broadcast_to(v, d.shape)], lambda x, y: wrap_int32(np.int64(x) + y))
    return cost


def _elementwise(mem: np.ndarray, d: np.ndarray, srcs: list[np.ndarray],
                 op: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """The Action's element loop, for overlapping boxes: each element reads what earlier ones wrote."""
    flat = [x.ravel() for x in srcs]
    for e, o in enumerate(d.ravel()):
        mem[o] = op(mem[flat[0][e]], mem[flat[1][e]])


def vrq(m: Machine, f: dict[str, int]) -> int:
    rows, n = f["m"], f["n"]
    d = m.box("vrq", "dst", "SPAD", f["dst"], ((rows, f["ds"]), (n, 1)))
    s = m.box("vrq", "src", "ACC", f["src"], ((rows, f["ss"]), (n, 1)))
    mul = m.box("vrq", "mul", "ACC", f["mul"], ((n, 1),)) if rows > 0 else None
    sh = m.box("vrq", "sh", "ACC", f["sh"], ((n, 1),)) if rows > 0 else None
    if f["lo"] > f["hi"]:
        raise Fault(f"vrq: lo = {f['lo']} > hi = {f['hi']}")
    if sh is not None:
        shifts = m.acc[sh]
        bad = np.flatnonzero((shifts < 0) | (shifts > 62))
        if bad.size:
            j = int(bad[0])
            raise Fault(f"vrq sh: shift {int(shifts[j])} at column {j} outside [0, 62]")
    cost = vec_cost(m.hw, rows, n)
    if d.size == 0:
        return cost
    assert mul is not None and sh is not None
    m.traffic.acc_rd += 4 * (d.size + 2 * n)
    m.traffic.spad_wr += d.size
    m.traffic.vec_ops += d.size
    t = m.acc[s].astype(np.int64) * m.acc[mul].astype(np.int64)
    r = round_shift(t, m.acc[sh].astype(np.int64), Rounding(f["rnd"])) + f["zp"]
    scatter(m.spad, d, np.clip(r, f["lo"], f["hi"]).astype(np.int8))
    return cost


def vmax(m: Machine, f: dict[str, int]) -> int:
    rows, n = f["m"], f["n"]
    dst = (f["dst"], ((rows, f["ds"]), (n, 1)))
    opa = (f["a"], ((rows, f["as"]), (n, 1)))
    opb = (f["b"], ((rows, f["bs"]), (n, 1)))
    d = m.box("vmax", "dst", "SPAD", *dst)
    a = m.box("vmax", "a", "SPAD", *opa)
    b = m.box("vmax", "b", "SPAD", *opb)
    cost = vec_cost(m.hw, rows, n)
    if d.size == 0:
        return cost
    m.traffic.spad_rd += 2 * d.size
    m.traffic.spad_wr += d.size
    m.traffic.vec_ops += d.size
    if _in_place_safe(dst, [opa, opb]):
        scatter(m.spad, d, np.maximum(m.spad[a], m.spad[b]))
    else:
        _elementwise(m.spad, d, [a, b], np.maximum)
    return cost


def vsum(m: Machine, f: dict[str, int]) -> int:
    rows, n = f["m"], f["n"]
    d = m.box("vsum", "dst", "ACC", f["dst"], ((n, 1),))
    s = m.box("vsum", "src", "SPAD", f["src"], ((rows, f["ss"]), (n, 1)))
    cost = vec_cost(m.hw, rows, n)
    if n == 0:
        return cost
    m.traffic.spad_rd += s.size
    m.traffic.vec_ops += s.size
    m.traffic.acc_rd += 4 * n if f["acc"] else 0
    m.traffic.acc_wr += 4 * n
    total = m.spad[s].astype(np.int64).sum(axis=0)
    if f["acc"]:
        total = total + m.acc[d]
    m.acc[d] = wrap_int32(total)
    return cost


def _binary(m: Machine, f: dict[str, int], name: str,
            op: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> int:
    """vadd and vmul: dst = op(a, b) over two int8 boxes (same fields dst..bs, lo <= hi)."""
    rows, n = f["m"], f["n"]
    dst = (f["dst"], ((rows, f["ds"]), (n, 1)))
    opa = (f["a"], ((rows, f["as"]), (n, 1)))
    opb = (f["b"], ((rows, f["bs"]), (n, 1)))
    d = m.box(name, "dst", "SPAD", *dst)
    a = m.box(name, "a", "SPAD", *opa)
    b = m.box(name, "b", "SPAD", *opb)
    if f["lo"] > f["hi"]:
        raise Fault(f"{name}: lo = {f['lo']} > hi = {f['hi']}")
    cost = vec_cost(m.hw, rows, n)
    if d.size == 0:
        return cost
    m.traffic.spad_rd += 2 * d.size
    m.traffic.spad_wr += d.size
    m.traffic.vec_ops += d.size
    if _in_place_safe(dst, [opa, opb]):
        scatter(m.spad, d, op(m.spad[a], m.spad[b]))
    else:
        _elementwise(m.spad, d, [a, b], op)
    return cost


def vadd(m: Machine, f: dict[str, int]) -> int:
    return _binary(m, f, "vadd", lambda x, y: add_requantize(
        x, y, f["za"], f["zb"], f["ma"], f["mb"], f["sh"], f["zp"], f["lo"], f["hi"], Rounding(f["rnd"])))


def vlut(m: Machine, f: dict[str, int]) -> int:
    rows, n = f["m"], f["n"]
    dst = (f["dst"], ((rows, f["ds"]), (n, 1)))
    src = (f["src"], ((rows, f["ss"]), (n, 1)))
    tab = (f["tab"], ((n, f["ts"]), (256, 1)))  # every entry a lookup could read, whatever the data
    d = m.box("vlut", "dst", "SPAD", *dst)
    s = m.box("vlut", "src", "SPAD", *src)
    t = m.box("vlut", "tab", "SPAD", *tab) if rows > 0 else None
    cost = vec_cost(m.hw, rows, n)
    if d.size == 0:
        return cost
    assert t is not None
    m.traffic.spad_rd += 2 * d.size  # the source byte and the one table byte it selects
    m.traffic.spad_wr += d.size
    m.traffic.vec_ops += d.size
    # the address of the entry each element reads: tab + j*ts + x + 128
    col = np.broadcast_to(t[:, 0], d.shape)

    if _in_place_safe(dst, [src, tab]):
        scatter(m.spad, d, m.spad[col + m.spad[s].astype(np.int64) + 128])
    else:
        flat_s, flat_c = s.ravel(), col.ravel()
        for e, o in enumerate(d.ravel()):
            m.spad[o] = m.spad[flat_c[e] + int(m.spad[flat_s[e]]) + 128]
    return cost


def vmul(m: Machine, f: dict[str, int]) -> int:
    return _binary(m, f, "vmul", lambda x, y: mul_requantize(
        x, y, f["za"], f["zb"], f["mul"], f["sh"], f["zp"], f["lo"], f["hi"], Rounding(f["rnd"])))


SEMANTICS: dict[str, Callable[[Machine, dict[str, int]], int]] = {
    "ld": ld, "lda": lda, "st": st, "gemm": gemm, "dwc": dwc, "vaddv": vaddv, "vrq": vrq, "vmax": vmax, "vsum": vsum,
    "vadd": vadd, "vlut": vlut, "vmul": vmul,
}
