"""IR -> NPU program: one lowering function per IR op, gathered in a registry.

Activations live in DRAM as int8 NHWC (batch 1); every compute node is one
layer of the program. Layout-only ops (Flatten, Reshape) alias their input's
bytes. A Host node emits no instruction: it becomes a host point
(`Program.hosts`), a full barrier in the stream where the simulator driver
runs the op on the host. After lowering, `insert_tokens` adds the cross-unit
dependencies, one segment between host points at a time.
"""

from __future__ import annotations

import dataclasses
from itertools import pairwise

import numpy as np

from .. import host
from ..hw import HwConfig
from ..ir import IR
from ..isa.program import DTYPE_BYTES, HostOp, Insn, LayerWork, Program, TensorInfo
from ..isa.regions import ACC, DRAM, SPAD
from ..nhwc import same_bytes
from . import conv_ops, layout, vector  # noqa: F401  (each registers its lowerings)
from .context import LOWERINGS, Context, chw, lowering
from .conv import ConvGeom, FusedAdd, Resident, expand_groups, lower_conv, plan_conv
from .deps import insert_tokens
from .depthwise import lower_depthwise, use_engine
from .elementwise import lower_add, vadd_fields
from .emit import SPAD_ALIGN, BackendError, Buf
from .placement import copy_view, fused_order
from .pool import lower_global_avgpool, lower_maxpool
from .schedule import DEFAULT, Schedule


def generate(ir: IR, hw: HwConfig, schedule: Schedule = DEFAULT) -> Program:
    """Lower a quantized IR to a complete program (header, data, instructions with tokens)."""
    ctx = Context(ir, hw, schedule)
    for name in ir.inputs:  # inputs first, so their addresses do not depend on the model
        ctx.bufs[name] = ctx.new_buf(name)
    # a Conv feeding an Add comes after the Add's other input; a Conv kept on chip right before its reader
    for name in fused_order(ir, ctx.fused, ctx.onchip):
        if name in ctx.bufs:
            continue
        op = ir.op(name)
        if op not in LOWERINGS:
            raise BackendError(f"{ctx.what(name)}: no NPU lowering for op {op}")
        ctx.bufs[name] = LOWERINGS[op](ctx, name)

    for name in ir.inputs:
        ctx.tensors.append(_tensor_info(ctx, name, "input"))
    for name in ir.outputs:
        ctx.bufs[name] = ctx.dense(name)  # a program output is a dense tensor
        if ctx.bufs[name].flat_of is not None:  # its bytes are the map's NHWC ones: the output is ONNX order
            ctx.bufs[name] = _unflatten_order(ctx, name, ctx.bufs[name])
        ctx.tensors.append(_tensor_info(ctx, name, "output"))
    em = ctx.em
    sizes = {DRAM: em.dram_size, SPAD: hw.spad_bytes, ACC: hw.acc_words}
    return Program(hw=hw.to_flat(), dram_size=em.dram_size, tensors=ctx.tensors, layers=em.layers,
                   data=em.data, insns=_tokens_per_segment(em.insns, ctx.hosts, sizes), hosts=ctx.hosts,
                   work=em.work)


def _unflatten_order(ctx: Context, name: str, x: Buf) -> Buf:
    """A flattened (C, H, W) map's bytes from H, W, C order into ONNX (C, H, W) order: one strided DMA
    copy, the map seen as C rows of H·W one-byte pixels (read at pixel stride C, written at 1)."""
    assert x.flat_of is not None
    c, h, w = x.flat_of
    y = Buf(ctx.em.alloc_dram(x.nbytes), x.nbytes)
    ctx.em.begin_layer(f"{name}.onnx_order")
    copy_view(ctx.em, Buf(x.addr, 1, c, h * w, ps=c, rs=1), Buf(y.addr, 1, c, h * w, ps=1, rs=h * w), ctx.what(name))
    return y


