"""Resize with mode linear at integer scale factors, as EdgePad + a depthwise ConvTranspose.

Along one axis, linear interpolation at an integer scale s samples the input
at x(o) = (o + 0.5)/s − 0.5 (half_pixel, pytorch_half_pixel when the output
has > 1 pixel, half_pixel_symmetric at integer scales) or x(o) = o/s
(asymmetric; opset ≤ 10 Resize and Upsample, after the opset conversion).
Both satisfy x(o + s) = x(o) + 1, so output phase r = o mod s always mixes
the same two neighbours with the same weights: the input scattered by a
stride-s transposed convolution with a fixed 1-D kernel. ONNX clamps x to
[0, n − 1]; replicating the border pixels (EdgePad, the ONNX Pad mode "edge")
gives exactly that clamp, since w·x[0] + (1 − w)·x[0] = x[0]. The 2-D kernel
is the outer product of the two axes' kernels, one copy per channel
(group = C). Half-pixel x2: taps [1, 3, 3, 1]/4 per axis, pads 3, the input
edge-padded by 1 on every side; asymmetric x2: [1, 2, 1]/2, pads 1, padded by
1 at the end.

Each axis' plan is checked against the ONNX interpolation matrix on the
actual sizes (`interp_matrix`), so any case the plan gets wrong runs on the
host instead of silently differing (align_corners, for one, is not periodic
and always fails the check).

The float IR equals ONNX Runtime's Resize (within float rounding); the
quantized result is an approximation of it like any conv: weights that are
multiples of a power of two (x2: 1/16, 3/16, 9/16 at weight scale 2^-7 =
8, 24, 72) quantize exactly under the pow2 rule, and the interpolated value is
rounded once, in the requantization.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# the coordinate transformations under which an integer-scale linear resize is a transposed conv
PERIODIC_CTM = ("half_pixel", "pytorch_half_pixel", "half_pixel_symmetric", "asymmetric")


def source_coord(o: np.ndarray, scale: float, n_in: int, n_out: int, ctm: str) -> np.ndarray:
    """ONNX Resize's (unclamped) input coordinate of output indices `o` along one axis."""
    o = np.asarray(o, dtype=np.float64)
    if ctm == "asymmetric":
        return o / scale
    if ctm == "half_pixel":
        return (o + 0.5) / scale - 0.5
    if ctm == "pytorch_half_pixel":
        return (o + 0.5) / scale - 0.5 if n_out > 1 else np.zeros_like(o)
    if ctm == "half_pixel_symmetric":
        adj = n_out / (scale * n_in)
        return (o + 0.5) / scale - 0.5 + n_in / 2 * (1 - adj)
    if ctm == "tf_half_pixel_for_nn":
        return (o + 0.5) / scale
    if ctm == "align_corners":
        return o * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros_like(o)
    raise ValueError(ctm)


def interp_matrix(n_in: int, n_out: int, scale: float, ctm: str) -> np.ndarray:
    """(n_out, n_in) float64: ONNX linear Resize along one axis (x clamped to [0, n_in − 1])."""
    x = np.clip(source_coord(np.arange(n_out), scale, n_in, n_out, ctm), 0, n_in - 1)
    i0 = np.floor(x).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(m, (rows, i0), 1 - (x - i0))
    np.add.at(m, (rows, i1), x - i0)
    return m


@dataclass(frozen=True)
class AxisPlan:
    """One axis: EdgePad by (before, after), then ConvTranspose taps `kernel`, stride, pads (p0, p1)."""

    kernel: np.ndarray
    stride: int
    before: int
    after: int
    p0: int
    p1: int

    def matrix(self, n_in: int) -> np.ndarray:
        """(s·n_in, n_in): what the plan computes along this axis."""
        n_pad = n_in + self.before + self.after
        pad = np.zeros((n_pad, n_in))
        pad[np.arange(n_pad), np.clip(np.arange(n_pad) - self.before, 0, n_in - 1)] = 1
        n_out = self.stride * n_in
        conv = np.zeros((n_out, n_pad))
        for o in range(n_out):
            for i in range(n_pad):
                k = o + self.p0 - self.stride * i
                if 0 <= k < len(self.kernel):
                    conv[o, i] = self.kernel[k]
        return conv @ pad


def axis_plan(n_in: int, s: int, ctm: str) -> AxisPlan | None:
    """The EdgePad + ConvTranspose plan of a linear resize by integer `s`, or None when there is none."""
    if ctm not in PERIODIC_CTM:
        return None
    taps: list[tuple[int, int, float]] = []  # (phase r, input offset d, weight): out[s·i + r] += w·x[i + d]
    for r in range(s):
        f = float(source_coord(np.array([r]), float(s), n_in, s * n_in, ctm)[0])
        d = int(np.floor(f))
        for dd, w in ((d, 1.0 - (f - d)), (d + 1, f - d)):
            if w > 1e-12:
                taps.append((r, dd, w))
    before = max(0, -min(d for _, d, _ in taps))
    after = max(0, max(d for _, d, _ in taps))
    raw = [(r - s * (d + before), w) for r, d, w in taps]  # ConvTranspose tap index before the pad p0
    p0 = -min(k for k, _ in raw)
    kernel = np.zeros(max(k for k, _ in raw) + p0 + 1)
    for k, w in raw:
        kernel[k + p0] += w
    full = (n_in + before + after - 1) * s + len(kernel)
    p1 = full - p0 - s * n_in
    if p1 < 0:
        return None
    plan = AxisPlan(kernel, s, before, after, p0, p1)
    want = interp_matrix(n_in, s * n_in, float(s), ctm)
    return plan if np.allclose(plan.matrix(n_in), want, atol=1e-9) else None


__all__ = ["PERIODIC_CTM", "AxisPlan", "axis_plan", "interp_matrix", "source_coord"]
