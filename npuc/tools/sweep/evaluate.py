"""One point of a sweep: compile (or reuse the cached program), simulate the data, measure.

A point runs exactly what `npuc compile` + `npuc sim` run: the program is written as prog.s into
the sweep's cache and read back before it is simulated, so a row's cycles and outputs are those
of the CLI for the same settings (a test checks). Two caches make re-runs cheap:

* calibration statistics per (model, calibration data, calibration options): the float runs over
  the samples are shared by every hardware and rule setting (`npuc.passes.collect_statistics`);
* the program per (model, calibration data, hardware config, compile options, compiler version).

Every file is written atomically, so a sweep killed at any moment leaves only whole files.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ... import __version__  # the compiler's version: part of every cache key
from ...fsutil import atomic_write_bytes, atomic_write_text
from ...hw import HwConfig
from .grid import Point


@dataclass(frozen=True)
class SweepInputs:
    """What every point shares; plain data, so a job pickles to another process or machine."""

    model: str
    calib: str | None
    data: str | None  # inputs the metrics are measured on (default: the calibration samples)
    labels: str | None
    out_dir: str
    base_hw: dict[str, Any]  # HwConfig.to_flat() of `--hw`
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    allow_fallback: bool = True
    fingerprints: dict[str, str] = field(default_factory=dict)  # file -> content hash (cache keys)

    @property
    def cache(self) -> Path:
        return Path(self.out_dir) / "cache"


def file_hash(path: str | Path | None) -> str:
    """sha256 of a file's bytes, or of every .npy of a directory in name order ('' for None)."""
    if path is None:
        return ""
    p = Path(path)
    h = hashlib.sha256()
    for f in sorted(p.glob("*.npy")) if p.is_dir() else [p]:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def compile_options(inputs: SweepInputs, settings: dict[str, Any]) -> Any:
    """The `CompileOptions` of a point: what `npuc compile` gets from the same flags."""
    from ...compiler import CompileOptions

    keep = ("calib_method", "calib_samples", "calib_batch", "bias_correction", "equalize", "learn_rounding",
            "fold_act_scales")
    return CompileOptions(calib=inputs.calib, input_shapes=dict(inputs.input_shapes),
                          allow_fallback=inputs.allow_fallback, **{k: settings[k] for k in keep if k in settings})


def _statistics(inputs: SweepInputs, options: Any) -> Any:
    """Calibration statistics of the model on the calibration data, observed once per sweep and method."""
    from ...compiler import calibration_samples, prepare_model
    from ...passes import collect_statistics

    key = _key("stats", __version__, inputs.fingerprints.get("model"), inputs.fingerprints.get("calib"),
               options.calib_method, options.calib_samples, options.equalize, options.input_shapes,
               options.allow_fallback)
    path = inputs.cache / f"stats-{key}.pkl"
    if path.is_file():
        try:
            return pickle.loads(path.read_bytes())
        except Exception:  # noqa: BLE001 - a damaged cache file is recomputed, never an error
            pass
    float_ir = prepare_model(inputs.model, options)
    samples, _ = calibration_samples(float_ir, options)
    stats = collect_statistics(float_ir, samples, options.calib_method, options.calib_batch)
    atomic_write_bytes(path, pickle.dumps(stats, protocol=pickle.HIGHEST_PROTOCOL))
    return stats


def program_path(inputs: SweepInputs, hw: HwConfig, settings: dict[str, Any]) -> Path:
    """Where the program of these settings is cached: named by everything it depends on."""
    key = _key("program", __version__, inputs.fingerprints.get("model"), inputs.fingerprints.get("calib"),
               inputs.fingerprints.get("data") if "sqnr_target" in settings or "keep_accuracy" in settings else "",
               inputs.fingerprints.get("labels") if "keep_accuracy" in settings else "",
               hw.to_flat(), sorted(settings.items()), sorted(inputs.input_shapes.items()), inputs.allow_fallback)
    return inputs.cache / "programs" / f"{key}.s"


def _compile(inputs: SweepInputs, hw: HwConfig, settings: dict[str, Any], path: Path) -> None:
    from ...compiler import compile_model
    from ...isa.asm import write_program

    options = compile_options(inputs, settings)
    if "sqnr_target" in settings or "keep_accuracy" in settings:
        from ...tools.mixed_precision import Budget, compile_mixed

        budget = Budget(settings.get("sqnr_target"), settings.get("keep_accuracy"))
        data = np.load(inputs.data) if inputs.data else None
        labels = np.load(inputs.labels).astype(np.int64).ravel() if inputs.labels else None
        compiled, _ = compile_mixed(inputs.model, hw, budget, options, data=data, labels=labels)
    else:
        compiled = compile_model(inputs.model, hw, options, statistics=_statistics(inputs, options))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_program(compiled.program, path)


