"""Frontend errors: one line, naming the file, node, op and opset; dynamic input dimensions."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from npuc.frontend import FrontendError, load_onnx

W3 = np.ones((4, 3, 3, 3), np.float32)


def relu(build, shape, **kw):
    return build([helper.make_node("Relu", ["x"], ["y"], name="r")], {"x": shape}, ["y"], **kw)


def check(fn, *match: str) -> str:
    with pytest.raises(FrontendError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg
    for m in match:
        assert m in msg, msg
    return msg


def test_runtime_weight_conv_names_node_op_and_opset(build, tmp_path):
    model = build([helper.make_node("Conv", ["x", "W"], ["y"], name="conv3")], {"x": [1, 4, 8, 8], "W": [1, 4, 3, 3]},
                  ["y"])
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    msg = check(lambda: load_onnx(path, allow_fallback=False))  # with fallback it runs on the host
    assert msg == (f"{path}: node 'conv3' (op Conv, opset 13): input 1 (W) must be a constant "
                   "(initializer or Constant)")


def test_unsupported_op(build):
    model = build([helper.make_node("Softmax", ["x"], ["y"], name="sm")], {"x": [1, 10]}, ["y"])
    check(lambda: load_onnx(model, allow_fallback=False), "node 'sm'", "unsupported op 'Softmax'",
          "(domain ai.onnx, opset 13)")


def test_unsupported_domain(build):
    model = build([helper.make_node("Foo", ["x"], ["y"], name="f", domain="com.acme")], {"x": [1, 10]}, ["y"])
    model.opset_import.append(helper.make_opsetid("com.acme", 3))
    check(lambda: load_onnx(model), "unsupported op 'Foo' (domain com.acme, opset 3)")


@pytest.mark.parametrize("opset", [0, 99])
def test_opset_out_of_range(build, opset):
    check(lambda: load_onnx(relu(build, [1, 4], opset=opset)), f"opset {opset} is not supported", "1..")


@pytest.mark.parametrize("opset", [6, 8, 22, 24])
def test_old_and_new_opsets_are_brought_into_range(build, opset):
    ir = load_onnx(relu(build, [1, 4], opset=opset))
    assert ir.opset == (11 if opset < 11 else 21)


def test_dynamic_batch_defaults_to_one(build):
    ir = load_onnx(relu(build, ["N", 3, 8, 8]))
    assert ir.node("x")["shape"] == (1, 3, 8, 8)
    assert ir.node("r")["shape"] == (1, 3, 8, 8)


def test_dynamic_spatial_dim_asks_for_input_shape(build):
    msg = check(lambda: load_onnx(relu(build, ["batch", 3, "height", "width"])))
    assert msg.endswith("input 'x' has a dynamic dimension 2 ('height'); pass --input-shape x:1,3,HEIGHT,WIDTH")


def test_input_shapes_fix_dynamic_dims(build):
    ir = load_onnx(relu(build, ["batch", 3, "h", "w"]), {"x": (2, 3, 5, 7)})
    assert ir.node("r")["shape"] == (1, 3, 5, 7)  # a batch of 2 runs the batch-1 program twice


@pytest.mark.parametrize("given", [(1, 4, 8, 8), (1, 3, 8), (1, 3, 0, 8)])
def test_input_shape_must_match_static_dims(build, given):
    check(lambda: load_onnx(relu(build, [1, 3, "h", 8]), {"x": given}), "--input-shape x:", "does not match")


def test_input_shape_for_unknown_input(build):
    check(lambda: load_onnx(relu(build, [1, 4]), {"y": (1, 4)}), "--input-shape names 'y'", "inputs are x")


@pytest.mark.parametrize("shape", [[1, 3, 8], [1, 2, 3, 4, 5], [7]])
def test_any_input_rank(build, shape):
    ir = load_onnx(relu(build, shape))
    assert ir.node("x")["shape"] == (1, *shape[1:])


def test_scalar_input_is_refused(build):
    check(lambda: load_onnx(relu(build, [])), "input 'x' is a scalar")


def test_non_float_input(build):
    model = relu(build, [1, 4])
    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.INT8
    check(lambda: load_onnx(model), "input 'x' has type INT8")


def test_conv_weight_must_be_constant(build):
    model = build([helper.make_node("Conv", ["x", "x"], ["y"], name="c")], {"x": [1, 3, 3, 3]}, ["y"])
    check(lambda: load_onnx(model, allow_fallback=False), "node 'c' (op Conv, opset 13)", "must be a constant")


def test_gemm_transa(build):
    model = build([helper.make_node("Gemm", ["x", "B"], ["y"], name="g", transA=1)], {"x": [4, 1]}, ["y"],
                  {"B": np.ones((4, 2), np.float32)})
    check(lambda: load_onnx(model, allow_fallback=False), "node 'g' (op Gemm", "transA=1 is not supported")


def test_matmul_needs_constant_weight(build):
    model = build([helper.make_node("MatMul", ["x", "x"], ["y"], name="mm")], {"x": [4, 4]}, ["y"])
    check(lambda: load_onnx(model), "fixed batch of 4", "node 'mm' (op MatMul", "second operand carries the batch")


def test_maxpool_indices_output_runs_on_the_host(build):
    model = build([helper.make_node("MaxPool", ["x"], ["y", "idx"], name="p", kernel_shape=[2, 2])],
                  {"x": [1, 1, 4, 4]}, ["y", "idx"])
    model.graph.output[1].type.tensor_type.elem_type = onnx.TensorProto.INT64
    check(lambda: load_onnx(model, allow_fallback=False), "node 'p' (op MaxPool", "output 'idx' is used")
    ir = load_onnx(model)
    assert [(ir.op(o), ir.node(o)["dtype"]) for o in ir.outputs] == [("Host", "float32"), ("Host", "int64")]


def test_reshape_merging_batch_is_refused(build):
    model = build([helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")], {"x": [2, 3, 4, 4]}, ["y"],
                  {"s": np.array([-1, 16], np.int64)})
    check(lambda: load_onnx(model), "input 'x' has a fixed batch of 2", "node 'rs' (op Reshape, opset 13) mixes "
          "the samples", "not the batch 2 on axis 0")


def test_conv_channel_mismatch(build):
    model = build([helper.make_node("Conv", ["x", "W"], ["y"], name="c")], {"x": [1, 5, 8, 8]}, ["y"], {"W": W3})
    check(lambda: load_onnx(model), "node 'c' (op Conv", "weight shape (4, 3, 3, 3)", "5 channels")


def test_shape_inference_failure_is_reported(build):
    model = build([helper.make_node("MatMul", ["x", "B"], ["y"], name="mm")], {"x": [1, 4]}, ["y"],
                  {"B": np.ones((5, 2), np.float32)})
    check(lambda: load_onnx(model), "test: ONNX shape inference failed")


def test_graph_output_that_is_an_input(build):
    model = build([helper.make_node("Identity", ["x"], ["y"])], {"x": [1, 4]}, ["y"])
    check(lambda: load_onnx(model), "graph output 'y' is the graph input 'x' unchanged")


def test_missing_file(tmp_path):
    check(lambda: load_onnx(tmp_path / "nope.onnx"), "nope.onnx: no such file")


def test_not_a_model(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\xff\x00garbage" * 10)
    check(lambda: load_onnx(path), "junk.onnx: not a readable ONNX model")
