"""`npuc demo`: the whole loop on the bundled CNN, in one command.

The bundled samples are split: the first three quarters calibrate, the last
quarter is held out to measure accuracy against fp32 and bit-exactness
against the numpy integer reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..examples import SMALL_CNN as MODEL
from ..examples import SMALL_CNN_SAMPLES as SAMPLES


def run_demo(hw_spec: str | None = None, show_layers: bool = False) -> int:
    from ..compiler import compile_model
    from ..hw import load_hw
    from ..sim.driver import run_program
    from .evaluate import compare_with_float
    from .report import format_stats

    hw = load_hw(hw_spec)
    data = np.load(SAMPLES)
    split = len(data) * 3 // 4
    calib, held_out = data[:split], data[split:]
    print(f"npuc demo: {MODEL.name} on a {hw.rows}x{hw.cols} {hw.dataflow} array "
          f"({hw.spad_kib} KiB scratchpad, {hw.acc_kib} KiB accumulators)")
    compiled = compile_model(MODEL, hw, calib=[{_input_name(MODEL): x} for x in calib])
    prog = compiled.program
    print(f"compiled: {len(prog.insns)} instructions in {len(prog.layers)} layers, "
          f"calibrated (min-max) on {len(calib)} samples; simulating {len(held_out)} held-out samples")
    inputs = {prog.inputs()[0].name: held_out}
    run = run_program(prog, inputs)
    print(format_stats(run.stats[0], hw, run.layers if show_layers else None, samples=len(run.stats),
                       all_layers=run.layers))
    print(compare_with_float(MODEL, compiled, inputs, run))
    print(f"next: npuc compile {MODEL} -o small_cnn.s && npuc sim small_cnn.s --stats")
    return 0


def _input_name(model: Path) -> str:
    import onnx

    m = onnx.load(str(model), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    return next(i.name for i in m.graph.input if i.name not in inits)
