"""Graph clean-up before quantization: Pad merged into the windowed op after it, constant chains
folded, MatMul + Add as one Gemm, Gemm's alpha/beta/transB folded, opset 9/10 models converted.
Each model: the prepared float IR run by the reference equals onnxruntime fp32
(max|a - b| <= 1e-4 · max|b| per output), and the IR has the expected shape."""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from npuc.compiler import compile_model
from npuc.frontend import FrontendError, load_onnx
from npuc.hw import load_hw
from npuc.passes import prepare
from npuc.reference import run_float, run_quantized
from npuc.sim.driver import quantize, run_program

RNG = np.random.default_rng(0)


def _model(nodes, inits, x_shape, y="y", opset=13, inputs=None, ir_version=8, y_shape=None):
    ins = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))]
    graph = helper.make_graph(nodes, "t", ins, [helper.make_tensor_value_info(y, TensorProto.FLOAT, y_shape)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir_version
    return m


def _w(*shape):
    return (RNG.normal(size=shape) / math.sqrt(np.prod(shape[1:]))).astype(np.float32)


def float_check(model: onnx.ModelProto, feeds: dict[str, np.ndarray], **load_kw):
    """The prepared IR's float outputs equal ORT's: max|a - b| <= 1e-4 · max|b|. Returns the IR."""
    ir = prepare(load_onnx(model, **load_kw))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    got = run_float(ir, feeds)
    for out in ir.outputs:
        b = want[ir.node(out)["value"]]
        a = got[out].reshape(b.shape)
        assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max(), (out, np.abs(a - b).max(), np.abs(b).max())
    return ir


def ops(ir) -> list[str]:
    return sorted(ir.op(n) for n in ir.g.nodes if ir.op(n) != "Input")


def _x(*shape):
    return RNG.normal(size=shape).astype(np.float32)


# ---- Pad merged into the op after it ------------------------------------------------------------

def _pad(pads, value=0.0, opset=13):
    return [helper.make_node("Pad", ["x", "pads", "pv"], ["p"], mode="constant")], {
        "pads": np.array(pads, np.int64), "pv": np.array(value, np.float32)}


@pytest.mark.parametrize("pads", [[0, 0, 1, 2, 0, 0, 3, 0], [0, 0, 2, 2, 0, 0, 2, 2]])
def test_zero_pad_merges_into_conv(pads):
    nodes, inits = _pad(pads)
    nodes.append(helper.make_node("Conv", ["p", "W", "B"], ["y"], kernel_shape=[3, 3], pads=[1, 0, 0, 1]))
    inits.update(W=_w(6, 4, 3, 3), B=_x(6))
    ir = float_check(_model(nodes, inits, [1, 4, 9, 8]), {"x": _x(1, 4, 9, 8)})
    (conv,) = [n for n in ir.g.nodes if ir.op(n) == "Conv"]
    assert ops(ir) == ["Conv"]
    assert ir.node(conv)["attrs"]["pads"] == (1 + pads[2], pads[3], pads[6], 1 + pads[7])


@pytest.mark.parametrize("include", [0, 1])
def test_zero_pad_merges_into_average_pool(include):
    nodes, inits = _pad([0, 0, 1, 1, 0, 0, 2, 1])
    nodes.append(helper.make_node("AveragePool", ["p"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                                  pads=[1, 0, 1, 1], count_include_pad=include))
    ir = float_check(_model(nodes, inits, [1, 3, 10, 9]), {"x": _x(1, 3, 10, 9)})
    assert ops(ir) == ["AveragePool"]


def test_neg_inf_pad_merges_into_max_pool_zero_pad_does_not():
    nodes, inits = _pad([0, 0, 1, 1, 0, 0, 1, 1], -np.inf)
    nodes.append(helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[3, 3], strides=[2, 2]))
    assert ops(float_check(_model(nodes, inits, [1, 3, 8, 8]), {"x": _x(1, 3, 8, 8)})) == ["MaxPool"]
    nodes, inits = _pad([0, 0, 1, 1, 0, 0, 1, 1], 0.0)
    nodes.append(helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[3, 3], strides=[2, 2]))
    assert ops(float_check(_model(nodes, inits, [1, 3, 8, 8]), {"x": _x(1, 3, 8, 8)})) == ["MaxPool", "Pad"]


def test_pad_pad_conv_merges_twice_nonzero_and_shared_pads_stay():
    nodes, inits = _pad([0, 0, 1, 0, 0, 0, 0, 1])
    nodes += [helper.make_node("Pad", ["p", "pads2", "pv"], ["p2"]),
              helper.make_node("Conv", ["p2", "W", "B"], ["y"], kernel_shape=[3, 3])]
    inits.update(pads2=np.array([0, 0, 0, 2, 0, 0, 1, 0], np.int64), W=_w(5, 3, 3, 3), B=_x(5))
    ir = float_check(_model(nodes, inits, [1, 3, 7, 7]), {"x": _x(1, 3, 7, 7)})
    assert ops(ir) == ["Conv"]
    (conv,) = ir.g.nodes - {"x"}
    assert ir.node(conv)["attrs"]["pads"] == (1, 2, 1, 1)
    # value 1: not the conv's zero padding
    nodes, inits = _pad([0, 0, 1, 1, 0, 0, 1, 1], 1.0)
    nodes.append(helper.make_node("Conv", ["p", "W", "B"], ["y"], kernel_shape=[3, 3]))
    inits.update(W=_w(5, 3, 3, 3), B=_x(5))
    assert ops(float_check(_model(nodes, inits, [1, 3, 7, 7]), {"x": _x(1, 3, 7, 7)})) == ["Conv", "Pad"]
    # a Pad read by two convs stays
    nodes, inits = _pad([0, 0, 1, 1, 0, 0, 1, 1])
    nodes += [helper.make_node("Conv", ["p", "W", "B"], ["c1"], kernel_shape=[3, 3]),
              helper.make_node("Conv", ["p", "W", "B"], ["c2"], kernel_shape=[3, 3]),
              helper.make_node("Add", ["c1", "c2"], ["y"])]
    inits.update(W=_w(5, 3, 3, 3), B=_x(5))
    assert ops(float_check(_model(nodes, inits, [1, 3, 7, 7]), {"x": _x(1, 3, 7, 7)})) == [
        "Add", "Conv", "Conv", "Pad"]


def test_pad_conv_bit_exact_on_tiny(tmp_path):
    nodes, inits = _pad([0, 0, 2, 1, 0, 0, 0, 2])
    nodes += [helper.make_node("Conv", ["p", "W", "B"], ["c"], kernel_shape=[3, 3], strides=[2, 2]),
              helper.make_node("Relu", ["c"], ["y"])]
    inits.update(W=_w(20, 6, 3, 3), B=_x(20))
    path = tmp_path / "m.onnx"
    onnx.save(_model(nodes, inits, [1, 6, 17, 15]), path)
    calib = [{"x": _x(6, 17, 15)} for _ in range(4)]
    c = compile_model(path, load_hw("tiny"), calib=calib, allow_fallback=False, verify=True)
    assert ops(c.ir) == ["Conv"]
    x = _x(2, 6, 17, 15)
    run = run_program(c.program, {"x": x})
    (t_in,) = c.program.inputs()
    ref = run_quantized(c.ir, {"x": quantize(x, t_in)})
    (out,) = c.ir.outputs
    sim = run.raw[c.ir.node(out)["value"]]
    np.testing.assert_array_equal(sim, ref[out].reshape(sim.shape))


# ---- constant chains ----------------------------------------------------------------------------

def test_shape_gather_concat_reshape_chain_folds():
    """PyTorch's x.view(x.size(0), -1), plus ConstantOfShape, Cast and Slice of constants."""
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], kernel_shape=[1, 1]),
        helper.make_node("Shape", ["c"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("ConstantOfShape", ["one"], ["minus1f"], value=numpy_helper.from_array(
            np.array([-1.0], np.float32))),
        helper.make_node("Cast", ["minus1f"], ["minus1"], to=TensorProto.INT64),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Slice", ["shape", "zero1", "two1"], ["shape2"]),
        helper.make_node("Reshape", ["c", "shape2"], ["r"]),
        helper.make_node("Gemm", ["r", "G", "GB"], ["y"], transB=1),
    ]
    inits = {"W": _w(4, 3, 1, 1), "B": _x(4), "zero": np.array(0, np.int64), "ax0": np.array([0], np.int64),
             "one": np.array([1], np.int64), "zero1": np.array([0], np.int64), "two1": np.array([2], np.int64),
             "G": _w(5, 4 * 6 * 6), "GB": _x(5)}
    ir = float_check(_model(nodes, inits, [1, 3, 6, 6]), {"x": _x(1, 3, 6, 6)})
    assert ops(ir) == ["Conv", "Gemm", "Reshape"]


def test_identity_and_dropout_removed():
    nodes = [helper.make_node("Identity", ["x"], ["i"]), helper.make_node("Dropout", ["i"], ["d"], ratio=0.3),
             helper.make_node("Conv", ["d", "W", "B"], ["y"], kernel_shape=[1, 1])]
    ir = float_check(_model(nodes, {"W": _w(2, 3, 1, 1), "B": _x(2)}, [1, 3, 4, 4], opset=11),
                     {"x": _x(1, 3, 4, 4)})
    assert ops(ir) == ["Conv"]


# ---- MatMul + Add, Gemm attributes --------------------------------------------------------------

@pytest.mark.parametrize("bias_shape", [(7,), (1, 7)])
def test_matmul_add_is_one_gemm(bias_shape):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Add", ["m", "B"], ["y"])]
    ir = float_check(_model(nodes, {"W": _w(12, 7), "B": _x(*bias_shape)}, [1, 12]), {"x": _x(1, 12)})
    assert ops(ir) == ["Gemm"]


@pytest.mark.parametrize("alpha,beta,trans_b,c_shape", [
    (1.0, 1.0, 0, (6,)), (0.5, 2.0, 1, (1, 6)), (1.5, 0.25, 1, ()), (2.0, 1.0, 0, None)])
def test_gemm_attributes_fold(alpha, beta, trans_b, c_shape):
    b = _w(6, 10) if trans_b else _w(10, 6)
    inits = {"Bm": b}
    ins = ["x", "Bm"]
    if c_shape is not None:
        inits["C"] = _x(*c_shape) if c_shape else np.array(0.7, np.float32)
        ins.append("C")
    nodes = [helper.make_node("Gemm", ins, ["y"], alpha=alpha, beta=beta, transB=trans_b)]
    ir = float_check(_model(nodes, inits, [1, 10]), {"x": _x(1, 10)})
    assert ops(ir) == ["Gemm"]


def test_gemm_trans_a_is_refused_3d_matmul_runs_on_the_host():
    nodes = [helper.make_node("Gemm", ["x", "Bm"], ["y"], transA=1, name="g")]
    with pytest.raises(FrontendError, match=r"node 'g' \(op Gemm, opset 13\).*transA=1 is not supported"):
        load_onnx(_model(nodes, {"Bm": _w(10, 6)}, [10, 1]), allow_fallback=False)
    # (1, T, K) @ (K, N) runs on the host; the reshape to (1, 8, 8) keeps the bytes: an NPU alias
    nodes = [helper.make_node("Reshape", ["x", "s"], ["r"]), helper.make_node("MatMul", ["r", "W"], ["y"])]
    ir = float_check(_model(nodes, {"W": _w(8, 5), "s": np.array([1, 8, 8], np.int64)}, [1, 8, 2, 4]),
                     {"x": _x(1, 8, 2, 4)})
    assert ops(ir) == ["Host", "Reshape"]


# ---- opsets 9 and 10 ----------------------------------------------------------------------------

def test_opset9_forms_are_converted():
    """Upsample, Slice/Pad/Unsqueeze attributes, BatchNormalization, Dropout(ratio), MaxPool-8, Flatten."""
    c = 6
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"], epsilon=1e-3),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("Upsample", ["r", "scales"], ["u"], mode="nearest"),
        helper.make_node("Pad", ["u"], ["p"], pads=[0, 0, 1, 1, 0, 0, 1, 1], mode="constant", value=0.0),
        helper.make_node("Conv", ["p", "W2", "B2"], ["c2"], kernel_shape=[3, 3]),
        helper.make_node("Slice", ["c2"], ["sl"], starts=[0], ends=[4], axes=[1]),
        helper.make_node("MaxPool", ["sl"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Dropout", ["mp"], ["d"], ratio=0.5),
        helper.make_node("Flatten", ["d"], ["f"]),
        helper.make_node("Gemm", ["f", "G", "GB"], ["y"], transB=1),
    ]
    inits = {"W": _w(c, 3, 3, 3), "B": _x(c), "s": RNG.uniform(0.5, 1.5, c).astype(np.float32), "b": _x(c),
             "m": _x(c), "v": RNG.uniform(0.5, 1.5, c).astype(np.float32),
             "scales": np.array([1, 1, 2, 2], np.float32), "W2": _w(8, c, 3, 3), "B2": _x(8),
             "G": _w(3, 4 * 8 * 8), "GB": _x(3)}
    model = _model(nodes, inits, [1, 3, 8, 8], opset=9, y_shape=[1, 3])
    onnx.checker.check_model(model)
    ir = float_check(model, {"x": _x(1, 3, 8, 8)})
    assert ir.opset == 11
    assert "Host" not in ops(ir) and "Pad" not in ops(ir)


def test_opset10_resize_and_slice_inputs():
    nodes = [helper.make_node("Resize", ["x", "scales"], ["u"], mode="nearest"),
             helper.make_node("Slice", ["u", "st", "en", "ax"], ["sl"]),
             helper.make_node("Conv", ["sl", "W", "B"], ["y"], kernel_shape=[1, 1])]
    inits = {"scales": np.array([1, 1, 2, 2], np.float32), "st": np.array([1], np.int64),
             "en": np.array([3], np.int64), "ax": np.array([1], np.int64), "W": _w(4, 2, 1, 1), "B": _x(4)}
    model = _model(nodes, inits, [1, 4, 5, 5], opset=10, y_shape=[1, 4, 10, 10])
    onnx.checker.check_model(model)
    ir = float_check(model, {"x": _x(1, 4, 5, 5)})
    assert "Host" not in ops(ir)


def test_opset8_is_converted():
    model = _model([helper.make_node("Relu", ["x"], ["y"])], {}, [1, 4], opset=8)
    assert load_onnx(model).opset == 11


# ---- input shapes -------------------------------------------------------------------------------

def _two_inputs(shape_a, shape_b):
    ins = [helper.make_tensor_value_info("a", TensorProto.FLOAT, shape_a),
           helper.make_tensor_value_info("b", TensorProto.FLOAT, shape_b)]
    nodes = [helper.make_node("Conv", ["a", "W", "B"], ["ca"], kernel_shape=[1, 1]),
             helper.make_node("Conv", ["b", "W", "B"], ["cb"], kernel_shape=[1, 1]),
             helper.make_node("Add", ["ca", "cb"], ["y"])]
    return _model(nodes, {"W": _w(4, 3, 1, 1), "B": _x(4)}, None, inputs=ins)


def test_input_shape_fixes_dynamic_dims_of_several_inputs():
    model = _two_inputs(["N", 3, "H", "W"], ["N", 3, "H", "W"])
    shapes = {"a": (1, 3, 6, 5), "b": (1, 3, 6, 5)}
    ir = float_check(model, {"a": _x(1, 3, 6, 5), "b": _x(1, 3, 6, 5)}, input_shapes=shapes)
    assert [ir.node(i)["shape"] for i in ir.inputs] == [(1, 3, 6, 5), (1, 3, 6, 5)]
    with pytest.raises(FrontendError, match=r"input 'b' has a dynamic dimension 2 \('H'\); pass --input-shape b:"):
        load_onnx(model, input_shapes={"a": (1, 3, 6, 5)})


def test_cli_input_shape_for_two_inputs_and_dynamic_batch(tmp_path):
    from npuc.cli import main

    path = tmp_path / "m.onnx"
    onnx.save(_two_inputs(["N", 3, "H", "W"], ["N", 3, 6, 5]), path)
    out = tmp_path / "m.s"
    rc = main(["compile", str(path), "-o", str(out), "--input-shape", "a:1,3,6,5", "--input-shape", "b:1,3,6,5"])
    assert rc in (0, None) and out.exists()


def test_opset9_softmax_on_the_host_is_over_the_flattened_channels():
    """Before opset 13 Softmax coerces its input to 2-D at axis 1: the zoo's (1, 1000, 1, 1) output."""
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], kernel_shape=[1, 1]),
             helper.make_node("Softmax", ["c"], ["y"])]
    model = _model(nodes, {"W": _w(10, 3, 1, 1) * 4, "B": _x(10)}, [1, 3, 2, 1], opset=9, y_shape=[1, 10, 2, 1])
    ir = float_check(model, {"x": _x(1, 3, 2, 1)})
    assert ops(ir) == ["Conv", "Host"]
