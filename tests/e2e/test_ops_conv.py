"""The conv family on the NPU: grouped/depthwise Conv, channel affines (standalone BN, BN -> Mul -> Add),
AveragePool, GlobalMaxPool, ConvTranspose. Each model: the float reference of the prepared IR ==
onnxruntime (rel 1e-4); compiled for the default and tiny presets, no Host node, and the C simulator ==
the numpy integer reference bit for bit."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from npuc.compiler import compile_model
from npuc.hw import load_hw
from npuc.reference import run_float
from npuc.sim.driver import run_program

from .bitexact import assert_sim_equals_reference
from .models import make_model

HWS = {"default": load_hw("default"), "tiny": load_hw("tiny")}
R = np.random.default_rng(7)


def _w(*shape: int, fan: int | None = None) -> np.ndarray:
    return (R.normal(size=shape) / np.sqrt(fan or np.prod(shape[1:]))).astype(np.float32)


def _bn_inits(name: str, c: int) -> tuple[list[str], dict[str, np.ndarray]]:
    v = {f"{name}.s": R.uniform(0.5, 1.5, c), f"{name}.b": R.normal(0, 0.3, c), f"{name}.m": R.normal(0, 0.3, c),
         f"{name}.v": R.uniform(0.5, 1.5, c)}
    return list(v), {k: a.astype(np.float32) for k, a in v.items()}


def _check(model: onnx.ModelProto, x_shape: tuple[int, ...], want: set[str], seed: int = 0) -> dict[str, object]:
    """Float reference == ORT; per preset no Host node, the ops `want` (besides Input), C == numpy."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, *x_shape[1:])).astype(np.float32)
    calib = [{"x": rng.normal(size=x_shape[1:]).astype(np.float32)} for _ in range(8)]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    runs = {}
    for name, hw in HWS.items():
        c = compile_model(model, hw, calib=calib)
        ops = {c.ir.op(n) for n in c.ir.g.nodes} - {"Input"}
        assert ops == want, ops
        if name == "default":
            for b in range(len(x)):
                (ref_f,) = sess.run(None, {"x": x[b:b + 1]})
                got = run_float(c.float_ir, {"x": x[b:b + 1]})[c.float_ir.outputs[0]]
                np.testing.assert_allclose(got, ref_f, rtol=1e-4, atol=1e-5)
        run = run_program(c.program, {"x": x})
        sim = assert_sim_equals_reference(c, run, x)
        assert len(np.unique(sim)) > 3  # not a degenerate output
        runs[name] = (c, run)
    return runs


# -- grouped and depthwise Conv ------------------------------------------------------

@pytest.mark.parametrize("cin,cout,group,k,attrs,hw_", [
    (8, 12, 4, 3, {"pads": [1, 1, 1, 1]}, (9, 9)),  # grouped, 2 in / 3 out per group
    (20, 20, 20, 3, {"pads": [1, 1, 1, 1]}, (10, 9)),  # depthwise, more channels than the array's columns
    (6, 12, 6, 3, {"strides": [2, 2], "pads": [1, 1, 1, 1]}, (11, 10)),  # depthwise, multiplier 2
    (16, 48, 16, 3, {"pads": [1, 1, 1, 1]}, (6, 6)),  # depthwise, multiplier 3 (tiles cut groups)
    (12, 12, 12, 3, {"dilations": [2, 2], "pads": [2, 2, 2, 2]}, (9, 9)),  # dilated
    (12, 12, 12, 3, {"pads": [1, 0, 2, 1]}, (8, 9)),  # asymmetric pads
    (8, 8, 8, 4, {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, (9, 8)),
    (8, 16, 4, 3, {"auto_pad": "SAME_LOWER", "strides": [2, 1]}, (9, 8)),
    (12, 18, 3, 1, {}, (5, 7)),  # grouped 1x1 (ShuffleNet)
])
def test_grouped_conv(cin, cout, group, k, attrs, hw_):
    inits = {"W": _w(cout, cin // group, k, k), "B": _w(cout, fan=10)}
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], group=group, kernel_shape=[k, k], **attrs),
             helper.make_node("Relu", ["c"], ["y"])]
    _check(make_model(nodes, inits, (1, cin, *hw_)), (1, cin, *hw_), {"Conv"})


