"""Export the PyTorch test models of tests/e2e/test_torch_models.py to ONNX.

Requires torch==2.13.0 (CPU build; `pip install torch==2.13.0 --index-url
https://download.pytorch.org/whl/cpu` or from PyPI). Not run by the tests: they read the committed
files in tests/e2e/data/. Re-run after changing a model here:

    python examples/export_torch.py [OUT_DIR]     # default: tests/e2e/data

Four small networks with the architecture of real ones, seeded random weights (Kaiming-normal convs;
BatchNorm's weight, bias, running mean and running variance randomized so that no BN is an
identity), exported at opset 13 and/or 17 (`OPSETS`) with the TorchScript exporter (`dynamo=False`: the
torch.export-based one needs onnxscript), so both the old and new op forms are covered
(HardSwish is HardSigmoid + Mul at opset 13, one HardSwish op from opset 14):

* ``resnet18``  — torchvision's ResNet-18 (BasicBlock x [2, 2, 2, 2], strided 1x1 downsample) at
  width 12 (12, 24, 48, 96 channels instead of 64..512), 10 classes, input 1x3x64x64;
* ``mobilenetv2`` — MobileNetV2 (ReLU6, depthwise 3x3, inverted residuals with expansion 6,
  linear bottlenecks) at width 0.5, input 1x3x64x64;
* ``mobilenetv3`` — MobileNetV3-small-style: HardSwish, squeeze-excite with HardSigmoid and a
  channel-broadcast Mul, depthwise 3x3/5x5, input 1x3x64x64;
* ``yolo``       — a small YOLO-style detector: SiLU convs, a CSP block (torch.chunk -> Split,
  Concat), SPPF-like max pools, a nearest x2 Upsample and Concat to a second scale, and two 1x1
  detection heads (3 anchors x (5 + 4 classes)), input 1x3x64x64.

Each file stays well under 2 MB.
"""

from __future__ import annotations

import sys
from pathlib import Path

TORCH_VERSION = "2.13.0"

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover - a message instead of a traceback
    sys.exit(f"examples/export_torch.py needs torch=={TORCH_VERSION} (pip install torch=={TORCH_VERSION})")
if torch.__version__.split("+")[0] != TORCH_VERSION:
    sys.exit(f"examples/export_torch.py is pinned to torch=={TORCH_VERSION}, found {torch.__version__}")

# opset 13 and 17 where the op forms differ (HardSwish, and Split's attribute -> input happened at 13
# already); ResNet and MobileNetV2 export the same ops at both, so one each
OPSETS = {"resnet18": (13,), "mobilenetv2": (17,), "mobilenetv3": (13, 17), "yolo": (13, 17)}
SIZE = 64


def conv_bn(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1,
            act: nn.Module | None = None) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


