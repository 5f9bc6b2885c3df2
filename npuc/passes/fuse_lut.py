"""Fuse the decomposed forms of SiLU, HardSwish and GELU into one ``Lut`` node.

PyTorch exports SiLU as ``x · Sigmoid(x)`` and, below opset 14, HardSwish as
``x · Clip(x + 3, 0, 6) / 6`` (or ``x · relu6(x + 3) / 6``, ``x ·
HardSigmoid(x)``, the division as a Mul by 1/6, before or after the
product) and exact GELU as ``x · 0.5 · (1 + Erf(x / √2))`` (Erf is a Lut). In the IR
those are a two-input ``Mul`` of ``x`` and a chain of
one-input elementwise nodes of ``x`` (Lut, Relu, Clip, an Add or Mul by a
constant that is the same for every channel), possibly followed by Muls by
such constants. This pass finds every such subgraph whose inner nodes have
no other consumer, evaluates it on a dense grid of inputs and, when it
equals silu, hardswish or gelu (`npuc.lut`) there, replaces it by one Lut — one
`vlut` instead of three to five vector passes, and one rounding instead of
several. Recognizing by value rather than by shape catches every ordering
of the same arithmetic.

Pre: frontend IR (runs first in `prepare`, before `fold_batchnorm` would fold
the ``+ 3`` or ``/ 6`` into a conv). Post: the matched subgraphs are Luts;
everything else is unchanged.
"""

from __future__ import annotations

import numpy as np

from .. import lut
from ..ir import IR

PROBE = np.concatenate([np.linspace(-16.0, 16.0, 3201), [-3.0, 3.0, 0.0]])
RTOL = 1e-5  # float32 constants (1/6 rounded) stay far inside; a different function does not


def fuse_lut(ir: IR) -> IR:
    ir = ir.copy()
    for m in ir.topo():
        if m in ir.g and _is_product(ir, m):
            _try_fuse(ir, m)
    return ir


def _is_product(ir: IR, n: str) -> bool:
    return ir.op(n) == "Mul" and len(ir.preds(n)) == 2 and "broadcast" not in ir.node(n)["attrs"]


def _uniform_const(ir: IR, n: str, key: str) -> float | None:
    v = ir.node(n)["consts"].get(key)
    if v is None or v.size == 0 or not np.all(v == v.flat[0]):
        return None
    return float(v.flat[0])


def _is_unary(ir: IR, n: str) -> bool:
    """A one-input elementwise node that is the same function on every channel."""
    op, node = ir.op(n), ir.node(n)
    if len(ir.preds(n)) != 1:
        return False
    if op == "Lut":
        return "slope" not in node["consts"]
    if op in ("Relu", "Clip"):
        return True
    if op == "Add":
        return _uniform_const(ir, n, "B") is not None
    if op == "Mul":
        return _uniform_const(ir, n, "S") is not None
    return False


def _private(ir: IR, n: str) -> bool:
    return len(ir.succs(n)) == 1 and n not in ir.outputs


def _chain(ir: IR, n: str, inner: list[str]) -> str:
    """Walk up through private one-input elementwise nodes; the first other node is the chain's source."""
    while _is_unary(ir, n) and _private(ir, n):
        inner.append(n)
        (n,) = ir.preds(n)
    return n


def _try_fuse(ir: IR, m: str) -> None:
    p0, p1 = ir.preds(m)
    inner: list[str] = []
    x = _chain(ir, p0, inner)
    if _chain(ir, p1, inner) != x:
        return
    tail = [m]
    while _private(ir, tail[-1]):
        (nxt,) = ir.succs(tail[-1])
        if not (ir.op(nxt) == "Mul" and _is_unary(ir, nxt)):
            break
        tail.append(nxt)
    candidates: list[tuple[str, dict[str, object]]] = [("silu", {}), ("hardswish", {}),
                                                        ("gelu", {"approximate": "none"})]
    for n in inner:
        a = ir.node(n)["attrs"]
        if ir.op(n) == "Lut" and a.get("fn") == "hardsigmoid" and "act" not in a:
            candidates.append(("hardswish", {"alpha": a["alpha"], "beta": a["beta"]}))
    for end in range(len(tail), 0, -1):  # the longest tail that still matches
        got = _evaluate(ir, x, tail[end - 1])
        for fn, params in candidates:
            want = lut.apply(fn, PROBE, params)
            if np.all(np.abs(got - want) <= RTOL * (1.0 + np.abs(want))):
                _replace(ir, x, inner + tail[:end], tail[end - 1], fn, params)
                return


def _evaluate(ir: IR, x: str, out: str) -> np.ndarray:
    """The subgraph from `x` to `out` on the probe grid, in float64."""
    memo: dict[str, np.ndarray] = {x: PROBE}

    def val(n: str) -> np.ndarray:
        if n not in memo:
            ins = [val(p) for p in ir.preds(n)]
            memo[n] = _apply(ir, n, ins)
        return memo[n]

    return val(out)


def _apply(ir: IR, n: str, ins: list[np.ndarray]) -> np.ndarray:
    node, op = ir.node(n), ir.op(n)
    if op == "Mul" and len(ins) == 2:
        y = ins[0] * ins[1]
    elif op == "Mul":
        y = ins[0] * _uniform_const(ir, n, "S")
    elif op == "Add":
        y = ins[0] + _uniform_const(ir, n, "B")
    elif op == "Relu":
        y = np.maximum(ins[0], 0.0)
    elif op == "Clip":
        y = np.clip(ins[0], node["attrs"]["lo"], node["attrs"]["hi"])
    else:  # Lut
        a = node["attrs"]
        y = lut.apply(a["fn"], ins[0], {k: v for k, v in a.items() if k not in ("fn", "act")})
    act = node["attrs"].get("act")
    return y if act is None else np.clip(y, act[1], act[2])


def _replace(ir: IR, x: str, nodes: list[str], out: str, fn: str, params: dict[str, object]) -> None:
    """`out` becomes Lut fn(x); the other nodes of the subgraph go."""
    for n in nodes:
        if n != out:
            ir.g.remove_node(n)
    for src, _ in list(ir.g.in_edges(out)):
        ir.g.remove_edge(src, out)
    node = ir.node(out)
    node["op"], node["attrs"], node["consts"] = "Lut", {"fn": fn, **params}, {}
    ir.g.add_edge(x, out, slot=0)
