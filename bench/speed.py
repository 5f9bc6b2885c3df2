"""npuc against a CPU runtime, in one run: simulation, in-process simulation and compilation.

    python bench/speed.py                              # ResNet-18 and MobileNetV2 (bench/models.py)
    python bench/speed.py --models resnet18 --runs 5

For each model (random weights, 224x224, batch 1; 16 random calibration samples):

* compile   — whole process `npuc compile M.onnx -o M.s --calib calib16.npy` against a whole
              process running onnxruntime's `quantize_static` on the same model and samples
              (QDQ, per-channel int8 weights, int8 activations, MinMax);
* sim       — whole process `npuc sim M.s --input x.npy -o out.npz` (binary cache warm) against a
              whole process that starts Python, loads the QDQ model into onnxruntime, runs one
              inference and saves it (`np.savez`);
* in-proc   — `npuc.sim.load(M.s).run(x)` on a loaded program (the replay path every sample after
              the first takes) against `session.run` with intra_op_num_threads = 1;
* MAC/s     — simulated MACs per second of the C core alone (`replay_words` on one DRAM image).

Each figure is the minimum wall-clock time of --runs runs (the machine is shared: the minimum is
the least disturbed), each pair's runs interleaved. Prints a table with the ratios and the
acceptance targets of issue 12 (sim <= 1.5x, in-process <= 20x, compile <= 1.5x).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TARGETS = {"sim": 1.5, "in-proc": 20.0, "compile": 1.5}

ORT_QUANTIZE = '''
import sys
import numpy as np
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
model, out, calib, name = sys.argv[1:5]
class Reader(CalibrationDataReader):
    def __init__(self):
        self.it = iter([{name: s[None]} for s in np.load(calib)])
    def get_next(self):
        return next(self.it, None)
quantize_static(model, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax)
'''

ORT_RUN = '''
import sys
import numpy as np
import onnxruntime as ort
model, x, out = sys.argv[1:4]
s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
y = s.run(None, {s.get_inputs()[0].name: np.load(x)})
np.savez(out, *y)
'''


def best(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


ENV = dict(os.environ)  # the subprocesses' environment (--bytecode changes it)


def proc(argv: list[str]) -> Callable[[], object]:
    return lambda: subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)


def pair(a: Callable[[], object], b: Callable[[], object], runs: int) -> tuple[float, float]:
    """Minimum times of a and b, their runs interleaved (a busy machine slows both alike)."""
    ta, tb = [], []
    for _ in range(runs):
        ta.append(best(a, 1))
        tb.append(best(b, 1))
    return min(ta), min(tb)


def prepare(model: str, d: Path) -> tuple[Path, str]:
    sys.path.insert(0, str(HERE))
    from models import MODELS, calibration, save  # bench/models.py

    d.mkdir(parents=True, exist_ok=True)
    onnx_path = d / f"{model}.onnx"
    if not onnx_path.exists():
        save(MODELS[model](), onnx_path)
    if not (d / "calib16.npy").exists():
        np.save(d / "calib16.npy", calibration(16))
    if not (d / "x.npy").exists():
        np.save(d / "x.npy", calibration(1, seed=5))
    for name, text in (("ort_quantize.py", ORT_QUANTIZE), ("ort_run.py", ORT_RUN)):
        (d / name).write_text(text)
    import onnx

    return onnx_path, onnx.load(str(onnx_path), load_external_data=False).graph.input[0].name


def measure(model: str, d: Path, exe: str, runs: int) -> dict[str, float]:
    import onnxruntime as ort

    import npuc.sim
    from npuc.sim.core import replay_words

    onnx_path, in_name = prepare(model, d)
    prog, qdq = d / f"{model}.s", d / f"{model}.qdq.onnx"
    py = sys.executable
    compile_argv = [exe, "compile", str(onnx_path), "-o", str(prog), "--calib", str(d / "calib16.npy")]
    quant_argv = [py, str(d / "ort_quantize.py"), str(onnx_path), str(qdq), str(d / "calib16.npy"), in_name]
    r: dict[str, float] = {}
    r["compile"], r["quantize_static"] = pair(proc(compile_argv), proc(quant_argv), runs)
    sim_argv = [exe, "sim", str(prog), "--input", str(d / "x.npy"), "-o", str(d / "out.npz")]
    ort_argv = [py, str(d / "ort_run.py"), str(qdq), str(d / "x.npy"), str(d / "out_ort.npz")]
    proc(sim_argv)()  # the binary cache the timed runs find
    r["sim"], r["ort"] = pair(proc(sim_argv), proc(ort_argv), runs)

    x = np.load(d / "x.npy")
    sim = npuc.sim.load(prog)
    sim.run(x)  # the first sample: timed in full, its order kept
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(qdq), opts, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}
    sess.run(None, feed)
    r["in-proc"], r["session.run"] = pair(lambda: sim.run(x), lambda: sess.run(None, feed), max(runs, 5))

    timed = sim._timed
    assert timed is not None and not sim.image.hosts
    buf = sim._base.copy()
    core = best(lambda: replay_words(sim.image.words, timed.orders[0], buf, sim.hw), max(runs, 5))
    r["core"] = core
    r["macs"] = float(timed.stats.macs)
    return r


def table(results: dict[str, dict[str, float]]) -> str:
    lines = [f"{'model':<13} {'what':<8} {'npuc':>9} {'yardstick':>10} {'ratio':>7} {'target':>7}"]
    for model, r in results.items():
        for what, a, b in (("sim", "sim", "ort"), ("in-proc", "in-proc", "session.run"),
                           ("compile", "compile", "quantize_static")):
            ratio = r[a] / r[b]
            ok = "ok" if ratio <= TARGETS[what] else "MISS"
            lines.append(f"{model:<13} {what:<8} {r[a]:>8.3f}s {r[b]:>9.4f}s {ratio:>6.2f}x {TARGETS[what]:>5.1f}x "
                         f"{ok}")
        lines.append(f"{model:<13} {'core':<8} {r['core']:>8.3f}s  {r['macs'] / 1e9:.2f} GMAC simulated: "
                     f"{r['macs'] / r['core'] / 1e9:.1f} GMAC/s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet18,mobilenet_v2")
    p.add_argument("--dir", default=Path(tempfile.gettempdir()) / "npuc-speed", type=Path,
                   help="where models, programs and inputs are kept (default: $TMPDIR/npuc-speed)")
    p.add_argument("--npuc", default=str(Path(sys.executable).with_name("npuc")), help="the npuc executable")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--bytecode", action="store_true",
                   help="let the timed processes write and use .pyc files even when PYTHONDONTWRITEBYTECODE is set "
                        "(an editable install then compiles npuc's modules from source in every process, which an "
                        "installed npuc, like onnxruntime in site-packages, never does)")
    args = p.parse_args(argv)
    if args.bytecode:
        ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    results = {m: measure(m, args.dir, args.npuc, args.runs) for m in args.models.split(",")}
    print(f"minimum of {args.runs} runs (in-process and core: {max(args.runs, 5)}), load {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs, PYTHONDONTWRITEBYTECODE={ENV.get('PYTHONDONTWRITEBYTECODE', '(unset)')}")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