# -- ResNet-18 ---------------------------------------------------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride, act=nn.ReLU(inplace=True))
        self.conv2 = conv_bn(cout, cout, 3, 1)
        self.down = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.down is None else self.down(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


class ResNet18(nn.Module):
    def __init__(self, width: int = 12, classes: int = 10) -> None:
        super().__init__()
        w = [width, 2 * width, 4 * width, 8 * width]
        self.stem = nn.Sequential(conv_bn(3, w[0], 7, 2, act=nn.ReLU(inplace=True)), nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], w[0]
        for i, c in enumerate(w):
            blocks += [BasicBlock(cin, c, 1 if i == 0 else 2), BasicBlock(c, c, 1)]
            cin = c
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.blocks(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


# -- MobileNetV2 -------------------------------------------------------------------------------

class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn(cin, hidden, 1, act=nn.ReLU6(inplace=True)))
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6(inplace=True)),
                   conv_bn(hidden, cout, 1)]  # linear bottleneck
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2(nn.Module):
    # (expansion, channels, repeats, stride) of the paper, channels scaled by `width`
    CFG: tuple = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 2, 2), (6, 96, 2, 1), (6, 160, 2, 2),
           (6, 320, 1, 1))

    def __init__(self, width: float = 0.5, classes: int = 10) -> None:
        super().__init__()

        def ch(c: int) -> int:
            return max(8, int(c * width + 4) // 8 * 8)

        layers: list[nn.Module] = [conv_bn(3, ch(32), 3, 2, act=nn.ReLU6(inplace=True))]
        cin = ch(32)
        for t, c, n, s in self.CFG:
            for i in range(n):
                layers.append(InvertedResidual(cin, ch(c), s if i == 0 else 1, t))
                cin = ch(c)
        layers.append(conv_bn(cin, 256, 1, act=nn.ReLU6(inplace=True)))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(256, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(x.reshape(x.shape[0], -1))  # Shape -> Gather -> Concat -> Reshape


# -- MobileNetV3-small-style -------------------------------------------------------------------

class SqueezeExcite(nn.Module):
    def __init__(self, c: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = nn.functional.adaptive_avg_pool2d(x, 1)
        s = nn.functional.hardsigmoid(self.fc2(nn.functional.relu(self.fc1(s))))
        return x * s  # (N, C, H, W) * (N, C, 1, 1): a channel-broadcast Mul


class V3Block(nn.Module):
    def __init__(self, cin: int, hidden: int, cout: int, k: int, stride: int, se: bool, hs: bool) -> None:
        super().__init__()
        act = nn.Hardswish if hs else nn.ReLU
        self.expand = conv_bn(cin, hidden, 1, act=act()) if hidden != cin else nn.Identity()
        self.dw = conv_bn(hidden, hidden, k, stride, groups=hidden, act=act())
        self.se = SqueezeExcite(hidden, max(8, hidden // 4)) if se else nn.Identity()
        self.project = conv_bn(hidden, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.dw(self.expand(x))))
        return x + y if self.residual else y


class MobileNetV3Small(nn.Module):
    # (kernel, hidden, out, SE, HardSwish, stride): the paper's small net, narrowed
    CFG: tuple = ((3, 16, 16, True, False, 2), (3, 48, 24, False, False, 2), (3, 56, 24, False, False, 1),
           (5, 64, 32, True, True, 2), (5, 96, 32, True, True, 1), (5, 96, 48, True, True, 1),
           (5, 128, 64, True, True, 2))

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, 16, 3, 2, act=nn.Hardswish())]
        cin = 16
        for k, hidden, cout, se, hs, s in self.CFG:
            layers.append(V3Block(cin, hidden, cout, k, s, se, hs))
            cin = cout
        layers.append(conv_bn(cin, 192, 1, act=nn.Hardswish()))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(192, 256), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(256, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.head(torch.flatten(x, 1))


# -- YOLO-style --------------------------------------------------------------------------------

def cbs(cin: int, cout: int, k: int = 1, s: int = 1) -> nn.Sequential:
    """Conv + BN + SiLU, YOLOv5's basic block."""
    return conv_bn(cin, cout, k, s, act=nn.SiLU())


class C3(nn.Module):
    """CSP block: split the channels in two (torch.chunk -> Split), transform one half, concatenate."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.cv1 = cbs(c, c)
        self.m = nn.Sequential(cbs(c // 2, c // 2, 1), cbs(c // 2, c // 2, 3))
        self.cv2 = cbs(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.chunk(self.cv1(x), 2, dim=1)
        return self.cv2(torch.cat([a, b + self.m(b)], dim=1))


class SPPF(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.cv1 = cbs(c, c // 2)
        self.pool = nn.MaxPool2d(5, 1, 2)
        self.cv2 = cbs(2 * c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.pool(x)
        y2 = self.pool(y1)
        return self.cv2(torch.cat([x, y1, y2, self.pool(y2)], dim=1))


class TinyYolo(nn.Module):
    def __init__(self, classes: int = 4, anchors: int = 3) -> None:
        super().__init__()
        out = anchors * (5 + classes)
        self.stem = nn.Sequential(cbs(3, 16, 3, 2), cbs(16, 32, 3, 2), C3(32))  # /4
        self.p4 = nn.Sequential(cbs(32, 64, 3, 2), C3(64))  # /8
        self.p5 = nn.Sequential(cbs(64, 96, 3, 2), C3(96), SPPF(96))  # /16
        self.lat = cbs(96, 64)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse = nn.Sequential(cbs(128, 64), C3(64))
        self.head_small = nn.Conv2d(64, out, 1)
        self.head_big = nn.Conv2d(96, out, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p4 = self.p4(self.stem(x))
        p5 = self.p5(p4)
        f = self.fuse(torch.cat([self.up(self.lat(p5)), p4], dim=1))
        return self.head_small(f), self.head_big(p5)


MODELS = {"resnet18": ResNet18, "mobilenetv2": MobileNetV2, "mobilenetv3": MobileNetV3Small, "yolo": TinyYolo}


def randomize(model: nn.Module, seed: int) -> nn.Module:
    """Kaiming-normal conv/linear weights, small biases, and BatchNorm with non-trivial statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
    return model.eval()


def export(name: str, opset: int, out_dir: Path) -> Path:
    model = randomize(MODELS[name](), seed=sum(map(ord, name)))
    path = out_dir / f"{name}_opset{opset}.onnx"
    outputs = ["y0", "y1"] if name == "yolo" else ["y"]
    torch.onnx.export(model, (torch.zeros(1, 3, SIZE, SIZE),), str(path), opset_version=opset, dynamo=False,
                      input_names=["x"], output_names=outputs, do_constant_folding=True)
    return path


def main(argv: list[str]) -> None:
    out_dir = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "tests" / "e2e" / "data"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in MODELS:
        for opset in OPSETS[name]:
            path = export(name, opset, out_dir)
            print(f"{path}: {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main(sys.argv[1:])
