"""Turn an IR node a pass cannot place on the NPU into a Host node running the same ONNX op.

The frontend falls back per ONNX node (`npuc/frontend/fallback.py`); some
nodes only turn out to be unplaceable in a pass: a Relu or Clip with no
Conv/Gemm to fuse into (after a residual Add that runs on the host), a
BatchNormalization with no Conv/Gemm to fold into (after a Concat), a
MaxPool whose window does not fit the scratchpad. Those ops are rebuilt here as single-node
ONNX models from their IR form.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import helper

from .. import host
from ..ir import IR


def to_host(ir: IR, name: str, reason: str) -> None:
    """Make IR node `name` (Relu, Clip, BatchNormalization, MaxPool or a constant Add, one input) a Host node,
    in place."""
    d = ir.node(name)
    op = d["op"]
    (src,) = ir.preds(name)
    x = host.ValueSpec(ir.node(src)["value"], ir.node(src)["dtype"], tuple(ir.node(src)["shape"]))
    y = host.ValueSpec(d["value"], "float32", tuple(d["shape"]))
    inits: dict[str, np.ndarray] = {}
    if op == "Relu":
        node = helper.make_node("Relu", [x.name], [y.name], name=name)
    elif op == "Clip":
        bounds = []
        for key in ("lo", "hi"):
            v = float(d["attrs"][key])
            if math.isinf(v):
                bounds.append("")  # an absent optional input: no bound
            else:
                inits[f"{name}.{key}"] = np.float32(v)
                bounds.append(f"{name}.{key}")
        node = helper.make_node("Clip", [x.name, *bounds], [y.name], name=name)
    elif op == "Add":  # a tensor plus a per-channel constant (`consts["B"]`) no Conv/Gemm bias took
        inits = {f"{name}.B": d["consts"]["B"].reshape((1, -1) + (1,) * (len(d["shape"]) - 2))}
        node = helper.make_node("Add", [x.name, f"{name}.B"], [y.name], name=name)
    elif op == "MaxPool":  # the frontend folded ceil_mode into the end pads: the floor formula holds
        a = d["attrs"]
        node = helper.make_node("MaxPool", [x.name], [y.name], name=name, kernel_shape=list(a["kernel"]),
                                strides=list(a["strides"]), dilations=list(a.get("dilations", (1, 1))),
                                pads=list(a["pads"]))
    elif op == "BatchNormalization":
        keys = ("scale", "B", "mean", "var")
        inits = {f"{name}.{k}": d["consts"][k] for k in keys}
        node = helper.make_node(op, [x.name, *inits], [y.name], name=name, epsilon=d["attrs"]["epsilon"])
    else:
        raise ValueError(f"node {name!r}: no host form for op {op}")
    model = host.build_model(node, [x], y, inits, ir.opset)
    d["op"] = "Host"
    d["attrs"] = {"onnx_op": op, "opset": ir.opset, "reason": reason, "model": model}
    d["consts"] = {}
