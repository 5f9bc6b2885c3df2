"""A program's inputs: checked against its tensor table, quantized, placed in DRAM; outputs read back.

What `npuc sim` accepts (README, "npuc sim"): float arrays (any float width),
batch first, with no NaN or infinity; integer arrays (uint8 images) whose
values float32 holds exactly (|x| <= 2^24), taken as those real values.
Finite values beyond the tensor's range saturate to the int8 limits, as ONNX
QuantizeLinear does (float64 values beyond float32's range included). Anything
else is an `InputError` naming the file, the input and the first bad index.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np

from ..isa.arith import dequantize_linear, quantize_linear
from ..isa.program import TensorInfo

FLOAT32_EXACT = 1 << 24  # every integer of magnitude up to 2^24 is a float32
_NP_DTYPE = {"int8": np.dtype(np.int8), "int64": np.dtype("<i8"), "float32": np.dtype("<f4"),
             "int32": np.dtype("<i4"), "bool": np.dtype(np.bool_)}


class InputError(ValueError):
    """An input array does not match the program's tensor table, or holds values it cannot take."""


def quantize(x: np.ndarray, t: TensorInfo) -> np.ndarray:
    """float -> int8 as QuantizeLinear (`npuc.isa.arith.quantize_linear`); out-of-range values saturate."""
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, then saturates
        return quantize_linear(x, t.scale, t.zp)


def dequantize(q: np.ndarray, t: TensorInfo) -> np.ndarray:
    """int8 -> float32 as DequantizeLinear (`npuc.isa.arith.dequantize_linear`)."""
    return dequantize_linear(q, t.scale, t.zp)


def _first(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def check_values(x: np.ndarray, name: str, source: str, quantized: bool = False) -> None:
    """Raise InputError unless every value of input `name` can be fed to the program."""
    what = f"{source}: input {name!r}"
    if x.dtype.kind not in "fiu":
        raise InputError(f"{what} has dtype {x.dtype}: expected float or integer values")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            idx = _first(bad)
            v = float(x[idx])
            kind = "NaN" if np.isnan(v) else ("+inf" if v > 0 else "-inf")
            raise InputError(f"{what} holds {kind} at index {idx} (of {int(bad.sum())} non-finite values)")
        if quantized and (bad := x != np.rint(x)).any():
            idx = _first(bad)
            raise InputError(f"{what}: int8 values must be integers, index {idx} holds {float(x[idx])!r}")
    lo, hi = (-128, 127) if quantized else (-FLOAT32_EXACT, FLOAT32_EXACT)
    if x.dtype.kind in "iu" or quantized:
        bad = (x < lo) | (x > hi)
        if bad.any():
            idx = _first(bad)
            reason = ("outside the int8 range [-128, 127]" if quantized else
                      "which float32 cannot hold exactly (integer inputs must lie in [-2^24, 2^24])")
            raise InputError(f"{what} holds {x[idx]} at index {idx}, {reason}")


class HasInputs(Protocol):
    """A Program or a ProgramImage: anything with a tensor table."""

    def inputs(self) -> list[TensorInfo]: ...


def check_inputs(prog: HasInputs, inputs: Mapping[str, np.ndarray], source: str = "input",
                 quantized: bool = False) -> int:
    """Validate names, shapes and values against the program's input tensors; return the batch size.

    A batch is the samples stacked along axis 0: an input of shape (n0, ...) takes (B·n0, ...) for
    B samples (n0 = 1 but for an input whose batch is another axis, MultiheadAttention's (L, 1, E))."""
    tensors = prog.inputs()
    batch = None
    for t in tensors:
        if t.name not in inputs:
            raise InputError(f"{source}: missing input {t.name!r} (expected shape {t.shape})")
        x = np.asarray(inputs[t.name])
        n0 = t.shape[0]
        if x.ndim != len(t.shape) or tuple(x.shape[1:]) != tuple(t.shape[1:]) or x.shape[0] % n0 or not x.shape[0]:
            want = f"(N,) + {t.shape[1:]}" if n0 == 1 else f"(N·{n0},) + {t.shape[1:]} (N samples of {t.shape})"
            raise InputError(f"{source}: input {t.name!r} has shape {x.shape}, expected {want}")
        if batch is not None and x.shape[0] // n0 != batch:
            raise InputError(f"{source}: inputs disagree on the batch size")
        check_values(x, t.name, source, quantized)
        batch = x.shape[0] // n0
    extra = set(inputs) - {t.name for t in tensors}
    if extra:
        raise InputError(f"{source}: unknown input {sorted(extra)[0]!r}")
    return batch or 1


def random_inputs(prog: HasInputs, seed: int = 0) -> dict[str, np.ndarray]:
    """A seeded random input per tensor, spread over its quantized range."""
    rng = np.random.default_rng(seed)
    out = {}
    for t in prog.inputs():
        q = rng.integers(-128, 128, size=t.shape)
        out[t.name] = ((q - t.zp) * t.scale).astype(np.float32)
    return out


def to_dram(q: np.ndarray, t: TensorInfo) -> np.ndarray:
    """One sample (shape `t.shape`) in the program's DRAM layout, as bytes (uint8): "nhwc" is channels
    last (axis 1 moved to the end: NHWC for a (1, C, H, W) map, (L, C) for a (1, C, L) sequence),
    "flat" is ONNX order."""
    q = np.asarray(q).reshape(t.shape)
    if t.layout == "nhwc":
        q = np.moveaxis(q, 1, -1)
    return np.ascontiguousarray(q, dtype=_NP_DTYPE[t.dtype]).reshape(-1).view(np.uint8)


def read(dram: np.ndarray, t: TensorInfo) -> np.ndarray:
    """One sample of tensor `t` from DRAM, in ONNX order (shape `t.shape`)."""
    raw = dram[t.addr:t.addr + t.nbytes].view(_NP_DTYPE[t.dtype])
    if t.layout == "nhwc":
        return np.moveaxis(raw.reshape(t.shape[0], *t.shape[2:], t.shape[1]), -1, 1)
    return raw.reshape(t.shape)
