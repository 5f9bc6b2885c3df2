"""Per-layer weight width: mark the Conv/Gemm layers whose weights the array holds as int4.

The quantizer reads the mark (`attrs["weight_bits"]`) and records it in the layer's `MatQ`
(``weight_bits``); the backend packs those weights two per byte and emits `gemm w4=1`, whose
tiles may be `int4_pack` times wider (isa/ISA.md, gemm). The NPU mixed-precision plan
(`npuc.tools.npu_precision`) chooses the layers; `CompileOptions.int4_layers` applies them.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..ir import IR
from .errors import PassError

WEIGHT_OPS = ("Conv", "Gemm")
WIDTHS = (4, 8)


def mark_weight_bits(ir: IR, names: Sequence[str], bits: int) -> IR:
    """A copy of `ir` whose layers `names` (Conv or Gemm) quantize their weights to `bits`."""
    if bits not in WIDTHS:
        raise PassError(f"weight width {bits}: one of {', '.join(map(str, WIDTHS))}")
    for n in names:
        if n not in ir.g:
            known = ", ".join(x for x in ir.topo() if ir.op(x) in WEIGHT_OPS)
            raise PassError(f"--int4-layers: no layer named {n!r} (Conv/Gemm layers: {known})")
        if ir.op(n) not in WEIGHT_OPS:
            raise PassError(f"--int4-layers: layer {n!r} is a {ir.op(n)}; only Conv and Gemm have weights")
    out = ir.copy()
    for n in names:
        node = out.node(n)
        node["attrs"] = {**node["attrs"], "weight_bits": bits}
    return out
