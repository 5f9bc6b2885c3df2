"""verify: each stage's invariants, and that it catches each kind of violation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from npuc.frontend import load_onnx
from npuc.hw import HwConfig
from npuc.ir import ActQ, IRError
from npuc.passes import calibrate, legalize, prepare, quantize, verify

SYM = HwConfig(act_mode="symmetric")  # these tests check the symmetric rule

HW = SYM


@pytest.fixture(scope="module")
def stages(gap_cnn):
    rng = np.random.default_rng(0)
    front = load_onnx(gap_cnn)
    prepared = prepare(front)
    calibrated = calibrate(prepared, [{"x": rng.standard_normal((3, 32, 32))} for _ in range(4)])
    return front, prepared, calibrated, legalize(quantize(calibrated, HW), HW)


def test_every_stage_verifies(stages):
    for ir, stage in zip(stages, ("frontend", "prepared", "calibrated", "quantized")):
        verify(ir, stage, HW)


def broken(ir, node, **changes):
    ir = ir.copy()
    ir.node(node).update(changes)
    return ir


def check(ir, stage, match):
    with pytest.raises(IRError, match=match):
        verify(ir, stage, HW)


def test_frontend_violations(stages):
    front = stages[0]
    check(broken(front, "conv1", op="Softmax"), "frontend", r"node 'conv1' \(op Softmax\): unknown op")
    check(broken(front, "conv1", shape=(1, 16, 0, 32)), "frontend", "not static and positive")
    bad = front.copy()
    bad.node("conv1")["consts"]["B"] = np.zeros(3, np.float32)
    check(bad, "frontend", "consts W/B")
    cyc = front.copy()
    cyc.g.add_edge("logits", "conv1", slot=1)
    check(cyc, "frontend", "cycle")


def test_prepared_violation(stages):
    check(stages[0], "prepared", r"node 'bn1' \(op BatchNormalization\): should have been folded")


def test_calibrated_violations(stages):
    check(stages[1], "calibrated", "no calibrated range")
    check(broken(stages[2], "gap", range=(1.0, 0.0)), "calibrated", r"node 'gap'.*lo <= hi")
    check(broken(stages[2], "gap", range=(0.0, float("inf"))), "calibrated", "not finite")


def with_qop(ir, node, **changes):
    ir = ir.copy()
    ir.node(node)["qop"] = dataclasses.replace(ir.node(node)["qop"], **changes)
    return ir


def test_quantized_violations(stages):
    q = stages[3]
    check(stages[2], "quantized", "no act_q")
    check(broken(q, "conv2", act_q=ActQ(scale=0.3, zp=0, exp=2)), "quantized", r"0\.3 is not 2\^-exp")
    check(broken(q, "conv2", act_q=ActQ(scale=0.25, zp=4, exp=2)), "quantized", "under symmetric")
    check(broken(q, "conv2", act_q=ActQ(scale=0.25, zp=3, exp=2)), "quantized", "not even")
    c = q.node("conv2")["shape"][1]
    check(with_qop(q, "conv2", shift=np.full(c, 63, np.int32)), "quantized", r"outside \[0, 62\]")
    check(with_qop(q, "conv2", mul=np.full(c, 1, np.int64)), "quantized", "qop.mul must be an int32 array")
    check(with_qop(q, "conv2", lo=5, hi=4), "quantized", "lo <= hi")
    check(with_qop(q, "conv2", weight=None), "quantized", "qop.weight must be int8")
    check(with_qop(q, "conv2", zp_in=q.node("conv2")["qop"].zp_in + 2), "quantized", "input's zero point")
    gap = q.node("gap")["qop"]
    wrong_kind = q.copy()
    wrong_kind.node("gap")["qop"] = q.node("conv2")["qop"]
    check(wrong_kind, "quantized", r"node 'gap'.*a MatQ; a GlobalAveragePool holds a AccQ")
    assert gap is not None
    check(with_qop(q, "gap", zp_out=2), "quantized", "zp_out")
    check(broken(q, "flatten", act_q=ActQ(scale=1.0, exp=0)), "quantized", "keep its input's act_q")
    no_qop = q.copy()
    del no_qop.node("logits")["qop"]
    check(no_qop, "quantized", r"node 'logits' \(op Gemm\): no qop")


def test_unknown_stage(stages):
    with pytest.raises(ValueError, match="unknown stage"):
        verify(stages[0], "tiled")


@pytest.fixture(scope="module")
def se_block():
    """conv -> sigmoid (a Lut) -> times the conv (a two-input Mul), quantized; and its prepared IR."""
    from onnx import helper

    from tests.e2e.models import make_model

    w = np.random.default_rng(1).standard_normal((4, 3, 1, 1)).astype(np.float32)
    model = make_model([helper.make_node("Conv", ["x", "W"], ["c"]), helper.make_node("Sigmoid", ["c"], ["s"]),
                        helper.make_node("Tanh", ["c"], ["t"]), helper.make_node("Mul", ["s", "t"], ["y"])],
                       {"W": w}, (1, 3, 8, 8))
    prepared = prepare(load_onnx(model))
    rng = np.random.default_rng(0)
    calibrated = calibrate(prepared, [{"x": rng.standard_normal((3, 8, 8))} for _ in range(4)])
    return prepared, legalize(quantize(calibrated, HW), HW)


def _node(ir, op):
    return sorted(n for n in ir.g.nodes if ir.op(n) == op)[0]


def test_lut_and_mul_violations(se_block):
    prepared, q = se_block
    verify(q, "quantized", HW)
    lut, mul = _node(q, "Lut"), _node(q, "Mul")
    table = q.node(lut)["qop"].table
    check(with_qop(q, lut, table=table[:100]), "quantized", r"op Lut\).*int8 of shape \(256,\)")
    check(with_qop(q, lut, lo=-128, hi=int(table.max()) - 1), "quantized", "table entries")
    check(with_qop(q, mul, sh=63), "quantized", r"op Mul\).*outside \[0, 62\]")
    check(with_qop(q, mul, za=1, zb=2), "quantized", "zero points")
    check(with_qop(q, lut, zp_in=q.node(lut)["qop"].zp_in + 2), "quantized", "input's zero point")
    # a one-input Mul (a tensor times a constant) must have been folded before `prepared`
    one = prepared.copy()
    one.node(mul)["consts"]["S"] = np.ones(4, np.float32)
    check(one, "prepared", r"op Mul\): should have been folded")
