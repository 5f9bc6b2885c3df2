"""Human-readable reports of a simulation: cycles first, then units, memory and layers."""

from __future__ import annotations

from ..hw import HwConfig
from ..sim.core import SimStats
from ..sim.driver import UNITS, HostStats, LayerStats
from .cost import area_mm2, energy


def format_stats(stats: SimStats, hw: HwConfig, layers: list[LayerStats] | None = None,
                 samples: int = 1, hosts: list[HostStats] | None = None) -> str:
    """The report `npuc sim` prints; its first line gives the total cycles.

    Host ops (fallback) cost no NPU cycles; they are listed on their own with
    their host wall-clock time per sample."""
    cyc = stats.cycles
    util = stats.macs / (hw.rows * hw.cols * cyc) if cyc else 0.0
    lines = [
        f"cycles: {cyc}" + (f" per sample ({samples} samples, {cyc * samples} in all)" if samples > 1 else ""),
        f"time: {cyc / hw.clock_mhz:.2f} us at {hw.clock_mhz:g} MHz",
        f"array: {hw.rows}x{hw.cols} {hw.dataflow}, MACs {stats.macs}, utilization {100 * util:.2f}%",
        "unit       insns      busy  token-stall  dram-stall",
    ]
    for u, name in enumerate(UNITS):
        lines.append(f"{name:<8} {stats.insns[u]:>7} {stats.busy[u]:>9} {stats.token_stall[u]:>12} "
                     f"{stats.dram_stall[u]:>11}")
    lines.append(f"DRAM: read {stats.dram_rd} B, written {stats.dram_wr} B")
    lines.append(f"SPAD: read {stats.spad_rd} B, written {stats.spad_wr} B")
    lines.append(f"ACC:  read {stats.acc_rd} B, written {stats.acc_wr} B")
    e = energy(stats, hw)
    parts = ", ".join(f"{k.removesuffix('_pj')} {v / 1e6:.3f}" for k, v in e.terms.items())
    lines.append(f"energy: {e.total_uj:.3f} uJ per sample ({parts} uJ); area {area_mm2(hw):.2f} mm^2")
    if hosts:
        per_sample = sum(h.wall_ms / max(h.runs, 1) for h in hosts)
        lines.append(f"host: {len(hosts)} op{'s' if len(hosts) > 1 else ''} run on the host, "
                     f"{per_sample:.3f} ms wall-clock per sample (not in the cycles)")
        width = max(len(h.name) for h in hosts)
        for h in hosts:
            lines.append(f"  {h.name:<{width}} {h.op:<12} at cycle {h.cycle:>10}  "
                         f"{h.wall_ms / max(h.runs, 1):8.3f} ms")
    if layers:
        width = max(12, max(len(ls.name) for ls in layers))
        lines.append("")
        lines.append(f"{'layer':<{width}} {'cycles':>10} {'MACs':>11} {'util%':>6} {'DRAM B':>9} "
                     f"{'load':>9} {'compute':>9} {'store':>9}")
        for ls in layers:
            u = ls.macs / (hw.rows * hw.cols * ls.cycles) if ls.cycles else 0.0
            lines.append(f"{ls.name:<{width}} {ls.cycles:>10} {ls.macs:>11} {100 * u:>6.1f} {ls.dram_bytes:>9} "
                         f"{ls.busy['load']:>9} {ls.busy['compute']:>9} {ls.busy['store']:>9}")
    return "\n".join(lines)
