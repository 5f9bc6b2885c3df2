"""ReduceMean / ReduceMax over H and W (`npuc/frontend/reduce.py`): global pools, as ShuffleNetV2 and
MNASNet export `x.mean([2, 3])`; other axes stay on the host."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from npuc.frontend import load_onnx
from npuc.reference import run_float


def _ops(ir) -> list[str]:
    return sorted(ir.op(n) for n in ir.g.nodes)


@pytest.mark.parametrize("op,pool", [("ReduceMean", "GlobalAveragePool"), ("ReduceMax", "GlobalMaxPool")])
@pytest.mark.parametrize("axes,keepdims,opset", [
    ([2, 3], 0, 13), ([-1, -2], 1, 13), ([2, 3], 1, 17), ([3, 2], 0, 18),  # opset 18: axes as an input
])
def test_spatial_reduce_is_a_global_pool(build, oracle, op, pool, axes, keepdims, opset):
    if opset >= 18:
        nodes = [helper.make_node("Constant", [], ["ax"], value=helper.make_tensor("ax", 7, [len(axes)], axes)),
                 helper.make_node(op, ["x", "ax"], ["y"], keepdims=keepdims)]
    else:
        nodes = [helper.make_node(op, ["x"], ["y"], axes=axes, keepdims=keepdims)]
    model = build(nodes, {"x": [2, 5, 6, 7]}, ["y"], opset=opset)
    ir = load_onnx(model)
    assert _ops(ir) == sorted(["Input", pool] + ([] if keepdims else ["Flatten"]))
    x = np.random.default_rng(0).standard_normal((2, 5, 6, 7)).astype(np.float32)
    (want,) = oracle(model, {"x": x})
    got = run_float(ir, {"x": x})[ir.outputs[0]]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axes", [[1], [1, 2, 3], None])
def test_other_axes_run_on_the_host(build, axes):
    kw = {} if axes is None else {"axes": axes}
    model = build([helper.make_node("ReduceMean", ["x"], ["y"], keepdims=1, **kw)], {"x": [1, 5, 6, 7]}, ["y"])
    ir = load_onnx(model, allow_fallback=True)
    assert "Host" in _ops(ir) and "GlobalAveragePool" not in _ops(ir)
