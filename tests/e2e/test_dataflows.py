"""Dataflows (array.dataflow = ws | os | is): a model computes the same bits in every dataflow,
with overlap on and off, equal to the integer reference; and with fold_overlap = false and an
SRAM that splits nothing, a network's summed gemm cycles are SCALE-Sim's closed form for its
dataflow, computed here from the layer shapes (on a 8 x 4 array: R != C)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from npuc.compiler import compile_model
from npuc.hw import load_hw
from npuc.reference import run_quantized
from npuc.sim.driver import quantize, run_program

from .models import make_model

# (name, cin, cout, kernel, stride, pad, group): conv -> relu chain, then a flatten and a Gemm
LAYERS = [("c1", 3, 8, 3, 1, 1, 1), ("c2", 8, 12, 3, 2, 1, 1), ("dw", 12, 12, 3, 1, 1, 12), ("pw", 12, 20, 1, 1, 0, 1)]
SIZE = 16  # input height and width: every layer's rows cut into whole pixel blocks of R (C)
CLASSES = 10


def _model(rng, groups: bool = True):
    nodes, inits, x, h = [], {}, "x", SIZE
    for name, cin, cout, k, s, p, g in LAYERS:
        if g > 1 and not groups:
            continue
        inits[f"{name}_w"] = (rng.normal(size=(cout, cin // g, k, k)) / np.sqrt(cin // g * k * k)).astype(np.float32)
        inits[f"{name}_b"] = rng.normal(size=cout).astype(np.float32) * 0.1
        nodes.append(helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [f"{name}_y"], name=name,
                                      kernel_shape=[k, k], strides=[s, s], pads=[p] * 4, group=g))
        nodes.append(helper.make_node("Relu", [f"{name}_y"], [f"{name}_r"], name=f"{name}_relu"))
        x, h = f"{name}_r", (h + 2 * p - k) // s + 1
    nodes.append(helper.make_node("Flatten", [x], ["flat"], name="flatten"))
    feats = LAYERS[-1][2] * h * h
    inits["fc_w"] = (rng.normal(size=(CLASSES, feats)) / np.sqrt(feats)).astype(np.float32)
    inits["fc_b"] = np.zeros(CLASSES, np.float32)
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], name="fc", transB=1))
    return make_model(nodes, inits, (1, 3, SIZE, SIZE), y_shape=[1, CLASSES])


def _closed_form(df: str, r: int, c: int, groups: bool) -> int:
    """SCALE-Sim's serial gemm cycles of the model's Conv and Gemm layers (M pixels, N filters,
    K = FH*FW*Cin)."""
    def cd(a: int, b: int) -> int:
        return -(-a // b)

    total, h, cout = 0, SIZE, 3
    shapes = []
    for _, cin, cout, k, s, p, g in LAYERS:
        if g > 1 and not groups:
            continue
        h = (h + 2 * p - k) // s + 1
        shapes.append((h * h, cout, k * k * cin))
    shapes.append((1, CLASSES, cout * h * h))
    for m, n, k in shapes:
        total += {"ws": cd(k, r) * cd(n, c) * (2 * r + c + m - 2), "os": cd(m, r) * cd(n, c) * (r + c + k - 2),
                  "is": cd(k, r) * cd(m, c) * (2 * r + c + n - 2)}[df]
    return total


def _run(model, hw, x):
    rng = np.random.default_rng(1)
    calib = [{"x": rng.normal(size=(3, SIZE, SIZE)).astype(np.float32)} for _ in range(4)]
    c = compile_model(model, hw, calib=calib)
    return c, run_program(c.program, {"x": x}, trace=True)


@pytest.mark.parametrize("preset", ["default", "tiny"])
def test_outputs_are_identical_across_dataflows(preset):
    rng = np.random.default_rng(0)
    model = _model(rng)
    x = rng.normal(size=(1, 3, SIZE, SIZE)).astype(np.float32)
    outs = {}
    for df in ("ws", "os", "is"):
        for overlap in (True, False):
            hw = load_hw(preset).replace(dataflow=df, fold_overlap=overlap)
            c, run = _run(model, hw, x)
            outs[df, overlap] = run.raw[c.ir.node(c.ir.outputs[0])["value"]]
            if df == "ws" and overlap:
                (t_in,) = c.program.inputs()
                ref = run_quantized(c.ir, {c.ir.inputs[0]: quantize(x, t_in)})
                np.testing.assert_array_equal(outs[df, overlap], ref[c.ir.outputs[0]].reshape(outs[df, overlap].shape))
    base = outs["ws", True]
    assert len(np.unique(base)) > 3
    for key, y in outs.items():
        np.testing.assert_array_equal(y, base, err_msg=str(key))


@pytest.mark.parametrize("df,tolerance", [("ws", 0.0), ("os", 0.05), ("is", 0.05)])
def test_summed_gemm_cycles_are_scale_sim_closed_form(df, tolerance):
    """os and is cut the output pixels into blocks of at most R (C) that are 2-D boxes of the tile:
    a few more folds than ceil(M/R) where the rows do not divide evenly."""
    rng = np.random.default_rng(0)
    model = _model(rng, groups=False)
    hw = load_hw("default").replace(rows=8, cols=4, dataflow=df, fold_overlap=False, spad_kib=4096, acc_kib=4096)
    c, run = _run(model, hw, rng.normal(size=(1, 3, SIZE, SIZE)).astype(np.float32))
    idx = [i for i, insn in enumerate(c.program.insns) if insn.op == "gemm"]
    got = int((run.insn_end[idx] - run.insn_start[idx]).sum())
    want = _closed_form(df, hw.rows, hw.cols, groups=False)
    assert want <= got <= want * (1 + tolerance), (got, want)
