"""quantize and legalize: scales, zero-point folding, shifts, saturation bounds, pooling."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from npuc.hw import HwConfig
from npuc.ir import AccQ
from npuc.isa.arith import requantize
from npuc.passes import PassError, calibrate, legalize, prepare, quantize, verify
from npuc.passes.quantize import clamp_bounds
from npuc.reference import conv_nhwc, dequantize, pad_nchw, quantize_input, run_float, run_quantized

SYM = HwConfig(act_mode="symmetric")  # these tests check the symmetric rule

RNG = np.random.default_rng(7)
ASYM = HwConfig(act_mode="asymmetric")


def conv_ir(tiny, act: str | None = "Relu", pads=(1, 1, 1, 1)):
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], name="c", pads=list(pads), strides=[2, 1])]
    out = "c"
    if act:
        nodes.append(helper.make_node(act, ["c", "lo", "hi"][: 1 if act == "Relu" else 3], ["y"], name="y"))
        out = "y"
    inits = {"W": RNG.standard_normal((5, 3, 3, 3)) * 0.3, "B": RNG.standard_normal(5),
             "lo": np.float32(-0.25), "hi": np.float32(1.0)}
    return prepare(tiny(nodes, [1, 3, 7, 6], inits, outputs=(out,)))


def samples(n=8, shape=(3, 7, 6), shift=0.5):
    return [{"x": (RNG.standard_normal(shape) + shift).astype(np.float32)} for _ in range(n)]


CAL = samples()


def quantized(ir, hw, raw=False):
    q = quantize(calibrate(ir, CAL, hw=hw), hw)
    return q if raw else legalize(q, hw)


@pytest.mark.parametrize("hw", [SYM, ASYM, HwConfig(weight_granularity="per_tensor")])
def test_bias_folds_the_input_zero_point_exactly(tiny, hw):
    """out == requant(Σ_taps (q - zp_in)·Wq over the zero-padded input + rint(B·2^(e_in+e_w)))."""
    ir = quantized(conv_ir(tiny), hw)
    node, qi = ir.node("c"), ir.node("x")["act_q"]
    q = node["qop"]
    e_in, e_w = qi.exp, q.e_w
    x = quantize_input(RNG.standard_normal((2, 3, 7, 6)) + 0.5, qi)
    centered = pad_nchw(x.astype(np.int64) - qi.zp, node["attrs"]["pads"], 0)
    acc = conv_nhwc(centered, q.weight, node["attrs"], node["shape"][2:], np.float64).astype(np.int64)
    acc += np.rint(node["consts"]["B"].astype(np.float64) * 2.0 ** (e_in + e_w)).astype(np.int64)
    want = requantize(acc, q.mul, q.shift, q.zp_out, q.lo, q.hi, q.rounding).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(run_quantized(ir, {"x": x})["c"], want)
    if hw.act_mode == "asymmetric":
        assert qi.zp != 0 and q.zp_in == qi.zp


def test_pow2_shift_is_e_in_plus_e_w_minus_e_out(tiny):
    ir = quantized(conv_ir(tiny), SYM, raw=True)
    q, e_in, e_out = ir.node("c")["qop"], ir.node("x")["act_q"].exp, ir.node("c")["act_q"].exp
    np.testing.assert_array_equal(q.shift, e_in + q.e_w - e_out)
    np.testing.assert_array_equal(q.mul, 1)
    np.testing.assert_array_equal(q.w_scale, 2.0 ** -q.e_w.astype(float))


@pytest.mark.parametrize("hw", [SYM, ASYM, HwConfig(scale_rule="fixed_point"),
                                HwConfig(scale_rule="fixed_point", act_mode="asymmetric"),
                                HwConfig(scale_rule="float", rounding="half_up")])
@pytest.mark.parametrize("act", [None, "Relu", "Clip"])
def test_quantized_conv_tracks_float(tiny, hw, act):
    ir = quantized(conv_ir(tiny, act), hw)
    verify(ir, "quantized", hw)
    feeds = {"x": np.stack([s["x"] for s in CAL[:4]])}  # calibrated data: nothing saturates
    out = ir.outputs[0]
    want = run_float(ir, feeds)[out]
    qo = ir.node(out)["act_q"]
    got = dequantize(run_quantized(ir, {"x": quantize_input(feeds["x"], ir.node("x")["act_q"])})[out], qo)
    # error budget: input and output rounding plus weight rounding, a few output steps at most
    assert np.abs(got - want).max() <= 4 * qo.scale + 0.02 * np.abs(want).max()


def test_clamp_bounds():
    from npuc.ir import ActQ

    q = ActQ(scale=0.25, zp=-10, exp=2)
    assert clamp_bounds(None, q) == (-128, 127)
    assert clamp_bounds(("relu", 0.0, float("inf")), q) == (-10, 127)
    assert clamp_bounds(("clip", -0.25, 1.0), q) == (-11, -6)
    assert clamp_bounds(("clip", -1e9, 1e9), q) == (-128, 127)


def test_relu_bound_is_the_zero_point(tiny):
    ir = quantized(conv_ir(tiny, "Relu"), ASYM)
    q = ir.node("c")["qop"]
    assert q.lo == ir.node("c")["act_q"].zp == q.zp_out and q.hi == 127


def test_passthrough_ops_share_the_input_act_q(small_cnn):
    from npuc.frontend import load_onnx

    ir = prepare(load_onnx(small_cnn))
    rng = np.random.default_rng(0)
    q = legalize(quantize(calibrate(ir, [{"x": rng.standard_normal((3, 32, 32))} for _ in range(4)]), SYM),
                 SYM)
    for n in ("pool", "flatten"):
        assert q.node(n)["act_q"] is q.node(q.preds(n)[0])["act_q"]
        assert "qop" not in q.node(n)


def gap_ir(tiny, hw, h, w):
    ir = prepare(tiny([helper.make_node("GlobalAveragePool", ["x"], ["y"], name="y")], [1, 4, h, w], {}))
    return legalize(quantize(calibrate(ir, samples(8, (4, h, w), 0.3)), hw), hw)


def test_gap_power_of_two_count_is_an_exact_shift(tiny):
    ir = gap_ir(tiny, ASYM, 4, 4)
    q, qi, qo = ir.node("y")["qop"], ir.node("x")["act_q"], ir.node("y")["act_q"]
    np.testing.assert_array_equal(q.bias, -16 * qi.zp)
    np.testing.assert_allclose(q.rescale, qi.scale / (16 * qo.scale))
    m = q.mul.astype(float) * 2.0 ** -q.shift.astype(float)
    np.testing.assert_array_equal(m, 2.0 ** (qo.exp - qi.exp - 4))  # exact: 1 / 16 and the scale ratio


def test_gap_other_counts_use_a_31_bit_reciprocal(tiny):
    ir = gap_ir(tiny, SYM, 3, 3)
    q, qi, qo = ir.node("y")["qop"], ir.node("x")["act_q"], ir.node("y")["act_q"]
    assert np.all((q.mul >= 1 << 30) | (q.shift == 0))
    m = q.mul.astype(float) * 2.0 ** -q.shift.astype(float)
    np.testing.assert_allclose(m, qi.scale / (9 * qo.scale), rtol=2.0 ** -30)
    x = quantize_input(RNG.standard_normal((5, 4, 3, 3)), qi)
    got = run_quantized(ir, {"x": x})["y"].astype(int).ravel()
    exact = x.astype(float).mean(axis=(2, 3)).ravel() * qi.scale / qo.scale + qo.zp
    assert np.abs(got - np.clip(exact, -128, 127)).max() <= 0.5 + 1e-6  # rounded once, at the end


def qop(mul, shift, bias=0):
    n = len(mul)
    return AccQ(mul=np.array(mul, np.int64), shift=np.array(shift, np.int64), bias=np.full(n, bias, np.int64),
                zp_out=0, lo=-128, hi=127, rounding="half_even", zp_in=0, rescale=np.ones(n))


def legalized(tiny, q: AccQ) -> AccQ:
    ir = prepare(tiny([helper.make_node("GlobalAveragePool", ["x"], ["y"], name="y")], [1, len(q.mul), 2, 2], {}))
    ir.node("y")["qop"] = q
    return legalize(ir, SYM).node("y")["qop"]


def test_legalize_moves_left_shifts_into_the_multiplier(tiny):
    q = legalized(tiny, qop([1, 1, 3, 1 << 29], [-3, 5, -1, 70]))
    assert list(q.mul) == [8, 1, 6, 1 << 21] and list(q.shift) == [0, 5, 0, 62]
    assert q.mul.dtype == q.shift.dtype == q.bias.dtype == np.int32


def test_legalize_rounds_the_multiplier_for_huge_shifts(tiny):
    q = legalized(tiny, qop([(1 << 30) + (1 << 8)], [70]))
    assert list(q.mul) == [(1 << 22) + 1] and list(q.shift) == [62]


def test_legalize_refuses_what_vrq_cannot_do(tiny):
    with pytest.raises(PassError, match="left shift"):
        legalized(tiny, qop([1], [-31]))
    with pytest.raises(PassError, match="left shift"):
        legalized(tiny, qop([1 << 30], [-1]))
    with pytest.raises(PassError, match="bias does not fit int32"):
        legalized(tiny, qop([1], [0], bias=1 << 31))


def test_bias_that_would_overflow_coarsens_the_weight_scale(tiny):
    ir = conv_ir(tiny, None)
    node = ir.node("c")
    node["consts"]["W"] = node["consts"]["W"] * 1e-9  # tiny weights: a huge e_w, unless the bias caps it
    node["consts"]["B"] = np.full(5, 3.0, np.float32)
    q = quantized(ir, SYM).node("c")["qop"]
    assert np.abs(q.bias.astype(np.int64)).max() <= 1 << 30


def test_quantize_needs_ranges(tiny):
    with pytest.raises(PassError, match="not calibrated"):
        quantize(conv_ir(tiny), SYM)
