"""Golden model of the core ops: Conv, Gemm, BatchNormalization, Relu, Clip, MaxPool,
GlobalAveragePool, Flatten/Reshape, Host and Add/Sub, in float and in integer arithmetic."""

from __future__ import annotations

import numpy as np

from .. import host
from ..ir import ActQ
from ..isa.arith import add_requantize
from .common import (
    Node,
    apply_act,
    conv_nhwc,
    float_op,
    keep_batch,
    out_hw,
    pad_nchw,
    quant_op,
    requant_acc,
    taps,
)

# -- float ops -----------------------------------------------------------------

@float_op("Conv")
def conv_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    a, c = node["attrs"], node["consts"]
    acc = conv_nhwc(pad_nchw(ins[0], a["pads"], 0.0), c["W"], a, out_hw(node), np.float64)
    return apply_act(acc + c["B"], node).transpose(0, 3, 1, 2).astype(np.float32)


@float_op("Gemm")
def gemm_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    c = node["consts"]
    y = ins[0].astype(np.float64) @ c["W"].T.astype(np.float64) + c["B"]
    return apply_act(y, node).astype(np.float32)


@float_op("BatchNormalization")
def batchnorm_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    c, x = node["consts"], ins[0]
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv = c["scale"] / np.sqrt(c["var"].astype(np.float64) + node["attrs"]["epsilon"])
    y = (x - c["mean"].reshape(shape)) * inv.reshape(shape) + c["B"].reshape(shape)
    return y.astype(np.float32)


@float_op("Relu")
def relu_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    return np.maximum(ins[0], 0).astype(np.float32)


@float_op("Clip")
def clip_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    return np.clip(ins[0], node["attrs"]["lo"], node["attrs"]["hi"]).astype(np.float32)


@float_op("MaxPool")
def maxpool_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    return _maxpool(pad_nchw(ins[0], node["attrs"]["pads"], -np.inf), node)


@float_op("GlobalAveragePool")
def gap_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    return ins[0].mean(axis=(2, 3), keepdims=True, dtype=np.float64).astype(np.float32)


@float_op("Flatten")
@float_op("Reshape")
def reshape_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    return keep_batch(ins[0], node)


@float_op("Host")
def host_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    """An op the NPU cannot run, in float through onnx.reference (`npuc.host`)."""
    return host.run_batched(node["attrs"]["model"], ins)


@float_op("Add")
def add_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    """Two tensors of one shape, or (before `fold_batchnorm`) one tensor plus a per-channel constant B."""
    if len(ins) == 1:
        x = ins[0]
        return (x + node["consts"]["B"].reshape((1, -1) + (1,) * (x.ndim - 2))).astype(np.float32)
    return apply_act(ins[0].astype(np.float64) + ins[1], node).astype(np.float32)


@float_op("Sub")
def sub_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    return apply_act(ins[0].astype(np.float64) - ins[1], node).astype(np.float32)


def _maxpool(xp: np.ndarray, node: Node) -> np.ndarray:
    out = None
    for _, _, view in taps(xp, node["attrs"], out_hw(node)):
        out = view.copy() if out is None else np.maximum(out, view)
    assert out is not None
    return out


# -- integer ops ---------------------------------------------------------------

@quant_op("Conv")
def conv_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    """Padding holds the input zero point, as the hardware's `ld fill=` writes it;
    the bias already subtracts zp_in·ΣW, so a padded tap contributes exactly zero."""
    a, q = node["attrs"], node["qop"]
    xp = pad_nchw(ins[0], a["pads"], in_q[0].zp)
    acc = conv_nhwc(xp, q.weight, a, out_hw(node), np.float64)
    return requant_acc(acc.astype(np.int64), node).transpose(0, 3, 1, 2)


@quant_op("Gemm")
def gemm_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    acc = ins[0].astype(np.float64) @ node["qop"].weight.T.astype(np.float64)
    return requant_acc(acc.astype(np.int64), node)


@quant_op("MaxPool")
def maxpool_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    """Exact on int8; padding is -128, which never beats a real pixel."""
    return _maxpool(pad_nchw(ins[0], node["attrs"]["pads"], -128), node)


@quant_op("GlobalAveragePool")
def gap_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    """acc = Σ_HW q (int32), + bias (= -HW·zp_in), then requantize: the `AccQ`'s mul/shift is 1/HW."""
    acc = ins[0].astype(np.int64).sum(axis=(2, 3))
    return requant_acc(acc, node)[:, :, None, None]


@quant_op("Flatten")
@quant_op("Reshape")
def reshape_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    return keep_batch(ins[0], node)


@quant_op("Host")
def host_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    """What the simulator driver does at a host point: dequantize the int8 inputs (integer tensors,
    whose `in_q` entry is None, pass as they are), run the op in float, quantize a float output
    (round half to even, saturate)."""
    real = [x if q is None else host.dequantize(x, q.scale, q.zp) for x, q in zip(ins, in_q)]
    y = host.run_batched(node["attrs"]["model"], real)
    q_out = node.get("act_q")
    if q_out is None:  # an integer output (ArgMax) is not quantized
        return y
    return host.quantize(y, q_out.scale, q_out.zp, f"host op {node['attrs']['onnx_op']}")


@quant_op("Add")
@quant_op("Sub")
def add_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    """`vadd` (`AddQ`): (a - za)·ma + (b - zb)·mb formed exactly, rounded once (Sub: mb < 0)."""
    q = node["qop"]
    return add_requantize(ins[0], ins[1], q.za, q.zb, q.ma, q.mb, q.sh, q.zp_out, q.lo, q.hi, q.rounding)


