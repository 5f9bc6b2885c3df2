"""Running an IR through the golden model: float, integer, and integer seen in real units."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..ir import IR, ActQ, IRError
from .common import FLOAT_OPS, QUANT_OPS

# -- running a graph -----------------------------------------------------------

def _check_feeds(ir: IR, feeds: dict[str, np.ndarray], dtype: type) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in ir.inputs:
        if name not in feeds:
            raise IRError(f"no value fed for input {name!r}")
        x = np.asarray(feeds[name])
        want = ir.node(name)["shape"]
        if x.ndim != len(want) or tuple(x.shape[1:]) != tuple(want[1:]):
            raise IRError(f"input {name!r}: got shape {x.shape}, expected (batch, {', '.join(map(str, want[1:]))})")
        if dtype is np.int8 and x.dtype != np.int8:
            raise IRError(f"input {name!r}: got dtype {x.dtype}, expected int8 (use quantize_input)")
        out[name] = x.astype(dtype, copy=False)
    return out


def _walk(ir: IR, values: dict[str, np.ndarray], step: Callable[[str, list[np.ndarray]], np.ndarray],
          intermediates: bool) -> dict[str, np.ndarray]:
    """Evaluate nodes in topological order; free a value once its last consumer ran."""
    pending = {n: len(ir.succs(n)) for n in ir.g.nodes}
    keep = set(ir.outputs)
    first = ir.inputs[0] if ir.inputs else None
    batch = values[first].shape[0] // max(ir.node(first)["shape"][0], 1) if first in values else 1
    for name in ir.topo():
        if name in values:
            continue
        preds = ir.preds(name)
        values[name] = step(name, [values[p] for p in preds])
        if not preds and batch > 1:  # a Const: the same tensor for every sample
            values[name] = np.repeat(values[name], batch, axis=0)
        if not intermediates:
            for p in preds:
                pending[p] -= 1
                if pending[p] == 0 and p not in keep:
                    del values[p]
    return values if intermediates else {o: values[o] for o in ir.outputs}


def run_float(ir: IR, feeds: dict[str, np.ndarray], intermediates: bool = False) -> dict[str, np.ndarray]:
    """Float32 outputs keyed by IR node name (every node's with `intermediates`)."""

    def step(name: str, ins: list[np.ndarray]) -> np.ndarray:
        node = ir.node(name)
        fn = FLOAT_OPS.get(node["op"])
        if fn is None:
            raise IRError(f"node {name!r}: the float reference has no op {node['op']!r}")
        return fn(node, ins)

    return _walk(ir, _check_feeds(ir, feeds, np.float32), step, intermediates)


def run_quantized(ir: IR, feeds_q: dict[str, np.ndarray], intermediates: bool = False) -> dict[str, np.ndarray]:
    """Int8 outputs of a quantized IR on int8 inputs, keyed by IR node name."""

    def step(name: str, ins: list[np.ndarray]) -> np.ndarray:
        node = ir.node(name)
        fn = QUANT_OPS.get(node["op"])
        if fn is None:
            raise IRError(f"node {name!r}: the integer reference has no op {node['op']!r}")
        if "act_q" not in node and node["dtype"] == "float32" and not node["attrs"].get("float_out"):
            raise IRError(f"node {name!r} is not quantized (no act_q)")
        # an integer tensor (a host ArgMax's) has no quantization: None
        return fn(node, ins, [ir.node(p).get("act_q") for p in ir.preds(name)])

    return _walk(ir, _check_feeds(ir, feeds_q, np.int8), step, intermediates)


def quantize_input(x: np.ndarray, act_q: ActQ) -> np.ndarray:
    """real -> int8 (ONNX QuantizeLinear; `ActQ.quantize`)."""
    return act_q.quantize(x)


def dequantize(q: np.ndarray, act_q: ActQ) -> np.ndarray:
    """int8 -> real float32 (ONNX DequantizeLinear; `ActQ.dequantize`)."""
    return act_q.dequantize(q)


def run_quantized_float(ir: IR, feeds: dict[str, np.ndarray], intermediates: bool = False) -> dict[str, np.ndarray]:
    """Quantize float feeds, run the integer model, dequantize: the NPU's answer in real units."""
    feeds_q = {n: quantize_input(feeds[n], ir.node(n)["act_q"]) for n in ir.inputs if n in feeds}
    out = run_quantized(ir, feeds_q, intermediates)
    return {n: dequantize(q, ir.node(n)["act_q"]) for n, q in out.items()}

