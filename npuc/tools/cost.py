"""A first-order energy and area model: the simulator's exact event counts times the hardware
config's constants (`[energy]` and `[area]`, `npuc/hw/__init__.py`; defaults cited in the README).

    energy = mac_pj·MACs + spad_read_pj·SPAD bytes read + spad_write_pj·SPAD bytes written
           + acc_read_pj·ACC bytes read + acc_write_pj·ACC bytes written
           + dram_pj·(DRAM bytes read + written) + vector_pj·vector element operations
    area   = pe_mm2·rows·cols + spad_mm2_per_kib·spad_kib + acc_mm2_per_kib·acc_kib

MACs are the array's issued MACs (every gemm's M·k·n, zero blocks of a grouped conv are never
issued): energy is spent on what the array does, useful or not.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..hw import HwConfig
from ..isa.stats import RunStats

# (energy constant, the counters it multiplies): one line per term of the formula above
ENERGY_TERMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("mac_pj", ("macs",)),
    ("spad_read_pj", ("spad_rd",)),
    ("spad_write_pj", ("spad_wr",)),
    ("acc_read_pj", ("acc_rd",)),
    ("acc_write_pj", ("acc_wr",)),
    ("dram_pj", ("dram_rd", "dram_wr")),
    ("vector_pj", ("vec_ops",)),
)


@dataclass(frozen=True)
class Energy:
    """Picojoules by term (keys: the constants' names) and in total."""

    terms: dict[str, float]

    @property
    def total_pj(self) -> float:
        return sum(self.terms.values())

    @property
    def total_uj(self) -> float:
        return self.total_pj * 1e-6


def energy(stats: RunStats, hw: HwConfig) -> Energy:
    """The energy of the events counted in `stats` (one run: one sample) under `hw`'s constants."""
    return Energy({const: getattr(hw, const) * sum(getattr(stats, c) for c in counters)
                   for const, counters in ENERGY_TERMS})


def area_mm2(hw: HwConfig) -> float:
    """The array and the two SRAMs, in mm^2."""
    return hw.pe_mm2 * hw.rows * hw.cols + hw.spad_mm2_per_kib * hw.spad_kib + hw.acc_mm2_per_kib * hw.acc_kib
