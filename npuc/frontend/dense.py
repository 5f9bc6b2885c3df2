"""Fully connected ops and batch normalization.

Gemm and MatMul-with-constant-weight both become an IR ``Gemm`` computing
``y = x @ W.T + B`` with consts ``W`` of shape (N, K) — one output channel a
row, like Conv's (Cout, ...) — and ``B`` of shape (N,); alpha, beta and transB
are folded into them here.
"""

from __future__ import annotations

import numpy as np

from .registry import NodeCtx, handler


def _matrix_input(ctx: NodeCtx) -> tuple[int, int]:
    shape = ctx.in_shape(0)
    if len(shape) != 2:
        raise ctx.unsupported(f"input has shape {shape}; only 2-D (batch, features) inputs are supported")
    return shape  # type: ignore[return-value]


def _emit_gemm(ctx: NodeCtx, weight: np.ndarray, bias: np.ndarray) -> None:
    m, k = _matrix_input(ctx)
    if weight.shape[1] != k:
        raise ctx.error(f"weight has {weight.shape[1]} input features, the input has {k}")
    n = weight.shape[0]
    ctx.emit(
        "Gemm",
        [ctx.data(0)],
        shape=(m, n),
        consts={"W": np.ascontiguousarray(weight, dtype=np.float32), "B": bias.astype(np.float32)},
    )


@handler("Gemm")
def Gemm(ctx: NodeCtx) -> None:
    if int(ctx.attr("transA", 0)) != 0:
        raise ctx.unsupported("transA=1 is not supported")
    b = ctx.const(1, "B").astype(np.float32)
    if b.ndim != 2:
        raise ctx.unsupported(f"B has shape {b.shape}; a 2-D matrix is expected")
    weight = float(ctx.attr("alpha", 1.0)) * (b if int(ctx.attr("transB", 0)) else b.T)
    n = weight.shape[0]
    c = ctx.const_or(2, None)
    bias = np.zeros(n, np.float32)
    if c is not None:
        m = _matrix_input(ctx)[0]
        try:
            rows = np.broadcast_to(c.astype(np.float32), (m, n))
        except ValueError:
            raise ctx.error(f"C of shape {c.shape} does not broadcast to the output ({m}, {n})") from None
        if not np.all(rows == rows[0]):
            raise ctx.unsupported(f"C of shape {c.shape} differs between rows; only a per-column bias is supported")
        bias = float(ctx.attr("beta", 1.0)) * rows[0]
    _emit_gemm(ctx, weight, bias)


@handler("MatMul")
def MatMul(ctx: NodeCtx) -> None:
    if not ctx.is_const(1):
        raise ctx.unsupported("only MatMul with a constant 2-D weight (second input) is supported")
    b = ctx.const(1, "B").astype(np.float32)
    if b.ndim != 2:
        raise ctx.unsupported(f"weight has shape {b.shape}; a 2-D matrix is expected")
    _emit_gemm(ctx, b.T, np.zeros(b.shape[1], np.float32))


@handler("BatchNormalization")
def BatchNormalization(ctx: NodeCtx) -> None:
    """Kept as a node; `fold_batchnorm` merges it into the preceding Conv or Gemm."""
    ctx.check_unused_outputs(1)
    if int(ctx.attr("training_mode", 0)) != 0:
        raise ctx.error("training_mode=1 is not supported (inference only)")
    shape = ctx.in_shape(0)
    if len(shape) not in (2, 4):
        raise ctx.unsupported(f"input has shape {shape}; 2-D or 4-D is expected")
    c = shape[1]
    consts = {}
    for i, key in enumerate(("scale", "B", "mean", "var"), start=1):
        value = ctx.const(i, key).astype(np.float32)
        if value.shape != (c,):
            raise ctx.error(f"{key} has shape {value.shape}, expected ({c},)")
        consts[key] = value
    ctx.emit(
        "BatchNormalization",
        [ctx.data(0)],
        shape=shape,
        attrs={"epsilon": float(ctx.attr("epsilon", 1e-5))},
        consts=consts,
    )
