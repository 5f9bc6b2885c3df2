"""Range calibrators."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from npuc.quant.calibrators import CALIBRATORS, Histogram, make_calibrator
from npuc.quant.scales import SCALE_RULES

RNG = np.random.default_rng(0)


def observed(method: str, *batches: np.ndarray, **kw) -> tuple[float, float]:
    cal = make_calibrator(method, **kw)
    for b in batches:
        cal.observe(b)
    return cal.range()


def test_minmax_over_batches():
    assert observed("minmax", np.array([1.0, -2.0]), np.array([3.0, 0.5])) == (-2.0, 3.0)


@pytest.mark.parametrize("method", list(CALIBRATORS))
def test_no_observation_and_all_zero(method):
    assert observed(method) == (0.0, 0.0)
    assert observed(method, np.zeros(10), np.zeros(5)) == (0.0, 0.0)


def test_histogram_growth_is_exact():
    """Growing the radius merges bins pairwise: data in any order gives the same histogram."""
    x = np.concatenate([RNG.uniform(-0.3, 0.3, 1000), RNG.uniform(-40, 40, 1000)])
    a, b = Histogram(), Histogram()
    a.observe(x)
    b.observe(x[:1000])
    b.observe(np.zeros(7))
    b.observe(x[1000:])
    a.observe(np.zeros(7))
    assert a.radius == b.radius == 64.0
    np.testing.assert_array_equal(a.counts, b.counts)
    assert a.counts.sum() == 2007


def test_percentile_clips_outliers():
    x = np.concatenate([RNG.uniform(-1, 1, 100_000), [50.0, -60.0]])
    lo, hi = observed("percentile", x)
    assert -1.05 < lo < -0.9 and 0.9 < hi < 1.05


def test_percentile_keeps_a_relu_lower_bound_at_zero():
    lo, hi = observed("percentile", np.maximum(RNG.standard_normal(100_000), 0))
    assert lo == 0.0 and 3.0 < hi < 4.5


@pytest.mark.parametrize("method", ["mse", "entropy"])
def test_error_methods_trade_the_tail_for_resolution(method):
    x = np.random.default_rng(0).standard_normal(200_000)
    lo, hi = observed(method, x)
    assert 3.0 < hi < 0.95 * x.max() and 0.95 * x.min() < lo < -3.0, (lo, hi, x.min(), x.max())


def test_mse_chooses_among_the_rules_scales():
    """With the pow2 rule, the chosen range maps to a power-of-two scale at least as good as minmax's."""
    rule = functools.partial(SCALE_RULES["pow2"].act, mode="symmetric")
    x = np.concatenate([RNG.uniform(-2, 2, 50_000), [2.05]])  # just over 2: minmax wastes a bit
    lo, hi = observed("mse", x, act_rule=rule)
    assert rule(lo, hi).exp == 6 and rule(-2.05, 2.05).exp == 5


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown calibration method 'kl'"):
        make_calibrator("kl")


def test_entropy_does_not_clip_a_spike():
    """Image backgrounds pile up at one value; KL alone would clip them all."""
    rng = np.random.default_rng(3)
    x = np.concatenate([np.full(60_000, -1.0), rng.uniform(-1.0, 1.0, 40_000)]).astype(np.float32)
    cal = make_calibrator("entropy")
    cal.observe(x)
    lo, hi = cal.range()
    assert lo <= -0.999
