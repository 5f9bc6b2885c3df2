"""IR -> NPU program: one lowering function per IR op, gathered in a registry.

Activations live in DRAM as int8 NHWC (batch 1); every compute node is one
layer of the program. Layout-only ops (Flatten, Reshape) alias their input's
bytes. After lowering, `insert_tokens` adds the cross-unit dependencies.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..hw import HwConfig
from ..ir import IR
from ..isa.program import Program, TensorInfo
from ..isa.regions import ACC, DRAM, SPAD
from .conv import ConvGeom, lower_conv
from .deps import insert_tokens
from .emit import BackendError, Buf, Emitter
from .pool import lower_global_avgpool, lower_maxpool

Lowering = Callable[["Context", str], Buf]
LOWERINGS: dict[str, Lowering] = {}


def lowering(op: str) -> Callable[[Lowering], Lowering]:
    def register(fn: Lowering) -> Lowering:
        LOWERINGS[op] = fn
        return fn
    return register


class Context:
    def __init__(self, ir: IR, hw: HwConfig) -> None:
        self.ir, self.hw = ir, hw
        self.em = Emitter(hw)
        self.bufs: dict[str, Buf] = {}
        self.tensors: list[TensorInfo] = []

    def what(self, name: str) -> str:
        return f"node {name!r} ({self.ir.op(name)})"

    def input_buf(self, name: str, slot: int = 0) -> Buf:
        return self.bufs[self.ir.preds(name)[slot]]

    def new_buf(self, name: str) -> Buf:
        shape = self.ir.node(name)["shape"]
        c, h, w = _chw(shape, self.what(name))
        return Buf(self.em.alloc_dram(c * h * w), c, h, w)


def _chw(shape: tuple[int, ...], what: str) -> tuple[int, int, int]:
    if len(shape) == 4 and shape[0] == 1:
        return shape[1], shape[2], shape[3]
    if len(shape) == 2 and shape[0] == 1:
        return shape[1], 1, 1
    raise BackendError(f"{what}: tensor shape {shape} is not (1, C, H, W) or (1, K)")


def generate(ir: IR, hw: HwConfig) -> Program:
    """Lower a quantized IR to a complete program (header, data, instructions with tokens)."""
    ctx = Context(ir, hw)
    for name in ir.inputs:  # inputs first, so their addresses do not depend on the model
        ctx.bufs[name] = ctx.new_buf(name)
    for name in ir.topo():
        if name in ctx.bufs:
            continue
        op = ir.op(name)
        if op not in LOWERINGS:
            raise BackendError(f"{ctx.what(name)}: no NPU lowering for op {op}")
        ctx.bufs[name] = LOWERINGS[op](ctx, name)

    for name in ir.inputs:
        ctx.tensors.append(_tensor_info(ctx, name, "input"))
    for name in ir.outputs:
        ctx.tensors.append(_tensor_info(ctx, name, "output"))
    em = ctx.em
    sizes = {DRAM: em.dram_size, SPAD: hw.spad_bytes, ACC: hw.acc_words}
    return Program(hw=hw.to_flat(), dram_size=em.dram_size, tensors=ctx.tensors, layers=em.layers,
                   data=em.data, insns=insert_tokens(em.insns, sizes))


def _tensor_info(ctx: Context, name: str, role: str) -> TensorInfo:
    node = ctx.ir.node(name)
    buf = ctx.bufs[name]
    if buf.flat_of is not None and buf.flat_of[1] * buf.flat_of[2] > 1:
        raise BackendError(f"{ctx.what(name)}: a flattened feature map as a graph output is not supported yet")
    q = node["act_q"]
    layout = "nhwc" if len(node["shape"]) == 4 else "flat"
    return TensorInfo(name=node["value"], role=role, addr=buf.addr, shape=tuple(node["shape"]),
                      layout=layout, scale=float(q.scale), zp=int(q.zp))


@lowering("Conv")
def _conv(ctx: Context, name: str) -> Buf:
    node = ctx.ir.node(name)
    a = node["attrs"]
    if a.get("group", 1) != 1:
        raise BackendError(f"{ctx.what(name)}: grouped convolution is not supported yet")
    x = ctx.input_buf(name)
    y = ctx.new_buf(name)
    g = ConvGeom(cin=x.c, h=x.h, w=x.w, cout=y.c, oh=y.h, ow=y.w, kh=a["kernel"][0], kw=a["kernel"][1],
                 sh=a["strides"][0], sw=a["strides"][1], dh=a["dilations"][0], dw=a["dilations"][1],
                 pt=a["pads"][0], pl=a["pads"][1])
    in_zp = ctx.ir.node(ctx.ir.preds(name)[0])["act_q"].zp
    ctx.em.begin_layer(name)
    lower_conv(ctx.em, g, x, y, node["qop"].weight, node["qop"], in_zp, ctx.what(name))
    return y


@lowering("Gemm")
def _gemm(ctx: Context, name: str) -> Buf:
    node = ctx.ir.node(name)
    x = ctx.input_buf(name)
    y = ctx.new_buf(name)
    wq = node["qop"].weight  # (N, K), columns in the ONNX (C, H, W) flatten order
    if x.flat_of is not None:
        c, h, w = x.flat_of
        wq = wq.reshape(wq.shape[0], c, h, w).transpose(0, 2, 3, 1).reshape(wq.shape[0], -1)
    g = ConvGeom(cin=x.c, h=1, w=1, cout=y.c, oh=1, ow=1)
    in_zp = ctx.ir.node(ctx.ir.preds(name)[0])["act_q"].zp
    ctx.em.begin_layer(name)
    lower_conv(ctx.em, g, x, y, np.ascontiguousarray(wq)[:, :, None, None], node["qop"], in_zp, ctx.what(name))
    return y


@lowering("MaxPool")
def _maxpool(ctx: Context, name: str) -> Buf:
    a = ctx.ir.node(name)["attrs"]
    x = ctx.input_buf(name)
    y = ctx.new_buf(name)
    dil = a.get("dilations", (1, 1))
    g = ConvGeom(cin=x.c, h=x.h, w=x.w, cout=y.c, oh=y.h, ow=y.w, kh=a["kernel"][0], kw=a["kernel"][1],
                 sh=a["strides"][0], sw=a["strides"][1], dh=dil[0], dw=dil[1], pt=a["pads"][0], pl=a["pads"][1])
    ctx.em.begin_layer(name)
    lower_maxpool(ctx.em, g, x, y, ctx.what(name))
    return y


@lowering("GlobalAveragePool")
def _gap(ctx: Context, name: str) -> Buf:
    x = ctx.input_buf(name)
    y = ctx.new_buf(name)
    ctx.em.begin_layer(name)
    lower_global_avgpool(ctx.em, x, y, ctx.ir.node(name)["qop"], ctx.what(name))
    return y


def _alias(ctx: Context, name: str) -> Buf:
    x = ctx.input_buf(name)
    shape = ctx.ir.node(name)["shape"]
    if len(shape) == 2 and shape[0] == 1 and shape[1] == x.nbytes:
        flat_of = x.flat_of if x.flat_of is not None else ((x.c, x.h, x.w) if x.h * x.w > 1 else None)
        return Buf(x.addr, x.nbytes, 1, 1, flat_of)
    if len(shape) == 4 and tuple(shape[1:]) == (x.c, x.h, x.w):
        return x
    raise BackendError(f"{ctx.what(name)}: reshape to {shape} changes the memory layout; not supported yet")


LOWERINGS["Flatten"] = _alias
LOWERINGS["Reshape"] = _alias