def _tokens_per_segment(insns: list[Insn], hosts: list[HostOp], sizes: dict[str, int]) -> list[Insn]:
    """Dependency tokens for each stretch between host points on its own.

    A host point is a full barrier (the driver runs the segment before it to
    completion), so every hazard across it is already ordered, and a token
    signalled before it must not be waited for after it: the C core runs each
    segment as a program of its own.
    """
    cuts = [0, *(h.at for h in hosts), len(insns)]
    out: list[Insn] = []
    for a, b in pairwise(cuts):
        out += insert_tokens(insns[a:b], sizes)
    return out


def _dtype(node: dict) -> str:
    """The DRAM element type of an IR tensor: floats are quantized to int8 (but a host op's float output,
    ``float_out``, which stays float32), integers stay raw."""
    if node["attrs"].get("float_out"):
        return "float32"
    return "int8" if node["dtype"] == "float32" else node["dtype"]


def _storage(ctx: Context, name: str) -> tuple[tuple[int, ...], str]:
    """How IR tensor `name` lies in DRAM: (shape, layout). A flattened NHWC feature map is still
    NHWC bytes; a consumer that wants the flat shape reshapes (ONNX order = NCHW order)."""
    node, buf = ctx.ir.node(name), ctx.bufs[name]
    if buf.flat_of is not None:
        return (1, *buf.flat_of), "nhwc"
    shape = tuple(node["shape"])
    nhwc = len(shape) >= 3 and shape[0] == 1 and node["dtype"] == "float32"  # channels last (`npuc.nhwc`)
    return shape, "nhwc" if nhwc else "flat"


def _tensor_info(ctx: Context, name: str, role: str, value: str | None = None) -> TensorInfo:
    node = ctx.ir.node(name)
    shape, storage = _storage(ctx, name)
    q = node.get("act_q")
    scale, zp = (float(q.scale), int(q.zp)) if q is not None else (1.0, 0)  # an integer tensor: raw
    return TensorInfo(name=value or node["value"], role=role, addr=ctx.bufs[name].addr, shape=shape,
                      layout=storage, scale=scale, zp=zp, dtype=_dtype(node))


def _conv_geom(ctx: Context, name: str, x: tuple[int, int, int], y: tuple[int, int, int]) -> ConvGeom:
    """Conv node `name`'s geometry for an input of (C, H, W) `x` and an output of `y`."""
    a = ctx.ir.node(name)["attrs"]
    return ConvGeom(cin=x[0], h=x[1], w=x[2], cout=y[0], oh=y[1], ow=y[2], kh=a["kernel"][0], kw=a["kernel"][1],
                    sh=a["strides"][0], sw=a["strides"][1], dh=a["dilations"][0], dw=a["dilations"][1],
                    pt=a["pads"][0], pl=a["pads"][1], group=a.get("group", 1))


@lowering("Conv")
def _conv(ctx: Context, name: str) -> Buf:
    node = ctx.ir.node(name)
    x = ctx.input_buf(name)
    y = ctx.new_buf(name)
    g = _conv_geom(ctx, name, (x.c, x.h, x.w), (y.c, y.h, y.w))
    in_zp = ctx.ir.node(ctx.ir.preds(name)[0])["act_q"].zp
    wq = node["qop"].weight
    ctx.em.begin_layer(name, conv_work(wq, x, y))
    rb_in = ctx.resident.pop(name, None)
    if rb_in is not None:  # the previous conv's output, in the scratchpad above this layer's window
        ctx.em.spad.window(*rb_in.window)
    if name not in ctx.fused and _engine(ctx, g, rb_in is not None):  # its output then goes through DRAM
        lower_depthwise(ctx.em, g, x, y, wq, node["qop"], in_zp, ctx.what(name), rb_in=rb_in)
        return y
    fused = _fused_add(ctx, name) if name in ctx.fused else None
    rb_out = _keep_on_chip(ctx, name, g) if name in ctx.onchip else None
    # grouped: block-diagonal dense weights, whose zero blocks lower_conv skips
    lower_conv(ctx.em, g, x, y, expand_groups(wq, g.group), node["qop"], in_zp, ctx.what(name), fused=fused,
               rb_in=rb_in, rb_out=rb_out)
    return y


