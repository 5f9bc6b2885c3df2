"""Fixed batches, any rank, any opset (issue 13): compile, simulate, compare with onnxruntime.

* a fixed batch N > 1 compiles as batch 1 when every op keeps the samples apart, and the program runs
  once per sample: the simulator's batch equals onnxruntime on the batch (a Reshape whose constant
  target names N gets 1 there); a model that mixes the samples is one line naming the node;
* an input whose batch is not axis 0 ((L, 1, E), as MultiheadAttention's) is one sample whole, its
  host ops run on the whole tensor;
* a 1-D conv model ((N, C, L): Conv1d, BatchNorm1d, MaxPool1d, PRelu, Sigmoid) runs on the NPU as
  (N, C, L, 1), bit-exact against the numpy reference; a 3-D conv and a 6-D permute on the host;
* opsets below 9 and above 21 load (converted up, relabelled down).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from npuc.compiler import compile_model
from npuc.frontend import FrontendError
from npuc.hw import load_hw
from npuc.reference import run_float, run_quantized
from npuc.sim.driver import quantize, run_program

R = np.random.default_rng(0)


def model(nodes, x_shape, inits=None, opset=13, out_shape=None) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def w(*shape: int) -> np.ndarray:
    return (R.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)


def ort_run(m: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def run(m: onnx.ModelProto, x: np.ndarray, tmp_path, hw: str = "default"):
    """Compile (calibrated on x), simulate x, check simulator == integer reference and float IR == ORT;
    return (compiled, simulated output, onnxruntime output)."""
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    np.save(tmp_path / "x.npy", x)  # calibrated on x as a user would: its first axis is the samples
    c = compile_model(path, load_hw(hw), calib=str(tmp_path / "x.npy"))
    (t_in,) = c.program.inputs()
    res = run_program(c.program, {"x": x})
    ref = run_quantized(c.ir, {"x": quantize(x, t_in)})
    out = c.ir.outputs[0]
    got = res.raw["y"]
    np.testing.assert_array_equal(got, ref[out].reshape(got.shape))
    want = ort_run(m, x)
    np.testing.assert_allclose(run_float(c.float_ir, {"x": x})[c.float_ir.outputs[0]].reshape(want.shape), want,
                               rtol=1e-4, atol=1e-5)
    return c, res.outputs["y"].reshape(want.shape), want


def sqnr(want: np.ndarray, got: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(want.astype(np.float64) ** 2) / max(np.sum((want - got) ** 2), 1e-30)))


# -- fixed batch ----------------------------------------------------------------------------------

def test_fixed_batch_compiles_as_batch_one(tmp_path):
    """Conv -> Relu -> Flatten -> Reshape([3, -1]) -> Gemm at a fixed batch of 3: batch 1, three runs."""
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Reshape", ["r", "s"], ["f"]), helper.make_node("Gemm", ["f", "G"], ["y"], transB=1)]
    m = model(nodes, [3, 2, 5, 5], {"W": w(4, 2, 3, 3), "s": np.array([3, -1], np.int64), "G": w(6, 100)})
    x = R.standard_normal((3, 2, 5, 5)).astype(np.float32)
    c, got, want = run(m, x, tmp_path)
    assert c.ir.node("x")["shape"] == (1, 2, 5, 5)
    assert got.shape == (3, 6) and sqnr(want, got) > 25


@pytest.mark.parametrize("node, why", [
    (helper.make_node("Softmax", ["x"], ["y"], axis=0, name="sm"),
     "node 'sm' (op Softmax, opset 13) mixes the samples: it works along axis 0"),
    (helper.make_node("ReduceMean", ["x"], ["y"], name="rm"),
     "node 'rm' (op ReduceMean, opset 13) mixes the samples: it reduces over every axis"),
    (helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0], name="t"), "perm [1, 0] moves the batch axis"),
])
def test_batch_mixing_is_one_line_naming_the_node(node, why):
    with pytest.raises(FrontendError) as e:
        from npuc.frontend import load_onnx
        load_onnx(model([node], [4, 6]))
    assert "\n" not in str(e.value) and "input 'x' has a fixed batch of 4" in str(e.value) and why in str(e.value)


def test_batch_on_axis_one_is_one_sample_on_the_host(tmp_path):
    """(L, 1, E) tokens, attention-like: MatMul with its own transpose, Softmax over the last axis."""
    nodes = [helper.make_node("MatMul", ["x", "Wq"], ["q"]),
             helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 2, 0]),
             helper.make_node("MatMul", ["q", "xt"], ["s"]),  # (L, 1, E) @ (1, E, L): per token, all tokens
             helper.make_node("Softmax", ["s"], ["y"], axis=-1)]
    m = model(nodes, [5, 1, 8], {"Wq": w(8, 8)})
    x = R.standard_normal((5, 1, 8)).astype(np.float32)
    c, got, want = run(m, x, tmp_path)
    assert c.ir.node("x")["shape"] == (5, 1, 8)
    assert {f.op for f in c.fallbacks} >= {"MatMul", "Softmax"}
    assert sqnr(want, got) > 25


# -- ranks ----------------------------------------------------------------------------------------

def test_conv1d_model_runs_on_the_npu(tmp_path):
    """Conv1d -> BatchNorm1d -> PRelu -> MaxPool1d -> Conv1d (stride 2) -> Sigmoid at a fixed batch of 2."""
    c_in, c_mid, length = 3, 8, 20
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["a"], kernel_shape=[3], pads=[1, 1]),
             helper.make_node("BatchNormalization", ["a", "s", "b", "mu", "var"], ["bn"]),
             helper.make_node("PRelu", ["bn", "slope"], ["p"]),
             helper.make_node("MaxPool", ["p"], ["mp"], kernel_shape=[2], strides=[2]),
             helper.make_node("Conv", ["mp", "W2"], ["c2"], kernel_shape=[3], strides=[2], pads=[1, 1]),
             helper.make_node("Sigmoid", ["c2"], ["y"])]
    inits = {"W1": w(c_mid, c_in, 3), "B1": w(c_mid), "s": 1 + 0.1 * w(c_mid), "b": w(c_mid), "mu": w(c_mid),
             "var": 1 + np.abs(w(c_mid)), "slope": np.abs(w(c_mid, 1)), "W2": w(4, c_mid, 3)}
    x = R.standard_normal((2, c_in, length)).astype(np.float32)
    c, got, want = run(model(nodes, [2, c_in, length], inits), x, tmp_path)
    assert not c.fallbacks
    assert c.ir.node(c.ir.outputs[0])["shape"] == (1, 4, 5)
    assert sqnr(want, got) > 25


def test_conv3d_and_6d_permute_run_on_the_host(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], kernel_shape=[3, 3, 3], pads=[1] * 6),
             helper.make_node("Reshape", ["c", "s"], ["r"]),
             helper.make_node("Transpose", ["r"], ["y"], perm=[0, 1, 4, 2, 5, 3])]
    m = model(nodes, ["N", 2, 4, 4, 4], {"W": w(4, 2, 3, 3, 3), "s": np.array([-1, 4, 4, 2, 2, 4], np.int64)})
    x = R.standard_normal((2, 2, 4, 4, 4)).astype(np.float32)
    c, got, want = run(m, x, tmp_path)
    assert [f.op for f in c.fallbacks] == ["Conv", "Transpose"]  # the reshape keeps the bytes: an alias
    assert sqnr(want, got) > 25


@pytest.mark.parametrize("opset", [6, 22])
def test_old_and_new_opsets_compile(tmp_path, opset):
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Sigmoid", ["c"], ["y"])]
    x = R.standard_normal((1, 3, 6, 6)).astype(np.float32)
    c, got, want = run(model(nodes, [1, 3, 6, 6], {"W": w(4, 3, 3, 3)}, opset=opset), x, tmp_path)
    assert c.ir.opset == (11 if opset < 11 else 21) and not c.fallbacks
    assert sqnr(want, got) > 25


# -- what the backend could not take ----------------------------------------------------------------

@pytest.mark.parametrize("hw", ["default", "tiny"])
def test_flattened_map_as_a_graph_output_is_copied_into_onnx_order(tmp_path, hw):
    """Conv -> Flatten as the output: the NHWC bytes are rearranged by one strided DMA copy, bit-exact."""
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Flatten", ["c"], ["y"])]
    x = R.standard_normal((2, 3, 5, 6)).astype(np.float32)
    c, got, want = run(model(nodes, ["N", 3, 5, 6], {"W": w(4, 3, 3, 3)}), x, tmp_path, hw)
    assert not c.fallbacks and got.shape == (2, 120) and sqnr(want, got) > 25


def test_maxpool_window_larger_than_the_scratchpad_runs_on_the_host(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"]),
             helper.make_node("MaxPool", ["c"], ["y"], kernel_shape=[90, 90], strides=[10, 10])]
    x = R.standard_normal((1, 1, 100, 100)).astype(np.float32)
    c, got, want = run(model(nodes, [1, 1, 100, 100], {"W": w(2, 1, 1, 1)}), x, tmp_path, "tiny")
    assert [(f.op, f.reason) for f in c.fallbacks] == [("MaxPool", "a 90x90 window does not fit the 8 KiB scratchpad")]
    assert sqnr(want, got) > 25


def test_npuc_run_compares_a_fixed_batch_model_with_onnxruntime(tmp_path, capsys):
    """`npuc run` feeds ONNX Runtime the model's own batch of 3 (the last run padded), the NPU one sample a run."""
    from npuc.cli import main

    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])]
    onnx.save(model(nodes, [3, 2, 5, 5], {"W": w(4, 2, 3, 3)}), tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", R.standard_normal((4, 2, 5, 5)).astype(np.float32))
    assert main(["run", str(tmp_path / "m.onnx"), "--calib", str(tmp_path / "x.npy"),
                 "--input", str(tmp_path / "x.npy")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "bit-exact" in line and float(line.split("SQNR ")[1].split(" dB")[0]) > 25
