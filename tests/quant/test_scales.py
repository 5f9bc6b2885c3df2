"""Scale rules: exponent choice, asymmetric zero points, weight quantization, multipliers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npuc.quant.scales import (
    SCALE_RULES,
    exact_pow2_shift,
    fixed_point_multiplier,
    pow2_exponent,
    quantize_weights,
)

POW2 = SCALE_RULES["pow2"]
FIXED = SCALE_RULES["fixed_point"]
finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


@pytest.mark.parametrize("amax, e", [(127.0, 0), (1.0, 6), (0.99, 7), (2.0, 5), (127 / 64, 6), (200.0, -1),
                                     (1e-3, 16)])
def test_symmetric_pow2_exponent_is_floor_log2_127_over_max(amax, e):
    q = POW2.act(-amax / 3, amax, "symmetric")
    assert q.exp == e == math.floor(math.log2(127 / amax))
    assert q.scale == 2.0 ** -e and q.zp == 0
    assert amax / q.scale <= 127 < 2 * amax / q.scale


def test_zero_range_gets_a_safe_scale():
    assert POW2.act(0.0, 0.0, "symmetric").scale == 1.0
    assert pow2_exponent(0.0) == 0


@settings(max_examples=200, deadline=None)
@given(finite, finite, st.sampled_from(["pow2", "fixed_point"]))
def test_asymmetric_range_fits_with_even_zero_point(a, b, rule):
    lo, hi = min(a, b), max(a, b)
    q = SCALE_RULES[rule].act(lo, hi, "asymmetric")
    assert q.zp % 2 == 0 and -128 <= q.zp <= 126
    for v in (lo, hi, 0.0):
        assert -128 <= np.rint(v / q.scale) + q.zp <= 127
    if rule == "pow2":
        assert q.scale == 2.0 ** -q.exp


def test_asymmetric_relu_output_uses_the_whole_int8_range():
    q = POW2.act(0.0, 6.0, "asymmetric")
    assert q.zp == -128 and q.exp == 5  # 6 * 32 = 192 <= 255: twice the symmetric resolution
    assert POW2.act(0.0, 6.0, "symmetric").exp == 4


def test_fixed_point_symmetric_scale_is_max_over_127():
    q = FIXED.act(-3.0, 1.0, "symmetric")
    assert q.scale == pytest.approx(3.0 / 127) and q.exp is None


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-9, 1e6))
def test_fixed_point_multiplier_is_31_bit_and_accurate(m):
    mul, shift = fixed_point_multiplier(m)
    assert (1 << 30) <= mul < (1 << 31)
    assert abs(mul * 2.0 ** -shift - m) <= m * 2.0 ** -30


def test_exact_pow2_shift():
    assert exact_pow2_shift(0.25) == 2 and exact_pow2_shift(8.0) == -3 and exact_pow2_shift(0.3) is None
    assert POW2.multiplier(2.0 ** -7) == (1, 7)
    assert POW2.multiplier(1 / 9)[0] >= 1 << 30  # not a power of two: a reciprocal multiplier


def test_weights_per_channel_pow2():
    w = np.array([[1.0, -0.5], [0.01, 0.0], [0.0, 0.0]], np.float32)
    wq, scales, exps = quantize_weights(w, POW2, per_channel=True)
    assert list(exps) == [6, 13, 0]  # floor(log2(127 / max|W_c|)); an all-zero channel gets 0
    np.testing.assert_array_equal(scales, 2.0 ** -exps.astype(float))
    np.testing.assert_array_equal(wq, [[64, -32], [82, 0], [0, 0]])
    assert wq.dtype == np.int8


def test_weights_per_tensor_share_one_exponent():
    w = np.array([[1.0, -0.5], [0.01, 0.0]], np.float32)
    _, _, exps = quantize_weights(w, POW2, per_channel=False)
    assert list(exps) == [6, 6]


def test_weights_min_scale_coarsens_a_channel():
    w = np.array([[1.0], [1.0]], np.float32)
    _, _, exps = quantize_weights(w, POW2, per_channel=True, min_scale=np.array([0.0, 0.1]))
    assert list(exps) == [6, 3]


@settings(max_examples=100, deadline=None)
@given(st.lists(finite, min_size=1, max_size=30))
def test_weights_never_exceed_127(values):
    wq, _, _ = quantize_weights(np.array(values, np.float32).reshape(1, -1), POW2, per_channel=True)
    assert np.abs(wq.astype(int)).max() <= 127
