"""The depthwise engine in compiled models: depthwise convs run as `dwc` when the NPU has the
engine, bit-exact with the integer reference and with the array's path; the engine reads a
producer's output kept in the scratchpad in place; and it is faster than the array."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from npuc.compiler import compile_model
from npuc.hw import load_hw
from npuc.reference import run_quantized
from npuc.sim.driver import quantize, run_program

# the golden dw_block model (tests/golden/cases.py, a script, loaded by its path)
_spec = importlib.util.spec_from_file_location("golden_cases", Path(__file__).parents[1] / "golden" / "cases.py")
assert _spec is not None and _spec.loader is not None
_cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_cases)
dw_block = _cases.dw_block


def _compile_run(hw, x):
    model, calib = dw_block()
    c = compile_model(model, hw, calib=calib)
    return c, run_program(c.program, {"x": x})


def _layer_ops(c, layer: str) -> list[str]:
    lid = list(c.program.layers).index(layer)
    return [insn.op for insn in c.program.insns if insn.layer == lid]


@pytest.mark.parametrize("preset,dataflow", [("default", "ws"), ("tiny", "ws"), ("default", "os"),
                                             ("default", "is")])
@pytest.mark.parametrize("lanes,taps", [(16, 9), (8, 3), (3, 16)])
def test_engine_is_bit_exact(preset, dataflow, lanes, taps):
    x = np.random.default_rng(5).normal(size=(2, 3, 8, 8)).astype(np.float32)
    base = load_hw(preset).replace(dataflow=dataflow)
    c0, r0 = _compile_run(base, x)
    c1, r1 = _compile_run(base.replace(lanes=lanes, taps=taps), x)
    assert "dwc" not in [i.op for i in c0.program.insns]
    ops = _layer_ops(c1, "dw")
    assert "dwc" in ops and "gemm" not in ops
    out = c1.ir.node(c1.ir.outputs[0])["value"]
    (t_in,) = c1.program.inputs()
    for b in range(2):
        ref = run_quantized(c1.ir, {c1.ir.inputs[0]: quantize(x[b:b + 1], t_in)})
        np.testing.assert_array_equal(r1.raw[out][b:b + 1], ref[c1.ir.outputs[0]].reshape(r1.raw[out][b:b + 1].shape))
    np.testing.assert_array_equal(r1.raw[out], r0.raw[out])
    assert len(np.unique(r1.raw[out])) > 3


def test_engine_reads_the_expansion_output_in_place():
    """expand -> dw is a kept-on-chip pair: the dw layer loads no input (only its weights and
    parameters: one ld and one lda) and the expand layer stores nothing."""
    x = np.random.default_rng(5).normal(size=(1, 3, 8, 8)).astype(np.float32)
    c, _ = _compile_run(load_hw("default").replace(lanes=16, taps=9), x)
    assert _layer_ops(c, "dw").count("ld") == 1
    assert "st" not in _layer_ops(c, "expand")


def test_a_slower_engine_is_not_used():
    """1 lane x 1 tap: 16 pixels * 12 channels * 9 taps cycles, more than the array's gemms."""
    x = np.random.default_rng(5).normal(size=(1, 3, 8, 8)).astype(np.float32)
    c, _ = _compile_run(load_hw("default").replace(lanes=1, taps=1), x)
    assert "dwc" not in _layer_ops(c, "dw") and "gemm" in _layer_ops(c, "dw")


def test_engine_is_faster_than_the_array():
    x = np.random.default_rng(5).normal(size=(1, 3, 8, 8)).astype(np.float32)
    hw = load_hw("default")
    _, r0 = _compile_run(hw, x)
    _, r1 = _compile_run(hw.replace(lanes=16, taps=9), x)
    dw0 = next(ls for ls in r0.layers if ls.name == "dw")
    dw1 = next(ls for ls in r1.layers if ls.name == "dw")
    assert dw1.busy["compute"] < dw0.busy["compute"]


@pytest.mark.parametrize("stride", [1, 2])
def test_bands_share_their_halo_bit_exactly(stride):
    """A DRAM-bound depthwise layer (4 bytes a cycle) reads each input row once: a band's first
    kernel rows are copied from the previous band's buffer (vmax of a row with itself)."""
    from onnx import helper

    from .models import make_model

    rng = np.random.default_rng(3)
    c, size = 16, 20
    w = (rng.normal(size=(c, 1, 3, 3)) / 3).astype(np.float32)
    b = (rng.normal(size=c) * 0.1).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1] * 4,
                              strides=[stride] * 2, group=c, name="dw")]
    out = (size - 1) // stride + 1
    model = make_model(nodes, {"w": w, "b": b}, (1, c, size, size), y_shape=[1, c, out, out])
    calib = [{"x": rng.normal(size=(c, size, size)).astype(np.float32)} for _ in range(4)]
    x = rng.normal(size=(1, c, size, size)).astype(np.float32)
    hw = load_hw("default").replace(dram_bw=4, lanes=16, taps=9, spad_kib=16)
    comp = compile_model(model, hw, calib=calib)
    ops = [i.op for i in comp.program.insns]
    assert ops.count("dwc") > 2 and ops.count("vmax") == ops.count("dwc") - 1
    run = run_program(comp.program, {"x": x})
    (t_in,) = comp.program.inputs()
    ref = run_quantized(comp.ir, {comp.ir.inputs[0]: quantize(x, t_in)})
    y = run.raw[comp.ir.node(comp.ir.outputs[0])["value"]]
    np.testing.assert_array_equal(y, ref[comp.ir.outputs[0]].reshape(y.shape))
    base = compile_model(model, hw.replace(lanes=0), calib=calib)
    np.testing.assert_array_equal(y, run_program(base.program, {"x": x}).raw[base.ir.node(base.ir.outputs[0])["value"]])
