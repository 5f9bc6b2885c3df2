"""The IR as readable text, for `--dump-ir` and for debugging a pass."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .fsutil import atomic_write_text
from .ir import IR


def _array(a: np.ndarray) -> str:
    a = np.asarray(a)
    if a.size <= 8:
        return np.array2string(a.ravel(), separator=",", max_line_width=10**6)
    return f"{a.dtype}{list(a.shape)} min={a.min():.6g} max={a.max():.6g}"


def format_ir(ir: IR) -> str:
    lines = [f"# {ir.name} opset {ir.opset}; inputs {ir.inputs}; outputs {ir.outputs}"]
    for name in ir.topo():
        d = ir.node(name)
        args = ", ".join(ir.preds(name))
        dtype = "" if d["dtype"] == "float32" else f" dtype={d['dtype']}"  # a host op's integer output
        lines.append(f"{name} = {d['op']}({args}) shape={list(d['shape'])}{dtype}")
        for k, v in sorted(d["attrs"].items()):
            shown = f"<{len(v)} bytes>" if isinstance(v, bytes) else v  # a host op's serialized model
            lines.append(f"    attr {k} = {shown}")
        for k, v in sorted(d["consts"].items()):
            lines.append(f"    const {k} = {_array(v)}")
        if "range" in d:
            lines.append(f"    range = {d['range']}")
        if d.get("act_q") is not None:
            lines.append(f"    act_q = {d['act_q']}")
        q = d.get("qop")
        if q is not None:  # every field of the record, arrays summarized
            shown = " ".join(f"{f.name}={_array(v) if isinstance(v, np.ndarray) else v}"
                             for f in dataclasses.fields(q) for v in [getattr(q, f.name)])
            lines.append(f"    qop {type(q).__name__} {shown}")
    return "\n".join(lines) + "\n"


def write_ir(ir: IR, path: str | Path) -> None:
    atomic_write_text(path, format_ir(ir))
