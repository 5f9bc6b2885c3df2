"""The accumulator width as a hardware choice: the bundled CNN compiled and simulated for each
`quant.acc_bits`, with its saturations (the `acc_sat` counter), output SQNR against fp32
onnxruntime and the outputs that differ from the numpy integer reference.

    python bench/acc_bits.py            # 32 24 20 18 16
    python bench/acc_bits.py 32 20

The reference saturates each output's whole sum once, the array at every fold (isa/ISA.md, gemm):
they agree exactly when nothing saturates, which `acc_sat` reports.
"""

from __future__ import annotations

import sys

import numpy as np

from npuc.compiler import compile_model
from npuc.examples import SMALL_CNN, SMALL_CNN_SAMPLES
from npuc.hw import load_hw
from npuc.sim.driver import run_program
from npuc.tools.evaluate import check_run


def main(argv: list[str]) -> int:
    widths = [int(a) for a in argv] or [32, 24, 20, 18, 16]
    data = np.load(SMALL_CNN_SAMPLES)
    split = len(data) * 3 // 4
    inputs = {"x": data[split:]}
    print("| acc_bits | saturated gemm outputs | output SQNR (dB) | outputs != reference | cycles/sample |")
    print("|---|---|---|---|---|")
    for bits in widths:
        hw = load_hw("default").replace(acc_bits=bits)
        c = compile_model(SMALL_CNN, hw, calib=[{"x": x} for x in data[:split]])
        run = run_program(c.program, inputs)
        (check,), _ = check_run(SMALL_CNN, c, inputs, run)
        n_out = run.raw[next(iter(run.raw))].size
        sat = sum(s.acc_sat for s in run.stats)
        print(f"| {bits} | {sat} | {check.sqnr_db:.2f} | {check.mismatches} of {n_out} | {run.stats[0].cycles} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
