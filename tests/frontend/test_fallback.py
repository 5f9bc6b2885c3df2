"""Host fallback in the frontend and the passes: which nodes become `Host`, which fold, which fail.

A Host node's float reference (`onnx.reference` on its single-node model) must
agree with onnxruntime on the original model.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from npuc.frontend import FrontendError, load_onnx
from npuc.passes import prepare, verify
from npuc.reference import run_float

RNG = np.random.default_rng(3)


def _typed(model, **types: int):
    """`build` declares every output float; give some their own element type."""
    for out in model.graph.output:
        out.type.tensor_type.elem_type = types.get(out.name, out.type.tensor_type.elem_type)
    return model


def test_an_op_without_handler_runs_on_the_host(build, oracle):
    nodes = [helper.make_node("Softmax", ["x"], ["s"], name="sm", axis=1),
             helper.make_node("LRN", ["x4"], ["l"], name="lrn", size=3, alpha=0.1),
             helper.make_node("GlobalAveragePool", ["l"], ["y"], name="gap")]
    model = build(nodes, {"x": [1, 10], "x4": [1, 4, 5, 5]}, ["s", "y"])
    ir = load_onnx(model)
    verify(ir, "frontend")
    for name, op in (("sm", "Softmax"), ("lrn", "LRN")):
        d = ir.node(name)
        assert d["op"] == "Host" and d["dtype"] == "float32"
        assert {k: d["attrs"][k] for k in ("onnx_op", "opset", "reason")} == {
            "onnx_op": op, "opset": 13, "reason": "no NPU lowering"}
    feeds = {"x": RNG.normal(size=(3, 10)).astype(np.float32), "x4": RNG.normal(size=(3, 4, 5, 5)).astype(np.float32)}
    got = run_float(ir, feeds)
    want = [np.concatenate(z) for z in zip(*(oracle(model, {k: v[b:b + 1] for k, v in feeds.items()})
                                             for b in range(3)))]
    np.testing.assert_allclose(got["sm"], want[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got["gap"], want[1], rtol=1e-5, atol=1e-6)


def test_no_fallback_keeps_the_error(build):
    model = build([helper.make_node("Softmax", ["x"], ["y"], name="sm")], {"x": [1, 10]}, ["y"])
    with pytest.raises(FrontendError, match=r"node 'sm': unsupported op 'Softmax' \(domain ai.onnx, opset 13\)"):
        load_onnx(model, allow_fallback=False)


def test_unknown_domain_is_an_error_even_with_fallback(build):
    model = build([helper.make_node("Foo", ["x"], ["y"], name="f", domain="com.acme")], {"x": [1, 10]}, ["y"])
    model.opset_import.append(helper.make_opsetid("com.acme", 3))
    with pytest.raises(FrontendError, match="unsupported op 'Foo' .domain com.acme, opset 3."):
        load_onnx(model)


def test_a_rejecting_handler_falls_back_with_its_reason(build):
    model = build([helper.make_node("Conv", ["x", "W"], ["y"], name="g", pads=[1] * 4)],
                  {"x": [1, 4, 6, 6], "W": [1, 4, 3, 3]}, ["y"])
    ir = load_onnx(model)
    assert ir.op("g") == "Host"
    assert ir.node("g")["attrs"]["reason"] == "input 1 (W) must be a constant (initializer or Constant)"
    assert ir.node("g")["shape"] == (1, 1, 6, 6)


def test_constant_subgraphs_fold_at_compile_time(build):
    """ConstantOfShape (weights in the light model zoo) and Shape of a static tensor become constants."""
    nodes = [helper.make_node("ConstantOfShape", ["wshape"], ["W"], name="cos",
                              value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])),
             helper.make_node("Conv", ["x", "W"], ["c"], name="conv"),
             helper.make_node("Shape", ["c"], ["s"], name="shape"),
             helper.make_node("Reshape", ["c", "s"], ["y"], name="same")]
    ir = load_onnx(build(nodes, {"x": [1, 2, 3, 3]}, ["y"], {"wshape": np.array([3, 2, 1, 1], np.int64)}))
    assert sorted(ir.op(n) for n in ir.g.nodes) == ["Conv", "Input", "Reshape"]
    np.testing.assert_array_equal(ir.node("conv")["consts"]["W"], np.full((3, 2, 1, 1), 0.5))


def test_integer_tensors_stay_on_the_host(build):
    """ArgMax yields int64; the NPU's Flatten cannot take it, so it runs on the host as well."""
    nodes = [helper.make_node("ArgMax", ["x"], ["a"], name="am", axis=1, keepdims=1),
             helper.make_node("Flatten", ["a"], ["y"], name="flat")]
    model = _typed(build(nodes, {"x": [1, 6]}, ["y"]), y=TensorProto.INT64)
    ir = load_onnx(model)
    assert (ir.op("am"), ir.node("am")["dtype"]) == ("Host", "int64")
    assert ir.op("flat") == "Host"
    assert ir.node("flat")["attrs"]["reason"] == "input 'a' is int64; NPU ops take float tensors"
    x = RNG.normal(size=(4, 6)).astype(np.float32)
    np.testing.assert_array_equal(run_float(ir, {"x": x})["flat"], np.argmax(x, 1)[:, None])
    with pytest.raises(FrontendError, match="node 'am'.*unsupported op 'ArgMax'"):
        load_onnx(model, allow_fallback=False)