def _eval_inputs(inputs: SweepInputs, prog: Any) -> dict[str, np.ndarray]:
    """The samples the metrics are measured on, keyed as `npuc sim --input` binds them."""
    from ...cli.commands import bind_inputs, load_inputs

    source = inputs.data or inputs.calib
    if source is None:
        from ...sim.driver import random_inputs

        return random_inputs(prog, seed=0)
    bound = bind_inputs(prog, load_inputs(source), source)
    assert bound is not None
    return bound


def reference_outputs(inputs: SweepInputs) -> dict[str, np.ndarray]:
    """fp32 outputs of the original model on the evaluation data (onnxruntime), cached once per sweep."""
    key = _key("fp32", inputs.fingerprints.get("model"), inputs.fingerprints.get("data") or
               inputs.fingerprints.get("calib"), sorted(inputs.input_shapes.items()))
    path = inputs.cache / f"fp32-{key}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        except Exception:  # noqa: BLE001 - recomputed below
            pass
    import onnxruntime as ort

    source = inputs.data or inputs.calib
    if source is None:
        return {}
    x = np.load(source)
    sess = ort.InferenceSession(inputs.model, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: x[i:i + 1].astype(np.float32)}) for i in range(len(x))]
    ref = {o.name: np.concatenate([r[j] for r in outs]) for j, o in enumerate(sess.get_outputs())}
    buf = io.BytesIO()
    np.savez(buf, **ref)
    atomic_write_bytes(path, buf.getvalue())
    return ref


def evaluate(inputs: SweepInputs, point: Point) -> dict[str, Any]:
    """The result row of `point` (computing what the caches lack); written to points/<key>.json."""
    started = time.perf_counter()
    row: dict[str, Any] = {"point": point.key, "values": point.values, "status": "ok", "error": "",
                           "compiled": False}
    try:
        row.update(_measure(inputs, point, row))
    except Exception as e:  # noqa: BLE001 - a failed point is recorded and the sweep goes on
        from ...errors import one_line, user_error_types

        row["status"] = "failed"
        kind = "" if isinstance(e, user_error_types()) else f"internal error ({type(e).__name__}): "
        row["error"] = kind + one_line(e)
        if kind:
            row["traceback"] = traceback.format_exc()
    row["seconds"] = round(time.perf_counter() - started, 3)
    atomic_write_text(Path(inputs.out_dir) / "points" / f"{point.key}.json", json.dumps(row, default=_plain))
    return row


def _measure(inputs: SweepInputs, point: Point, row: dict[str, Any]) -> dict[str, Any]:
    from ... import sim
    from ...quant.metrics import accuracy, sqnr_db
    from ..cost import area_mm2, energy
    from ..report import Roofline

    hw = point.hw(HwConfig.from_flat(inputs.base_hw))
    settings = point.compile_settings()
    path = program_path(inputs, hw, settings)
    if not path.is_file():
        _compile(inputs, hw, settings, path)
        row["compiled"] = True
    loaded = sim.load(path)  # what `npuc sim` would read: its binary cache when intact, parsed once
    prog = loaded.image
    run = loaded.run(_eval_inputs(inputs, prog))  # every sample after the first replayed, on threads
    stats = run.stats[0]
    names = [t.name for t in prog.outputs()]
    out = {"program": str(path), "cycles": stats.cycles, "dram_bytes": stats.dram_rd + stats.dram_wr,
           "utilization": Roofline.of(run.layers, hw, stats.cycles).utilization(hw),  # useful MACs
           "energy_uj": energy(stats, hw).total_uj,
           "area_mm2": area_mm2(hw), "accuracy": None, "sqnr_db": None}
    if inputs.labels:
        labels = np.load(inputs.labels).astype(np.int64).ravel()
        out["accuracy"] = accuracy(run.outputs[names[0]], labels)
    ref = reference_outputs(inputs)
    if ref and all(n in ref for n in names):
        got = np.concatenate([run.outputs[n].ravel() for n in names])
        want = np.concatenate([ref[n].reshape(run.outputs[n].shape).ravel() for n in names])
        out["sqnr_db"] = sqnr_db(want, got)
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if hasattr(v, "__dataclass_fields__"):
        return asdict(v)
    return str(v)


def load_row(path: Path) -> dict[str, Any] | None:
    """A finished point's row, or None when the file is missing or damaged (then it is recomputed)."""
    try:
        row = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return row if isinstance(row, dict) and row.get("status") in ("ok", "failed") else None
