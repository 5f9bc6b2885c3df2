"""Mixed precision on the NPU: int4 weights per layer (`CompileOptions.int4_layers`, gemm w4) and the
plan that chooses them (`npuc/tools/npu_precision.py`), on the bundled CNN (cout 32 > 16 columns, so
an int4 layer takes fewer column folds)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from npuc.compiler import compile_model
from npuc.examples import SMALL_CNN, SMALL_CNN_SAMPLES
from npuc.hw import load_hw
from npuc.isa.table import BY_MNEMONIC
from npuc.passes import PassError
from npuc.sim.driver import run_program
from npuc.tools.evaluate import check_run
from npuc.tools.mixed_precision import Budget
from npuc.tools.npu_precision import compile_npu_mixed

HW = load_hw("default")
LAYERS = ("conv1", "conv2", "conv3", "conv4", "fc1", "logits")


@functools.cache
def _data():
    data = np.load(SMALL_CNN_SAMPLES)
    return [{"x": x} for x in data[:24]], data[-16:]


def _measure(compiled):
    _, held_out = _data()
    inputs = {"x": held_out}
    run = run_program(compiled.program, inputs)
    (check,), _ = check_run(SMALL_CNN, compiled, inputs, run)
    return check, run.stats[0].cycles


@functools.cache
def _all(int4: tuple[str, ...]):
    calib, _ = _data()
    c = compile_model(SMALL_CNN, HW, calib=calib, int4_layers=int4)
    return c, *_measure(c)


def test_int4_layers_run_bit_exact_with_fewer_cycles():
    c8, check8, cycles8 = _all(())
    c4, check4, cycles4 = _all(LAYERS)
    assert check8.mismatches == 0 and check4.mismatches == 0  # simulator == integer reference, both widths
    for n in LAYERS:
        q = c4.ir.node(n)["qop"]
        assert q.weight_bits == 4 and np.abs(q.weight).max() <= 7
        assert c8.ir.node(n)["qop"].weight_bits == 8
    gemms = [i for i in c4.program.insns if i.op == "gemm"]
    w4 = BY_MNEMONIC["gemm"].field_names().index("w4")
    assert gemms and all(i.fields[w4] == 1 for i in gemms)
    assert cycles4 < cycles8  # half the column folds of the 32-channel layers
    assert check4.sqnr_db < check8.sqnr_db


def test_unknown_int4_layer_is_an_error():
    calib, _ = _data()
    with pytest.raises(PassError, match="--int4-layers: no layer named 'nope'"):
        compile_model(SMALL_CNN, HW, calib=calib, int4_layers=("nope",))


def test_a_mixed_plan_meets_the_target_between_the_uniform_widths():
    """The plan meets 15 dB with fewer cycles than all-int8 and more SQNR than all-int4, bit-exact."""
    calib, held_out = _data()
    compiled, plan = compile_npu_mixed(SMALL_CNN, HW, Budget(15.0), calib=calib, data=held_out)
    check, cycles = _measure(compiled)
    _, check8, cycles8 = _all(())
    _, check4, cycles4 = _all(LAYERS)
    assert plan.met and plan.sqnr_db >= 15.0 and plan.host is None
    assert 0 < len(plan.int4_layers) < len(LAYERS)
    assert check.mismatches == 0
    assert check.sqnr_db >= 15.0 and cycles == plan.cycles
    assert cycles < cycles8 and check.sqnr_db > check4.sqnr_db
    lines = plan.summary()
    for ch in plan.choices:  # layer, width, error gain, cycle cost
        assert any(ch.layer in ln and ch.width in ln and "error gain" in ln and "cycle cost" in ln for ln in lines)
    assert {ch.layer for ch in plan.choices} == set(LAYERS)


@pytest.mark.parametrize("dataflow", ["os", "is"])
def test_int4_layers_run_bit_exact_in_every_dataflow(dataflow):
    """The compiler tiles int4 layers by the dataflow's limits (isa/timing.py, tile_limits with w4):
    os takes int4_pack * C output channels per gemm, is streams every channel; bit-exact either way."""
    calib, _ = _data()
    hw = HW.replace(dataflow=dataflow)
    c = compile_model(SMALL_CNN, hw, calib=calib, int4_layers=LAYERS)
    check, _ = _measure(c)
    assert check.mismatches == 0
    names = BY_MNEMONIC["gemm"].field_names()
    gemms = [i for i in c.program.insns if i.op == "gemm"]
    assert gemms and all(i.fields[names.index("w4")] == 1 for i in gemms)
    widest = max(i.fields[names.index("n")] for i in gemms)
    assert widest > hw.cols  # os: up to int4_pack * C; is: n unlimited
    if dataflow == "os":
        assert widest <= hw.int4_pack * hw.cols
