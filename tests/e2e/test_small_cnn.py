"""Acceptance of the foundation: the bundled CNN through compile and the C simulator.

Bit-exact against the numpy integer reference, SQNR >= 30 dB against fp32
onnxruntime on held-out samples, cycles deterministic and at least
MACs / (rows * cols) — on the default array and on the tiny one, where layers
are larger than the scratchpad and must be tiled.
"""

from __future__ import annotations

import numpy as np
import pytest

from npuc.compiler import compile_model
from npuc.examples import SMALL_CNN as MODEL
from npuc.examples import SMALL_CNN_SAMPLES as SAMPLES
from npuc.hw import load_hw
from npuc.isa.asm import format_program
from npuc.sim.driver import run_program
from npuc.tools.evaluate import check_run

DATA = np.load(SAMPLES)
SPLIT = len(DATA) * 3 // 4


@pytest.fixture(scope="module", params=["default", "tiny"])
def compiled(request):
    hw = load_hw(request.param)
    return hw, compile_model(MODEL, hw, calib=[{"x": x} for x in DATA[:SPLIT]])


def test_bit_exact_and_accurate(compiled):
    hw, c = compiled
    inputs = {"x": DATA[SPLIT:]}
    run = run_program(c.program, inputs)
    (check,), oracle = check_run(MODEL, c, inputs, run)
    assert oracle == "onnxruntime fp32"
    assert check.mismatches == 0
    assert check.sqnr_db >= 30.0, check.sqnr_db


def test_cycles_deterministic_and_bounded_by_the_array(compiled):
    hw, c = compiled
    x = {"x": DATA[:1]}
    a, b = run_program(c.program, x), run_program(c.program, x)
    assert a.stats == b.stats
    macs = sum(ls.macs for ls in a.layers)
    assert macs == a.stats[0].macs == 3_129_984  # every MAC of the model, once
    assert a.stats[0].cycles >= macs / (hw.rows * hw.cols)


def test_layers_larger_than_sram_are_tiled():
    """On the tiny preset the fc1 weights (2560 x 64) exceed the 8 KiB scratchpad."""
    hw = load_hw("tiny")
    c = compile_model(MODEL, hw, calib=[{"x": x} for x in DATA[:8]])
    fc1 = c.ir.node("fc1")["qop"].weight
    assert fc1.nbytes > hw.spad_bytes
    layer = c.program.layers.index("fc1")
    loads = [i for i in c.program.insns if i.layer == layer and i.op == "ld"]
    assert len(loads) > 2


def test_recompiling_gives_the_same_text(compiled):
    hw, c = compiled
    again = compile_model(MODEL, hw, calib=[{"x": x} for x in DATA[:SPLIT]])
    assert format_program(again.program) == format_program(c.program)
