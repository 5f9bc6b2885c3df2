"""Each op handler against onnxruntime: the IR run by the float reference equals ORT fp32."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from npuc.frontend import load_onnx
from npuc.passes import verify
from npuc.reference import run_float

R = np.random.default_rng(0)


def w(*shape: int) -> np.ndarray:
    return R.standard_normal(shape).astype(np.float32)


def conv_case(name: str, x_shape: tuple, w_shape: tuple, bias: bool = True, **attrs):
    inits = {"W": w(*w_shape)}
    ins = ["x", "W"]
    if bias:
        inits["B"] = w(w_shape[0])
        ins.append("B")
    return pytest.param([helper.make_node("Conv", ins, ["y"], **attrs)], x_shape, inits, 13, id=name)


def pool_case(name: str, x_shape: tuple, **attrs):
    return pytest.param([helper.make_node("MaxPool", ["x"], ["y"], **attrs)], x_shape, {}, 13, id=name)


def const(name: str, value) -> helper.NodeProto:
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(
        name, 7 if np.asarray(value).dtype.kind == "i" else 1, np.shape(value), np.asarray(value).ravel().tolist()))


CASES = [
    conv_case("conv-basic", (2, 3, 9, 9), (4, 3, 3, 3), pads=[1, 1, 1, 1]),
    conv_case("conv-nobias-stride", (1, 5, 11, 10), (6, 5, 3, 3), bias=False, strides=[2, 3], pads=[0, 1, 2, 1]),
    conv_case("conv-dilation", (1, 2, 12, 12), (3, 2, 3, 2), dilations=[2, 3], pads=[2, 1, 0, 3]),
    conv_case("conv-1x1", (1, 8, 5, 5), (16, 8, 1, 1)),
    conv_case("conv-same-upper", (1, 3, 10, 7), (4, 3, 4, 3), auto_pad="SAME_UPPER", strides=[2, 2]),
    conv_case("conv-same-lower", (1, 3, 10, 7), (4, 3, 4, 3), auto_pad="SAME_LOWER", strides=[3, 2]),
    conv_case("conv-valid", (1, 3, 10, 7), (4, 3, 3, 3), auto_pad="VALID", kernel_shape=[3, 3]),
    pool_case("maxpool-2x2", (1, 3, 8, 8), kernel_shape=[2, 2], strides=[2, 2]),
    pool_case("maxpool-pads", (1, 2, 7, 9), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    pool_case("maxpool-ceil", (1, 2, 7, 8), kernel_shape=[3, 2], strides=[2, 3], ceil_mode=1),
    pool_case("maxpool-ceil-pads", (1, 2, 9, 6), kernel_shape=[2, 2], strides=[2, 2], pads=[1, 0, 1, 0],
              ceil_mode=1),
    pool_case("maxpool-dilation", (1, 2, 10, 10), kernel_shape=[2, 3], dilations=[2, 2], pads=[1, 2, 0, 1]),
    pool_case("maxpool-same", (1, 2, 9, 10), kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
    pytest.param([helper.make_node("GlobalAveragePool", ["x"], ["y"])], (2, 5, 6, 7), {}, 13, id="gap"),
    pytest.param([helper.make_node("Gemm", ["x", "B", "C"], ["y"], transB=1, alpha=0.5, beta=2.0)],
                 (3, 6), {"B": w(4, 6), "C": w(4)}, 13, id="gemm-transB-alpha-beta"),
    pytest.param([helper.make_node("Gemm", ["x", "B", "C"], ["y"])], (2, 6), {"B": w(6, 5), "C": w(1, 5)}, 13,
                 id="gemm-C-row"),
    pytest.param([helper.make_node("Gemm", ["x", "B", "C"], ["y"])], (2, 6), {"B": w(6, 5), "C": w()}, 13,
                 id="gemm-C-scalar"),
    pytest.param([helper.make_node("Gemm", ["x", "B"], ["y"], transB=1)], (1, 6), {"B": w(3, 6)}, 11,
                 id="gemm-no-C"),
    pytest.param([helper.make_node("MatMul", ["x", "B"], ["y"])], (2, 7), {"B": w(7, 3)}, 13, id="matmul"),
    pytest.param([helper.make_node("Relu", ["x"], ["y"])], (1, 3, 4, 4), {}, 13, id="relu"),
    pytest.param([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])], (1, 3, 4, 4),
                 {"lo": np.float32(-0.5), "hi": np.float32(0.7)}, 13, id="clip"),
    pytest.param([helper.make_node("Clip", ["x", "", "hi"], ["y"])], (1, 3, 4, 4), {"hi": np.float32(0.2)}, 12,
                 id="clip-max-only"),
    pytest.param([helper.make_node("Clip", ["x"], ["y"])], (1, 3, 4, 4), {}, 21, id="clip-no-bounds"),
    pytest.param([helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)],
                 (2, 3, 4, 4), {"s": w(3), "b": w(3), "m": w(3), "v": np.abs(w(3)) + 0.1}, 15, id="batchnorm"),
    pytest.param([helper.make_node("Flatten", ["x"], ["y"])], (2, 3, 4, 5), {}, 13, id="flatten"),
    pytest.param([helper.make_node("Flatten", ["x"], ["y"], axis=-3)], (2, 3, 4, 5), {}, 13, id="flatten-neg"),
    pytest.param([helper.make_node("Reshape", ["x", "s"], ["y"])], (2, 3, 4, 4),
                 {"s": np.array([0, -1], np.int64)}, 14, id="reshape-0-minus1"),
    pytest.param([const("s", np.array([1, 12, 2, 2], np.int64)), helper.make_node("Reshape", ["x", "s"], ["y"])],
                 (1, 3, 4, 4), {}, 13, id="reshape-constant-node"),
    pytest.param([helper.make_node("Identity", ["x"], ["t"]), helper.make_node("Relu", ["t"], ["y"])],
                 (1, 2, 3, 3), {}, 13, id="identity"),
    pytest.param([helper.make_node("Relu", ["x"], ["t"]), helper.make_node("Dropout", ["t"], ["y"])],
                 (1, 2, 3, 3), {}, 13, id="dropout"),
    pytest.param([helper.make_node("Relu", ["x"], ["t"]), helper.make_node("Dropout", ["t", "r"], ["y"])],
                 (1, 2, 3, 3), {"r": np.float32(0.3)}, 12, id="dropout-ratio"),
]


@pytest.mark.parametrize("nodes, x_shape, inits, opset", CASES)
def test_handler_matches_onnxruntime(build, oracle, nodes, x_shape, inits, opset):
    model = build(nodes, {"x": list(x_shape)}, ["y"], inits, opset=opset)
    ir = load_onnx(model)
    verify(ir, "frontend")
    x = R.standard_normal(x_shape).astype(np.float32)
    (want,) = oracle(model, {"x": x})
    got = run_float(ir, {"x": x})[ir.outputs[0]]
    assert got.shape == want.shape  # a fixed batch of 2 compiles as batch 1: the reference runs both samples
    assert ir.node(ir.outputs[0])["shape"] == (1, *want.shape[1:])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_conv_attrs_are_normalized(build):
    model = build([helper.make_node("Conv", ["x", "W"], ["y"], name="c", strides=[2, 1], pads=[1, 2, 3, 4],
                                    dilations=[1, 2])], {"x": [1, 3, 16, 16]}, ["y"], {"W": w(5, 3, 3, 2)})
    node = load_onnx(model).node("c")
    assert node["attrs"] == {"kernel": (3, 2), "strides": (2, 1), "pads": (1, 2, 3, 4), "dilations": (1, 2),
                             "group": 1}
    assert node["consts"]["W"].shape == (5, 3, 3, 2) and node["consts"]["W"].dtype == np.float32
    np.testing.assert_array_equal(node["consts"]["B"], np.zeros(5, np.float32))


def test_maxpool_ceil_mode_is_folded_into_pads(build):
    model = build([helper.make_node("MaxPool", ["x"], ["y"], name="p", kernel_shape=[2, 2], strides=[2, 2],
                                    ceil_mode=1)], {"x": [1, 1, 7, 7]}, ["y"])
    node = load_onnx(model).node("p")
    assert node["shape"] == (1, 1, 4, 4)
    assert node["attrs"]["pads"] == (0, 0, 1, 1)  # the floor formula now gives 4: (7 + 1 - 2) // 2 + 1


def test_gemm_weight_is_n_by_k(build):
    b = w(6, 4)
    model = build([helper.make_node("Gemm", ["x", "B"], ["y"], name="g", alpha=2.0)], {"x": [1, 6]}, ["y"], {"B": b})
    node = load_onnx(model).node("g")
    np.testing.assert_allclose(node["consts"]["W"], 2.0 * b.T)
    assert node["consts"]["B"].shape == (4,)


def test_outputs_in_onnx_order_with_onnx_names(build):
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="r1"),
        helper.make_node("MaxPool", ["a"], ["b"], name="p", kernel_shape=[2, 2]),
        helper.make_node("Identity", ["b"], ["out_b"]),
        helper.make_node("GlobalAveragePool", ["x"], ["out_g"], name="gap"),
    ]
    ir = load_onnx(build(nodes, {"x": [1, 2, 4, 4]}, ["out_g", "out_b"]))
    assert ir.outputs == ["gap", "p"]
    assert [ir.node(o)["value"] for o in ir.outputs] == ["out_g", "out_b"]


def test_initializer_listed_as_input_is_not_an_input(build):
    model = build([helper.make_node("MatMul", ["x", "B"], ["y"])], {"x": [1, 4]}, ["y"], {"B": w(4, 2)})
    model.graph.input.append(helper.make_tensor_value_info("B", 1, [4, 2]))
    ir = load_onnx(model)
    assert ir.inputs == ["x"]


def test_unused_nodes_are_pruned(build):
    nodes = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("GlobalAveragePool", ["x"], ["dead"])]
    ir = load_onnx(build(nodes, {"x": [1, 2, 4, 4]}, ["y"]))
    assert sorted(ir.g.nodes) == ["x", "y"]


def test_load_from_path(build, tmp_path):
    import onnx

    path = tmp_path / "m.onnx"
    onnx.save(build([helper.make_node("Relu", ["x"], ["y"])], {"x": [1, 4]}, ["y"]), str(path))
    ir = load_onnx(path)
    assert ir.node(ir.outputs[0])["shape"] == (1, 4)
