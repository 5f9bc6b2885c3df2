"""Export-idiom sweep: a catalogue of architectures and export idioms, exported locally, run as a user.

Requires torch==2.13.0 and onnxscript (for the dynamo exporter). torchvision is not used: the only
torchvision on disk for x86_64 comes with a 5.5 GB CUDA torch, so the catalogue's backbones are
written here from torch.nn modules with torchvision's structure (the blocks, not the widths: every
model is small, 64x64 inputs, random weights; VGG's and AlexNet's adaptive pools are (4, 4) and
(1, 1) here, because the TorchScript exporter cannot export torchvision's (7, 7) and (6, 6) from the
8x8 and 3x3 maps a 64x64 input leaves). Each entry is exported

* with the TorchScript exporter (`dynamo=False`) at opsets 11, 13 and 17, and
* with the dynamo exporter (`dynamo=True`, torch.export + onnxscript) at its native opset 18,

then run through the command line exactly as a user would — `npuc compile m.onnx -o m.s` (random
calibration) and `npuc sim m.s --input x.npy -o out.npz` — and reported as *runs* (everything on the
NPU), *falls back* (runs, with the ops listed that ran on the host) or *fails* (npuc's one-line
error; an exporter failure is reported as *no export*, npuc never saw a model). A run shows the
output SQNR of the simulated int8 model against onnxruntime fp32 on the same input (two samples of
N(0, 1), the calibration's distribution; the worst output; random weights, so a smoke number).

    python bench/export_sweep.py [-k NAME] [--out DIR]     # prints a markdown table and the counts
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

TORCH_VERSION = "2.13.0"

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError:  # pragma: no cover
    sys.exit(f"bench/export_sweep.py needs torch=={TORCH_VERSION} (pip install torch=={TORCH_VERSION} onnxscript)")

SIZE = 64


def cbr(cin: int, cout: int, k: int = 3, s: int = 1, g: int = 1, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(cout), act())


# -- classification backbones (torchvision's blocks) --------------------------------------------------


class BasicBlock(nn.Module):  # resnet18
    def __init__(self, cin: int, cout: int, s: int) -> None:
        super().__init__()
        self.a, self.b = (
            cbr(cin, cout, 3, s),
            nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)),
        )
        self.down = (
            None
            if s == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, s, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.b(self.a(x)) + (x if self.down is None else self.down(x)))


def resnet() -> nn.Module:
    return nn.Sequential(
        cbr(3, 16, 3, 2),
        nn.MaxPool2d(3, 2, 1),
        BasicBlock(16, 16, 1),
        BasicBlock(16, 32, 2),
        BasicBlock(32, 64, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


class InvertedResidual(nn.Module):  # mobilenet_v2 / v3 / efficientnet
    def __init__(
        self, cin: int, cout: int, s: int, e: int = 4, act: type[nn.Module] = nn.ReLU6, se: bool = False, k: int = 3
    ) -> None:
        super().__init__()
        mid = cin * e
        layers: list[nn.Module] = [cbr(cin, mid, 1, act=act), cbr(mid, mid, k, s, g=mid, act=act)]
        if se:
            layers.append(SqueezeExcite(mid))
        layers += [nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body, self.res = nn.Sequential(*layers), s == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.res else self.body(x)


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, gate: type[nn.Module] = nn.Hardsigmoid) -> None:
        super().__init__()
        self.fc1, self.fc2, self.gate = nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1), gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


def mobilenet_v2() -> nn.Module:
    return nn.Sequential(
        cbr(3, 16, 3, 2, act=nn.ReLU6),
        InvertedResidual(16, 16, 1),
        InvertedResidual(16, 24, 2),
        InvertedResidual(24, 24, 1),
        cbr(24, 64, 1, act=nn.ReLU6),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(64, 10),
    )


def mobilenet_v3() -> nn.Module:
    return nn.Sequential(
        cbr(3, 16, 3, 2, act=nn.Hardswish),
        InvertedResidual(16, 24, 2, act=nn.Hardswish, se=True, k=5),
        InvertedResidual(24, 24, 1, act=nn.Hardswish, se=True),
        cbr(24, 64, 1, act=nn.Hardswish),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 32),
        nn.Hardswish(),
        nn.Linear(32, 10),
    )


def efficientnet() -> nn.Module:
    return nn.Sequential(
        cbr(3, 16, 3, 2, act=nn.SiLU),
        InvertedResidual(16, 24, 2, act=nn.SiLU, se=True),
        InvertedResidual(24, 24, 1, act=nn.SiLU, se=True),
        cbr(24, 64, 1, act=nn.SiLU),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


class ShuffleBlock(nn.Module):  # shufflenet_v2: chunk, channel shuffle by view/transpose/view
    def __init__(self, c: int) -> None:
        super().__init__()
        h = c // 2
        self.branch = nn.Sequential(cbr(h, h, 1), cbr(h, h, 3, g=h, act=nn.Identity), cbr(h, h, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        y = torch.cat((a, self.branch(b)), 1)
        n, c, h, w = y.shape
        return y.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


def shufflenet_v2() -> nn.Module:
    return nn.Sequential(
        cbr(3, 32, 3, 2),
        nn.MaxPool2d(3, 2, 1),
        ShuffleBlock(32),
        ShuffleBlock(32),
        cbr(32, 64, 1),
        Mean(),
        nn.Linear(64, 10),
    )


class Mean(nn.Module):  # x.mean([2, 3]): ReduceMean
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean([2, 3])


class Fire(nn.Module):  # squeezenet
    def __init__(self, cin: int, s: int, e: int) -> None:
        super().__init__()
        self.s, self.e1, self.e3 = cbr(cin, s, 1), cbr(s, e, 1), cbr(s, e, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.s(x)
        return torch.cat([self.e1(x), self.e3(x)], 1)


def squeezenet() -> nn.Module:
    return nn.Sequential(
        cbr(3, 32, 3, 2),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(32, 8, 16),
        Fire(32, 8, 16),
        nn.Conv2d(32, 10, 1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
    )


class DenseLayer(nn.Module):  # densenet: BN-ReLU-Conv, concat chains
    def __init__(self, cin: int, g: int) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, g, 3, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.f(x)], 1)


def densenet() -> nn.Module:
    return nn.Sequential(
        cbr(3, 16, 3, 2),
        DenseLayer(16, 8),
        DenseLayer(24, 8),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 16, 1),
        nn.AvgPool2d(2, 2),
        DenseLayer(16, 8),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(24, 10),
    )


def regnet() -> nn.Module:  # grouped 3x3 bottlenecks
    return nn.Sequential(
        cbr(3, 32, 3, 2),
        cbr(32, 32, 1),
        cbr(32, 32, 3, 2, g=4),
        cbr(32, 64, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def vgg() -> nn.Module:
    return nn.Sequential(
        cbr(3, 16),
        nn.MaxPool2d(2),
        cbr(16, 32),
        nn.MaxPool2d(2),
        cbr(32, 32),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d((4, 4)),
        nn.Flatten(),
        nn.Linear(32 * 16, 64),
        nn.ReLU(),
        nn.Dropout(),
        nn.Linear(64, 10),
    )


class Inception(nn.Module):  # googlenet
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.b1, self.b2 = cbr(cin, 8, 1), nn.Sequential(cbr(cin, 8, 1), cbr(8, 16, 3))
        self.b3 = nn.Sequential(cbr(cin, 4, 1), cbr(4, 8, 5))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), cbr(cin, 8, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


def googlenet() -> nn.Module:
    return nn.Sequential(
        cbr(3, 32, 3, 2),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        Inception(32),
        Inception(40),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(40, 10),
    )


class ConvNeXtBlock(nn.Module):  # convnext: depthwise 7x7, permute, LayerNorm, Linear, GELU, layer scale
    def __init__(self, c: int) -> None:
        super().__init__()
        self.dw, self.norm = nn.Conv2d(c, c, 7, 1, 3, groups=c), nn.LayerNorm(c)
        self.pw1, self.pw2 = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.full((c,), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(F.gelu(self.pw1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


def convnext() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 4, 4),
        ConvNeXtBlock(32),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.LayerNorm(32),
        nn.Linear(32, 10),
    )


class ViT(nn.Module):  # vit_b_16: patch conv, class token, nn.TransformerEncoderLayer (MultiheadAttention)
    def __init__(self, d: int = 32) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, d, 16, 16)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, 17, d) * 0.02)
        self.enc = nn.TransformerEncoderLayer(d, 4, 64, dropout=0.0, batch_first=True)
        self.head = nn.Linear(d, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(x.shape[0], -1, -1), t], 1) + self.pos
        return self.head(self.enc(t)[:, 0])


class MHA(nn.Module):  # nn.MultiheadAttention as exported with batch_first=False: the batch on axis 1
    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.proj, self.mha = nn.Conv2d(3, d, 16, 16), nn.MultiheadAttention(d, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.proj(x).flatten(2).permute(2, 0, 1)  # (L, N, E)
        return self.mha(t, t, t, need_weights=False)[0]


def alexnet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 11, 4, 2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(16, 32, 5, 1, 2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
        nn.Linear(32, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


# -- detection / segmentation -------------------------------------------------------------------------


class FPNHead(nn.Module):  # retinanet / fcos style: per-level heads, (N, A, K) outputs concatenated over levels
    def __init__(self) -> None:
        super().__init__()
        self.c3, self.c4, self.c5 = cbr(3, 16, 3, 4), cbr(16, 32, 3, 2), cbr(32, 32, 3, 2)
        self.l4, self.l5 = nn.Conv2d(32, 16, 1), nn.Conv2d(32, 16, 1)
        self.cls, self.box = nn.Conv2d(16, 3 * 4, 3, 1, 1), nn.Conv2d(16, 4 * 4, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p3 = self.c3(x)
        p4 = self.c4(p3)
        p5 = self.l5(self.c5(p4))
        p4 = self.l4(p4) + F.interpolate(p5, scale_factor=2, mode="nearest")
        p3 = p3 + F.interpolate(p4, size=p3.shape[-2:], mode="nearest")
        n = x.shape[0]
        cls = torch.cat([self.cls(p).permute(0, 2, 3, 1).reshape(n, -1, 3) for p in (p3, p4, p5)], 1)
        box = torch.cat([self.box(p).permute(0, 2, 3, 1).reshape(n, -1, 4) for p in (p3, p4, p5)], 1)
        return cls.sigmoid(), box


class SegNet(nn.Module):  # deeplab / fcn style: bilinear upsampling with align_corners, ConvTranspose
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(cbr(3, 16, 3, 2), cbr(16, 32, 3, 2), cbr(32, 32, 3, 1))
        self.up = nn.ConvTranspose2d(32, 16, 4, 2, 1)
        self.cls = nn.Conv2d(16, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cls(F.relu(self.up(self.enc(x))))
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=True)


class YoloV8(nn.Module):  # the head of tests/e2e/data/detectors (examples/make_detectors.py), random weights
    def __init__(self) -> None:
        super().__init__()
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
        from make_detectors import YoloV8Style

        self.m = YoloV8Style()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.m(x)


# -- idioms -----------------------------------------------------------------------------------------


class Idiom(nn.Module):
    def __init__(self, fn: Callable[[nn.Module, torch.Tensor], torch.Tensor], **mods: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        for k, v in mods.items():
            setattr(self, k, v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self, x)


def idioms() -> dict[str, Callable[[], nn.Module]]:
    def conv(c: int = 8) -> nn.Module:
        return nn.Conv2d(3, c, 3, 1, 1)

    return {
        "view(x.size(0), -1)": lambda: Idiom(
            lambda m, x: m.fc(m.c(x).view(x.size(0), -1)), c=conv(), fc=nn.Linear(8 * 64 * 64, 4)
        ),
        "pixel_shuffle": lambda: Idiom(lambda m, x: F.pixel_shuffle(m.c(x), 2), c=conv(12)),
        "split + sigmoid/tanh": lambda: Idiom(
            lambda m, x: torch.sigmoid(m.c(x).split(4, 1)[0]) * torch.tanh(m.c(x).split(4, 1)[1]), c=conv()
        ),
        "GroupNorm": lambda: Idiom(lambda m, x: m.g(m.c(x)), c=conv(), g=nn.GroupNorm(2, 8)),
        "InstanceNorm2d": lambda: Idiom(lambda m, x: m.g(m.c(x)), c=conv(), g=nn.InstanceNorm2d(8)),
        "reflect pad + clamp": lambda: Idiom(
            lambda m, x: m.c(F.pad(x, (2, 2, 2, 2), mode="reflect")).clamp(-1, 1), c=nn.Conv2d(3, 8, 5)
        ),
        "Conv1d audio (N, C, L)": lambda: nn.Sequential(
            Squeeze2(),
            nn.Conv1d(3, 8, 5, 2, 2),
            nn.BatchNorm1d(8),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(8, 8, 3, 1, 1),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
        ),
        "argmax head": lambda: Idiom(lambda m, x: m.c(x).argmax(1, keepdim=True).float(), c=conv()),
        "softmax over channels": lambda: Idiom(lambda m, x: m.c(x).softmax(1), c=conv()),
        "upsample bilinear x2": lambda: Idiom(
            lambda m, x: F.interpolate(m.c(x), scale_factor=2, mode="bilinear"), c=conv()
        ),
        "adaptive pool (5, 5)": lambda: Idiom(lambda m, x: F.adaptive_avg_pool2d(m.c(x), (5, 5)), c=conv()),
        "where / comparison": lambda: Idiom(lambda m, x: torch.where(m.c(x) > 0, m.c(x), 0.1 * m.c(x)), c=conv()),
    }


class Squeeze2(nn.Module):  # (N, 3, 64, 64) -> (N, 3, 64): one image row per channel, a 1-D signal
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, 0, :]


def catalogue() -> dict[str, Callable[[], nn.Module]]:
    nets: dict[str, Callable[[], nn.Module]] = {
        "resnet18": resnet,
        "mobilenet_v2": mobilenet_v2,
        "mobilenet_v3": mobilenet_v3,
        "efficientnet_b0": efficientnet,
        "shufflenet_v2": shufflenet_v2,
        "squeezenet1_1": squeezenet,
        "densenet121": densenet,
        "regnet_y": regnet,
        "vgg11_bn": vgg,
        "googlenet": googlenet,
        "alexnet": alexnet,
        "convnext_tiny": convnext,
        "vit_b_16": ViT,
        "MultiheadAttention (L, N, E)": MHA,
        "retinanet/fcos head": FPNHead,
        "fcn/deeplab seg": SegNet,
        "yolov8 head": YoloV8,
    }
    return {**nets, **idioms()}


EXPORTS = [("torchscript", 11), ("torchscript", 13), ("torchscript", 17), ("dynamo", 18)]


def export(model: nn.Module, path: Path, exporter: str, opset: int) -> str | None:
    """Export at batch 1, 3x64x64; None, or the exporter's first error line."""
    x = torch.randn(1, 3, SIZE, SIZE)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if exporter == "dynamo":
                torch.onnx.export(model, (x,), str(path), opset_version=opset, dynamo=True, verbose=False)
            else:
                torch.onnx.export(model, (x,), str(path), opset_version=opset, dynamo=False)
    except Exception as e:  # noqa: BLE001 - any exporter failure is a row of the table
        return (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
    return None


def npuc(*args: str) -> tuple[int, str]:
    p = subprocess.run([sys.executable, "-m", "npuc", *args], capture_output=True, text=True, check=False)
    return p.returncode, p.stdout + p.stderr


def sqnr_vs_ort(path: Path, x: np.ndarray, out: Path) -> float:
    """Worst output SQNR of the simulator's outputs (`npuc sim -o`) against onnxruntime fp32 on `x`."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    want = [np.concatenate(o) for o in zip(*[sess.run(None, {name: x[i : i + 1]}) for i in range(len(x))])]
    got = np.load(out)
    worst = np.inf
    for o, w in zip(sess.get_outputs(), want):
        g = got[o.name].reshape(w.shape).astype(np.float64)
        w = w.astype(np.float64)
        noise = np.sum((g - w) ** 2)
        worst = min(worst, np.inf if noise == 0 else 10 * np.log10(np.sum(w * w) / noise))
    return float(worst)


def run_one(name: str, make: Callable[[], nn.Module], exporter: str, opset: int, tmp: Path) -> tuple[str, str]:
    torch.manual_seed(0)
    model = make().eval()
    path = tmp / f"{re.sub(r'[^A-Za-z0-9]+', '_', name)}_{exporter}{opset}.onnx"
    err = export(model, path, exporter, opset)
    if err is not None:
        return "no export", err
    rc, out = npuc("compile", str(path), "-o", str(path.with_suffix(".s")))
    if rc != 0:
        return "fails", out.strip().splitlines()[-1]
    hosts = sorted({m.group(1) for m in re.finditer(r"^fallback: node '.*?' \((\w+), opset", out, re.MULTILINE)})
    x = np.random.default_rng(1).standard_normal((2, 3, SIZE, SIZE)).astype(np.float32)
    np.save(path.with_suffix(".x.npy"), x)
    out_npz = path.with_suffix(".out.npz")
    rc, sim = npuc("sim", str(path.with_suffix(".s")), "--input", str(path.with_suffix(".x.npy")), "-o", str(out_npz))
    if rc != 0:
        return "fails", sim.strip().splitlines()[-1]
    db = f"{sqnr_vs_ort(path, x, out_npz):.1f} dB"
    return ("falls back", f"{db}; host: " + ", ".join(hosts)) if hosts else ("runs", db)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", default="", help="only the entries whose name contains this")
    ap.add_argument("--out", help="keep the exported models and programs here")
    args = ap.parse_args(argv)
    if torch.__version__.split("+")[0] != TORCH_VERSION:
        print(f"note: pinned to torch=={TORCH_VERSION}, running {torch.__version__}", file=sys.stderr)
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(args.out) if args.out else Path(t)
        tmp.mkdir(parents=True, exist_ok=True)
        print("| model / idiom | " + " | ".join(f"{e} {o}" for e, o in EXPORTS) + " |")
        print("|---|" + "---|" * len(EXPORTS))
        for name, make in catalogue().items():
            if args.k not in name:
                continue
            cells = []
            for exporter, opset in EXPORTS:
                status, detail = run_one(name, make, exporter, opset, tmp)
                counts[status] = counts.get(status, 0) + 1
                cells.append(status + (f": {detail}" if detail else ""))
            print(f"| {name} | " + " | ".join(c.replace("|", "/") for c in cells) + " |", flush=True)
    print("\n" + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
