"""The end-to-end suites' one check that the simulator equals the integer reference."""

from __future__ import annotations

import numpy as np

from npuc.compiler import Compiled
from npuc.reference import run_quantized
from npuc.sim.driver import RunResult, quantize


def assert_sim_equals_reference(c: Compiled, run: RunResult, x: np.ndarray) -> np.ndarray:
    """Every graph output of `run` (the simulator on float input `x`, batch first) equals the
    integer reference run on the same quantized input, bit for bit; returns the first output's
    raw values."""
    (t_in,) = c.program.inputs()
    ref = run_quantized(c.ir, {c.ir.inputs[0]: quantize(x, t_in)})
    first = None
    for out in c.ir.outputs:
        sim = run.raw[c.ir.node(out)["value"]]
        np.testing.assert_array_equal(sim, ref[out].reshape(sim.shape))
        first = sim if first is None else first
    assert first is not None
    return first
