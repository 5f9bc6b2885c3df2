"""Which memory each instruction reads and writes, as bounding address intervals.

Derived from the Action lines of ISA.md. The compiler's dependency pass uses it
to place tokens; the bounds are conservative (a strided box is summarized by
its lowest and highest address), which can only add a dependency, never miss
one.
"""

from __future__ import annotations

from typing import NamedTuple

from .program import Insn
from .semantics import bounds

DRAM, SPAD, ACC = "DRAM", "SPAD", "ACC"


class Region(NamedTuple):
    mem: str
    lo: int  # lowest address touched (bytes for DRAM/SPAD, words for ACC)
    hi: int  # highest address touched, inclusive
    write: bool


def box_bounds(base: int, extents: tuple[int, ...], strides: tuple[int, ...]) -> tuple[int, int] | None:
    """Lowest and highest address of a strided box, or None when it is empty."""
    return bounds(base, tuple(zip(extents, strides)))


def _box(mem: str, write: bool, base: int, extents: tuple[int, ...], strides: tuple[int, ...]) -> list[Region]:
    b = box_bounds(base, extents, strides)
    return [] if b is None else [Region(mem, b[0], b[1], write)]


def _ld(f: dict[str, int]) -> list[Region]:
    n0p = f["pt"] + f["n0"] + f["pb"]
    n1p = f["pl"] + f["n1"] + f["pr"]
    return (_box(DRAM, False, f["src"], (f["n0"], f["n1"], f["n2"]), (f["ss0"], f["ss1"], 1))
            + _box(SPAD, True, f["dst"], (n0p, n1p, f["n2"]), (f["ds0"], f["ds1"], 1)))


def _lda(f: dict[str, int]) -> list[Region]:
    return (_box(DRAM, False, f["src"], (f["n0"], 4 * f["n1"]), (f["ss0"], 1))
            + _box(ACC, True, f["dst"], (f["n0"], f["n1"]), (f["ds0"], 1)))


def _st(f: dict[str, int]) -> list[Region]:
    ext = (f["n0"], f["n1"], f["n2"])
    return (_box(SPAD, False, f["src"], ext, (f["ss0"], f["ss1"], 1))
            + _box(DRAM, True, f["dst"], ext, (f["ds0"], f["ds1"], 1)))


def _gemm(f: dict[str, int]) -> list[Region]:
    rows = (f["m1"], f["m0"])
    out = _box(ACC, True, f["dst"], rows + (f["n"],), (f["ds1"], f["ds0"], 1))
    if f["acc"] == 1:
        out += _box(ACC, False, f["dst"], rows + (f["n"],), (f["ds1"], f["ds0"], 1))
    if f["m0"] * f["m1"] == 0:
        return out
    if f["acc"] == 2:
        out += _box(ACC, False, f["bias"], (f["n"],), (1,))
    return (out + _box(SPAD, False, f["a"], rows + (f["k"],), (f["as1"], f["as0"], 1))
            + _box(SPAD, False, f["w"], (f["k"], f["n"]), (f["ws"], 1)))


def _dwc(f: dict[str, int]) -> list[Region]:
    rows = (f["m1"], f["m0"])
    out = _box(SPAD, True, f["dst"], rows + (f["c"],), (f["m0"] * f["ds"], f["ds"], 1))
    if f["m0"] * f["m1"] == 0:
        return out
    return (out + _box(SPAD, False, f["a"], rows + (f["kh"], f["kw"], f["c"]),
                       (f["as1"], f["as0"], f["ts1"], f["ts0"], 1))
            + _box(SPAD, False, f["w"], (f["kh"] * f["kw"] * f["c"],), (1,))
            + _box(ACC, False, f["par"], (3 * f["c"],), (1,)))


def _vaddv(f: dict[str, int]) -> list[Region]:
    ext = (f["m"], f["n"])
    vec = _box(ACC, False, f["vec"], (f["n"],), (1,)) if f["m"] > 0 else []
    return (_box(ACC, False, f["src"], ext, (f["ss"], 1)) + vec
            + _box(ACC, True, f["dst"], ext, (f["ds"], 1)))


def _vrq(f: dict[str, int]) -> list[Region]:
    ext = (f["m"], f["n"])
    par = (_box(ACC, False, f["mul"], (f["n"],), (1,)) + _box(ACC, False, f["sh"], (f["n"],), (1,))
           if f["m"] > 0 else [])
    return (_box(ACC, False, f["src"], ext, (f["ss"], 1)) + par
            + _box(SPAD, True, f["dst"], ext, (f["ds"], 1)))


def _vmax(f: dict[str, int]) -> list[Region]:
    ext = (f["m"], f["n"])
    return (_box(SPAD, False, f["a"], ext, (f["as"], 1)) + _box(SPAD, False, f["b"], ext, (f["bs"], 1))
            + _box(SPAD, True, f["dst"], ext, (f["ds"], 1)))


def _vsum(f: dict[str, int]) -> list[Region]:
    out = _box(ACC, True, f["dst"], (f["n"],), (1,))
    if f["acc"]:
        out += _box(ACC, False, f["dst"], (f["n"],), (1,))
    return out + _box(SPAD, False, f["src"], (f["m"], f["n"]), (f["ss"], 1))


def _vlut(f: dict[str, int]) -> list[Region]:
    ext = (f["m"], f["n"])
    tab = _box(SPAD, False, f["tab"], (f["n"], 256), (f["ts"], 1)) if f["m"] > 0 else []
    return (_box(SPAD, False, f["src"], ext, (f["ss"], 1)) + tab
            + _box(SPAD, True, f["dst"], ext, (f["ds"], 1)))


# vadd and vmul touch the boxes vmax does
_REGIONS = {"ld": _ld, "lda": _lda, "st": _st, "gemm": _gemm, "dwc": _dwc, "vaddv": _vaddv, "vrq": _vrq,
            "vmax": _vmax, "vsum": _vsum, "vadd": _vmax, "vlut": _vlut, "vmul": _vmax}


def regions(insn: Insn) -> list[Region]:
    """Every memory interval `insn` reads or writes."""
    return _REGIONS[insn.op](insn.as_dict())