def test_every_used_output_of_a_host_op_is_one_host_node(build, oracle):
    """TopK's values and indices, a Split's three outputs of a 5-D tensor: one Host node per used output."""
    nodes = [helper.make_node("TopK", ["x", "k"], ["v", "i"], name="t"),
             helper.make_node("Reshape", ["x", "s"], ["x5"], name="r"),
             helper.make_node("Split", ["x5"], ["a", "b", "c"], name="sp", axis=4, num_outputs=3),
             helper.make_node("Add", ["a", "c"], ["y"], name="add")]
    model = _typed(build(nodes, {"x": [1, 6]}, ["v", "i", "b", "y"],
                         {"k": np.array([2], np.int64), "s": np.array([1, 1, 1, 2, 3], np.int64)}, opset=18),
                   i=TensorProto.INT64)
    ir = load_onnx(model)
    host = sorted(ir.node(n)["value"] for n in ir.g if ir.op(n) == "Host")
    assert host == ["a", "b", "c", "i", "v", "y"]
    x = RNG.normal(size=(1, 6)).astype(np.float32)
    got = run_float(ir, {"x": x})
    for o, want in zip(ir.outputs, oracle(model, {"x": x})):
        np.testing.assert_array_equal(got[o].reshape(want.shape), want)


@pytest.mark.parametrize("node,types,match", [
    (helper.make_node("ReduceSum", ["x"], ["v"], name="t", keepdims=0), {},
     r"output 'v' is a scalar"),
    (helper.make_node("Cast", ["x"], ["v"], name="t", to=TensorProto.INT16), {"v": TensorProto.INT16},
     "output 'v' is INT16"),
])
def test_what_the_host_cannot_take_is_a_clear_error(build, node, types, match):
    model = _typed(build([node], {"x": [1, 6]}, list(node.output), {"k": np.array([2], np.int64)}), **types)
    with pytest.raises(FrontendError, match=rf"node 't' \(op {node.op_type}, opset 13\): .*{match}"):
        load_onnx(model)


def test_batchnorm_after_a_host_op_is_a_depthwise_conv_with_the_activations_fused(build):
    bn = {k: RNG.uniform(0.5, 1.5, 3).astype(np.float32) for k in ("s", "b", "m", "v")}
    nodes = [helper.make_node("Softmax", ["x"], ["sm"], name="sm", axis=1),
             helper.make_node("BatchNormalization", ["sm", "s", "b", "m", "v"], ["bn"], name="bn", epsilon=1e-3),
             helper.make_node("Relu", ["bn"], ["r"], name="relu"),
             helper.make_node("Clip", ["r", "", "hi"], ["y"], name="clip")]
    ir = load_onnx(build(nodes, {"x": [1, 3, 2, 2]}, ["y"], {**bn, "hi": np.float32(0.8)}))
    x = {"x": RNG.normal(size=(2, 3, 2, 2)).astype(np.float32)}
    want = run_float(ir, x)["clip"]
    prepared = prepare(ir, check=True)
    assert sorted(prepared.op(n) for n in prepared.g) == ["Conv", "Host", "Input"]
    assert prepared.node("bn")["attrs"]["group"] == 3
    assert prepared.node("bn")["attrs"]["act"] == ("clip", 0.0, np.float32(0.8))
    np.testing.assert_allclose(run_float(prepared, x)["bn"], want, rtol=1e-5)  # BN: float64 vs float32


def test_one_tensor_under_two_names_is_one_host_input(build, oracle):
    nodes = [helper.make_node("Identity", ["x"], ["x2"], name="id"),
             helper.make_node("Mul", ["x", "x2"], ["m"], name="mul"),
             helper.make_node("Max", ["m", "m"], ["y"], name="max")]
    model = build(nodes, {"x": [1, 5]}, ["y"])
    ir = load_onnx(model)
    assert ir.preds("mul") == ["x"] and ir.preds("max") == ["mul"]
    x = RNG.normal(size=(1, 5)).astype(np.float32)
    np.testing.assert_array_equal(run_float(ir, {"x": x})["max"], oracle(model, {"x": x})[0])
