"""The schedules of the code generator stay bit-exact: packed reductions for small Cin, K not a
multiple of R, 1x1 outputs, outputs kept on chip (feeding a strided conv) and Adds fused into the
conv's epilogue; each compared with the numpy integer reference on the default and tiny presets,
and each checked to be the schedule it claims (the instructions show it)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from npuc.backend.schedule import DEFAULT
from npuc.compiler import compile_model
from npuc.hw import load_hw
from npuc.sim.driver import run_program

from .bitexact import assert_sim_equals_reference
from .models import make_model

HWS = {"default": load_hw("default"), "tiny": load_hw("tiny")}


def _w(rng, *shape: int) -> np.ndarray:
    return (rng.normal(size=shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)


def _bit_exact(model, x_shape, hw, schedule=DEFAULT, seed=0):
    """Compile for `hw`, simulate two samples, require the simulator == the integer reference."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, *x_shape[1:])).astype(np.float32)
    calib = [{"x": rng.normal(size=x_shape[1:]).astype(np.float32)} for _ in range(4)]
    c = compile_model(model, hw, calib=calib, schedule=schedule)
    run = run_program(c.program, {"x": x})
    sim = assert_sim_equals_reference(c, run, x)
    assert len(np.unique(sim)) > 3  # not a degenerate output
    return c, run


