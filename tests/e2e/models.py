"""One way to build the small single-input ONNX test models of the end-to-end suites."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_model(nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray], x_shape, y_name: str = "y",
               y_shape=None, *, name: str = "t", opset: int = 13, y_type: int = TensorProto.FLOAT,
               check: bool = False) -> onnx.ModelProto:
    """A graph with float input `x` of `x_shape`, output `y_name`, and `inits` as initializers."""
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              [helper.make_tensor_value_info(y_name, y_type, y_shape)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model)
    return model
