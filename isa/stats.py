"""The counters of one run (ISA.md, Statistics), shared by both models of the ISA.

The numpy emulator and the C simulator return this same type, so a test can
compare them with `==`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from .table import Unit

if TYPE_CHECKING:
    from npuc.hw import HwConfig

UNITS: tuple[str, ...] = tuple(u.name.lower() for u in Unit)  # ("load", "compute", "store")


@dataclass(frozen=True)
class RunStats:
    """Per-unit tuples are indexed by `Unit` (load, compute, store); traffic is in bytes."""

    cycles: int
    busy: tuple[int, int, int]
    token_stall: tuple[int, int, int]
    dram_stall: tuple[int, int, int]
    insns: tuple[int, int, int]
    macs: int
    dram_rd: int
    dram_wr: int
    spad_rd: int
    spad_wr: int
    acc_rd: int
    acc_wr: int

    def utilization(self, hw: HwConfig) -> float:
        """MACs done over MACs the array could have done in `cycles`."""
        return self.macs / (hw.rows * hw.cols * self.cycles) if self.cycles else 0.0

    def per_unit(self, counter: str) -> dict[str, int]:
        """A per-unit counter by unit name: `per_unit("busy")["compute"]`."""
        return dict(zip(UNITS, getattr(self, counter)))

    def __add__(self, other: RunStats) -> RunStats:
        """Counters of two runs one after the other (program segments, samples)."""
        def add(a, b):
            return tuple(x + y for x, y in zip(a, b)) if isinstance(a, tuple) else a + b
        return RunStats(**{f.name: add(getattr(self, f.name), getattr(other, f.name)) for f in fields(RunStats)})


ZERO = RunStats(0, (0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), 0, 0, 0, 0, 0, 0, 0)
