"""ImageNet-sized benchmark models built with onnx.helper: torchvision's shapes, random weights.

    from bench.models import resnet18, mobilenet_v2, save
    model = resnet18()                       # onnx.ModelProto, input "input" 1x3x224x224, output "logits"
    save(model, "resnet18.onnx")

    python bench/models.py resnet18 out.onnx [--calib calib.npy --samples 16]

Shapes follow torchvision's `resnet18()` and `mobilenet_v2()` as `torch.onnx.export` writes
them in eval mode: batch normalization already folded into each convolution's weights and
bias, ReLU6 as `Clip(0, 6)`, global average pooling, `Flatten` and a `Gemm` classifier.
The weights are seeded random numbers with He scaling (each layer keeps the activation
variance about constant), so quantization and calibration behave as on a trained network,
but the outputs mean nothing: these models measure speed, not accuracy. Batch 1, 224x224,
opset 13. No torch needed; the same seed gives the same bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


class _Builder:
    """Nodes and initializers of one graph, with fresh names and seeded He-scaled weights."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}_{self.count}"

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, group: int = 1) -> str:
        """Conv with a folded-BN bias: weights N(0, 2 / fan_in), bias N(0, 0.1)."""
        n = self.name("conv")
        fan_in = cin // group * k * k
        w = self.rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(cout, cin // group, k, k))
        b = self.rng.normal(0.0, 0.1, size=cout)
        self.nodes.append(helper.make_node(
            "Conv", [x, self.const(n + ".weight", w), self.const(n + ".bias", b)], [n], name=n,
            kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4, group=group))
        return n

    def relu(self, x: str) -> str:
        n = self.name("relu")
        self.nodes.append(helper.make_node("Relu", [x], [n], name=n))
        return n

    def relu6(self, x: str) -> str:
        n = self.name("clip")
        lo = self.const(n + ".min", np.array(0.0))
        hi = self.const(n + ".max", np.array(6.0))
        self.nodes.append(helper.make_node("Clip", [x, lo, hi], [n], name=n))
        return n

    def add(self, a: str, b: str) -> str:
        n = self.name("add")
        self.nodes.append(helper.make_node("Add", [a, b], [n], name=n))
        return n

    def maxpool(self, x: str) -> str:
        n = self.name("maxpool")
        self.nodes.append(helper.make_node("MaxPool", [x], [n], name=n, kernel_shape=[3, 3], strides=[2, 2],
                                           pads=[1, 1, 1, 1]))
        return n

    def head(self, x: str, features: int, classes: int = 1000) -> str:
        """Global average pool, flatten, fully connected: the output is named "logits"."""
        pool, flat = self.name("avgpool"), self.name("flatten")
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], [pool], name=pool))
        self.nodes.append(helper.make_node("Flatten", [pool], [flat], name=flat, axis=1))
        w = self.rng.normal(0.0, np.sqrt(1.0 / features), size=(classes, features))
        b = self.rng.normal(0.0, 0.01, size=classes)
        self.nodes.append(helper.make_node("Gemm", [flat, self.const("fc.weight", w), self.const("fc.bias", b)],
                                           ["logits"], name="fc", transB=1))
        return "logits"

    def model(self, graph_name: str, classes: int = 1000) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, graph_name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes])], self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="npuc-bench")
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def resnet18(seed: int = 0) -> onnx.ModelProto:
    """torchvision resnet18: 7x7/2 stem, max pool, four stages of two basic blocks
    (64, 128, 256, 512 channels; a 1x1/2 projection where a stage halves the size), 1000 classes."""
    g = _Builder(seed)
    x = g.maxpool(g.relu(g.conv("input", 3, 64, 7, stride=2)))
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for block in range(2):
            s = stride if block == 0 else 1
            y = g.relu(g.conv(x, cin, cout, 3, stride=s))
            y = g.conv(y, cout, cout, 3)
            short = g.conv(x, cin, cout, 1, stride=s) if (s != 1 or cin != cout) else x
            x = g.relu(g.add(y, short))
            cin = cout
    g.head(x, 512)
    return g.model("resnet18")


# torchvision mobilenet_v2's inverted-residual settings: expansion t, channels c, repeats n, stride s
_MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                 (6, 320, 1, 1))


def mobilenet_v2(seed: int = 0) -> onnx.ModelProto:
    """torchvision mobilenet_v2 (width 1.0): 3x3/2 stem of 32, 17 inverted residual blocks
    (1x1 expand, 3x3 depthwise, 1x1 linear project; a residual Add where shapes allow),
    1x1 conv to 1280, 1000 classes."""
    g = _Builder(seed)
    x = g.relu6(g.conv("input", 3, 32, 3, stride=2))
    cin = 32
    for t, c, n, s in _MOBILENET_V2:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            y = g.relu6(g.conv(x, cin, hidden, 1)) if t != 1 else x
            y = g.relu6(g.conv(y, hidden, hidden, 3, stride=stride, group=hidden))
            y = g.conv(y, hidden, c, 1)
            x = g.add(x, y) if stride == 1 and cin == c else y
            cin = c
    x = g.relu6(g.conv(x, cin, 1280, 1))
    g.head(x, 1280)
    return g.model("mobilenet_v2")


MODELS = {"resnet18": resnet18, "mobilenet_v2": mobilenet_v2}


def save(model: onnx.ModelProto, path: str | Path) -> None:
    onnx.save(model, str(path))


def calibration(n: int, seed: int = 1) -> np.ndarray:
    """`n` random 3x224x224 images, standard normal (what ImageNet normalization gives): (n, 3, 224, 224)."""
    return np.random.default_rng(seed).standard_normal((n, 3, 224, 224)).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", choices=sorted(MODELS))
    p.add_argument("output", help="the .onnx file to write")
    p.add_argument("--calib", default=None, metavar="FILE.npy", help="also write calibration samples here")
    p.add_argument("--samples", type=int, default=16, help="calibration samples (default 16)")
    args = p.parse_args(argv)
    save(MODELS[args.model](), args.output)
    if args.calib:
        np.save(args.calib, calibration(args.samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