def test_depthwise_cout_tile_with_all_zero_weights_still_defines_its_outputs():
    """Channels 8..15 have zero weights: no gemm for that cout tile on tiny (8 columns); its pixels are
    the requantized bias (a vsum of no rows, broadcast by the bias vaddv)."""
    w = _w(16, 1, 3, 3)
    w[8:] = 0
    inits = {"W": w, "B": _w(16, fan=1)}
    model = make_model([helper.make_node("Conv", ["x", "W", "B"], ["y"], group=16, pads=[1] * 4)], inits,
                       (1, 16, 6, 6))
    runs = _check(model, (1, 16, 6, 6), {"Conv"})
    ops = [i.op for i in runs["tiny"][0].program.insns]
    assert "vsum" in ops and ops.count("gemm") == 9 * len([i for i in ops if i == "st"]) // 2


def test_depthwise_is_one_gemm_per_tap_and_cout_tile():
    """Depthwise 3x3 over 32 channels, 28x28, on the 16x16 default array: 2 cout tiles x 9 taps, k = n = 16."""
    inits = {"W": _w(32, 1, 3, 3), "B": _w(32, fan=10)}
    model = make_model([helper.make_node("Conv", ["x", "W", "B"], ["y"], group=32, pads=[1] * 4)], inits,
                       (1, 32, 28, 28))
    c, run = _check(model, (1, 32, 28, 28), {"Conv"})["default"]
    gemms = [i for i in c.program.insns if i.op == "gemm"]
    tiles = sum(1 for i in c.program.insns if i.op == "st")  # one per output tile and cout tile
    assert len(gemms) == 9 * tiles and {(i.get("k"), i.get("n")) for i in gemms} == {(16, 16)}
    assert sum(i.get("m0") * i.get("m1") for i in gemms) == 18 * 28 * 28  # every pixel once per tap and cout tile
    assert run.stats[0].cycles < 18 * (2 * 16 + 16 + 28 * 28 - 2) * 1.5  # the gemms dominate


# -- channel affines ---------------------------------------------------------------------

def test_standalone_batchnorm_is_a_depthwise_conv():
    names, inits = _bn_inits("bn", 6)
    model = make_model([helper.make_node("BatchNormalization", ["x", *names], ["y"])], inits, (1, 6, 7, 5))
    runs = _check(model, (1, 6, 7, 5), {"Conv"})
    assert runs["default"][0].ir.node(runs["default"][0].ir.outputs[0])["attrs"]["group"] == 6


def test_batchnorm_on_a_vector_is_a_diagonal_gemm():
    names, inits = _bn_inits("bn", 12)
    _check(make_model([helper.make_node("BatchNormalization", ["x", *names], ["y"])], inits, (1, 12)), (1, 12),
           {"Gemm"})


