"""`npuc sweep`: quantization rules x microarchitecture -> accuracy, cycles, energy and area.

    result = run_sweep(SweepRequest(model, grid, out_dir, calib=..., data=..., labels=...))

Every point of the grid (`grid.py`) is compiled and simulated exactly as `npuc compile` +
`npuc sim` would (`evaluate.py`, with caches of calibration statistics and programs), on a local
process pool or a Dask cluster (`executors.py`); the rows, their Pareto front, a summary and a
plot land in the output directory (`results.py`). Each finished point is a file of its own, so a
re-run recomputes nothing and an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ...fsutil import atomic_write_text
from ...hw import HwConfig, load_hw
from .evaluate import SweepInputs, file_hash, load_row, reference_outputs
from .executors import EXECUTORS, ExecutorError, run_points
from .grid import COMPILE_KEYS, Grid, GridError, Point, load_grid
from .results import plot, quality_key, summary, table, write_tables

__all__ = ["COMPILE_KEYS", "EXECUTORS", "ExecutorError", "Grid", "GridError", "Point", "SweepRequest", "SweepResult",
           "load_grid", "run_sweep"]


@dataclass(frozen=True)
class SweepRequest:
    model: str | Path
    grid: str | Path
    out_dir: str | Path
    calib: str | Path | None = None
    data: str | Path | None = None
    labels: str | Path | None = None
    hw: str | Path | None = None  # the base config every point starts from (a preset or a file)
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    allow_fallback: bool = True
    executor: str = "local"
    jobs: int = 1
    scheduler: str | None = None  # a Dask scheduler address (default: a local cluster)
    retry_failed: bool = False  # recompute the points a previous run recorded as failed
    progress: bool = False


@dataclass(frozen=True)
class SweepResult:
    rows: list[dict[str, Any]]  # flat rows in grid order (results.csv)
    computed: int  # points evaluated by this run (0 on a complete re-run)
    compiled: int  # programs compiled by this run (the rest came from the cache)
    summary: str
    plot: str | None


def _inputs(req: SweepRequest, base: HwConfig) -> SweepInputs:
    def absolute(p: str | Path | None) -> str | None:
        if p is None:
            return None
        path = Path(p).resolve()
        if not path.exists():
            raise FileNotFoundError(2, "No such file or directory", str(p))
        return str(path)

    paths = {"model": absolute(req.model), "calib": absolute(req.calib), "data": absolute(req.data),
             "labels": absolute(req.labels)}
    return SweepInputs(model=paths["model"] or "", calib=paths["calib"], data=paths["data"], labels=paths["labels"],
                       out_dir=str(Path(req.out_dir).resolve()), base_hw=base.to_flat(),
                       input_shapes=dict(req.input_shapes), allow_fallback=req.allow_fallback,
                       fingerprints={k: file_hash(v) for k, v in paths.items()})


def run_sweep(req: SweepRequest) -> SweepResult:
    """Run every point not finished yet, then write results.csv, results.json, summary.txt, pareto.png."""
    if req.executor not in EXECUTORS:
        raise ExecutorError(f"executor {req.executor!r}: must be one of {', '.join(EXECUTORS)}")
    base = load_hw(req.hw)
    grid = load_grid(req.grid, base)  # every point checked before anything runs
    inputs = _inputs(req, base)
    out = Path(inputs.out_dir)
    for sub in ("points", "cache", "cache/programs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    points = grid.points()
    done: dict[str, dict[str, Any]] = {}
    for p in points:
        row = load_row(out / "points" / f"{p.key}.json")
        if row is not None and not (req.retry_failed and row["status"] == "failed"):
            done[p.key] = row
    todo = [p for p in points if p.key not in done]
    if todo and (inputs.data or inputs.calib):
        reference_outputs(inputs)  # once, here, not in every worker
    computed = compiled = failed = 0
    started = time.perf_counter()
    bar = tqdm(total=len(points), initial=len(points) - len(todo), desc="sweep", unit="point",
               disable=None if req.progress else True)
    try:
        for row in run_points(inputs, todo, req.executor, req.jobs, req.scheduler):
            done[row["point"]] = row
            computed += 1
            compiled += bool(row.get("compiled"))
            failed += row["status"] == "failed"
            bar.set_postfix(failed=failed, elapsed=f"{time.perf_counter() - started:.0f}s")
            bar.update()
    finally:
        bar.close()
    rows = [done[p.key] for p in points]
    swept = grid.swept_keys
    flat = table(rows, swept)
    write_tables(out, flat)
    key = quality_key(flat)
    text = summary(flat, swept, key)
    atomic_write_text(out / "summary.txt", text)
    return SweepResult(flat, computed, compiled, text, plot(out, flat, key))
