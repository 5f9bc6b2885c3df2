"""Accuracy and output SQNR of the digits CNN under every quantization rule, from the simulator.

    python bench/quant_table.py [--quick]

Rows: calibrator (minmax, percentile, entropy, mse) × weights (per-channel,
per-tensor) × scale rule (pow2, fixed_point, float) × rounding (half_even,
half_up, truncate); calibration on the 200-image calibration split, the
400-image test split simulated. Prints a markdown table (the README's).
"""

from __future__ import annotations

import itertools
import sys

import numpy as np

from npuc.compiler import compile_model
from npuc.examples import DIGITS_CNN as MODEL
from npuc.examples import digits
from npuc.hw import HwConfig
from npuc.quant.metrics import sqnr_db
from npuc.sim.driver import run_program
from npuc.tools.evaluate import float_outputs

METHODS = ("minmax", "percentile", "entropy", "mse")
GRANULARITY = ("per_channel", "per_tensor")
RULES = ("pow2", "fixed_point", "float")
ROUNDINGS = ("half_even", "half_up", "truncate")


def main(argv: list[str]) -> int:
    data = {part: digits(part) for part in ("calib", "test")}
    calib = [{"x": s} for s in data["calib"].x]
    test = data["test"]
    fp32 = None
    print("| calibration | weights | scales | rounding | accuracy % | Δ vs fp32 pp | output SQNR dB |")
    print("|---|---|---|---|---|---|---|")
    combos = list(itertools.product(METHODS, GRANULARITY, RULES, ROUNDINGS))
    if "--quick" in argv:
        combos = [c for c in combos if c[3] == "half_even"]
    for method, gran, rule, rounding in combos:
        hw = HwConfig(weight_granularity=gran, scale_rule=rule, rounding=rounding)
        compiled = compile_model(MODEL, hw, calib=calib, calib_method=method)
        if fp32 is None:
            fp32 = float_outputs(MODEL, compiled, {"x": test.x})[0]["logits"]
            print(f"| fp32 (onnxruntime) | | | | {100 * np.mean(fp32.argmax(1) == test.y):.2f} | | |")
        out = run_program(compiled.program, {"x": test.x}).outputs["logits"]
        acc = np.mean(out.argmax(1) == test.y)
        delta = acc - np.mean(fp32.argmax(1) == test.y)
        print(f"| {method} | {gran.replace('_', '-')} | {rule} | {rounding} | {100 * acc:.2f} | {100 * delta:+.2f} | "
              f"{sqnr_db(fp32, out):.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
