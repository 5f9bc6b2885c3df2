"""Add and Sub through the passes: constant adds folded into the bias, Relu fused into Add, the vadd
parameters of each scale rule, legalization and the stage checks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from onnx import helper

from npuc.hw import HwConfig
from npuc.ir import ActQ, IRError
from npuc.passes import PassError, fold_batchnorm, legalize, prepare, quantize, verify
from npuc.reference import run_float

RNG = np.random.default_rng(11)
W = RNG.standard_normal((3, 3, 3, 3)).astype(np.float32)
BN = {"s": RNG.uniform(0.5, 2, 3), "b": RNG.standard_normal(3), "m": RNG.standard_normal(3),
      "v": RNG.uniform(0.5, 2, 3)}
K = RNG.standard_normal((3, 1, 1)).astype(np.float32)


def conv(out="c", inp="x"):
    return helper.make_node("Conv", [inp, "W"], [out], name=out, pads=[1, 1, 1, 1])


def node(op, ins, out):
    return helper.make_node(op, ins, [out], name=out)


@pytest.mark.parametrize("nodes", [
    [conv(), node("Add", ["c", "k"], "y")],
    [conv(), node("Sub", ["c", "k"], "a"), node("BatchNormalization", ["a", "s", "b", "m", "v"], "y")],
    [conv(), node("BatchNormalization", ["c", "s", "b", "m", "v"], "a"), node("Add", ["k", "a"], "y")],
], ids=["add", "sub-then-bn", "bn-then-add"])
def test_a_constant_add_folds_into_the_conv_bias(tiny, nodes):
    ir = tiny(nodes, [1, 3, 5, 5], {"W": W, "k": K, **BN})
    folded = fold_batchnorm(ir)
    assert [folded.op(n) for n in folded.topo()] == ["Input", "Conv"]
    verify(folded, "frontend")
    x = RNG.standard_normal((2, 3, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(run_float(folded, {"x": x})["c"], run_float(ir, {"x": x})["y"], rtol=1e-5, atol=1e-5)


def test_a_constant_add_after_a_shared_conv_is_a_depthwise_conv(tiny):
    nodes = [conv(), node("Add", ["c", "k"], "y"), node("Relu", ["c"], "z")]
    ir = tiny(nodes, [1, 3, 4, 4], {"W": W, "k": K}, outputs=("y", "z"))
    folded = fold_batchnorm(ir)
    assert folded.op("y") == "Conv" and folded.node("y")["attrs"]["group"] == 3
    x = RNG.standard_normal((1, 3, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(run_float(folded, {"x": x})["y"], run_float(ir, {"x": x})["y"], rtol=1e-6)


def test_relu_fuses_into_a_residual_add(tiny):
    nodes = [conv(), node("Add", ["c", "x"], "a"), node("Relu", ["a"], "y")]
    ir = prepare(tiny(nodes, [1, 3, 4, 4], {"W": W}), check=True)
    assert ir.outputs == ["a"] and ir.node("a")["attrs"]["act"] == ("relu", 0.0, math.inf)


def _add_ir(tiny, op="Add", relu=False):
    nodes = [conv(), node(op, ["c", "x"], "a")] + ([node("Relu", ["a"], "y")] if relu else [])
    return prepare(tiny(nodes, [1, 3, 4, 4], {"W": W}, outputs=("y" if relu else "a",)))


def _quantized(ir, qs: dict[str, ActQ], hw: HwConfig):
    """Quantize `ir` with the given act_q per node (ranges that give exactly those scales)."""
    for name in ir.topo():
        q = qs[name]
        ir.node(name)["range"] = ((q.qmin - q.zp) * q.scale, (q.qmax - q.zp) * q.scale)
    return legalize(quantize(ir, hw), hw)


@pytest.mark.parametrize("op,sign", [("Add", 1), ("Sub", -1)])
@pytest.mark.parametrize("e_x,e_c,e_a,want", [
    (5, 3, 4, ((4, 1), 1)),   # e_f = 5: ma = 1 (a = conv, 2^-3 -> 2^-5: 4), sh = 5 - 4
    (2, 6, 3, ((1, 16), 3)),  # e_f = 6: conv's ma = 1, x's mb = 16, sh = 3
    (4, 4, 6, ((4, 4), 0)),   # the output is finer than both: a left shift, into both multipliers
])
def test_pow2_rule_aligns_to_the_finer_scale_and_rounds_once(tiny, op, sign, e_x, e_c, e_a, want):
    hw = HwConfig(act_mode="symmetric")
    qs = {"x": ActQ(2.0 ** -e_x, 0, e_x), "c": ActQ(2.0 ** -e_c, 0, e_c), "a": ActQ(2.0 ** -e_a, 0, e_a)}
    q = _quantized(_add_ir(tiny, op), qs, hw).node("a")["qop"]
    (ma, mb), sh = want
    assert (q.ma, q.mb, q.sh) == (ma, sign * mb, sh)
    assert (q.za, q.zb) == (0, 0)


def test_pow2_scales_too_far_apart_are_an_error(tiny):
    hw = HwConfig(act_mode="symmetric")
    qs = {"x": ActQ(2.0 ** -40, 0, 40), "c": ActQ(2.0 ** -3, 0, 3), "a": ActQ(2.0 ** -3, 0, 3)}
    with pytest.raises(PassError, match=r"node 'a' \(op Add\): input scales .* too far apart"):
        _quantized(_add_ir(tiny), qs, hw)


def test_fixed_point_rule_uses_31_bit_multipliers(tiny):
    hw = HwConfig(scale_rule="fixed_point", act_mode="asymmetric")
    qs = {"x": ActQ(0.0371, -20), "c": ActQ(0.0113, 6), "a": ActQ(0.0517, -128)}
    ir = _quantized(_add_ir(tiny, "Sub", relu=True), qs, hw)
    q = ir.node("a")["qop"]
    ma, mb = q.ma, q.mb
    assert 2**30 <= max(abs(ma), abs(mb)) < 2**31 and mb < 0
    assert ma * 2.0 ** -q.sh == pytest.approx(0.0113 / 0.0517, rel=2**-30)
    assert -mb * 2.0 ** -q.sh == pytest.approx(0.0371 / 0.0517, rel=2**-30)
    assert (q.za, q.zb) == (6, -20) and (q.lo, q.hi) == (-128, 127)  # relu at zp = -128: the full range
    verify(ir, "quantized", hw)


def test_verify_checks_the_vadd_qop(tiny):
    hw = HwConfig(act_mode="symmetric")
    qs = {"x": ActQ(2.0 ** -5, 0, 5), "c": ActQ(2.0 ** -3, 0, 3), "a": ActQ(2.0 ** -4, 0, 4)}
    ir = _quantized(_add_ir(tiny), qs, hw)
    verify(ir, "quantized", hw)
    q = ir.node("a")["qop"]
    for bad, match in (({"sh": 63}, "shift 63"),
                       ({"ma": 1 << 31}, "does not fit int32"),
                       ({"zb": 2}, "zero points"),
                       ({"lo": 5, "hi": 4}, "bounds")):
        ir.node("a")["qop"] = dataclasses.replace(q, **bad)
        with pytest.raises(IRError, match=match):
            verify(ir, "quantized", hw)
