"""Float and integer semantics of the layout ops (registered into `npuc.reference.common`).

Every op here moves int8 values without arithmetic, except `Requant`:

* ``Const`` (``consts["value"]``, shape (1, ...)): a constant tensor; integer:
  its QuantizeLinear with the node's act_q.
* ``Concat`` (attrs ``axis`` = 1 or 2): channel concatenation of 4-D NCHW or 2-D
  (1, K) tensors, or row concatenation of 4-D ones. Integer: the same concatenation, exact only when every
  input carries the concat's act_q (`npuc/passes/unify_concat.py` makes it
  so; a mismatch is an error, never a silent rescale).
* ``ChannelSlice`` (attrs ``start``, ``end``): channels [start, end) of the
  input, one output of a Split or a channel Slice.
* ``ChannelShuffle`` (attrs ``groups``): ShuffleNet's Reshape(N, g, C/g, H, W)
  -> Transpose(0, 2, 1, 3, 4) -> Reshape(N, C, H, W): output channel
  j·g + i is input channel i·(C/g) + j.
* ``Resize`` (attrs ``mode`` = "nearest", ``scales`` = (sh, sw) integers):
  each pixel repeated sh x sw times.
* ``Pad`` (attrs ``pads`` = (pt, pl, pb, pr), ``value``): constant padding of
  the two spatial axes. Integer: the pad value quantized with the input's
  act_q (round half to even, saturated — `ActQ.code`).
* ``EdgePad`` (attrs ``pads`` = (pt, pl, pb, pr), ``mode`` = "edge" or
  "reflect"): ONNX Pad of the two spatial axes whose border repeats the
  outermost pixel (edge) or mirrors the map without repeating it (reflect,
  pads < the axis). Integer: the same on the int8 values, exact.
* ``Requant`` (no attrs): the identity in float; in integer a rescale from
  the input's act_q to the node's, one `vadd` with mb = 0:
  clamp(round_shift((q - za)·ma, sh) + zp, lo, hi): an `AddQ` with mb = 0.
"""

from __future__ import annotations

import numpy as np

from ..ir import ActQ, IRError
from ..isa.arith import add_requantize
from .common import Node, float_op, pad_nchw, quant_op


@float_op("Const")
def const_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    """The constant, batch 1 (`run` repeats a node without inputs for every sample of the batch)."""
    return np.asarray(node["consts"]["value"], dtype=np.float32)


@quant_op("Const")
def const_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    """Quantized once with the node's act_q (QuantizeLinear), as the compiler writes it into DRAM."""
    return node["act_q"].quantize(np.asarray(node["consts"]["value"], dtype=np.float32))


@float_op("Concat")
def concat_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(ins, axis=int(node["attrs"].get("axis", 1))).astype(np.float32)


@quant_op("Concat")
def concat_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    q = node["act_q"]
    for slot, qi in enumerate(in_q):
        if qi != q:
            raise IRError(f"Concat node (value {node['value']!r}): input {slot} has act_q {qi}, the output {q}; "
                          "a concatenation is exact only on one quantization")
    return np.concatenate(ins, axis=int(node["attrs"].get("axis", 1)))


@float_op("ChannelSlice")
@quant_op("ChannelSlice")
def channel_slice(node: Node, ins: list[np.ndarray], in_q: list[ActQ] | None = None) -> np.ndarray:
    a = node["attrs"]
    return np.ascontiguousarray(ins[0][:, a["start"]:a["end"]])


@float_op("ChannelShuffle")
@quant_op("ChannelShuffle")
def channel_shuffle(node: Node, ins: list[np.ndarray], in_q: list[ActQ] | None = None) -> np.ndarray:
    x, g = ins[0], node["attrs"]["groups"]
    n, c, h, w = x.shape
    return np.ascontiguousarray(x.reshape(n, g, c // g, h, w).transpose(0, 2, 1, 3, 4).reshape(n, c, h, w))


def nearest_repeat(x: np.ndarray, scales: tuple[int, int]) -> np.ndarray:
    return np.repeat(np.repeat(x, scales[0], axis=2), scales[1], axis=3)


@float_op("Resize")
@quant_op("Resize")
def resize_nearest(node: Node, ins: list[np.ndarray], in_q: list[ActQ] | None = None) -> np.ndarray:
    a = node["attrs"]
    if a.get("mode", "nearest") != "nearest":
        raise IRError(f"Resize node (value {node['value']!r}): mode {a['mode']!r} has no reference")
    return nearest_repeat(ins[0], tuple(a["scales"]))


@float_op("Pad")
def pad_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    a = node["attrs"]
    return pad_nchw(ins[0], tuple(a["pads"]), float(a["value"])).astype(np.float32)


@quant_op("Pad")
def pad_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    a = node["attrs"]
    return pad_nchw(ins[0], tuple(a["pads"]), in_q[0].code(float(a["value"])))


@float_op("EdgePad")
@quant_op("EdgePad")
def edge_pad(node: Node, ins: list[np.ndarray], in_q: list[ActQ] | None = None) -> np.ndarray:
    a = node["attrs"]
    pt, pl, pb, pr = a["pads"]
    return np.pad(ins[0], ((0, 0), (0, 0), (pt, pb), (pl, pr)), mode=a["mode"])


@float_op("Requant")
def requant_float(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    return ins[0]


@quant_op("Requant")
def requant_quant(node: Node, ins: list[np.ndarray], in_q: list[ActQ]) -> np.ndarray:
    q = node["qop"]
    return add_requantize(ins[0], ins[0], q.za, 0, q.ma, 0, q.sh, q.zp_out, q.lo, q.hi, q.rounding)