def _conv(cin, cout, k, hw_, **attrs):
    rng = np.random.default_rng(cin * 100 + cout)
    pads = attrs.pop("pads", [k // 2] * 4)
    node = helper.make_node("Conv", ["x", "W", "B"], ["y"], kernel_shape=[k, k], pads=pads, **attrs)
    return make_model([node], {"W": _w(rng, cout, cin, k, k), "B": _w(rng, cout)}, (1, cin, *hw_))


def _gemms(c, layer: str):
    lid = c.program.layers.index(layer)
    return [i for i in c.program.insns if i.op == "gemm" and i.layer == lid]


@pytest.mark.parametrize("preset", sorted(HWS))
@pytest.mark.parametrize("cin", [1, 3, "R+1"])
def test_small_and_odd_channel_counts(preset, cin):
    """Cin = 1 and 3 pack the taps into the reduction rows: every gemm but a layer's last fold uses
    all R rows; Cin = R + 1 (K = 9 * (R + 1), not a multiple of R) as well where it saves folds."""
    hw = HWS[preset]
    cin = hw.rows + 1 if cin == "R+1" else cin
    c, _ = _bit_exact(_conv(cin, 20, 3, (13, 11)), (1, cin, 13, 11), hw)
    gemms = _gemms(c, "y")
    k_total = 9 * cin
    if cin < hw.rows:  # packed: ceil(K / R) folds per output tile and cout tile
        per_tile = -(-k_total // hw.rows)
        assert {i.get("k") for i in gemms} == {min(hw.rows, k_total), k_total - (per_tile - 1) * hw.rows}
        assert len(gemms) % per_tile == 0


def test_the_stem_takes_ceil_147_over_r_folds():
    """7x7 stride 2 over 3 channels (ResNet's conv1, at 32x32): ceil(147/16) = 10 folds per output tile
    and cout tile on the 16x16 array instead of 49 one-tap gemms."""
    model = _conv(3, 16, 7, (32, 32), strides=[2, 2], pads=[3, 3, 3, 3])
    c, run = _bit_exact(model, (1, 3, 32, 32), HWS["default"])
    gemms = _gemms(c, "y")
    tiles = sum(1 for i in c.program.insns if i.op == "vrq")
    assert len(gemms) == 10 * tiles
    off, _ = _bit_exact(model, (1, 3, 32, 32), HWS["default"], DEFAULT.without("pack_taps"))
    assert len(_gemms(off, "y")) == 49 * sum(1 for i in off.program.insns if i.op == "vrq")
    assert run.stats[0].cycles < 0.5 * run_program(off.program, {"x": np.zeros((1, 3, 32, 32), np.float32)}
                                                   ).stats[0].cycles


@pytest.mark.parametrize("preset", sorted(HWS))
def test_k_not_a_multiple_of_r(preset):
    """24 channels, 3x3: K = 216 (13.5 x 16, 27 x 8); and a Gemm with K = 100."""
    _bit_exact(_conv(24, 40, 3, (9, 10)), (1, 24, 9, 10), HWS[preset])
    rng = np.random.default_rng(5)
    fc = make_model([helper.make_node("Gemm", ["x", "W", "B"], ["y"], transB=1)],
                    {"W": _w(rng, 37, 100), "B": _w(rng, 37)}, (1, 100), y_shape=[1, 37])
    _bit_exact(fc, (1, 100), HWS[preset])


@pytest.mark.parametrize("preset", sorted(HWS))
def test_one_by_one_outputs(preset):
    """A 5x5 valid conv on a 5x5 input and a 3x3 stride-2 one on 2x2 (padded): one output pixel."""
    c, _ = _bit_exact(_conv(8, 24, 5, (5, 5), pads=[0, 0, 0, 0]), (1, 8, 5, 5), HWS[preset])
    assert {i.get("m0") * i.get("m1") for i in _gemms(c, "y")} == {1}
    _bit_exact(_conv(5, 7, 3, (2, 2), strides=[2, 2]), (1, 5, 2, 2), HWS[preset])


def _pair(stride: int):
    """conv a (3x3, 24 -> 32, relu) -> conv b (3x3 stride `stride`, 32 -> 40): a's only reader is b."""
    rng = np.random.default_rng(11)
    nodes = [helper.make_node("Conv", ["x", "Wa", "Ba"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("Conv", ["r", "Wb", "Bb"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                              strides=[stride, stride])]
    inits = {"Wa": _w(rng, 32, 24, 3, 3), "Ba": _w(rng, 32), "Wb": _w(rng, 40, 32, 3, 3), "Bb": _w(rng, 40)}
    return make_model(nodes, inits, (1, 24, 15, 14))


@pytest.mark.parametrize("stride", [2, 1])
def test_output_kept_on_chip_feeds_a_strided_conv(stride):
    """On the default preset a's output never goes to DRAM: a stores nothing, b loads no input (its
    only loads are its weights and parameters), and the result is bit-exact."""
    c, run = _bit_exact(_pair(stride), (1, 24, 15, 14), HWS["default"])
    prog = c.program
    a, b = prog.layers.index("a"), prog.layers.index("y")
    by_layer = {lid: [i for i in prog.insns if i.layer == lid] for lid in (a, b)}
    assert not any(i.op == "st" for i in by_layer[a])
    loads = [i for i in by_layer[b] if i.op == "ld"]
    wbytes = 40 * 32 * 9
    assert sum(i.get("n0") * i.get("n1") * i.get("n2") for i in loads) == wbytes  # weights only
    assert any(i.op == "ld" and i.get("n0") == 0 for i in by_layer[a])  # the border: padding only
    through, _ = _bit_exact(_pair(stride), (1, 24, 15, 14), HWS["default"], DEFAULT.without("keep_on_chip"))
    assert any(i.op == "st" for i in through.program.insns if i.layer == through.program.layers.index("a"))
    assert run.stats[0].dram_rd + run.stats[0].dram_wr < (
        run_program(through.program).stats[0].dram_rd + run_program(through.program).stats[0].dram_wr)


def test_add_fused_into_the_conv_epilogue():
    """conv (no activation) + residual Add + ReLU: the Add has no pass of its own; the conv's tiles
    go through vadd on chip and only the sum is stored; with fuse_adds off it is a layer again."""
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "x"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    model = make_model(nodes, {"W": _w(rng, 16, 16, 3, 3), "B": _w(rng, 16)}, (1, 16, 12, 12))
    for preset, hw in HWS.items():
        c, _ = _bit_exact(model, (1, 16, 12, 12), hw)
        conv, add = c.program.layers.index("c"), c.program.layers.index("s")
        assert not any(i.op == "st" for i in c.program.insns if i.layer == conv), preset
        assert all(i.op in ("ld", "vadd", "st") for i in c.program.insns if i.layer == add)
        off, _ = _bit_exact(model, (1, 16, 12, 12), hw, DEFAULT.without("fuse_adds"))
        assert any(i.op == "st" for i in off.program.insns if i.layer == off.program.layers.index("c"))
