"""The benchmark networks, built with onnx.helper and numpy (no torch): every bench uses these.

    resnet18()      torchvision ResNet-18's shapes, 1x3x224x224 -> 1x1000
    mobilenet_v2()  torchvision MobileNetV2's shapes (width 1.0), 1x3x224x224 -> 1x1000

Random He-initialized weights from a fixed seed (the same model every call),
batch 1, opset 13. BatchNormalization is folded into the convolutions' biases
already (the shapes and MACs are torchvision's; npuc would fold it the same
way), ReLU / ReLU6 (Clip 0..6) after the convolutions that have one, a
GlobalAveragePool, Flatten and the Gemm classifier.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Builder:
    """Collects nodes and initializers; each method adds one layer and returns its output name."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def _init(self, name: str, a: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(a.astype(np.float32), name))
        return name

    def conv(self, x: str, name: str, cin: int, cout: int, k: int, stride: int = 1, group: int = 1,
             act: str | None = "relu") -> str:
        fan_in = cin // group * k * k
        w = self.rng.normal(scale=np.sqrt(2.0 / fan_in), size=(cout, cin // group, k, k))
        b = self.rng.normal(scale=0.01, size=cout)
        y = name if act is None else f"{name}_pre"
        self.nodes.append(helper.make_node(
            "Conv", [x, self._init(f"{name}.w", w), self._init(f"{name}.b", b)], [y], name=name,
            kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4, group=group))
        return self.act(y, name, act) if act else y

    def act(self, x: str, name: str, kind: str) -> str:
        if kind == "relu":
            self.nodes.append(helper.make_node("Relu", [x], [name], name=f"{name}_relu"))
        else:  # relu6
            lo, hi = self._init(f"{name}.lo", np.array(0.0)), self._init(f"{name}.hi", np.array(6.0))
            self.nodes.append(helper.make_node("Clip", [x, lo, hi], [name], name=f"{name}_relu6"))
        return name

    def add(self, a: str, b: str, name: str, relu: bool) -> str:
        y = f"{name}_sum" if relu else name
        self.nodes.append(helper.make_node("Add", [a, b], [y], name=name))
        return self.act(y, name, "relu") if relu else y

    def maxpool(self, x: str, name: str) -> str:
        self.nodes.append(helper.make_node("MaxPool", [x], [name], name=name, kernel_shape=[3, 3],
                                           strides=[2, 2], pads=[1, 1, 1, 1]))
        return name

    def head(self, x: str, cin: int, classes: int = 1000) -> str:
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"], name="avgpool"))
        self.nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1))
        w = self.rng.normal(scale=np.sqrt(1.0 / cin), size=(classes, cin))
        b = self.rng.normal(scale=0.01, size=classes)
        self.nodes.append(helper.make_node("Gemm", ["flat", self._init("fc.w", w), self._init("fc.b", b)],
                                           ["logits"], name="fc", transB=1))
        return "logits"

    def model(self, name: str, out: str) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 1000])], self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def resnet18() -> onnx.ModelProto:
    """torchvision resnet18: 7x7/2 stem, 3x3/2 max pool, four stages of two basic blocks."""
    b = _Builder(seed=18)
    x = b.conv("input", "conv1", 3, 64, 7, stride=2)
    x = b.maxpool(x, "maxpool")
    cin = 64
    for stage, cout in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            p = f"layer{stage}.{block}"
            y = b.conv(x, f"{p}.conv1", cin, cout, 3, stride)
            y = b.conv(y, f"{p}.conv2", cout, cout, 3, act=None)
            skip = x if stride == 1 and cin == cout else b.conv(x, f"{p}.downsample", cin, cout, 1, stride, act=None)
            x = b.add(y, skip, f"{p}.add", relu=True)
            cin = cout
    return b.model("resnet18", b.head(x, 512))


# torchvision's inverted residual settings: expansion t, channels c, repeats n, first stride s
_MBV2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def mobilenet_v2() -> onnx.ModelProto:
    """torchvision mobilenet_v2 (width 1.0): 3x3/2 stem, 17 inverted residual blocks, 1x1 to 1280."""
    b = _Builder(seed=2)
    x = b.conv("input", "features.0", 3, 32, 3, stride=2, act="relu6")
    cin, i = 32, 1
    for t, c, n, s in _MBV2:
        for r in range(n):
            stride = s if r == 0 else 1
            p = f"features.{i}"
            hidden = cin * t
            y = x if t == 1 else b.conv(x, f"{p}.expand", cin, hidden, 1, act="relu6")
            y = b.conv(y, f"{p}.dw", hidden, hidden, 3, stride, group=hidden, act="relu6")
            y = b.conv(y, f"{p}.project", hidden, c, 1, act=None)
            x = b.add(y, x, f"{p}.add", relu=False) if stride == 1 and cin == c else y
            cin, i = c, i + 1
    x = b.conv(x, "features.18", cin, 1280, 1, act="relu6")
    return b.model("mobilenet_v2", b.head(x, 1280))
