"""The PE-by-PE array (isa/pe_array.py) against the fast timing model (isa/timing.py) both ISA
models use: on random small gemms and chains of them, in every dataflow, with overlap on and off,
the products are A @ W and every gemm ends on exactly the cycle the fast model says."""

from __future__ import annotations

import numpy as np
import pytest

from npuc.hw import HwConfig
from npuc.isa.pe_array import run_array
from npuc.isa.timing import ArrayState, gemm_cycles

SHAPES = [(4, 4), (3, 5), (5, 3), (1, 6), (6, 1), (8, 8), (2, 7)]


def _fast_ends(hw: HwConfig, gemms) -> list[int]:
    """Each gemm's end when the compute unit issues them back to back, all operands ready."""
    state, t, ends = ArrayState(), 0, []
    for a, w in gemms:
        cost, _ = gemm_cycles(hw, state, a.shape[0], a.shape[1], w.shape[1], t, 0)
        t += cost
        ends.append(t)
    return ends


def _random_gemm(rng, rows: int, cols: int, dataflow: str):
    big = 3 * max(rows, cols) + 2  # the streamed dimension: shorter and longer than the array
    lm, lk, ln = {"ws": (big, rows, cols), "os": (rows, big, cols), "is": (cols, rows, big)}[dataflow]
    m, k, n = (int(rng.integers(1, lim + 1)) for lim in (lm, lk, ln))
    return (rng.integers(-128, 128, size=(m, k)).astype(np.int64),
            rng.integers(-128, 128, size=(k, n)).astype(np.int64))


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize("rows,cols", SHAPES)
def test_pe_array_is_the_fast_model(dataflow, overlap, rows, cols):
    rng = np.random.default_rng(rows * 100 + cols + (dataflow == "os") * 7 + (dataflow == "is") * 13 + overlap)
    hw = HwConfig(rows=rows, cols=cols, dataflow=dataflow, fold_overlap=overlap)
    for trial in range(3):
        gemms = [_random_gemm(rng, rows, cols, dataflow) for _ in range(1 + trial)]
        res = run_array(rows, cols, dataflow, overlap, gemms)
        for (a, w), y in zip(gemms, res.outputs):
            np.testing.assert_array_equal(y, a @ w)
        assert res.ends == _fast_ends(hw, gemms), [(a.shape, w.shape) for a, w in gemms]


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_serial_cost_is_scale_sim_closed_form(dataflow):
    """fold_overlap = false: one fold costs SCALE-Sim's closed form, also on a 3 x 5 array."""
    rows, cols = 3, 5
    rng = np.random.default_rng(0)
    a, w = _random_gemm(rng, rows, cols, dataflow)
    m, k, n = a.shape[0], a.shape[1], w.shape[1]
    want = {"ws": 2 * rows + cols + m - 2, "os": rows + cols + k - 2, "is": 2 * rows + cols + n - 2}[dataflow]
    assert run_array(rows, cols, dataflow, False, [(a, w)]).ends == [want]


def test_a_chain_hides_the_preload_only_behind_streamed_rows():
    """ws on 4 x 4: a gemm of M = 1 after one of M = 1 waits for its preload (R - 1 more cycles),
    one after M = 6 does not."""
    ones = np.ones((1, 4), np.int64), np.ones((4, 4), np.int64)
    six = np.ones((6, 4), np.int64), np.ones((4, 4), np.int64)
    short = run_array(4, 4, "ws", True, [ones, ones]).ends
    long = run_array(4, 4, "ws", True, [six, ones]).ends
    assert short[1] - short[0] == 1 + 3 and long[1] - long[0] == 1
