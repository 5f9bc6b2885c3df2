"""Cycles against the roofline: ResNet-18 and MobileNetV2 (224x224, batch 1, random weights).

    python bench/cycles.py [--model resnet18|mobilenet_v2 ...] [--hw default|npu32|FILE ...]
                           [--layers] [--no-serial] [--ablate] [--csv FILE] [--dw-lanes L --dw-taps T]

For each model and hardware preset: the total cycles, the sum of the per-layer
roofline bounds (Conv/Gemm layers: max(useful MACs / (R*C), (input + output +
weight bytes) / DRAM bytes per cycle); every other layer adds cycles but no
bound), their ratio, the utilization (useful MACs / (cycles * R * C)), and the
same model compiled for the same hardware with `array.fold_overlap = false`
(SCALE-Sim's serial fold cost). `--layers` prints the per-layer table
(`npuc sim --stats`'s). `--ablate` measures each schedule choice of the code
generator (npuc/backend/schedule.py: packed taps, resident weights, large output
tiles, fused Adds, outputs kept on chip, alternate SRAM halves) by compiling
without it. The models come from bench/models.py, the one generator every bench
shares; calibration is on two seeded random samples (cycles do not depend on the
data). `--dw-lanes L` adds a depthwise engine of L lanes x T taps (`[depthwise]`,
isa/ISA.md dwc) to every preset; a depthwise layer's bound is then
max(useful MACs / (L*T), bytes / DRAM bytes per cycle).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/models.py, run from anywhere

from models import mobilenet_v2, resnet18  # noqa: E402
from onnx import numpy_helper  # noqa: E402

from npuc.backend.schedule import DEFAULT, Schedule  # noqa: E402
from npuc.compiler import compile_model  # noqa: E402
from npuc.hw import HwConfig, load_hw  # noqa: E402
from npuc.sim.driver import run_program  # noqa: E402
from npuc.tools.report import Roofline, format_stats  # noqa: E402

MODELS = {"resnet18": resnet18, "mobilenet_v2": mobilenet_v2}


def depthwise_layers(path: Path) -> set[str]:
    """The names of the model's depthwise Conv nodes (group = input channels = output channels)."""
    model = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    out = set()
    for node in model.graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if node.op_type == "Conv" and group > 1 and inits[node.input[1]][:2] == (group, 1):
            out.add(node.name)
    return out


def roofline(run, hw: HwConfig, dw: set[str]) -> Roofline:
    """The run against its roofline; with a depthwise engine (hw.lanes > 0) a depthwise layer's
    bound is max(useful MACs / (lanes * taps), bytes / dram_bw)."""
    roof = Roofline.of(run.layers, hw, run.stats[0].cycles)
    if not hw.lanes:
        return roof
    bound = sum(max(ls.useful_macs / (hw.lanes * hw.taps), ls.bound_bytes / hw.dram_bw) if ls.name in dw
                else ls.bound(hw) or 0.0 for ls in run.layers)
    return Roofline(roof.useful_macs, bound, roof.cycles)


def measure(path: Path, hw: HwConfig, schedule: Schedule = DEFAULT) -> tuple[object, Roofline, float]:
    """(run result, roofline summary, seconds) of one compile + simulation."""
    t0 = time.perf_counter()
    prog = compile_model(path, hw, calib_samples=2, schedule=schedule).program
    run = run_program(prog)
    return run, roofline(run, hw, depthwise_layers(path)), time.perf_counter() - t0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", choices=sorted(MODELS), help="default: both")
    ap.add_argument("--hw", action="append", help="preset or TOML file (default: default and npu32)")
    ap.add_argument("--layers", action="store_true", help="print the per-layer table")
    ap.add_argument("--no-serial", action="store_true", help="skip the fold_overlap = false compile")
    ap.add_argument("--ablate", action="store_true", help="measure each schedule choice by switching it off")
    ap.add_argument("--csv", default=None, help="also write the per-layer tables as CSV to this file")
    ap.add_argument("--dw-lanes", type=int, default=0, help="a depthwise engine of this many lanes (default none)")
    ap.add_argument("--dw-taps", type=int, default=9, help="the depthwise engine's taps per lane")
    args = ap.parse_args(argv)
    rows = []
    ablations: list[tuple[str, str, str, int, int]] = []
    csv_parts = []
    with tempfile.TemporaryDirectory() as d:
        for name in args.model or list(MODELS):
            path = Path(d) / f"{name}.onnx"
            onnx.save(MODELS[name](), path)
            for spec in args.hw or ["default", "npu32"]:
                hw = load_hw(spec).replace(lanes=args.dw_lanes, taps=args.dw_taps)
                run, roof, secs = measure(path, hw)
                serial = None
                if not args.no_serial:
                    serial = measure(path, hw.replace(fold_overlap=False))[1]
                rows.append((name, spec, hw, roof, serial))
                if args.ablate:
                    for choice in [f.name for f in fields(Schedule)]:
                        off = measure(path, hw, DEFAULT.without(choice))[1]
                        ablations.append((name, spec, choice, roof.cycles, off.cycles))
                        print(f"  without {choice}: {off.cycles:,} cycles ({off.cycles / roof.cycles - 1:+.1%})",
                              flush=True)
                print(f"{name} @ {spec} ({hw.rows}x{hw.cols}, {hw.dram_bw} B/cycle): {roof.cycles:,} cycles, "
                      f"bound {roof.bound:,.0f}, ratio {roof.ratio:.3f}, utilization "
                      f"{100 * roof.utilization(hw):.1f}% ({secs:.0f} s)", flush=True)
                if args.layers:
                    print(format_stats(run.stats[0], hw, run.layers))
                    print()
                if args.csv:
                    header, *lines = format_stats(run.stats[0], hw, run.layers, fmt="csv").splitlines()
                    csv_parts = csv_parts or [f"model,hw,{header}"]
                    csv_parts += [f"{name},{spec},{line}" for line in lines]
    print()
    print("| model | hw | cycles | sum of bounds | cycles / bound | utilization | fold_overlap = false: cycles "
          "(/ bound) |")
    print("|---|---|---|---|---|---|---|")
    for name, spec, hw, roof, serial in rows:
        off = f"{serial.cycles:,} ({serial.ratio:.2f})" if serial is not None else "-"
        print(f"| {name} | {spec} | {roof.cycles:,} | {roof.bound:,.0f} | {roof.ratio:.3f} | "
              f"{100 * roof.utilization(hw):.1f}% | {off} |")
    if ablations:
        print()
        print("| model | hw | schedule choice switched off | cycles | change |")
        print("|---|---|---|---|---|")
        for name, spec, choice, on, off in ablations:
            print(f"| {name} | {spec} | {choice} | {off:,} | {off / on - 1:+.1%} |")
    if args.csv:
        Path(args.csv).write_text("\n".join(csv_parts) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
