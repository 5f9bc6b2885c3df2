"""A compute-bound layer scales with the array: 4x the PEs, 4x fewer cycles (within 15 %).

A 3x3 convolution, 128 -> 128 channels on 28x28 (115.6 M MACs; 347 KB of input, output and
weights: about 22 K cycles of DRAM at 16 bytes/cycle, well under the array's 113 K at 32x32), on
8x8, 16x16 and 32x32 arrays whose memories are large enough for all three; only rows and cols
change. Before fold overlap, packing and the tiling that chooses, 16x16 -> 32x32 gave 2.7x on
ResNet-18 (the issue's figure): fill and drain per gemm do not shrink with the array.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from npuc.compiler import compile_model
from npuc.hw import HwConfig
from npuc.sim.driver import run_program

from .models import make_model

BASE = HwConfig(spad_kib=2048, acc_kib=1024)


@pytest.fixture(scope="module")
def cycles(tmp_path_factory):
    rng = np.random.default_rng(4)
    w = (rng.normal(size=(128, 128, 3, 3)) / 34).astype(np.float32)
    model = make_model([helper.make_node("Conv", ["x", "W", "B"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
                       {"W": w, "B": np.zeros(128, np.float32)}, (1, 128, 28, 28))
    calib = [{"x": rng.normal(size=(128, 28, 28)).astype(np.float32)}]
    out = {}
    for n in (8, 16, 32):
        hw = BASE.replace(rows=n, cols=n)
        run = run_program(compile_model(model, hw, calib=calib).program)
        out[n] = run.stats[0].cycles
        assert run.layers[0].bound(hw) == 128 * 28 * 28 * 128 * 9 / (n * n)  # compute-bound on each array
    return out


@pytest.mark.parametrize("small,big", [(8, 16), (16, 32)])
def test_cycles_scale_with_the_pe_count(cycles, small, big):
    ratio = cycles[small] / cycles[big]
    assert 0.85 * 4 <= ratio <= 1.15 * 4, (cycles, ratio)
