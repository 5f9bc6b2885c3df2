"""The NPU's integer arithmetic, once: rounding shifts, saturation, int32 wrap, and the
real <-> integer conversions at the model's edges (`quantize_linear`, `dequantize_linear`).

Used by the numpy emulator of the ISA, by the compiler's quantized reference
model, by the host fallback and by the simulator driver, so all read the same
definition (ISA.md, `vrq`, `vadd`; ONNX QuantizeLinear / DequantizeLinear).
"""

from __future__ import annotations

import numpy as np

from .table import Rounding

ROUNDING_BY_NAME: dict[str, Rounding] = {
    "half_even": Rounding.HALF_EVEN,
    "half_up": Rounding.HALF_UP,
    "truncate": Rounding.TRUNCATE,
    "half_away": Rounding.HALF_AWAY,
}


def round_shift(t: np.ndarray, s: np.ndarray | int, rnd: Rounding | str) -> np.ndarray:
    """Arithmetic right shift of int64 `t` by `s` (0..62, broadcast) with rounding `rnd`."""
    if isinstance(rnd, str):
        rnd = ROUNDING_BY_NAME[rnd]
    t = np.asarray(t, dtype=np.int64)
    s = np.broadcast_to(np.asarray(s, dtype=np.int64), t.shape)
    if np.any((s < 0) | (s > 62)):
        raise ValueError("shift out of [0, 62]")
    q = t >> s
    if rnd == Rounding.TRUNCATE:
        return q
    pos = s > 0
    half = np.where(pos, np.int64(1) << np.maximum(s - 1, 0), 0)
    if rnd == Rounding.HALF_UP:
        return np.where(pos, (t + half) >> s, t)
    if rnd == Rounding.HALF_AWAY:  # |t| <= 2^62, so -t cannot overflow
        return np.where(pos, np.where(t >= 0, (t + half) >> s, -((half - t) >> s)), t)
    rem = t - (q << s)
    up = pos & ((rem > half) | ((rem == half) & ((q & 1) == 1)))
    return q + up.astype(np.int64)


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap to int32, as the accumulator adder does."""
    return np.asarray(x, dtype=np.int64).astype(np.uint32).astype(np.int32)


def saturate(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def requantize(acc: np.ndarray, mul: np.ndarray, shift: np.ndarray, zp: int, lo: int, hi: int,
               rnd: Rounding | str) -> np.ndarray:
    """`vrq` on an int32 array whose last axis is the channel: returns int8."""
    t = np.asarray(acc, dtype=np.int64) * np.asarray(mul, dtype=np.int64)
    r = round_shift(t, shift, rnd)
    return saturate(r + zp, lo, hi).astype(np.int8)


def add_requantize(a: np.ndarray, b: np.ndarray, za: int, zb: int, ma: int, mb: int, sh: int, zp: int,
                   lo: int, hi: int, rnd: Rounding | str) -> np.ndarray:
    """`vadd` on int8 arrays (broadcast): clamp(round_shift((a-za)·ma + (b-zb)·mb, sh) + zp, lo, hi).

    One rounding of the exact sum; |t| <= 2 * 255 * 2^31 < 2^40: no step overflows int64.
    """
    t = (np.asarray(a, dtype=np.int64) - za) * np.int64(ma) + (np.asarray(b, dtype=np.int64) - zb) * np.int64(mb)
    return saturate(round_shift(t, sh, rnd) + zp, lo, hi).astype(np.int8)


def mul_requantize(a: np.ndarray, b: np.ndarray, za: int, zb: int, mul: int, sh: int, zp: int,
                   lo: int, hi: int, rnd: Rounding | str) -> np.ndarray:
    """`vmul` on int8 arrays (broadcast): clamp(round_shift((a-za)·(b-zb)·mul, sh) + zp, lo, hi).

    The product is exact: |a-za|, |b-zb| <= 255 and |mul| <= 2^31, so
    |t| <= 255^2 * 2^31 < 2^47 and no step overflows int64.
    """
    t = (np.asarray(a, dtype=np.int64) - za) * (np.asarray(b, dtype=np.int64) - zb) * np.int64(mul)
    return saturate(round_shift(t, sh, rnd) + zp, lo, hi).astype(np.int8)


def lut_lookup(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """`vlut` on int8 `x` whose last axis is the column: table (256,) shared, or (C, 256) per column."""
    idx = np.asarray(x, dtype=np.int64) + 128
    tab = np.asarray(table, dtype=np.int8)
    if tab.ndim == 1:
        return tab[idx]
    return tab[np.arange(tab.shape[0]), idx]  # broadcasts the column index over the last axis


def _int_dtype(qmin: int, qmax: int) -> np.dtype:
    for dt in (np.int8, np.int16, np.int32):
        info = np.iinfo(dt)
        if info.min <= qmin and qmax <= info.max:
            return np.dtype(dt)
    raise ValueError(f"integer range [{qmin}, {qmax}] does not fit int32")


def quantize_linear(x: np.ndarray, scale: float, zp: int, qmin: int = -128, qmax: int = 127) -> np.ndarray:
    """real -> integer exactly as ONNX QuantizeLinear and ONNX Runtime compute it: x / scale in
    float32, rounded half to even, plus the zero point, saturated to [qmin, qmax].

    float32 matters: ONNX Runtime is the oracle of the QDQ export, and a float64 quotient can
    round a near-tie the other way. The caller checks for NaN (it has no integer value)."""
    r = np.rint(np.asarray(x, dtype=np.float32) / np.float32(scale)).astype(np.float64)
    return np.clip(r + zp, qmin, qmax).astype(_int_dtype(qmin, qmax))


def dequantize_linear(q: np.ndarray, scale: float, zp: int) -> np.ndarray:
    """integer -> real as ONNX DequantizeLinear: (q - zp) · scale in float32."""
    centred = (np.asarray(q, dtype=np.int64) - zp).astype(np.float32)
    return (centred * np.float32(scale)).astype(np.float32)
