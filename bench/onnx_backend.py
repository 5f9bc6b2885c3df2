"""The onnx wheel's backend test models, as shipped, through npuc: compile, simulate, compare.

Every model of `onnx/backend/test/data/{pytorch-converted,pytorch-operator,simple}` with one
float input and a reference output (105 with onnx 1.23) is compiled with npuc's Python API
(`compile_model`, default hardware preset), calibrated on its own test input
(`test_data_set_0/input_0.pb`, saved as a .npy: its first axis is the samples), simulated on
that input, and its outputs compared with the reference outputs (`output_*.pb`). A model passes
when it compiles and simulates and every output's SQNR is >= 20 dB; a failure prints npuc's
one-line error.

    python bench/onnx_backend.py              # the whole suite: a table and the count
    python bench/onnx_backend.py -k Conv1d    # the models whose name contains Conv1d

`tests/e2e/test_onnx_backend.py` runs a fixed sample of these in CI.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

SUITES = ("pytorch-converted", "pytorch-operator", "simple")
SQNR_FLOOR_DB = 20.0


@dataclass
class Case:
    name: str  # suite/test_name
    path: Path  # the folder holding model.onnx and test_data_set_0


@dataclass
class Outcome:
    name: str
    status: str  # "pass" | "low" (ran, SQNR below the floor) | "error"
    sqnr_db: float | None
    host_ops: list[str]
    detail: str
    seconds: float


def data_root() -> Path:
    return Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data"


def cases() -> list[Case]:
    """The single-float-input models with a reference output, in suite and name order."""
    out = []
    for suite in SUITES:
        for d in sorted(glob.glob(str(data_root() / suite / "*"))):
            d = Path(d)
            model = onnx.load(str(d / "model.onnx"), load_external_data=False)
            inits = {t.name for t in model.graph.initializer}
            ins = [i for i in model.graph.input if i.name not in inits]
            if len(ins) != 1 or ins[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
                continue
            if not sorted(d.glob("test_data_set_0/output_*.pb")):
                continue
            out.append(Case(f"{suite}/{d.name}", d))
    return out


def read_tensor(path: Path) -> np.ndarray:
    return numpy_helper.to_array(onnx.load_tensor(str(path)))


def run_case(case: Case, workdir: Path) -> Outcome:
    """Compile (calibrated on the test input), simulate, compare every output with the reference."""
    from npuc.compiler import compile_model
    from npuc.frontend import FrontendError
    from npuc.hw import load_hw
    from npuc.quant.metrics import sqnr_db
    from npuc.sim.driver import run_program

    t0 = time.perf_counter()
    data = case.path / "test_data_set_0"
    x = read_tensor(data / "input_0.pb")
    refs = [read_tensor(p) for p in sorted(data.glob("output_*.pb"))]
    calib = workdir / (case.path.name + ".npy")
    np.save(calib, x)
    try:
        compiled = compile_model(case.path / "model.onnx", load_hw("default"), calib=str(calib))
        (tin,) = compiled.program.inputs()
        run = run_program(compiled.program, {tin.name: x})
    except (FrontendError, ValueError, RuntimeError) as e:  # npuc's errors are ValueErrors with one line
        detail = str(e).replace(str(case.path / "model.onnx"), "model.onnx")
        return Outcome(case.name, "error", None, [], f"{type(e).__name__}: {detail}", time.perf_counter() - t0)
    hosts = [f.op for f in compiled.fallbacks]
    names = [o.name for o in onnx.load(str(case.path / "model.onnx"), load_external_data=False).graph.output]
    worst = np.inf
    for name, ref in zip(names, refs):
        got = run.outputs[name]
        if got.size != ref.size:
            return Outcome(case.name, "error", None, hosts, f"output {name!r}: {got.shape} vs reference {ref.shape}",
                           time.perf_counter() - t0)
        worst = min(worst, sqnr_db(ref.astype(np.float64), got.reshape(ref.shape)))
    status = "pass" if worst >= SQNR_FLOOR_DB else "low"
    return Outcome(case.name, status, float(worst), hosts, "", time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", default="", help="only the models whose name contains this")
    args = ap.parse_args(argv)
    todo = [c for c in cases() if args.k in c.name]
    rows = []
    print("| model | result | SQNR dB | on the host | seconds | error |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for c in todo:
            o = run_case(c, Path(tmp))
            rows.append(o)
            sq = "" if o.sqnr_db is None else f"{o.sqnr_db:.1f}"
            host = ", ".join(sorted(set(o.host_ops))) or "—"
            print(f"| {o.name} | {o.status} | {sq} | {host} | {o.seconds:.1f} | {o.detail} |", flush=True)
    passed = sum(o.status == "pass" for o in rows)
    print(f"\n{passed} of {len(rows)} pass (compile + simulate, SQNR >= {SQNR_FLOOR_DB:g} dB vs the reference output)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
