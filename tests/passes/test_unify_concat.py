"""unify_concat: one scale for a Concat's inputs where it is cheap, each its own where it is not."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from npuc.frontend import load_onnx
from npuc.passes import calibrate, prepare
from npuc.passes.unify_concat import concat_costs, sqnr_at, unify_concat

R = np.random.default_rng(0)


def _ir(boxes_scale: float, extra_consumer: bool = False):
    """boxes = conv(x)·boxes_scale, scores = sigmoid(conv(x)), y = Concat(boxes, scores) (a graph output;
    with `extra_consumer` a 1x1 conv reads the Concat, and the scores are a graph output of their own)."""
    inits = {"Wb": R.standard_normal((4, 3, 1, 1)).astype(np.float32) * boxes_scale,
             "Ws": R.standard_normal((2, 3, 1, 1)).astype(np.float32),
             "Wh": R.standard_normal((2, 6, 1, 1)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "Wb"], ["boxes"], name="box"),
             helper.make_node("Conv", ["x", "Ws"], ["logits"], name="cls"),
             helper.make_node("Sigmoid", ["logits"], ["scores"], name="sig"),
             helper.make_node("Concat", ["boxes", "scores"], ["cat_out" if extra_consumer else "y"], axis=1,
                              name="cat")]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if extra_consumer:
        nodes += [helper.make_node("Conv", ["cat_out", "Wh"], ["y"], name="head"),
                  helper.make_node("Relu", ["scores"], ["s2"], name="other")]
        outs.append(helper.make_tensor_value_info("s2", TensorProto.FLOAT, None))
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])], outs,
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    ir = prepare(load_onnx(m))
    return calibrate(ir, [{"x": R.standard_normal((3, 4, 4)).astype(np.float32)} for _ in range(8)])


def test_sqnr_at_a_step():
    # a full-scale sine in [-1, 1]: power 1/2, step 2/255
    assert abs(sqnr_at(0.5, -1.0, 1.0) - (10 * np.log10(0.5 / ((2 / 255) ** 2 / 12)))) < 1e-9


def test_similar_ranges_are_unified():
    ir = unify_concat(_ir(boxes_scale=1.0))
    assert ir.op("cat") == "Concat" and ir.node("cat")["unify"][0] == "unified"
    assert ir.node("box")["range"] == ir.node("sig")["range"] == ir.node("cat")["range"]


def test_boxes_in_pixels_next_to_scores_are_concatenated_at_dequantization():
    calibrated = _ir(boxes_scale=300.0)
    costs = {k.producer: k for k in concat_costs(calibrated)}
    assert costs["sig"].unified_db < 20 < costs["sig"].own_db
    ir = unify_concat(calibrated)
    assert "cat" not in ir.g
    (out,) = ir.outputs
    node = ir.node(out)
    assert node["op"] == "Host" and node["attrs"]["onnx_op"] == "Concat" and node["attrs"]["float_out"]
    assert node["value"] == "y" and ir.preds(out) == ["box", "sig"]
    assert node["unify"][0] == "dequantized"
    assert ir.node("sig")["range"] == calibrated.node("sig")["range"]  # the scores keep their own scale


def test_a_producer_read_elsewhere_keeps_its_scale_when_widening_would_cost_it():
    """A conv reads the Concat (one scale it must be); the scores also feed another graph output: they
    keep their own range for it, and the Concat quantizer requantizes them into the Concat."""
    calibrated = _ir(boxes_scale=300.0, extra_consumer=True)
    ir = unify_concat(calibrated)
    assert ir.op("cat") == "Concat" and ir.node("cat")["unify"][0] == "unified"
    assert ir.node("sig")["range"] == calibrated.node("sig")["range"]
    assert ir.node("box")["range"] == ir.node("cat")["range"]  # read by the Concat alone: widened
