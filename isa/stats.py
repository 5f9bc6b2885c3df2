"""The counters of one run (ISA.md, Statistics), shared by both models of the ISA.

The numpy emulator and the C simulator return this same type, so a test can
compare them with `==`. Each counter is declared once, as a field of
`RunStats` made by `counter(doc, per_unit=..., action=...)`; from that
declaration come `ZERO`, `+`, the C struct `npu_stats` (`csrc/npu_types.h`,
by `python -m npuc.isa.gen_header`), the copy out of the C core
(`RunStats.from_counters`, used by `npuc.sim.core`) and the emulator's
per-instruction counters (`semantics.Traffic`, the `action` counters).

Adding a counter is one `counter(...)` line here plus the code that counts
it: in C (csrc/exec.c or sim.c) and in the emulator (an `action` counter in
the instruction's function in `isa/semantics.py`, any other in
`isa/emulator.py`'s scheduler).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from .table import Unit

if TYPE_CHECKING:
    from npuc.hw import HwConfig

UNITS: tuple[str, ...] = tuple(u.name.lower() for u in Unit)  # ("load", "compute", "store")

PerUnit = tuple[int, int, int]  # indexed by Unit: load, compute, store

_KEY = "npuc.stats"


@dataclass(frozen=True)
class Counter:
    """The declaration of one counter (uint64 in C)."""

    doc: str
    per_unit: bool = False  # one value per unit, indexed by Unit
    action: bool = False  # added to by an instruction's Action (semantics.Traffic), not by the scheduler


def counter(doc: str, *, per_unit: bool = False, action: bool = False) -> Any:
    """A RunStats field with its declaration. No default: building a RunStats names every counter."""
    if any(bad in doc for bad in ("\n", "*/", "/*")):
        raise ValueError(f"counter doc {doc!r}: one line without C comment marks (it is a C comment)")
    if per_unit and action:
        raise ValueError("an Action counter is one total; per-unit counters belong to the scheduler")
    return field(metadata={_KEY: Counter(doc, per_unit, action)})


@dataclass(frozen=True)
class RunStats:
    """Per-unit tuples are indexed by `Unit` (load, compute, store); traffic is in bytes."""

    cycles: int = counter("the largest instruction end")
    busy: tuple[int, int, int] = counter("xfer for a DMA, end - start otherwise", per_unit=True)
    token_stall: tuple[int, int, int] = counter("start - free(U) when ready > free(U)", per_unit=True)
    dram_stall: tuple[int, int, int] = counter("x - start of DMAs waiting for the channel", per_unit=True)
    insns: tuple[int, int, int] = counter("instructions executed", per_unit=True)
    macs: int = counter("gemm M * k * n and dwc M * kh * kw * c", action=True)
    dram_rd: int = counter("DRAM bytes read", action=True)
    dram_wr: int = counter("DRAM bytes written", action=True)
    spad_rd: int = counter("SPAD bytes read", action=True)
    spad_wr: int = counter("SPAD bytes written", action=True)
    acc_rd: int = counter("ACC bytes read (4 per word)", action=True)
    acc_wr: int = counter("ACC bytes written (4 per word)", action=True)
    gemm_chained: int = counter("gemms that continued a chain (their preload hidden)", action=True)
    gemm_fill: int = counter("gemm cycles not streaming: fill and drain (cost - streamed length)", action=True)
    vec_ops: int = counter("vector-unit element operations (m * n of vaddv, vrq, vmax, vsum, vadd, vmul, vlut)",
                           action=True)
    acc_sat: int = counter("gemm outputs whose sum left the acc_bits range (saturated, or wrapped at 32 bits)",
                           action=True)

    def utilization(self, hw: HwConfig) -> float:
        """Issued MACs (zero blocks included) over MACs the array could have done in `cycles`; the
        model's utilization counts its useful MACs instead (`npuc.sim.driver.LayerStats`)."""
        return self.macs / (hw.rows * hw.cols * self.cycles) if self.cycles else 0.0

    def per_unit(self, counter: str) -> dict[str, int]:
        """A per-unit counter by unit name: `per_unit("busy")["compute"]`."""
        return dict(zip(UNITS, getattr(self, counter)))

    def __add__(self, other: RunStats) -> RunStats:
        """Counters of two runs one after the other (program segments, samples)."""
        def add(name: str, per_unit: bool) -> Any:  # int, or PerUnit for a per-unit counter
            a, b = getattr(self, name), getattr(other, name)
            return _per_unit(x + y for x, y in zip(a, b)) if per_unit else a + b
        return RunStats(**{name: add(name, c.per_unit) for name, c in COUNTERS})

    @classmethod
    def from_counters(cls, get: Callable[[str], Any]) -> RunStats:
        """Read every declared counter by name with `get` (a C struct's attribute, a dict...):
        per-unit ones as sequences of one value per unit, the others as numbers."""
        def read(name: str, per_unit: bool) -> Any:  # int, or PerUnit for a per-unit counter
            v = get(name)
            return _per_unit(int(v[u]) for u in range(len(UNITS))) if per_unit else int(v)
        return cls(**{name: read(name, c.per_unit) for name, c in COUNTERS})


def _per_unit(values: Any) -> PerUnit:
    load, compute, store = values
    return (load, compute, store)


COUNTERS: tuple[tuple[str, Counter], ...] = tuple((f.name, f.metadata[_KEY]) for f in fields(RunStats))
"""Every counter's name and declaration, in declaration order (the C struct's order)."""

ACTION_COUNTERS: tuple[str, ...] = tuple(name for name, c in COUNTERS if c.action)

_ZEROS: dict[str, Any] = {name: (0,) * len(UNITS) if c.per_unit else 0 for name, c in COUNTERS}
ZERO = RunStats(**_ZEROS)


def _check_types() -> None:
    """A per-unit counter is annotated as a tuple of one int per unit, any other as an int."""
    for f in fields(RunStats):
        want = f"tuple[{', '.join(['int'] * len(UNITS))}]" if f.metadata[_KEY].per_unit else "int"
        if f.type != want:
            raise TypeError(f"RunStats.{f.name}: annotated {f.type}, declared as {want}")


_check_types()
