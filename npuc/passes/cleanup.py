"""Graph clean-up on the float IR: merge a constant Pad into the windowed op that reads it.

Exporters write explicit padding as a separate ``Pad`` node (TensorFlow-style
SAME padding, PyTorch's ``F.pad``, Caffe2's asymmetric pads). A ``Pad``
(``attrs = {"pads": (pt, pl, pb, pr), "value"}``, `npuc/frontend/layout.py`)
whose only consumer is

* a ``Conv`` (any group), with value 0: the conv's own zero padding grows by
  the Pad's pads;
* an ``AveragePool``, with value 0: its pads grow, and the padded pixels count
  in every divisor: ``count_include_pad = 1`` with ``count_pads`` = the Pad's
  pads (plus the pool's own ``count_pads`` when it already counted them);
* a ``MaxPool``, with value -inf: its pads grow (it pads with -inf itself);
* another ``Pad`` with the same value: one Pad with the summed pads;

is removed, so the padding costs nothing (the `ld` fills it while loading).
Every merge computes exactly the same float function; the windows, output
shape and divisors are unchanged. Pads with several consumers, or that are a
graph output, stay.

Constant folding (Constant, ConstantOfShape, Shape -> Gather -> Concat ->
Reshape chains, Cast, Slice, Unsqueeze of constants), Identity and Dropout
removal, and MatMul + Add -> Gemm happen earlier, in the frontend
(`npuc/frontend/loader.py`, `fallback.py`) and in `fold_batchnorm`.

Pre: frontend IR. Post: no Pad node whose merge above applies.
"""

from __future__ import annotations

import math

from ..ir import IR

Pads = tuple[int, int, int, int]


def cleanup(ir: IR) -> IR:
    ir = ir.copy()
    changed = True
    while changed:  # a Pad -> Pad -> Conv chain merges in two steps
        changed = False
        for name in ir.topo():
            if name in ir.g and ir.op(name) == "Pad" and _merge_pad(ir, name):
                changed = True
    return ir


def _add(a: Pads, b: Pads) -> Pads:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


def _merge_pad(ir: IR, pad: str) -> bool:
    """Merge Pad `pad` into its only consumer when that is exact; True when it was removed."""
    succs = ir.succs(pad)
    if len(succs) != 1 or pad in ir.outputs:
        return False
    (dst,) = succs
    p, value = tuple(ir.node(pad)["attrs"]["pads"]), float(ir.node(pad)["attrs"]["value"])
    a = ir.node(dst)["attrs"]
    op = ir.op(dst)
    if op == "Conv" and value == 0.0:
        a["pads"] = _add(tuple(a["pads"]), p)
    elif op == "AveragePool" and value == 0.0:
        own = tuple(a["count_pads"]) if a["count_include_pad"] else (0, 0, 0, 0)
        a["pads"] = _add(tuple(a["pads"]), p)
        a["count_pads"] = _add(own, p)
        a["count_include_pad"] = 1
    elif (op == "MaxPool" and value == -math.inf) or (op == "Pad" and float(a["value"]) == value):
        a["pads"] = _add(tuple(a["pads"]), p)
    else:
        return False
    ir.remove_passthrough(pad)
    return True
