"""A sweep's results: the table (CSV and JSON), its Pareto front, a summary and a plot.

`results.csv` has one row per point: a column per swept key (`section.field`), then `status`,
`error`, `cycles`, `accuracy`, `sqnr_db`, `dram_bytes`, `utilization`, `energy_uj`, `area_mm2`,
`pareto`. The front is over fewer cycles and higher quality: accuracy when labels were given
(output SQNR against fp32 breaking ties: a validation set of a few hundred samples ties often),
else output SQNR.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from ...fsutil import atomic_write_bytes, atomic_write_text

METRICS = ("cycles", "accuracy", "sqnr_db", "dram_bytes", "utilization", "energy_uj", "area_mm2")


def quality_key(rows: list[dict[str, Any]]) -> str:
    """The quality axis of the front: accuracy when any row has one, else SQNR."""
    return "accuracy" if any(r.get("accuracy") is not None for r in rows) else "sqnr_db"


def _quality(row: dict[str, Any], key: str) -> tuple[float, float]:
    """The row's quality, compared lexicographically: (accuracy, SQNR) or (SQNR, SQNR)."""

    def number(name: str) -> float:
        q = row.get(name)
        return -math.inf if q is None else float(q)

    return (number(key), number("sqnr_db"))


def pareto_front(rows: list[dict[str, Any]]) -> list[bool]:
    """For each row: on the front of (fewer cycles, higher quality)? Failed rows never are; of
    rows with equal cycles and quality, every one is on the front."""
    key = quality_key(rows)
    ok = [r for r in rows if r["status"] == "ok"]
    out = []
    for r in rows:
        if r["status"] != "ok":
            out.append(False)
            continue
        c, q = r["cycles"], _quality(r, key)
        dominated = any(o["cycles"] <= c and _quality(o, key) >= q and (o["cycles"] < c or _quality(o, key) > q)
                        for o in ok)
        out.append(not dominated)
    return out


def table(rows: list[dict[str, Any]], swept: list[str]) -> list[dict[str, Any]]:
    """The flat result rows, columns in the documented order."""
    front = pareto_front(rows)
    flat = []
    for r, on in zip(rows, front):
        row = {k: r["values"].get(k, "") for k in swept}
        row.update(status=r["status"], error=r.get("error", ""))
        row.update({m: r.get(m) for m in METRICS})
        row["pareto"] = int(on)
        flat.append(row)
    return flat


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return "inf" if math.isinf(v) and v > 0 else "-inf" if math.isinf(v) else f"{v:.6g}"
    return v


def write_tables(out_dir: Path, flat: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(flat[0]), lineterminator="\n")
    writer.writeheader()
    for row in flat:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    atomic_write_text(out_dir / "results.csv", buf.getvalue())
    atomic_write_text(out_dir / "results.json", json.dumps(flat, indent=1, default=str) + "\n")


def summary(flat: list[dict[str, Any]], swept: list[str], key: str) -> str:
    ok = [r for r in flat if r["status"] == "ok"]
    lines = [f"{len(flat)} points: {len(ok)} ok, {len(flat) - len(ok)} failed; quality = {key}"]
    if not ok:
        return "\n".join(lines) + "\n"

    def describe(r: dict[str, Any]) -> str:
        settings = ", ".join(f"{k}={r[k]}" for k in swept)
        acc, db = r["accuracy"], r["sqnr_db"]
        q_text = (f"accuracy {100 * acc:.2f}%, " if acc is not None else "") + \
            (f"SQNR {db:.2f} dB" if db is not None else "SQNR n/a")
        return (f"{settings}: {r['cycles']} cycles, {q_text}, {r['energy_uj']:.3f} uJ, "
                f"{r['area_mm2']:.2f} mm^2")

    fastest = min(ok, key=lambda r: (r["cycles"], tuple(-q for q in _quality(r, key))))
    best = max(ok, key=lambda r: (_quality(r, key), -r["cycles"]))
    lines.append(f"fewest cycles: {describe(fastest)}")
    lines.append(f"best {key}: {describe(best)}")
    lines.append("Pareto front (fewer cycles, higher quality):")
    for r in sorted((r for r in ok if r["pareto"]), key=lambda r: r["cycles"]):
        lines.append(f"  {describe(r)}")
    for r in flat:
        if r["status"] != "ok":
            lines.append(f"failed: {', '.join(f'{k}={r[k]}' for k in swept)}: {r['error']}")
    return "\n".join(lines) + "\n"


def plot(out_dir: Path, flat: list[dict[str, Any]], key: str) -> str | None:
    """pareto.png: quality against cycles with the front marked (and, with labels, a second panel of
    output SQNR, which separates the points accuracy ties); None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    panels = [key] + (["sqnr_db"] if key == "accuracy" else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), dpi=110, squeeze=False)
    for ax, metric in zip(axes[0], panels):
        ok = [r for r in flat if r["status"] == "ok" and r[metric] is not None and math.isfinite(float(r[metric]))]
        front = sorted((r for r in ok if r["pareto"]), key=lambda r: r["cycles"])
        ax.scatter([r["cycles"] for r in ok], [r[metric] for r in ok], s=18, color="0.55", label="points")
        ax.plot([r["cycles"] for r in front], [r[metric] for r in front], "o-", color="C3", ms=6,
                label="Pareto front (cycles, accuracy then SQNR)" if key == "accuracy" else "Pareto front")
        ax.set_xlabel("cycles per inference")
        ax.set_ylabel({"accuracy": "accuracy", "sqnr_db": "output SQNR vs fp32 (dB)"}[metric])
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(out_dir / "pareto.png", buf.getvalue())
    return str(out_dir / "pareto.png")
