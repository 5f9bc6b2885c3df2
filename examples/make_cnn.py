"""Build the acceptance CNN (and a GlobalAveragePool variant) with onnx.helper, deterministically.

    python examples/make_cnn.py [OUT_DIR]     # default: npuc/examples/

writes ``small_cnn.onnx`` and ``small_cnn_calib.npy`` (64 calibration
samples, float32, shape (64, 3, 32, 32)). The network:

    x 1x3x32x32
    conv3x3 3->16 + BN + ReLU              16x32x32
    conv3x3 16->32 stride 2 + ReLU         32x16x16
    maxpool 2x2                            32x8x8
    conv3x3 32->64 + BN + ReLU             64x8x8   (64 channels: 4 array widths)
    conv1x1 64->40 + ReLU                  40x8x8
    flatten                                2560
    gemm 2560->64 + ReLU                   64       (160 KiB of int8 weights)
    gemm 64->10                            10

Weights are He-uniform (Kaiming-uniform, PyTorch's default family), so a
unit-variance input keeps a unit-order variance layer after layer. BN running
statistics are what training would leave: the per-channel mean and variance
of the conv output measured on images of the input distribution (perturbed by
a few percent), with gamma ~ U(0.6, 1.4) and beta ~ N(0.5, 0.25), so about
two thirds of the units after each BN-ReLU are active. The images are
smooth random fields squashed to pixel values in [0, 1] and normalized like
ImageNet inputs ((p - 0.5) / 0.25, so in [-2, 2]).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "npuc" / "examples"


def smooth_images(n: int, seed: int, size: int = 32) -> np.ndarray:
    """Random images with natural-looking low-frequency content: pixels in [0, 1], normalized."""
    rng = np.random.default_rng(seed)
    coarse = rng.standard_normal((n, 3, size // 4, size // 4))
    img = np.repeat(np.repeat(coarse, 4, axis=2), 4, axis=3)
    k = np.array([1, 4, 6, 4, 1], np.float64) / 16  # binomial blur, separable
    for axis in (2, 3):
        img = np.apply_along_axis(lambda v: np.convolve(np.pad(v, 2, mode="edge"), k, mode="valid"), axis, img)
    img += 0.15 * rng.standard_normal(img.shape)
    pixels = 1.0 / (1.0 + np.exp(-2.0 * img / img.std(axis=(1, 2, 3), keepdims=True)))
    return ((pixels - 0.5) / 0.25).astype(np.float32)


class _Builder:
    """Accumulates nodes and initializers; `conv` etc. return the output value name."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.images = smooth_images(32, seed=seed + 777)  # for the BN running statistics
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def he(self, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        bound = np.sqrt(6.0 / fan_in)  # He-uniform: variance 2 / fan_in
        return self.rng.uniform(-bound, bound, shape)

    def conv(self, name: str, x: str, cin: int, cout: int, k: int, stride: int = 1, bias: bool = True) -> str:
        w = self.const(f"{name}.W", self.he((cout, cin, k, k), cin * k * k))
        inputs = [x, w]
        if bias:
            inputs.append(self.const(f"{name}.B", 0.05 * self.rng.standard_normal(cout)))
        self.nodes.append(helper.make_node("Conv", inputs, [name], name=name, kernel_shape=[k, k],
                                           strides=[stride, stride], pads=[k // 2] * 4))
        return name

    def bn(self, name: str, x: str, c: int) -> str:
        r = self.rng
        measured = self.run(x)
        mean = measured.mean(axis=(0, 2, 3)) + 0.05 * measured.std() * r.standard_normal(c)
        var = measured.var(axis=(0, 2, 3)) * r.uniform(0.9, 1.1, c)
        gamma = r.uniform(0.6, 1.4, c)
        beta = r.normal(0.5, 0.25, c)
        ins = [x] + [self.const(f"{name}.{k}", v) for k, v in
                     (("scale", gamma), ("B", beta), ("mean", mean), ("var", var))]
        self.nodes.append(helper.make_node("BatchNormalization", ins, [name], name=name, epsilon=1e-5))
        return name

    def op(self, op: str, name: str, inputs: list[str], **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def gemm(self, name: str, x: str, k: int, n: int) -> str:
        w = self.const(f"{name}.W", self.he((n, k), k))
        b = self.const(f"{name}.B", 0.05 * self.rng.standard_normal(n))
        return self.op("Gemm", name, [x, w, b], transB=1)

    def run(self, value: str) -> np.ndarray:
        """`value` computed on the builder's images by the graph so far (npuc's float reference)."""
        from npuc.frontend import load_onnx
        from npuc.reference import run_float

        ir = load_onnx(self.model("partial", (1, 3, 32, 32), value, None))
        return run_float(ir, {"x": self.images})[ir.outputs[0]]

    def model(self, name: str, x_shape: tuple[int, ...], out: str, out_shape: tuple[int, ...] | None
              ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, None if out_shape is None else list(out_shape))],
            initializer=self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        if out_shape is not None:  # a partial model's output has no declared shape
            onnx.checker.check_model(model)
        return model


def make_small_cnn(seed: int = 0) -> onnx.ModelProto:
    """The acceptance CNN (see the module docstring)."""
    b = _Builder(seed)
    y = b.conv("conv1", "x", 3, 16, 3)
    y = b.op("Relu", "relu1", [b.bn("bn1", y, 16)])
    y = b.op("Relu", "relu2", [b.conv("conv2", y, 16, 32, 3, stride=2)])
    y = b.op("MaxPool", "pool", [y], kernel_shape=[2, 2], strides=[2, 2])
    y = b.conv("conv3", y, 32, 64, 3, bias=False)
    y = b.op("Relu", "relu3", [b.bn("bn3", y, 64)])
    y = b.op("Relu", "relu4", [b.conv("conv4", y, 64, 40, 1)])
    y = b.op("Flatten", "flatten", [y], axis=1)
    y = b.op("Relu", "relu5", [b.gemm("fc1", y, 40 * 8 * 8, 64)])
    y = b.gemm("logits", y, 64, 10)
    return b.model("small_cnn", (1, 3, 32, 32), y, (1, 10))


def make_gap_cnn(seed: int = 1) -> onnx.ModelProto:
    """A GlobalAveragePool head: conv-BN-ReLU, stride-2 conv-ReLU, GAP over 16x16, flatten, gemm."""
    b = _Builder(seed)
    y = b.conv("conv1", "x", 3, 16, 3)
    y = b.op("Relu", "relu1", [b.bn("bn1", y, 16)])
    y = b.op("Relu", "relu2", [b.conv("conv2", y, 16, 24, 3, stride=2)])
    y = b.op("GlobalAveragePool", "gap", [y])
    y = b.op("Flatten", "flatten", [y], axis=1)
    y = b.gemm("logits", y, 24, 10)
    return b.model("gap_cnn", (1, 3, 32, 32), y, (1, 10))


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(make_small_cnn(), str(out / "small_cnn.onnx"))
    np.save(out / "small_cnn_calib.npy", smooth_images(64, seed=1234))
    for f in ("small_cnn.onnx", "small_cnn_calib.npy"):
        print(f"wrote {out / f} ({(out / f).stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
