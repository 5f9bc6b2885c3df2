"""Train a small CNN on scikit-learn's digits and export it as `npuc/examples/digits_cnn.onnx`.

    pip install torch==2.13.0 scikit-learn      # torch only for this script; npuc never imports it
    python examples/train_digits.py [OUT.onnx]

Requirements (pinned): torch==2.13.0, scikit-learn. Deterministic: a fixed
seed, CPU, one thread, and the fixed split of `examples/digits.py::digits_split`
(1197 train / 200 calibration / 400 test). The network (8×8 input):

    conv3x3 1->16 + BN + ReLU      16x8x8
    conv3x3 16->32 + ReLU          32x8x8
    maxpool 2x2                    32x4x4
    conv3x3 32->32 + ReLU          32x4x4
    flatten                        512
    gemm 512->64 + ReLU            64
    gemm 64->10                    10

The ONNX graph is written with onnx.helper from the trained tensors (BN kept
as a node, so npuc's BN folding is exercised), not with torch.onnx, whose
exporter needs extra packages; a check at the end runs it in ONNX Runtime
against torch's own outputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits import MODEL, digits_split  # noqa: E402  (this folder is not a package)

EPOCHS, BATCH, LR = 40, 64, 2e-3


class DigitsCnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(512, 64), nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.conv3(x)).flatten(1)
        return self.fc2(torch.relu(self.fc1(x)))


def train() -> DigitsCnn:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    data = digits_split()
    x, y = torch.from_numpy(data["train"].x), torch.from_numpy(data["train"].y)
    net = DigitsCnn()
    opt = torch.optim.Adam(net.parameters(), lr=LR, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(0)
    for _ in range(EPOCHS):
        net.train()
        for idx in torch.randperm(len(y), generator=gen).split(BATCH):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(torch.from_numpy(data["test"].x)).argmax(1).numpy() == data["test"].y).mean()
    print(f"trained {EPOCHS} epochs; fp32 test accuracy {100 * acc:.2f}%")
    return net


def to_onnx(net: DigitsCnn) -> onnx.ModelProto:
    def t(v: torch.Tensor) -> np.ndarray:
        return v.detach().numpy().astype(np.float32)

    inits = {
        "conv1.W": t(net.conv1.weight), "conv1.B": t(net.conv1.bias),
        "bn1.scale": t(net.bn1.weight), "bn1.B": t(net.bn1.bias),
        "bn1.mean": t(net.bn1.running_mean), "bn1.var": t(net.bn1.running_var),
        "conv2.W": t(net.conv2.weight), "conv2.B": t(net.conv2.bias),
        "conv3.W": t(net.conv3.weight), "conv3.B": t(net.conv3.bias),
        "fc1.W": t(net.fc1.weight), "fc1.B": t(net.fc1.bias),
        "logits.W": t(net.fc2.weight), "logits.B": t(net.fc2.bias),
    }
    conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Conv", ["x", "conv1.W", "conv1.B"], ["conv1"], name="conv1", **conv),
        helper.make_node("BatchNormalization", ["conv1", "bn1.scale", "bn1.B", "bn1.mean", "bn1.var"], ["bn1"],
                         name="bn1", epsilon=net.bn1.eps),
        helper.make_node("Relu", ["bn1"], ["relu1"], name="relu1"),
        helper.make_node("Conv", ["relu1", "conv2.W", "conv2.B"], ["conv2"], name="conv2", **conv),
        helper.make_node("Relu", ["conv2"], ["relu2"], name="relu2"),
        helper.make_node("MaxPool", ["relu2"], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["pool", "conv3.W", "conv3.B"], ["conv3"], name="conv3", **conv),
        helper.make_node("Relu", ["conv3"], ["relu3"], name="relu3"),
        helper.make_node("Flatten", ["relu3"], ["flatten"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flatten", "fc1.W", "fc1.B"], ["fc1"], name="fc1", transB=1),
        helper.make_node("Relu", ["fc1"], ["relu4"], name="relu4"),
        helper.make_node("Gemm", ["relu4", "logits.W", "logits.B"], ["logits"], name="logits", transB=1),
    ]
    graph = helper.make_graph(nodes, "digits_cnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="train_digits")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def check(model: onnx.ModelProto, net: DigitsCnn) -> None:
    import onnxruntime as ort

    x = digits_split()["test"].x
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert np.allclose(got, want, atol=1e-4), np.abs(got - want).max()


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else MODEL
    net = train()
    model = to_onnx(net)
    check(model, net)
    onnx.save(model, str(out))
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
