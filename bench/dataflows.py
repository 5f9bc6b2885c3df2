"""Gemm cycles per dataflow against SCALE-Sim's closed forms, and the dataflow / overlap table.

    python bench/dataflows.py [--model resnet18|mobilenet_v2 ...] [--dataflow ws|os|is ...] [--table]
                              [--dw-lanes L --dw-taps T] [--no-closed]

Acceptance (issue 11): each model at 16x16 with an SRAM large enough that no
layer must split (spad 64 MiB, acc 16 MiB) and `fold_overlap = false`: the
simulator's summed gemm cycles (end - start of every `gemm`) against the sum
over the Conv and Gemm layers of SCALE-Sim's closed form for the dataflow
(M output pixels, N filters, K = FH*FW*Cin of one group):

* ws: ceil(K/R) * ceil(N/C) * (2R + C + M - 2)
* os: ceil(M/R) * ceil(N/C) * (R + C + K - 2)
* is: ceil(K/R) * ceil(M/C) * (2R + C + N - 2)

(a grouped conv counts each group once per group, so a depthwise layer's
closed form charges a whole fold per channel: the compiler's block-diagonal
folds cost less). `--table` also prints, on the default preset, total cycles
and their ratio to the sum of per-layer roofline bounds for ws / os / is with
fold overlap on and off, and with `--dw-lanes L` the same with a depthwise
engine of L lanes x T taps for a model with depthwise layers (their bound then
max(useful MACs / (L*T), bytes / DRAM bytes per cycle), bench/cycles.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import shape_inference

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/models.py, run from anywhere

from cycles import depthwise_layers, roofline  # noqa: E402
from models import mobilenet_v2, resnet18  # noqa: E402

from npuc.compiler import compile_model  # noqa: E402
from npuc.hw import HwConfig, load_hw  # noqa: E402
from npuc.isa.program import Program  # noqa: E402
from npuc.sim.driver import run_program  # noqa: E402

MODELS = {"resnet18": resnet18, "mobilenet_v2": mobilenet_v2}
DATAFLOWS = ("ws", "os", "is")


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def closed_form(df: str, r: int, c: int, m: int, n: int, k: int) -> int:
    """SCALE-Sim's serial gemm cycles of an M x K x N layer on an r x c array."""
    if df == "ws":
        return cdiv(k, r) * cdiv(n, c) * (2 * r + c + m - 2)
    if df == "os":
        return cdiv(m, r) * cdiv(n, c) * (r + c + k - 2)
    return cdiv(k, r) * cdiv(m, c) * (2 * r + c + n - 2)


def layer_shapes(model: onnx.ModelProto) -> list[tuple[str, int, int, int, int]]:
    """(name, groups, M, N, K) of every Conv and Gemm: M output pixels, N filters per group,
    K = FH*FW*Cin per group."""
    model = shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*model.graph.value_info, *model.graph.output, *model.graph.input]}
    inits = {t.name: t.dims for t in model.graph.initializer}
    out = []
    for node in model.graph.node:
        if node.op_type == "Conv":
            w = inits[node.input[1]]
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            y = shapes[node.output[0]]
            out.append((node.name, group, y[2] * y[3], w[0] // group, w[1] * w[2] * w[3]))
        elif node.op_type == "Gemm":
            w = inits[node.input[1]]
            trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
            n, k = (w[0], w[1]) if trans_b else (w[1], w[0])
            out.append((node.name, 1, 1, n, k))
    return out


def closed_total(model: onnx.ModelProto, df: str, r: int, c: int) -> int:
    return sum(g * closed_form(df, r, c, m, n, k) for _, g, m, n, k in layer_shapes(model))


def gemm_cycles(prog: Program, start: np.ndarray, end: np.ndarray) -> int:
    """The summed cycles of the program's gemms, as the simulator ran them."""
    idx = np.array([i for i, insn in enumerate(prog.insns) if insn.op == "gemm"], dtype=np.int64)
    return int((end[idx] - start[idx]).sum())


def big_sram(hw: HwConfig) -> HwConfig:
    return hw.replace(spad_kib=64 * 1024, acc_kib=16 * 1024)


def run(path: Path, hw: HwConfig) -> tuple[Program, object]:
    prog = compile_model(path, hw, calib_samples=2).program
    return prog, run_program(prog, trace=True)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", choices=sorted(MODELS), help="default: resnet18")
    ap.add_argument("--dataflow", action="append", choices=DATAFLOWS, help="default: all three")
    ap.add_argument("--table", action="store_true", help="also the dataflow x overlap table on the default preset")
    ap.add_argument("--no-closed", action="store_true", help="skip the closed-form comparison")
    ap.add_argument("--dw-lanes", type=int, default=0, help="--table also with a depthwise engine of this many lanes")
    ap.add_argument("--dw-taps", type=int, default=9, help="the depthwise engine's taps per lane")
    args = ap.parse_args(argv)
    base = load_hw("default")
    dfs = args.dataflow or list(DATAFLOWS)
    acc_rows, table = [], []
    with tempfile.TemporaryDirectory() as d:
        for name in args.model or ["resnet18"]:
            path = Path(d) / f"{name}.onnx"
            model = MODELS[name]()
            onnx.save(model, path)
            for df in [] if args.no_closed else dfs:
                hw = big_sram(base).replace(dataflow=df, fold_overlap=False)
                prog, res = run(path, hw)
                got = gemm_cycles(prog, res.insn_start, res.insn_end)
                want = closed_total(model, df, hw.rows, hw.cols)
                acc_rows.append((name, df, got, want))
                print(f"{name} {df}: gemm cycles {got:,}, closed form {want:,}, {got / want - 1:+.2%}", flush=True)
            dw = depthwise_layers(path)
            engines = [0, args.dw_lanes] if args.dw_lanes and dw else [0]
            for lanes in engines if args.table else []:
                for df in dfs:
                    for ov in (True, False):
                        hw = base.replace(dataflow=df, fold_overlap=ov, lanes=lanes, taps=args.dw_taps)
                        prog, res = run(path, hw)
                        roof = roofline(res, hw, dw)
                        g = gemm_cycles(prog, res.insn_start, res.insn_end)
                        engine = f"{lanes}x{args.dw_taps}" if lanes else "-"
                        table.append((name, df, ov, engine, roof.cycles, roof.bound, roof.ratio, g))
                        print(f"{name} {df} overlap={ov} engine={engine}: {roof.cycles:,} cycles "
                              f"({roof.ratio:.3f} x bound), gemm {g:,}", flush=True)
    if acc_rows:
        print()
        print("| model | dataflow | summed gemm cycles (fold_overlap = false, large SRAM) | SCALE-Sim closed form | "
              "difference |")
        print("|---|---|---|---|---|")
        for name, df, got, want in acc_rows:
            print(f"| {name} | {df} | {got:,} | {want:,} | {got / want - 1:+.2%} |")
    if table:
        print()
        print("| model | dataflow | fold_overlap | depthwise engine | cycles | sum of bounds | cycles / bound | "
              "gemm cycles |")
        print("|---|---|---|---|---|---|---|---|")
        for name, df, ov, engine, cyc, bound, ratio, g in table:
            print(f"| {name} | {df} | {str(ov).lower()} | {engine} | {cyc:,} | {bound:,.0f} | {ratio:.3f} | {g:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
