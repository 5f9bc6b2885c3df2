"""Give the inputs of every Concat one quantization, so the concatenation is a copy (or no copy at all).

Pre: calibrated IR. Post: the same graph; every Concat, every other Concat
connected to it (nested, or sharing an input — a *group*) and every input
of theirs whose producer chooses its own output scale from its calibrated
range (`OWN_SCALE`: Conv, Gemm, Add, ...) carry the group's range, the
union of the member concats' ranges. `quantize` then gives them all one
act_q, and the Concat quantizer (`quantize_layout.concat_q`) puts a
`Requant` node in front of any input that still differs: one whose scale is
inherited (MaxPool, a slice, a Host op's integer path, ...).

Widening a producer's range also changes what its other consumers see:
only its scale, which they requantize from anyway, at some precision cost
where the ranges differ much (TFLite makes the same trade).
"""

from __future__ import annotations

from ..ir import IR

# producers whose quantizer takes act_q from the node's own calibrated range
OWN_SCALE = frozenset({"Input", "Host", "Conv", "ConvTranspose", "Gemm", "Add", "Sub", "GlobalAveragePool",
                       "AveragePool", "Mul", "Lut", "Requant"})


def concat_groups(ir: IR) -> list[list[str]]:
    """Concats linked by nesting or by a shared input, each group in topological order."""
    concats = [n for n in ir.topo() if ir.op(n) == "Concat"]
    parent = {c: c for c in concats}

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    first_reader: dict[str, str] = {}
    for c in concats:
        for p in ir.preds(c):
            if p in parent:
                parent[find(p)] = find(c)
            if p in first_reader:
                parent[find(first_reader[p])] = find(c)
            first_reader.setdefault(p, c)
    groups: dict[str, list[str]] = {}
    for c in concats:
        groups.setdefault(find(c), []).append(c)
    return list(groups.values())


def unify_concat(ir: IR) -> IR:
    ir = ir.copy()
    for group in concat_groups(ir):
        lo = min(ir.node(c)["range"][0] for c in group)
        hi = max(ir.node(c)["range"][1] for c in group)
        for c in group:
            ir.node(c)["range"] = (lo, hi)
            for p in ir.preds(c):
                if ir.op(p) in OWN_SCALE and ir.node(p)["dtype"] == "float32":
                    ir.node(p)["range"] = (lo, hi)
    return ir
