"""Mixed precision on the NPU, measured: all-int8, all-int4 and the plan for an SQNR target.

    python bench/npu_precision.py small_cnn 15        # the bundled CNN, target 15 dB
    python bench/npu_precision.py resnet18 --samples 2   # target halfway between all-int4 and all-int8

Each row: output SQNR against fp32 (onnxruntime) on held-out samples, whether the simulator equals the
numpy integer reference bit for bit, and NPU cycles per sample (default hardware). The plan is
printed as `npuc compile --npu-widths int4,int8 --sqnr-target DB` prints it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

from npuc.compiler import compile_model
from npuc.hw import load_hw
from npuc.sim.driver import run_program
from npuc.tools.evaluate import check_run
from npuc.tools.mixed_precision import Budget
from npuc.tools.npu_precision import compile_npu_mixed


def _model(name: str, samples: int, tmp: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    if name == "small_cnn":
        from npuc.examples import SMALL_CNN, SMALL_CNN_SAMPLES

        data = np.load(SMALL_CNN_SAMPLES)
        split = len(data) * 3 // 4
        return Path(SMALL_CNN), data[:split], data[split:]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.models import MODELS, calibration, save

    path = tmp / f"{name}.onnx"
    save(MODELS[name](), path)
    return path, calibration(samples, seed=1), calibration(samples, seed=2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", choices=("small_cnn", "resnet18", "mobilenet_v2"))
    p.add_argument("target", type=float, nargs="?", default=None,
                   help="output SQNR target in dB (default: halfway between all-int4 and all-int8)")
    p.add_argument("--samples", type=int, default=4, help="calibration / held-out samples of a bench model")
    args = p.parse_args(argv)
    hw = load_hw("default")
    with tempfile.TemporaryDirectory() as tmp:
        path, calib_x, held_out = _model(args.model, args.samples, Path(tmp))
        name = onnx.load(str(path)).graph.input[0].name
        calib = [{name: x} for x in calib_x]

        def measure(compiled) -> tuple[float, int, int]:
            inputs = {name: held_out}
            run = run_program(compiled.program, inputs)
            (check,), _ = check_run(str(path), compiled, inputs, run)
            return check.sqnr_db, check.mismatches, run.stats[0].cycles

        c8 = compile_model(path, hw, calib=calib)
        layers = tuple(n for n in c8.ir.topo() if c8.ir.op(n) in ("Conv", "Gemm"))
        rows = [("all int8", measure(c8)), ("all int4", measure(compile_model(path, hw, calib=calib,
                                                                              int4_layers=layers)))]
        target = args.target if args.target is not None else round((rows[0][1][0] + rows[1][1][0]) / 2, 1)
        mixed, plan = compile_npu_mixed(path, hw, Budget(target), calib=calib)
        print("\n".join(plan.summary()))
        rows.append((f"plan for {target:g} dB ({len(plan.int4_layers)} of {len(layers)} int4)", measure(mixed)))
    print(f"| {args.model} | output SQNR (dB) | outputs != reference | cycles/sample |")
    print("|---|---|---|---|")
    for name, (db, mism, cyc) in rows:
        print(f"| {name} | {db:.2f} | {mism} | {cyc} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