def _engine(ctx: Context, g: ConvGeom, in_sram: bool = False) -> bool:
    """The depthwise engine runs this conv (`depthwise.use_engine`, in the layer's SRAM window)."""
    em = ctx.em
    return use_engine(g, ctx.hw, em.spad.capacity, em.acc.capacity, in_sram)


def _keep_on_chip(ctx: Context, name: str, g: ConvGeom) -> Resident | None:
    """Keep conv `name`'s output in the scratchpad for the conv that alone reads it (`plan_onchip`)
    when both layers' plans fit beside it and their estimates are no worse than through DRAM: the
    tensor goes at the top of the consumer's half of the scratchpad (the producer works in the other
    half), padded with the consumer's padding value."""
    em, hw, q = ctx.em, ctx.hw, ctx.onchip[name]
    if any(getattr(ctx.ir.node(n)["qop"], "weight_bits", 8) != 8 for n in (name, q)):
        return None  # an int4 layer tiles for a wider array than these plans assume (conv.int4_array)
    gq = _conv_geom(ctx, q, (g.cout, g.oh, g.ow), chw(ctx.ir.node(q)["shape"], ctx.what(q)))
    ihq, iwq = gq.box(gq.oh, gq.ow)
    hp, wp = max(ihq, gq.pt + gq.h), max(iwq, gq.pl + gq.w)
    q_lo, q_hi = em.next_window(em.spad)
    addr = (q_hi - hp * wp * g.cout) // SPAD_ALIGN * SPAD_ALIGN
    q_acc = em.next_window(em.acc)
    out_bufs = 4 if q in ctx.fused else 2
    if addr - q_lo < SPAD_ALIGN:
        return None
    sch = em.schedule
    rb = Resident(addr, g.cout, hp, wp, gq.pt, gq.pl, g.oh, g.ow, ctx.ir.node(name)["act_q"].zp, (q_lo, addr))
    if q not in ctx.fused and use_engine(gq, hw, q_hi - q_lo, q_acc[1] - q_acc[0]):
        # the reader runs on the depthwise engine: kept when both fit, the engine reading it in place
        # (no DRAM round trip, so never slower than through DRAM)
        if (not use_engine(gq, hw, addr - q_lo, q_acc[1] - q_acc[0], in_sram=True) or
                plan_conv(g, hw, name, spad=em.spad.capacity, acc=em.acc.capacity, out_sram=True,
                          schedule=sch) is None):
            return None
        ctx.resident[q] = rb
        return rb
    kept = [plan_conv(g, hw, name, spad=em.spad.capacity, acc=em.acc.capacity, out_sram=True, schedule=sch),
            plan_conv(gq, hw, q, spad=addr - q_lo, acc=q_acc[1] - q_acc[0], out_bufs=out_bufs, in_sram=True,
                      schedule=sch)]
    if any(p is None or p.est is None for p in kept):
        return None
    through = [plan_conv(g, hw, name, spad=em.spad.capacity, acc=em.acc.capacity, schedule=sch),
               plan_conv(gq, hw, q, spad=q_hi - q_lo, acc=q_acc[1] - q_acc[0], out_bufs=out_bufs, schedule=sch)]
    if all(p is not None and p.est is not None for p in through) and (
            sum(p.est.cycles for p in through) < sum(p.est.cycles for p in kept)):  # type: ignore[union-attr]
        return None
    ctx.resident[q] = rb
    return rb


