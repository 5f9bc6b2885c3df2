"""Run chosen Conv/Gemm layers in float on the host (the manual half of mixed precision).

Pre: prepared float IR (`prepare`); `layers` name Conv/Gemm nodes.
Post: those nodes are Host nodes computing the layer in float (float weights,
no requantization rounding); a fused activation is split off into a Host
Relu/Clip after the layer (a host op is one ONNX node). The quantizer then
treats them as any host op: the input is dequantized, the float output
quantized back to int8 for the NPU. Every other node is untouched.

Which layers deserve it is a search above the pipeline
(`npuc/tools/mixed_precision.py`: it runs the simulator); this pass only
applies a choice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import helper

from .. import host
from ..ir import IR
from .errors import PassError
from .host_fallback import to_host

HOST_FLOAT_OPS = ("Conv", "Gemm")


def host_float(ir: IR, layers: Sequence[str], reason: str = "mixed precision (manual)") -> IR:
    """A copy of `ir` with each of `layers` computed in host float."""
    validate_layers(ir, layers)
    ir = ir.copy()
    for name in layers:
        move_to_host_float(ir, name, reason)
    return ir


def move_to_host_float(ir: IR, name: str, reason: str) -> None:
    """Make Conv/Gemm `name` a Host node computing it in float, in place; a fused activation becomes
    a Host Relu/Clip node after it (a host op is one ONNX node)."""
    d = ir.node(name)
    op = d["op"]
    if op not in HOST_FLOAT_OPS:
        raise PassError(f"node {name!r} (op {op}): only {', '.join(HOST_FLOAT_OPS)} can run in host float")
    act = d["attrs"].get("act")
    if act is not None:
        _split_activation(ir, name, act)
    (src,) = ir.preds(name)
    s = ir.node(src)
    x = host.ValueSpec(s["value"], s["dtype"], tuple(s["shape"]))
    y = host.ValueSpec(d["value"], "float32", tuple(d["shape"]))
    inits = {f"{name}.W": d["consts"]["W"].astype(np.float32), f"{name}.B": d["consts"]["B"].astype(np.float32)}
    a = d["attrs"]
    if op == "Conv":
        node = helper.make_node("Conv", [x.name, *inits], [y.name], name=name, kernel_shape=list(a["kernel"]),
                                strides=list(a["strides"]), dilations=list(a["dilations"]), pads=list(a["pads"]),
                                group=int(a.get("group", 1)))
    else:
        node = helper.make_node("Gemm", [x.name, *inits], [y.name], name=name, transB=1)
    d["op"] = "Host"
    d["attrs"] = {"onnx_op": op, "opset": ir.opset, "reason": reason,
                  "model": host.build_model(node, [x], y, inits, ir.opset)}
    d["consts"] = {}


def _split_activation(ir: IR, name: str, act: tuple[str, float, float]) -> None:
    """`name`'s fused activation as its own node after it (same value name on the final tensor)."""
    d = ir.node(name)
    kind, lo, hi = act
    act_name = f"{name}.act"
    op = "Relu" if kind == "relu" else "Clip"
    ir.add(act_name, op, [], attrs={"lo": lo, "hi": hi}, shape=tuple(d["shape"]), value=d["value"])
    ir.node(act_name)["order"] = d.get("order", 0)
    for _, dst, slot in list(ir.g.out_edges(name, data="slot")):
        ir.g.remove_edge(name, dst)
        ir.g.add_edge(act_name, dst, slot=slot)
    ir.g.add_edge(name, act_name, slot=0)
    ir.outputs = [act_name if o == name else o for o in ir.outputs]
    d["value"] = f"{d['value']}.preact"
    d["attrs"] = {k: v for k, v in d["attrs"].items() if k != "act"}
    to_host(ir, act_name, f"activation of {name}, which runs in host float")


def layer_macs(ir: IR, name: str) -> int:
    d = ir.node(name)
    w = d["consts"]["W"]
    per_out = int(np.prod(w.shape[1:]))
    return per_out * int(np.prod(d["shape"][1:]))


def validate_layers(ir: IR, names: Sequence[str]) -> None:
    """Unknown names, or layers that cannot run in host float: a one-line error naming them."""
    for n in names:
        if n not in ir.g:
            known = ", ".join(x for x in ir.topo() if ir.op(x) in HOST_FLOAT_OPS)
            raise PassError(f"--float-layers: no layer named {n!r} (Conv/Gemm layers: {known})")
        if ir.op(n) not in HOST_FLOAT_OPS:
            raise PassError(f"--float-layers: layer {n!r} is a {ir.op(n)}; only Conv and Gemm can run in host float")
