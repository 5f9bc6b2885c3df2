"""The functions a `vlut` table can hold: name -> float64 numpy function of one element.

An IR ``Lut`` node (attrs ``{"fn": name, **params}``) applies ``LUT_FNS[name]``
elementwise; quantization samples it at the 256 int8 input codes and stores
the int8 answers as the node's table (`npuc/passes/quantize_vector.py`), so
any function of one element costs one `vlut`. Parameters are plain floats
(or a string for Gelu's ``approximate``); per-channel PReLU takes its slope
from ``consts["slope"]`` of shape (C,), passed here already broadcast to the
channel axis. Every function follows the ONNX operator of the same meaning.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

LutFn = Callable[..., np.ndarray]
LUT_FNS: dict[str, LutFn] = {}
_erf = np.frompyfunc(math.erf, 1, 1)


def lut_fn(name: str) -> Callable[[LutFn], LutFn]:
    def register(fn: LutFn) -> LutFn:
        LUT_FNS[name] = fn
        return fn

    return register


def _f64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


@lut_fn("identity")
def identity(x: np.ndarray) -> np.ndarray:
    """A requantization only (a Lut whose input and output scales differ)."""
    return _f64(x)


@lut_fn("relu")
def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(_f64(x), 0.0)


@lut_fn("clip")
def clip(x: np.ndarray, lo: float = -math.inf, hi: float = math.inf) -> np.ndarray:
    return np.clip(_f64(x), lo, hi)


@lut_fn("sigmoid")
def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * _f64(x)))  # no overflow of exp(-x) for very negative x


@lut_fn("tanh")
def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(_f64(x))


@lut_fn("hardsigmoid")
def hardsigmoid(x: np.ndarray, alpha: float = 0.2, beta: float = 0.5) -> np.ndarray:
    return np.clip(alpha * _f64(x) + beta, 0.0, 1.0)


@lut_fn("hardswish")
def hardswish(x: np.ndarray, alpha: float = 1.0 / 6.0, beta: float = 0.5) -> np.ndarray:
    """x · hardsigmoid(x); ONNX HardSwish is alpha = 1/6, beta = 0.5."""
    x = _f64(x)
    return x * np.clip(alpha * x + beta, 0.0, 1.0)


@lut_fn("silu")
def silu(x: np.ndarray) -> np.ndarray:
    x = _f64(x)
    return x * sigmoid(x)


@lut_fn("gelu")
def gelu(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    x = _f64(x)
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


@lut_fn("erf")
def erf(x: np.ndarray) -> np.ndarray:
    """ONNX Erf: PyTorch exports exact GELU as x·0.5·(1 + Erf(x/√2)); `fuse_lut` folds that into gelu."""
    return _erf(_f64(x)).astype(np.float64)


@lut_fn("abs")
def abs_(x: np.ndarray) -> np.ndarray:
    return np.abs(_f64(x))


@lut_fn("leakyrelu")
def leakyrelu(x: np.ndarray, alpha: float = 0.01) -> np.ndarray:
    x = _f64(x)
    return np.where(x >= 0.0, x, alpha * x)


@lut_fn("prelu")
def prelu(x: np.ndarray, slope: np.ndarray | float = 0.0) -> np.ndarray:
    """`slope` broadcasts against x: a scalar, or (C,) already shaped onto the channel axis."""
    x = _f64(x)
    return np.where(x >= 0.0, x, np.asarray(slope, dtype=np.float64) * x)


@lut_fn("elu")
def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    x = _f64(x)
    return np.where(x > 0.0, x, alpha * np.expm1(np.minimum(x, 0.0)))


@lut_fn("softplus")
def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, _f64(x))


@lut_fn("selu")
def selu(x: np.ndarray, alpha: float = 1.67326319217681884765625,
         gamma: float = 1.05070102214813232421875) -> np.ndarray:
    x = _f64(x)
    return gamma * np.where(x > 0.0, x, alpha * np.expm1(np.minimum(x, 0.0)))


@lut_fn("softsign")
def softsign(x: np.ndarray) -> np.ndarray:
    x = _f64(x)
    return x / (1.0 + np.abs(x))


def apply(name: str, x: np.ndarray, params: dict[str, object], slope: np.ndarray | None = None) -> np.ndarray:
    """LUT_FNS[name](x, **params) in float64; `slope` (per-channel PReLU) is already broadcastable to x."""
    fn = LUT_FNS.get(name)
    if fn is None:
        raise ValueError(f"unknown LUT function {name!r} (known: {', '.join(sorted(LUT_FNS))})")
    if slope is not None:
        params = {**params, "slope": slope}
    return fn(x, **params)


def build_table(name: str, params: dict[str, object], s_in: float, zp_in: int, s_out: float, zp_out: int,
                lo: int = -128, hi: int = 127, slope: np.ndarray | None = None) -> np.ndarray:
    """The `vlut` table: tab[q + 128] = clamp(rint(f((q - zp_in)·s_in) / s_out) + zp_out, lo, hi).

    int8 (256,), or (C, 256) with a per-channel `slope` of shape (C,).
    """
    q = np.arange(-128, 128, dtype=np.float64)
    real = (q - zp_in) * s_in
    if slope is not None:
        y = apply(name, real[None, :], params, np.asarray(slope, np.float64)[:, None])
    else:
        y = apply(name, real, params)
    t = np.rint(y / s_out) + zp_out
    return np.clip(t, lo, hi).astype(np.int8)


def lut_params(node: dict) -> dict[str, object]:
    """The function's parameters: the attrs but the name and a fused activation."""
    return {k: v for k, v in node["attrs"].items() if k not in ("fn", "act")}