def _fused_add(ctx: Context, conv: str) -> FusedAdd:
    """The Add that `conv`'s tiles go through on chip (`placement.plan_fused_adds`); the Add is
    lowered here, so the codegen loop skips it."""
    add = ctx.fused[conv]
    slot = ctx.ir.preds(add).index(conv)
    other = ctx.input_buf(add, 1 - slot)
    y = ctx.new_buf(add)
    ctx.bufs[add] = y
    return FusedAdd(other, y, vadd_fields(ctx.ir.node(add)["qop"]), slot == 0, ctx.em.add_layer(add))


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
    ctx.em.begin_layer(name, conv_work(wq, x, y))
    lower_conv(ctx.em, g, x, y, np.ascontiguousarray(wq)[:, :, None, None], node["qop"], in_zp, ctx.what(name))
    return y


def conv_work(wq: np.ndarray, x: Buf, y: Buf) -> LayerWork:
    """A Conv's or Gemm's work as ONNX defines it: each output element takes one MAC per weight of its
    filter (`wq[0].size` = Cin/group * kh * kw, or K for a Gemm); the roofline counts the input, the
    output and the int8 weights once each."""
    return LayerWork(y.nbytes * int(wq[0].size), x.nbytes + y.nbytes + int(wq.size))


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


@lowering("Add")
@lowering("Sub")
def _add(ctx: Context, name: str) -> Buf:
    a, b = ctx.input_buf(name, 0), ctx.input_buf(name, 1)
    y = dataclasses.replace(ctx.new_buf(name), flat_of=a.flat_of)  # same bytes as the inputs
    ctx.em.begin_layer(name)
    lower_add(ctx.em, a, b, y, ctx.ir.node(name)["qop"], ctx.what(name))
    return y


@lowering("Host")
def _host(ctx: Context, name: str) -> Buf:
    """A host point: the op runs on the host after every instruction so far (no instruction here)."""
    node = ctx.ir.node(name)
    a = node["attrs"]
    size = DTYPE_BYTES[_dtype(node)] * int(np.prod(node["shape"]))
    shape = tuple(node["shape"])
    if _dtype(node) == "int8" and len(shape) >= 3 and shape[0] == 1:  # channels last: an NPU consumer reads it
        y = Buf(ctx.em.alloc_dram(size), *chw(shape, ctx.what(name)))
    else:
        y = Buf(ctx.em.alloc_dram(size), size // DTYPE_BYTES[_dtype(node)])  # flat, ONNX order
    ctx.bufs[name] = y
    # the model names its run-time inputs by ONNX value, in the order of the IR edges (slots)
    specs, out = host.model_io(a["model"])
    for p in ctx.ir.preds(name):  # the host reads dense tensors
        ctx.bufs[p] = ctx.dense(p)
    ins = [_tensor_info(ctx, p, "input", s.name) for p, s in zip(ctx.ir.preds(name), specs)]
    io = (*ins, _tensor_info(ctx, name, "output", out.name))
    ctx.hosts.append(HostOp(name, a["onnx_op"], len(ctx.em.insns), io, a["model"]))
    return y


def _alias(ctx: Context, name: str) -> Buf:
    x = ctx.input_buf(name)
    shape = ctx.ir.node(name)["shape"]
    if not x.dense:
        raise BackendError(f"{ctx.what(name)}: reshaping a strided view is not supported")
    if len(shape) == 2 and shape[0] == 1 and shape[1] == x.nbytes:
        flat_of = x.flat_of if x.flat_of is not None else ((x.c, x.h, x.w) if x.h * x.w > 1 and x.c > 1 else None)
        return Buf(x.addr, x.nbytes, 1, 1, flat_of)
    if len(shape) == 4 and x.flat_of == tuple(shape[1:]):  # un-flattening: the bytes are that map's
        return Buf(x.addr, *x.flat_of)
    if len(shape) >= 3 and x.flat_of is None and same_bytes((1, x.c, x.h, x.w), shape):
        return Buf(x.addr, *chw(tuple(shape), ctx.what(name)))
    raise BackendError(f"{ctx.what(name)}: reshape to {shape} changes the memory layout; not supported yet")


LOWERINGS["Flatten"] = _alias
LOWERINGS["Reshape"] = _alias
