"""Range calibrators: observe a tensor's values batch by batch, then give its (lo, hi).

One calibrator instance per tensor. `MinMax` keeps two numbers; the
histogram calibrators (`Percentile`, `Mse`, `Entropy`) share `Histogram`, a
signed histogram over [-R, R] whose R grows by doubling — merging bins
pairwise, so no observation is ever re-binned approximately and batches may
arrive in any order. A new method is a subclass with `range()` and an entry in
`CALIBRATORS`.

The range is what the scale rule then turns into a scale. `Mse` evaluates
candidate ranges through that rule (`act_rule`), so it picks the best scale
the hardware can actually use; `Entropy` assumes `levels` symmetric levels.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from ..ir import ActQ

ActRule = Callable[[float, float], ActQ]


def symmetric_int8(lo: float, hi: float) -> ActQ:
    """The default quantization model: symmetric int8, float scale."""
    amax = max(-lo, hi, 0.0)
    return ActQ(scale=amax / 127 if amax > 0 else 1.0)


class Calibrator(ABC):
    """Accumulates observations of one tensor.

    `act_rule` says how a range will be quantized (the hardware's scale rule);
    calibrators that optimize a quantization error use it, the others ignore it.
    """

    def __init__(self, act_rule: ActRule | None = None) -> None:
        self.act_rule: ActRule = act_rule or symmetric_int8

    @abstractmethod
    def observe(self, x: np.ndarray) -> None: ...

    @abstractmethod
    def range(self) -> tuple[float, float]:
        """The (lo, hi) real range to quantize; lo <= hi, both finite."""

    def with_rule(self, act_rule: ActRule | None) -> Calibrator:
        """The same observations, ranged under another scale rule (a shallow copy: the
        statistics of one calibration run serve every rule a sweep tries)."""
        other = copy.copy(self)
        other.act_rule = act_rule or symmetric_int8
        return other


class MinMax(Calibrator):
    """The observed extremes: no value ever saturates."""

    def __init__(self, act_rule: ActRule | None = None) -> None:
        super().__init__(act_rule)
        self.lo, self.hi = math.inf, -math.inf

    def observe(self, x: np.ndarray) -> None:
        if x.size:
            self.lo = min(self.lo, float(x.min()))
            self.hi = max(self.hi, float(x.max()))

    def range(self) -> tuple[float, float]:
        if self.lo > self.hi:
            return (0.0, 0.0)
        return (self.lo, self.hi)


class Histogram(MinMax):
    """A signed histogram of `bins` bins over [-R, R], R a power of two grown on demand."""

    def __init__(self, act_rule: ActRule | None = None, bins: int = 4096) -> None:
        super().__init__(act_rule)
        assert bins % 4 == 0
        self.bins = bins
        self.radius = 0.0
        self.counts = np.zeros(bins, dtype=np.int64)

    def observe(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64).ravel()
        if not x.size:
            return
        super().observe(x)
        amax = float(np.abs(x).max())
        if self.radius == 0.0 and amax > 0.0:
            zeros = int(self.counts.sum())  # everything seen so far was 0
            self.radius = 2.0 ** math.ceil(math.log2(amax))
            self.counts[:] = 0
            self.counts[self.bins // 2] = zeros
        while amax > self.radius:
            self._double()
        if self.radius == 0.0:
            self.counts[self.bins // 2] += x.size
            return
        idx = np.floor((x + self.radius) / self.width).astype(np.int64)
        self.counts += np.bincount(np.clip(idx, 0, self.bins - 1), minlength=self.bins)

    @property
    def width(self) -> float:
        return 2.0 * self.radius / self.bins

    def _double(self) -> None:
        """R -> 2R: old bins merge pairwise into the middle half of the new ones."""
        merged = self.counts.reshape(-1, 2).sum(axis=1)
        q = self.bins // 4
        self.counts = np.zeros_like(self.counts)
        self.counts[q:q + merged.size] = merged
        self.radius *= 2.0

    def edges(self) -> np.ndarray:
        return np.linspace(-self.radius, self.radius, self.bins + 1)

    def abs_counts(self) -> np.ndarray:
        """Histogram of |x| over [0, R] with bins/2 bins."""
        half = self.bins // 2
        return self.counts[half:] + self.counts[:half][::-1]

    def _clip_to_threshold(self, t: float) -> tuple[float, float]:
        lo, hi = MinMax.range(self)
        return (max(lo, -t), min(hi, t))


class Percentile(Histogram):
    """Drop the `(100 - percentile)/2` % most extreme values at each end."""

    def __init__(self, act_rule: ActRule | None = None, percentile: float = 99.99, bins: int = 4096) -> None:
        super().__init__(act_rule, bins)
        self.percentile = percentile

    def range(self) -> tuple[float, float]:
        total = int(self.counts.sum())
        if total == 0 or self.radius == 0.0:
            return MinMax.range(self)
        tail = total * (100.0 - self.percentile) / 200.0
        cdf = np.cumsum(self.counts)
        edges = self.edges()
        lo = float(edges[int(np.searchsorted(cdf, tail, side="right"))])
        hi = float(edges[int(np.searchsorted(cdf, total - tail, side="left")) + 1])
        obs_lo, obs_hi = MinMax.range(self)
        lo, hi = max(lo, obs_lo), min(hi, obs_hi)
        return (lo, max(hi, lo))


class Mse(Histogram):
    """The range whose quantization — under the actual rule, via `act_rule` — has the least squared error.

    Candidates shrink the observed range by factors from 1 down to 1/16
    (clipping the tails harder each time); each becomes an `ActQ` through
    `act_rule` (so a pow2 rule only offers its power-of-two scales, an
    asymmetric one its zero point), and the error of quantize-dequantize is
    summed over the histogram. Without a rule: symmetric int8, float scale.
    """

    def __init__(self, act_rule: ActRule | None = None, bins: int = 4096, candidates: int = 64) -> None:
        super().__init__(act_rule, bins)
        self.candidates = candidates

    def range(self) -> tuple[float, float]:
        lo, hi = MinMax.range(self)
        if self.counts.sum() == 0 or self.radius == 0.0:
            return lo, hi
        centers = self.edges()[:-1] + self.width / 2
        counts = self.counts.astype(np.float64)
        best, best_range, tried = math.inf, (lo, hi), set()
        for f in np.geomspace(1.0, 1.0 / 16, self.candidates):
            q = self.act_rule(lo * f, hi * f)
            if (q.scale, q.zp) in tried:
                continue
            tried.add((q.scale, q.zp))
            levels = np.clip(np.rint(centers / q.scale) + q.zp, q.qmin, q.qmax)
            err = float(np.dot(counts, (centers - (levels - q.zp) * q.scale) ** 2))
            if err < best:
                best, best_range = err, (lo * f, hi * f)
        return best_range


class Entropy(Histogram):
    """TensorRT's KL-divergence threshold over the |x| histogram (`levels` quantization bins).

    The KL criterion alone is blind to a spike of probability mass beyond the
    threshold: folded into P's last bin, a spike (the background value of an
    image, say) costs almost nothing, and KL then happily clips it. So a
    threshold may clip at most `max_clipped` of the mass.
    """

    def __init__(self, act_rule: ActRule | None = None, levels: int = 128, bins: int = 4096,
                 max_clipped: float = 1e-3) -> None:
        super().__init__(act_rule, bins)
        self.levels = levels
        self.max_clipped = max_clipped

    def range(self) -> tuple[float, float]:
        hist = self.abs_counts().astype(np.float64)
        if hist.sum() == 0 or self.radius == 0.0:
            return MinMax.range(self)
        hist[0] = hist[1]  # a ReLU's spike of exact zeros would dominate P and pull the threshold down
        last = int(np.nonzero(hist)[0][-1]) + 1
        tail = np.cumsum(hist[::-1])[::-1] / hist.sum()  # tail[i]: mass at or beyond bin i
        best, best_i = math.inf, last
        for i in range(self.levels, last + 1, max(1, (last - self.levels) // 256)):
            if i < last and tail[i] > self.max_clipped:
                continue
            best, best_i = min((best, best_i), (_kl_at(hist, i, self.levels), i))
        return self._clip_to_threshold(best_i * self.width)


def _kl_at(hist: np.ndarray, i: int, levels: int) -> float:
    """KL(P || Q) for threshold bin `i`: P = hist[:i] with the clipped tail folded into its
    last bin; Q = hist[:i] merged into `levels` groups, each group's mass spread evenly
    over its nonzero bins (TensorRT's entropy calibration)."""
    p = hist[:i].copy()
    p[-1] += hist[i:].sum()
    small, extra = divmod(i, levels)
    sizes = np.array([small + 1] * extra + [small] * (levels - extra))
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    body = hist[:i]
    nonzero = (body > 0).astype(np.float64)
    mass = np.add.reduceat(body, starts) / np.maximum(np.add.reduceat(nonzero, starts), 1.0)
    q = np.repeat(mass, sizes) * nonzero
    mask = p > 0
    pn, qn = p[mask] / p.sum(), q[mask] / max(q.sum(), 1e-300)
    return float(np.sum(pn * np.log(pn / np.maximum(qn, 1e-12))))


CALIBRATORS: dict[str, type[Calibrator]] = {
    "minmax": MinMax,
    "percentile": Percentile,
    "mse": Mse,
    "entropy": Entropy,
}


def make_calibrator(method: str, act_rule: ActRule | None = None) -> Calibrator:
    """A fresh calibrator for `method` (see `CALIBRATORS`); `act_rule` maps a range to its ActQ."""
    try:
        return CALIBRATORS[method](act_rule)
    except KeyError:
        raise ValueError(f"unknown calibration method {method!r} (choices: {', '.join(CALIBRATORS)})") from None
