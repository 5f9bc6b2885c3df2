"""Reports of a simulation: cycles first, then units, memory and layers; as text, CSV or JSON.

The array's figures are the model's, not the compiler's: utilization is the
model's useful MACs (the program's layer table, by each ONNX op's definition)
over cycles * rows * cols; the MACs issued to the array (zero weight blocks of
grouped convolutions included) are a separate figure. A Conv, ConvTranspose or
Gemm layer has a roofline bound, max(useful MACs / (rows * cols), (input +
output + weight bytes, each once) / DRAM bytes per cycle); the other layers add
cycles but no bound, and the run's bound is the sum of its layers'.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from typing import Any

from ..hw import HwConfig
from ..sim.core import SimStats
from ..sim.driver import UNITS, HostStats, LayerStats
from .cost import area_mm2, energy

FORMATS = ("text", "csv", "json")


@dataclass(frozen=True)
class Roofline:
    """The run's useful work against its roofline: the sums over its layers."""

    useful_macs: int
    bound: float  # cycles: the sum of the Conv/Gemm layers' bounds
    cycles: int

    @classmethod
    def of(cls, layers: list[LayerStats], hw: HwConfig, cycles: int) -> Roofline:
        return cls(sum(ls.useful_macs for ls in layers), sum(ls.bound(hw) or 0.0 for ls in layers), cycles)

    def utilization(self, hw: HwConfig) -> float:
        return self.useful_macs / (self.cycles * hw.rows * hw.cols) if self.cycles else 0.0

    @property
    def ratio(self) -> float | None:
        """cycles / bound, None without a bound."""
        return self.cycles / self.bound if self.bound else None


def format_stats(stats: SimStats, hw: HwConfig, layers: list[LayerStats] | None = None,
                 samples: int = 1, hosts: list[HostStats] | None = None, *,
                 all_layers: list[LayerStats] | None = None, fmt: str = "text") -> str:
    """The report `npuc sim` prints: text (its first line gives the total cycles), or CSV (one row
    per layer and a total row) or JSON (the totals, the counters and the layers) for tools.

    `layers` are printed (text: only with --stats); `all_layers` (default `layers`) give the run's
    useful MACs and bound. Host ops (fallback) cost no NPU cycles; they are listed on their own
    with their host wall-clock time per sample."""
    every = all_layers if all_layers is not None else (layers or [])
    roof = Roofline.of(every, hw, stats.cycles)
    if fmt == "json":
        return _json(stats, hw, layers or [], roof, samples, hosts or [])
    if fmt == "csv":
        return _csv(stats, hw, layers or [], roof)
    if fmt != "text":
        raise ValueError(f"stats format {fmt!r}: one of {', '.join(FORMATS)}")
    return _text(stats, hw, layers, roof, samples, hosts)


def _ratio(x: float | None) -> str:
    return f"{x:.2f}" if x is not None else "-"


def _text(stats: SimStats, hw: HwConfig, layers: list[LayerStats] | None, roof: Roofline, samples: int,
          hosts: list[HostStats] | None) -> str:
    cyc = stats.cycles
    overlap = "" if hw.fold_overlap else ", no fold overlap"
    lines = [
        f"cycles: {cyc}" + (f" per sample ({samples} samples, {cyc * samples} in all)" if samples > 1 else ""),
        f"time: {cyc / hw.clock_mhz:.2f} us at {hw.clock_mhz:g} MHz",
        f"array: {hw.rows}x{hw.cols} {hw.dataflow}{overlap}, useful MACs {roof.useful_macs}, utilization "
        f"{100 * roof.utilization(hw):.2f}%; issued MACs {stats.macs}",
    ]
    if roof.bound:
        lines.append(f"roofline: sum of the Conv/Gemm layers' bounds {roof.bound:.0f} cycles, "
                     f"cycles / bound {roof.ratio:.3f}")
    lines.append("unit       insns      busy  token-stall  dram-stall")
    for u, name in enumerate(UNITS):
        lines.append(f"{name:<8} {stats.insns[u]:>7} {stats.busy[u]:>9} {stats.token_stall[u]:>12} "
                     f"{stats.dram_stall[u]:>11}")
    lines.append(f"array: {stats.gemm_fill} gemm cycles of preload, fill and drain; "
                 f"{stats.gemm_chained} gemms chained")
    lines.append(f"DRAM: read {stats.dram_rd} B, written {stats.dram_wr} B")
    lines.append(f"SPAD: read {stats.spad_rd} B, written {stats.spad_wr} B")
    lines.append(f"ACC:  read {stats.acc_rd} B, written {stats.acc_wr} B")
    if hw.acc_bits < 32 or stats.acc_sat:
        what = "saturated" if hw.acc_bits < 32 else "wrapped"
        lines.append(f"accumulator: {hw.acc_bits} bits, {stats.acc_sat} gemm outputs {what}")
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
        lines.append("per layer: cycles add up to the total; util% = useful MACs / (cycles * R * C); bound = "
                     "max(MACs / (R * C), bytes / BW); stalls: token (load/compute/store), DRAM (load/store), "
                     "gemm fill; energy per sample")
        lines.append(f"{'layer':<{width}} {'cycles':>9} {'useful MACs':>11} {'util%':>6} {'bound':>9} "
                     f"{'c/bound':>7} {'DRAM B':>9} {'token stall l/c/s':>20} {'DRAM stall l/s':>14} "
                     f"{'fill':>7} {'energy uJ':>10}")
        if hw.acc_bits < 32 or stats.acc_sat:
            lines[-1] += f" {'sat':>7}"
        for ls in layers:
            bound = ls.bound(hw)
            tok = "/".join(str(ls.token_stall[u]) for u in UNITS)
            dram = f"{ls.dram_stall['load']}/{ls.dram_stall['store']}"
            lines.append(f"{ls.name:<{width}} {ls.cycles:>9} {ls.useful_macs:>11} "
                         f"{100 * ls.utilization(hw):>6.1f} {'-' if bound is None else str(round(bound)):>9} "
                         f"{_ratio(ls.cycles / bound if bound else None):>7} {ls.dram_bytes:>9} {tok:>20} "
                         f"{dram:>14} {ls.gemm_fill:>7} {_layer_energy(ls, hw):>10}"
                         + (f" {ls.acc_sat:>7}" if hw.acc_bits < 32 or stats.acc_sat else ""))
    return "\n".join(lines)