@pytest.mark.parametrize("producer", ["input", "maxpool"])
def test_bn_mul_add_relu_chain_is_one_depthwise_conv(producer):
    """DenseNet's Concat -> BN -> Mul -> Add -> Relu -> Conv, after a Concat-free producer."""
    names, inits = _bn_inits("bn", 8)
    inits.update({"S": R.uniform(-1.5, 1.5, (8, 1, 1)).astype(np.float32),
                  "A": R.normal(size=(1, 8, 1, 1)).astype(np.float32), "W": _w(5, 8, 3, 3)})
    nodes = [helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2])] \
        if producer == "maxpool" else []
    src = "p" if producer == "maxpool" else "x"
    nodes += [helper.make_node("BatchNormalization", [src, *names], ["b"]),
              helper.make_node("Mul", ["b", "S"], ["m"]), helper.make_node("Add", ["m", "A"], ["a"]),
              helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Conv", ["r", "W"], ["y"], pads=[1] * 4)]
    runs = _check(make_model(nodes, inits, (1, 8, 10, 10)), (1, 8, 10, 10),
                  {"Conv", "MaxPool"} if producer == "maxpool" else {"Conv"})
    ir = runs["default"][0].ir
    dw = [n for n in ir.g.nodes if ir.op(n) == "Conv" and ir.node(n)["attrs"].get("group", 1) == 8]
    assert len(dw) == 1 and ir.node(dw[0])["attrs"]["act"][0] == "relu"


# -- AveragePool, GlobalMaxPool -------------------------------------------------------------

@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("ceil_mode", [0, 1])
@pytest.mark.parametrize("k,strides,pads", [
    ((3, 3), (2, 2), (1, 1, 1, 1)),
    ((3, 2), (2, 3), (1, 0, 0, 1)),
    ((2, 2), (2, 2), (0, 0, 0, 0)),
])
def test_average_pool(count_include_pad, ceil_mode, k, strides, pads):
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=list(k), strides=list(strides),
                            pads=list(pads), ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    _check(make_model([node], {}, (1, 10, 9, 8), opset=19), (1, 10, 9, 8), {"AveragePool"})


def test_average_pool_stride1_same_and_whole_image():
    same = helper.make_node("AveragePool", ["x"], ["a"], kernel_shape=[3, 3], auto_pad="SAME_UPPER")
    whole = helper.make_node("AveragePool", ["a"], ["y"], kernel_shape=[7, 6])
    runs = _check(make_model([same, whole], {}, (1, 20, 7, 6), opset=19), (1, 20, 7, 6), {"AveragePool"})
    assert runs["default"][0].ir.node("a")["qop"].counts == (4, 6, 9)  # corners, edges, interior


def test_global_max_pool_after_a_conv():
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1] * 4),
             helper.make_node("GlobalMaxPool", ["c"], ["y"])]
    _check(make_model(nodes, {"W": _w(8, 8, 3, 3)}, (1, 8, 5, 7)), (1, 8, 5, 7), {"Conv", "GlobalMaxPool"})


def test_global_max_pool_in_several_pixel_chunks():
    """340 pixels x 16 channels: three chunks in tiny's scratchpad (the layer's window, half of its
    8 KiB), each halved by a vmax tree."""
    runs = _check(make_model([helper.make_node("GlobalMaxPool", ["x"], ["y"])], {}, (1, 16, 20, 17)),
                  (1, 16, 20, 17), {"GlobalMaxPool"})
    assert sum(i.op == "ld" for i in runs["tiny"][0].program.insns) == 3


# -- ConvTranspose -----------------------------------------------------------------------------

@pytest.mark.parametrize("cin,cout,group,k,attrs,hw_", [
    (4, 6, 1, 3, {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}, (5, 6)),
    (8, 8, 1, 2, {"strides": [2, 2]}, (6, 6)),  # the U-Net upsampler
    (6, 5, 1, 3, {"strides": [3, 2], "pads": [1, 0, 2, 1], "output_padding": [2, 1]}, (4, 5)),
    (8, 8, 8, 3, {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}, (5, 5)),  # depthwise
    (4, 8, 2, 3, {"strides": [2, 3], "pads": [0, 1, 1, 0], "dilations": [2, 1]}, (5, 6)),
    (4, 8, 1, 3, {"pads": [1, 1, 1, 1]}, (5, 6)),  # stride 1
    (3, 4, 1, 3, {"strides": [4, 4]}, (3, 4)),  # kernel < stride: phases with no tap (bias only)
    (20, 12, 1, 4, {"strides": [2, 2], "pads": [1, 1, 1, 1]}, (7, 7)),
    (4, 6, 1, 3, {"strides": [2, 2], "output_shape": [10, 11]}, (5, 6)),
])
def test_conv_transpose(cin, cout, group, k, attrs, hw_):
    inits = {"W": _w(cin, cout // group, k, k, fan=cin // group * k * k), "B": _w(cout, fan=10)}
    node = helper.make_node("ConvTranspose", ["x", "W", "B"], ["y"], group=group, **attrs)
    _check(make_model([node], inits, (1, cin, *hw_)), (1, cin, *hw_), {"ConvTranspose"})
