"""Fold per-channel affine ops into the Conv/Gemm before them, or make them a depthwise 1x1 Conv.

The one-input per-channel ops — ``BatchNormalization``, ``Add`` of a
per-channel constant (``consts["B"]``, `npuc/frontend/elementwise.py`) and
``Mul`` by one (``consts["S"]``, also Div by a constant) — are each an affine
map y = x·S + B per channel. A chain of them, each node the only consumer of
the one before and not a graph output (DenseNet's and Inception's
BN -> Mul -> Add), is merged into one affine, which then

* folds into the Conv, Gemm or ConvTranspose that computes the chain's input
  when that is exact: the chain is its only consumer, it is not a graph
  output and carries no fused activation (W·S per output channel, B·S + B');
* else becomes a depthwise 1x1 ``Conv`` (group = C, W = S as (C, 1, 1, 1),
  bias B) on a 4-D tensor, or a ``Gemm`` with the diagonal weight diag(S) on
  a 2-D one, so it still runs on the NPU (a Relu after it then fuses into
  that conv's requantization).

The node that remains keeps the chain's first node's name and the last
node's ONNX output name.

Pre: frontend IR. Post: no BatchNormalization node, no one-input Add or Mul
(a constant operand); every folded op computes what the chain did (up to
float rounding), so calibration and quantization see one op with one set of
weights. `fallback` is kept for the pipeline's signature: nothing here needs
the host any more.
"""

from __future__ import annotations

import numpy as np

from ..ir import IR

FOLDABLE = ("Conv", "Gemm", "ConvTranspose")


def fold_batchnorm(ir: IR, fallback: bool = False) -> IR:
    ir = ir.copy()
    for head in ir.topo():
        if head not in ir.g or not is_affine(ir, head):
            continue
        chain = [head]
        while (len(ir.succs(chain[-1])) == 1 and chain[-1] not in ir.outputs
               and is_affine(ir, ir.succs(chain[-1])[0])):
            chain.append(ir.succs(chain[-1])[0])
        s, b = np.ones(ir.node(head)["shape"][1]), np.zeros(ir.node(head)["shape"][1])
        for n in chain:
            s_n, b_n = affine(ir.node(n))
            s, b = s * s_n, b * s_n + b_n  # (x·s + b)·s_n + b_n
        for n in chain[1:]:
            ir.remove_passthrough(n)
        (src,) = ir.preds(head)
        if _foldable(ir, src, head):
            _fold(ir.node(src), s, b)
            ir.remove_passthrough(head)
        else:
            _to_channel_op(ir.node(head), s, b)
    return ir


def is_affine(ir: IR, name: str) -> bool:
    """A one-input per-channel op: BatchNormalization, Add of consts B, Mul by consts S."""
    op, consts = ir.op(name), ir.node(name)["consts"]
    return (op == "BatchNormalization" or (op == "Add" and "B" in consts and len(ir.preds(name)) == 1)
            or (op == "Mul" and "S" in consts and len(ir.preds(name)) == 1))


def affine(node: dict) -> tuple[np.ndarray, np.ndarray]:
    """(S, B) in float64 with the node's output = input·S + B per channel."""
    c = node["consts"]
    if node["op"] == "BatchNormalization":
        s = c["scale"].astype(np.float64) / np.sqrt(c["var"].astype(np.float64) + node["attrs"]["epsilon"])
        return s, c["B"].astype(np.float64) - c["mean"].astype(np.float64) * s
    if node["op"] == "Add":
        return np.ones(len(c["B"])), c["B"].astype(np.float64)
    return c["S"].astype(np.float64), np.zeros(len(c["S"]))


def _foldable(ir: IR, src: str, head: str) -> bool:
    return (ir.op(src) in FOLDABLE and ir.succs(src) == [head] and src not in ir.outputs
            and "act" not in ir.node(src)["attrs"])


def _fold(dst: dict, s: np.ndarray, b: np.ndarray) -> None:
    """y = (x·W + B)·s + b per output channel (axis 0 of W)."""
    w, bias = dst["consts"]["W"].astype(np.float64), dst["consts"]["B"].astype(np.float64)
    dst["consts"]["W"] = (w * s.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
    dst["consts"]["B"] = (bias * s + b).astype(np.float32)


def _to_channel_op(node: dict, s: np.ndarray, b: np.ndarray) -> None:
    """The affine as an NPU op in place: a depthwise 1x1 Conv (4-D) or a diagonal Gemm (2-D)."""
    c = len(s)
    if len(node["shape"]) == 4:
        node["op"] = "Conv"
        node["attrs"] = {"kernel": (1, 1), "strides": (1, 1), "dilations": (1, 1), "pads": (0, 0, 0, 0),
                         "group": c}
        node["consts"] = {"W": s.reshape(c, 1, 1, 1).astype(np.float32), "B": b.astype(np.float32)}
    else:
        node["op"] = "Gemm"
        node["attrs"] = {}
        node["consts"] = {"W": np.diag(s).astype(np.float32), "B": b.astype(np.float32)}
