"""Which DRAM bytes a program writes and reads, byte-exact, from its instructions' boxes.

A program is straight-line code: no branch, no loop, every instruction runs
exactly once whatever the timing (a run that traps stops with an error
anyway). So the DRAM bytes its `st` boxes cover are exactly the bytes stored
at run time, and the bytes its `ld`/`lda` boxes cover exactly the bytes
loaded. Deriving them from the encoded words costs a few milliseconds once
per program and nothing in the C core (which would otherwise need a shadow
bitmap of DRAM updated on every stored byte). `isa/regions.py` gives
bounding intervals (enough for dependencies); this module gives the bytes.

Besides instructions, the initial data segments count as written (the
program declares those bytes) and a host op's tensors as written (outputs)
or read (inputs): the driver moves them whole.

A box is enumerated as its rows of `n2` contiguous bytes (`n0 * n1` runs; a
zero stride repeats addresses, so that dimension counts once). Compiled
programs have a few thousand runs per tensor; a hand-written box beyond
`MAX_RUNS_PER_INSN` runs, or boxes beyond `MAX_RUNS` runs in all, count as
covering their whole bounding interval (documented in ISA.md: the check can
then miss a gap, never report one that is not there).
"""

from __future__ import annotations

import numpy as np

from .image import ProgramImage
from .table import BY_MNEMONIC, HEADER_WORDS

MAX_RUNS_PER_INSN = 1 << 22
MAX_RUNS = 1 << 26
_CHUNK = 1 << 20  # runs enumerated at once


def _fields(image: ProgramImage, op: str, names: tuple[str, ...]) -> list[np.ndarray]:
    spec = BY_MNEMONIC[op]
    rows = image.rows
    sel = rows[(rows[:, 0] & 0xFF) == spec.opcode]
    index = spec.field_names()
    return [sel[:, HEADER_WORDS + index.index(n)].view(np.int32).astype(np.int64) for n in names]


def _boxes(image: ProgramImage, writes: bool) -> tuple[np.ndarray, ...]:
    """Every DRAM box the program stores to (`writes`) or loads from, as 3-D boxes:
    (base, n0, n1, n2, s0, s1), the innermost stride 1."""
    if writes:
        parts = [_fields(image, "st", ("dst", "n0", "n1", "n2", "ds0", "ds1"))]
    else:
        parts = [_fields(image, "ld", ("src", "n0", "n1", "n2", "ss0", "ss1"))]
        src, n0, n1, ss0 = _fields(image, "lda", ("src", "n0", "n1", "ss0"))
        parts.append([src, n0, np.ones_like(n0), 4 * n1, ss0, np.zeros_like(n0)])  # n0 rows of 4*n1 bytes
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(6))


def covered(image: ProgramImage, lo: int, hi: int, *, writes: bool) -> np.ndarray:
    """For each DRAM byte in [lo, hi): whether the program writes it (`writes`) or reads it."""
    size = hi - lo
    diff = np.zeros(size + 1, dtype=np.int64)  # +1 at each run's first byte, -1 after its last
    if size <= 0:
        return np.zeros(0, dtype=bool)

    def mark(starts: np.ndarray, lengths: np.ndarray) -> None:
        a = np.maximum(starts, lo)
        b = np.minimum(starts + lengths, hi)
        keep = a < b
        diff[:] += np.bincount(a[keep] - lo, minlength=size + 1)
        diff[:] -= np.bincount(b[keep] - lo, minlength=size + 1)

    if writes:
        for addr, seg in image.data:
            mark(np.array([addr]), np.array([len(seg)]))
    for h in image.hosts:
        for t in (h.outputs() if writes else h.inputs()):
            mark(np.array([t.addr]), np.array([t.nbytes]))

    base, n0, n1, n2, s0, s1 = _boxes(image, writes)
    n0 = np.where(s0 == 0, np.minimum(n0, 1), n0)  # a zero stride repeats the same addresses
    n1 = np.where(s1 == 0, np.minimum(n1, 1), n1)
    blo = base + np.minimum(0, (n0 - 1) * s0) + np.minimum(0, (n1 - 1) * s1)
    bhi = base + np.maximum(0, (n0 - 1) * s0) + np.maximum(0, (n1 - 1) * s1) + n2  # exclusive
    hit = (n0 > 0) & (n1 > 0) & (n2 > 0) & (blo < hi) & (bhi > lo)
    runs = n0 * n1
    big = hit & (runs > MAX_RUNS_PER_INSN)
    mark(blo[big], bhi[big] - blo[big])
    idx = np.flatnonzero(hit & ~big)
    total = np.cumsum(runs[idx])
    if total.size and total[-1] > MAX_RUNS:
        cut = int(np.searchsorted(total, MAX_RUNS, side="right"))
        rest = idx[cut:]
        mark(blo[rest], bhi[rest] - blo[rest])
        idx = idx[:cut]
    total = np.cumsum(runs[idx])
    start = 0
    while start < idx.size:  # chunks of whole instructions, about _CHUNK runs each
        before = int(total[start - 1]) if start else 0
        stop = max(start + 1, int(np.searchsorted(total, before + _CHUNK, side="right")))
        sel = idx[start:stop]
        counts = runs[sel]
        owner = np.repeat(np.arange(sel.size), counts)
        local = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        i0, i1 = np.divmod(local, n1[sel][owner])
        starts = base[sel][owner] + i0 * s0[sel][owner] + i1 * s1[sel][owner]
        mark(starts, n2[sel][owner])
        start = stop
    return np.cumsum(diff[:-1]) > 0


def touches(image: ProgramImage, lo: int, hi: int, *, writes: bool) -> bool:
    """Whether the program writes (`writes`) or reads any DRAM byte in [lo, hi)."""
    if hi <= lo:
        return False
    base, n0, n1, n2, _, _ = _boxes(image, writes)
    nonempty = (n0 > 0) & (n1 > 0) & (n2 > 0)
    if np.any(nonempty & (base >= lo) & (base < hi)):  # a box's first byte is always touched
        return True
    return bool(covered(image, lo, hi, writes=writes).any())


def element_index(shape: tuple[int, ...], layout: str, elem: int) -> tuple[int, ...]:
    """The ONNX index (batch first) of element `elem` of a tensor laid out `layout` in DRAM."""
    if layout == "nhwc":
        _, c, h, w = shape
        y, x, ch = np.unravel_index(elem, (h, w, c))
        return (0, int(ch), int(y), int(x))
    return tuple(int(i) for i in np.unravel_index(elem, shape))
