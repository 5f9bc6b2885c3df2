"""Window geometry shared by every layer that handles pooling: one definition of an
AveragePool's divisors, used by the frontend (checks), the golden model, the
quantizer (one multiplier per distinct divisor), the backend and the exports."""

from __future__ import annotations

from typing import Any

import numpy as np


def _axis_counts(n: int, k: int, s: int, d: int, pad: int, lo: int, hi: int, out: int) -> np.ndarray:
    """Per output index along one axis: how many of its k taps lie in [lo, hi) (input coordinates)."""
    starts = np.arange(out) * s - pad
    taps_ = starts[:, None] + np.arange(k)[None, :] * d
    return ((taps_ >= lo) & (taps_ < hi)).sum(axis=1)


def pool_counts(attrs: dict[str, Any], in_hw: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """(OH, OW) int64: the divisor of each output pixel of an AveragePool.

    count_include_pad = 0: the taps inside the image; = 1: the taps inside the
    image grown by the ONNX pads (``count_pads``, before ceil_mode was folded
    in) — ONNX Runtime's rule, measured. Separable: a row count times a column count.
    """
    (kh, kw), (sh, sw), (dh, dw) = attrs["kernel"], attrs["strides"], attrs["dilations"]
    pt, pl = attrs["pads"][:2]
    h, w = in_hw
    if attrs["count_include_pad"]:
        ct, cl, cb, cr = attrs["count_pads"]
        rows = _axis_counts(h, kh, sh, dh, pt, -ct, h + cb, out_hw[0])
        cols = _axis_counts(w, kw, sw, dw, pl, -cl, w + cr, out_hw[1])
    else:
        rows = _axis_counts(h, kh, sh, dh, pt, 0, h, out_hw[0])
        cols = _axis_counts(w, kw, sw, dw, pl, 0, w, out_hw[1])
    return (rows[:, None] * cols[None, :]).astype(np.int64)
