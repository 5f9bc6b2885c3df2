"""Issue 4: simulator == numpy integer reference, bit for bit, under every quantization rule.

A small multi-layer model (conv-relu, maxpool, conv, residual Add with a
fused Relu, global average pool, flatten, gemm) compiled for the tiny preset
(8x8 array, 8 KiB scratchpad: every layer is tiled) under each scale rule ×
rounding × weight granularity × activation mode: 48 programs, each simulated
on a few samples and compared with `run_quantized` on the int8 outputs.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from onnx import helper

from npuc.compiler import compile_model
from npuc.hw import load_hw
from npuc.quant.rules import RULE_PRESETS, apply_rules
from npuc.reference import quantize_input, run_quantized
from npuc.sim.driver import run_program

from .models import make_model

C, H, W = 3, 12, 12


def rules_model(seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    inits = {"W1": w(8, C, 3, 3), "B1": w(8) * 0.1, "W2": w(8, 8, 3, 3), "B2": w(8) * 0.1,
             "W3": w(10, 8), "B3": w(10) * 0.1}
    conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], name="conv1", **conv),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p", "W2", "B2"], ["c2"], name="conv2", **conv),
        helper.make_node("Add", ["c2", "p"], ["s"], name="residual"),
        helper.make_node("Relu", ["s"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "W3", "B3"], ["y"], name="fc", transB=1),
    ]
    return make_model(nodes, inits, [1, C, H, W], "y", [1, 10], name="rules", check=True)


RULES = list(itertools.product(("pow2", "fixed_point", "float"), ("half_even", "half_up", "truncate", "half_away"),
                               ("per_channel", "per_tensor"), ("symmetric", "asymmetric")))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("rules") / "rules.onnx"
    onnx.save(rules_model(), path)
    return str(path)


@pytest.mark.parametrize("rule,rounding,granularity,act_mode", RULES, ids=["-".join(r) for r in RULES])
def test_simulator_equals_the_integer_reference(model_path, rule, rounding, granularity, act_mode):
    hw = load_hw("tiny").replace(scale_rule=rule, rounding=rounding, weight_granularity=granularity,
                                 act_mode=act_mode)
    rng = np.random.default_rng(1)
    calib = [{"x": s} for s in rng.standard_normal((16, C, H, W)).astype(np.float32)]
    c = compile_model(model_path, hw, calib=calib, verify=True)
    assert {c.ir.op(n) for n in c.ir.g.nodes} >= {"Conv", "MaxPool", "Add", "GlobalAveragePool", "Gemm"}
    assert "Host" not in {c.ir.op(n) for n in c.ir.g.nodes}
    x = rng.standard_normal((3, C, H, W)).astype(np.float32) * 1.2  # beyond the calibrated range: saturation too
    sim = run_program(c.program, {"x": x}).raw["y"]
    ref = run_quantized(c.ir, {"x": quantize_input(x, c.ir.node("x")["act_q"])})[c.ir.outputs[0]]
    assert sim.dtype == np.int8
    np.testing.assert_array_equal(sim, ref.reshape(sim.shape))


@pytest.mark.parametrize("preset", sorted(RULE_PRESETS))
def test_rule_presets_compile_verified_and_bit_exact(model_path, preset):
    """Every toolchain preset's rules in full: verified stages, simulator == reference."""
    hw = apply_rules(load_hw("tiny"), preset)
    assert {k: getattr(hw, k) for k in RULE_PRESETS[preset].quant} == RULE_PRESETS[preset].quant
    rng = np.random.default_rng(2)
    calib = [{"x": s} for s in rng.standard_normal((16, C, H, W)).astype(np.float32)]
    c = compile_model(model_path, hw, calib=calib, verify=True)
    x = rng.standard_normal((3, C, H, W)).astype(np.float32)
    sim = run_program(c.program, {"x": x}).raw["y"]
    ref = run_quantized(c.ir, {"x": quantize_input(x, c.ir.node("x")["act_q"])})[c.ir.outputs[0]]
    np.testing.assert_array_equal(sim, ref.reshape(sim.shape))
    zps = {c.ir.node(n)["act_q"].zp for n in c.ir.g.nodes if "act_q" in c.ir.node(n)}
    if hw.zero_point == "any":  # odd zero points appear once the rule allows them
        assert any(z % 2 for z in zps), zps
    elif hw.act_mode == "asymmetric":
        assert all(z % 2 == 0 for z in zps), zps
    else:
        assert zps == {0}
