"""Whole-process `npuc sim` time on an ImageNet-sized program: parsing the text vs the binary cache.

    python bench/sim_start.py                         # ResNet-18 (bench/models.py), compiled here once
    python bench/sim_start.py --model mobilenet_v2 --runs 7
    python bench/sim_start.py --program old/r18.s --npuc /path/to/other/venv/bin/npuc --modes text

Builds the model with `bench/models.py` (random weights, 224x224, batch 1),
compiles it with 16 random calibration samples (once; kept in --dir), then
times whole processes, each `npuc sim PROG --input x.npy -o out.npz`:

* `text`     — the command as it is (for an npuc without the cache: parses the text every run);
* `no-cache` — `--no-cache`: parses the text, writes no cache;
* `cold`     — the caches deleted first: parses the text and writes the cache;
* `warm`     — the cache in place: maps it, parses nothing.

Prints min and median wall-clock seconds and the median user+system CPU
seconds of `--runs` runs per mode (modes interleaved run by run, so a busy
machine slows all of them alike), and checks every mode wrote the same outputs.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODES = ("text", "no-cache", "cold", "warm")


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def prepare(model: str, directory: Path, npuc: str) -> Path:
    """The compiled program of `model` in `directory` (compiled once) and an input x.npy beside it."""
    sys.path.insert(0, str(HERE))
    from models import MODELS, calibration, save  # bench/models.py

    directory.mkdir(parents=True, exist_ok=True)
    onnx_path, prog = directory / f"{model}.onnx", directory / f"{model}.s"
    if not onnx_path.exists():
        save(MODELS[model](), onnx_path)
    if not (directory / "calib16.npy").exists():
        np.save(directory / "calib16.npy", calibration(16))
    if not (directory / "x.npy").exists():
        np.save(directory / "x.npy", calibration(1, seed=5))
    if not prog.exists():
        t0 = time.perf_counter()
        subprocess.run([npuc, "compile", str(onnx_path), "-o", str(prog), "--calib", str(directory / "calib16.npy")],
                       check=True, stdout=subprocess.DEVNULL)
        print(f"compiled {prog} in {time.perf_counter() - t0:.1f} s")
    return prog


def run_once(npuc: str, prog: Path, mode: str, out: Path) -> tuple[float, float]:
    """(wall, user+system CPU) seconds of one whole `npuc sim` process in `mode`."""
    if mode == "cold":
        for cache in prog.parent.glob(prog.name + ".*.npub"):
            cache.unlink()
    argv = [npuc, "sim", str(prog), "--input", str(prog.parent / "x.npy"), "-o", str(out)]
    if mode == "no-cache":
        argv.append("--no-cache")
    cpu0 = _child_cpu()
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, _child_cpu() - cpu0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet18", choices=("resnet18", "mobilenet_v2"))
    p.add_argument("--dir", default=Path(tempfile.gettempdir()) / "npuc-bench", type=Path,
                   help="where models, inputs and programs are kept (default: $TMPDIR/npuc-bench)")
    p.add_argument("--program", default=None, type=Path, help="time this prog.s instead (its dir needs x.npy)")
    p.add_argument("--npuc", default=str(Path(sys.executable).with_name("npuc")), help="the npuc executable")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--modes", default="no-cache,cold,warm", help=f"comma-separated, of {', '.join(MODES)}")
    args = p.parse_args(argv)
    prog = args.program or prepare(args.model, args.dir, args.npuc)
    modes = args.modes.split(",")
    outs = {m: prog.parent / f"out-{m}.npz" for m in modes}
    times: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    if "warm" in modes:
        run_once(args.npuc, prog, "cold", outs["warm"])  # the cache the warm runs find
    for _ in range(args.runs):
        for m in modes:
            times[m].append(run_once(args.npuc, prog, m, outs[m]))
    lines = [f"{prog} ({prog.stat().st_size / 1e6:.1f} MB of text), {args.runs} runs each, load "
             f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
             f"{'mode':<9} {'wall min':>9} {'median':>8} {'cpu median':>11}"]
    for m in modes:
        wall = [w for w, _ in times[m]]
        cpu = [c for _, c in times[m]]
        lines.append(f"{m:<9} {min(wall):>8.3f}s {statistics.median(wall):>7.3f}s {statistics.median(cpu):>10.3f}s")
    print("\n".join(lines))
    first = np.load(outs[modes[0]])
    for m in modes[1:]:
        other = np.load(outs[m])
        assert all(np.array_equal(first[k], other[k]) for k in first.files), f"{m} wrote other outputs"
    return 0


if __name__ == "__main__":
    sys.exit(main())