def _layer_energy(ls: LayerStats, hw: HwConfig) -> str:
    return "-" if ls.events is None else f"{energy(ls.events, hw).total_uj:.4f}"


def layer_row(ls: LayerStats, hw: HwConfig) -> dict[str, Any]:
    """One layer as a flat record (the CSV row; a JSON layer)."""
    bound = ls.bound(hw)
    row: dict[str, Any] = {
        "layer": ls.name, "cycles": ls.cycles, "span": ls.span, "useful_macs": ls.useful_macs,
        "issued_macs": ls.macs, "utilization": round(ls.utilization(hw), 6),
        "bound": round(bound, 3) if bound is not None else None,
        "cycles_per_bound": round(ls.cycles / bound, 6) if bound else None,
        "dram_bytes": ls.dram_bytes, "insns": ls.insns,
    }
    row.update({f"busy_{u}": ls.busy[u] for u in UNITS})
    row.update({f"token_stall_{u}": ls.token_stall[u] for u in UNITS})
    row.update({f"dram_stall_{u}": ls.dram_stall[u] for u in ("load", "store")})
    row["gemm_fill"] = ls.gemm_fill
    row["energy_uj"] = round(energy(ls.events, hw).total_uj, 9) if ls.events is not None else None
    row["acc_sat"] = ls.acc_sat
    return row


def _total_row(stats: SimStats, hw: HwConfig, roof: Roofline) -> dict[str, Any]:
    row: dict[str, Any] = {
        "layer": "total", "cycles": stats.cycles, "span": stats.cycles, "useful_macs": roof.useful_macs,
        "issued_macs": stats.macs, "utilization": round(roof.utilization(hw), 6),
        "bound": round(roof.bound, 3) if roof.bound else None,
        "cycles_per_bound": round(roof.ratio, 6) if roof.ratio is not None else None,
        "dram_bytes": stats.dram_rd + stats.dram_wr, "insns": sum(stats.insns),
    }
    row.update({f"busy_{u}": stats.busy[i] for i, u in enumerate(UNITS)})
    row.update({f"token_stall_{u}": stats.token_stall[i] for i, u in enumerate(UNITS)})
    row.update({f"dram_stall_{u}": stats.dram_stall[i] for i, u in enumerate(UNITS) if u != "compute"})
    row["gemm_fill"] = stats.gemm_fill
    row["energy_uj"] = round(energy(stats, hw).total_uj, 9)
    row["acc_sat"] = stats.acc_sat
    return row


def _csv(stats: SimStats, hw: HwConfig, layers: list[LayerStats], roof: Roofline) -> str:
    rows = [layer_row(ls, hw) for ls in layers] + [_total_row(stats, hw, roof)]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[-1]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if v is None else v for k, v in r.items()})
    return buf.getvalue().rstrip("\n")


def _json(stats: SimStats, hw: HwConfig, layers: list[LayerStats], roof: Roofline, samples: int,
          hosts: list[HostStats]) -> str:
    doc = {
        "hw": hw.to_flat(), "samples": samples, "total": _total_row(stats, hw, roof),
        "counters": asdict(stats), "layers": [layer_row(ls, hw) for ls in layers],
        "hosts": [{"name": h.name, "op": h.op, "cycle": h.cycle, "wall_ms": round(h.wall_ms / max(h.runs, 1), 3)}
                  for h in hosts],
    }
    return json.dumps(doc, indent=1)
