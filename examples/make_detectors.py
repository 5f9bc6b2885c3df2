"""Train and export the two detector structures of tests/e2e/test_detectors.py (issue 13).

Requires torch==2.13.0 (CPU build is enough). Not run by the tests: they read the committed files in
tests/e2e/data/detectors/. Re-run after changing a model here (seeded; about eleven minutes of
CPU time):

    python examples/make_detectors.py [OUT_DIR]     # default: tests/e2e/data/detectors

Both are trained briefly on synthetic 64x64 scenes (`scene`: one to three filled shapes — a
rectangle, a disk, a triangle — on a noisy background), so their outputs mean something: boxes
around the shapes, class scores near 1 on them and near 0 elsewhere.

* ``yolov8_style.onnx`` — the head of an Ultralytics YOLOv8 export (opset 17, TorchScript
  exporter, dynamic batch, height and width as `yolo export dynamic=True` writes it): three
  scales (strides 8, 16, 32) whose box (4 x 16 DFL bins) and class (3) outputs are
  concatenated per scale, reshaped to [1, C, anchors] and concatenated over scales (3-D
  tensors); a Split into box and class channels; the DFL decoder (Reshape -> Transpose ->
  Softmax over 16 bins -> 1x1 Conv with weights 0..15 -> Reshape); the anchor grid and strides
  computed in the graph from the feature maps' shapes (Shape / Gather / Range / Expand /
  Concat, constant once the input size is fixed: `--input-shape images:1,3,64,64`); dist2bbox
  arithmetic (Sub, Add, Div by 2, Concat, Mul by the strides); Sigmoid on the class scores;
  the output Concat of boxes in pixels (0..64) with class scores (0..1): [1, 4 + 3, 84].
* ``db_style.onnx`` — a DB (differentiable binarization) text detector as paddle2onnx exports it
  (opset 12): an FPN that upsamples with Resize (nearest x2 and bilinear) and ConvTranspose, a
  Concat of the four levels, and a head of Conv -> ConvTranspose x2 -> Sigmoid: a probability map
  [1, 1, 64, 64] of the text-like bars in the scene. Its Resize nodes are then rewritten with
  `onnx.helper` the way paddle2onnx spells them: `roi` and `scales` as empty Constant tensors,
  the output size in `sizes`.

Calibration and test inputs for both (`calib.npy`: 32 scenes, `test.npy`: 8 scenes, float32
NCHW in [0, 1]) are written next to the models.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

TORCH_VERSION = "2.13.0"

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError:  # pragma: no cover - a message instead of a traceback
    sys.exit(f"examples/make_detectors.py needs torch=={TORCH_VERSION} (pip install torch=={TORCH_VERSION})")
if torch.__version__.split("+")[0] != TORCH_VERSION:
    sys.exit(f"examples/make_detectors.py is pinned to torch=={TORCH_VERSION}, found {torch.__version__}")

SIZE = 64
NC = 3  # rectangle, disk, triangle
REG = 16  # DFL bins
STRIDES = (8, 16, 32)


# -- synthetic scenes ----------------------------------------------------------------------------


def scene(rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[float, float, float, float, int]], np.ndarray]:
    """One 3x64x64 image in [0, 1], its objects (x1, y1, x2, y2, class) and a text-bar mask (64x64)."""
    img = rng.uniform(0.0, 0.25, (3, SIZE, SIZE)).astype(np.float32)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    boxes = []
    for _ in range(rng.integers(1, 4)):
        w, h = rng.integers(12, 36, 2)
        x1, y1 = rng.integers(0, SIZE - w), rng.integers(0, SIZE - h)
        k = int(rng.integers(0, NC))
        color = rng.uniform(0.5, 1.0, 3).astype(np.float32)
        if k == 0:
            m = (xx >= x1) & (xx < x1 + w) & (yy >= y1) & (yy < y1 + h)
        elif k == 1:
            cx, cy, r = x1 + w / 2, y1 + h / 2, min(w, h) / 2
            m = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
            x1, y1, w, h = cx - r, cy - r, 2 * r, 2 * r
        else:
            m = (yy >= y1) & (yy < y1 + h) & (np.abs(xx - (x1 + w / 2)) <= (yy - y1) * w / (2 * h))
        img[:, m] = color[:, None]
        boxes.append((float(x1), float(y1), float(x1 + w), float(y1 + h), k))
    mask = np.zeros((SIZE, SIZE), np.float32)
    for _ in range(rng.integers(1, 4)):  # text-like bars: long, thin, dark on the image
        w, h = rng.integers(16, 48), rng.integers(3, 7)
        x1, y1 = rng.integers(0, SIZE - w), rng.integers(0, SIZE - h)
        img[:, y1 : y1 + h, x1 : x1 + w] = rng.uniform(0.0, 0.1)
        mask[y1 : y1 + h, x1 : x1 + w] = 1.0
    return img, boxes, mask


def batch(rng: np.random.Generator, n: int) -> tuple[np.ndarray, list, np.ndarray]:
    items = [scene(rng) for _ in range(n)]
    return np.stack([i[0] for i in items]), [i[1] for i in items], np.stack([i[2] for i in items])


# -- YOLOv8-style ----------------------------------------------------------------------------------


def conv(cin: int, cout: int, k: int = 3, s: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.SiLU())


class C2f(nn.Module):
    """YOLOv8's CSP block: 1x1 conv, split in two, a bottleneck on the second half, concat, 1x1 conv."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.cv1 = conv(c, c, 1)
        self.m = nn.Sequential(conv(c // 2, c // 2), conv(c // 2, c // 2))
        self.cv2 = conv(c + c // 2, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.cv1(x).chunk(2, 1)
        return self.cv2(torch.cat((a, b, self.m(b) + b), 1))


class DFL(nn.Module):
    """Ultralytics' DFL: softmax over 16 bins, expectation by a 1x1 conv with weights 0..15."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(REG, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(REG, dtype=torch.float32).view(1, REG, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape
        return self.conv(x.view(b, 4, REG, a).transpose(2, 1).softmax(1)).view(b, 4, a)


def make_anchors(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ultralytics' make_anchors: grid cell centers and strides from the feature maps' shapes."""
    points, strides = [], []
    for f, s in zip(feats, STRIDES):
        h, w = f.shape[2], f.shape[3]
        sx = torch.arange(end=w, dtype=torch.float32) + 0.5
        sy = torch.arange(end=h, dtype=torch.float32) + 0.5
        gy, gx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((gx, gy), -1).view(-1, 2))
        strides.append(torch.full((h * w, 1), float(s)))
    return torch.cat(points).transpose(0, 1), torch.cat(strides).transpose(0, 1)


class YoloV8Style(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv(3, 16, 3, 2), conv(16, 32, 3, 2), C2f(32))  # stride 4
        self.p3 = nn.Sequential(conv(32, 48, 3, 2), C2f(48))  # stride 8: 8x8
        self.p4 = nn.Sequential(conv(48, 64, 3, 2), C2f(64))  # stride 16: 4x4
        self.p5 = nn.Sequential(conv(64, 64, 3, 2), C2f(64))  # stride 32: 2x2
        chans = (48, 64, 64)
        self.box = nn.ModuleList(nn.Sequential(conv(c, 32), conv(32, 32), nn.Conv2d(32, 4 * REG, 1)) for c in chans)
        self.cls = nn.ModuleList(nn.Sequential(conv(c, 32), conv(32, 32), nn.Conv2d(32, NC, 1)) for c in chans)
        self.dfl = DFL()

    def raw(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        p3 = self.p3(x)
        p4 = self.p4(p3)
        p5 = self.p5(p4)
        return [torch.cat((b(f), c(f)), 1) for f, b, c in zip((p3, p4, p5), self.box, self.cls)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.raw(x)
        anchors, strides = make_anchors(feats)
        b = feats[0].shape[0]
        x_cat = torch.cat([f.view(b, 4 * REG + NC, -1) for f in feats], 2)
        box, cls = x_cat.split((4 * REG, NC), 1)
        lt, rb = self.dfl(box).chunk(2, 1)
        x1y1, x2y2 = anchors.unsqueeze(0) - lt, anchors.unsqueeze(0) + rb
        dbox = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * strides
        return torch.cat((dbox, cls.sigmoid()), 1)


def yolo_targets(boxes: list, n_anchor: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image and anchor: class targets (NC), ltrb distances in grid units (4), positive mask."""
    centers, strides = [], []
    for s in STRIDES:
        g = SIZE // s
        ys, xs = np.mgrid[0:g, 0:g]
        centers.append(np.stack([(xs.ravel() + 0.5) * s, (ys.ravel() + 0.5) * s], 1))
        strides.append(np.full(g * g, s))
    c, st = np.concatenate(centers), np.concatenate(strides).astype(np.float32)
    cls = np.zeros((len(boxes), NC, n_anchor), np.float32)
    dist = np.zeros((len(boxes), 4, n_anchor), np.float32)
    pos = np.zeros((len(boxes), n_anchor), bool)
    for i, objs in enumerate(boxes):
        for x1, y1, x2, y2, k in sorted(objs, key=lambda o: -(o[2] - o[0]) * (o[3] - o[1])):
            size = max(x2 - x1, y2 - y1)
            level = 8 if size < 20 else 16 if size < 30 else 32
            inside = (c[:, 0] > x1) & (c[:, 0] < x2) & (c[:, 1] > y1) & (c[:, 1] < y2) & (st == level)
            if not inside.any():
                inside = (st == level) & (
                    np.argmin(((c - [(x1 + x2) / 2, (y1 + y2) / 2]) ** 2).sum(1) + 1e9 * (st != level))
                    == np.arange(len(c))
                )
            cls[i, :, inside] = 0
            cls[i, k, inside] = 1
            d = np.stack([c[:, 0] - x1, c[:, 1] - y1, x2 - c[:, 0], y2 - c[:, 1]], 0) / st
            dist[i][:, inside] = np.clip(d[:, inside], 0, REG - 1.01)
            pos[i, inside] = True
    return cls, dist, pos


def train_yolo(model: YoloV8Style, steps: int, rng: np.random.Generator) -> None:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], 3e-3)
    n_anchor = sum((SIZE // s) ** 2 for s in STRIDES)
    for step in range(steps):
        x, boxes, _ = batch(rng, 16)
        cls_t, dist_t, pos = (torch.from_numpy(a) for a in yolo_targets(boxes, n_anchor))
        feats = model.raw(torch.from_numpy(x))
        x_cat = torch.cat([f.view(len(x), 4 * REG + NC, -1) for f in feats], 2)
        box, cls = x_cat.split((4 * REG, NC), 1)
        loss_cls = F.binary_cross_entropy_with_logits(cls, cls_t)
        logits = box.view(len(x), 4, REG, -1).permute(0, 1, 3, 2)[pos.unsqueeze(1).expand(-1, 4, -1)]
        t = dist_t[pos.unsqueeze(1).expand(-1, 4, -1)]
        lo = t.floor().long()
        wr = t - lo
        logp = F.log_softmax(logits, -1)
        loss_dfl = -(logp.gather(1, lo[:, None])[:, 0] * (1 - wr) + logp.gather(1, (lo + 1)[:, None])[:, 0] * wr).mean()
        loss = 4 * loss_cls + loss_dfl
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"yolo step {step}: cls {loss_cls.item():.4f} dfl {loss_dfl.item():.4f}")


# -- DB-style ------------------------------------------------------------------------------------


class DBStyle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c2 = nn.Sequential(conv(3, 16, 3, 2), conv(16, 16, 3, 2))  # stride 4: 16x16
        self.c3 = conv(16, 32, 3, 2)  # 8x8
        self.c4 = conv(32, 48, 3, 2)  # 4x4
        self.c5 = conv(48, 64, 3, 2)  # 2x2
        self.lat = nn.ModuleList(nn.Conv2d(c, 24, 1, bias=False) for c in (16, 32, 48, 64))
        self.up5 = nn.ConvTranspose2d(24, 24, 2, 2, bias=False)  # 2 -> 4
        self.out = nn.ModuleList(nn.Conv2d(24, 8, 3, 1, 1, bias=False) for _ in range(4))
        self.head = nn.Sequential(
            nn.Conv2d(32, 16, 3, 1, 1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 16, 2, 2),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 1, 2, 2),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c2 = self.c2(x)
        c3 = self.c3(c2)
        c4 = self.c4(c3)
        c5 = self.c5(c4)
        i5 = self.lat[3](c5)
        i4 = self.lat[2](c4) + self.up5(i5)
        i3 = self.lat[1](c3) + F.interpolate(i4, scale_factor=2, mode="nearest")
        i2 = self.lat[0](c2) + F.interpolate(i3, scale_factor=2, mode="nearest")
        p5 = F.interpolate(self.out[3](i5), scale_factor=8, mode="nearest")
        p4 = F.interpolate(self.out[2](i4), scale_factor=4, mode="bilinear", align_corners=False)
        p3 = F.interpolate(self.out[1](i3), scale_factor=2, mode="nearest")
        return self.head(torch.cat((p5, p4, p3, self.out[0](i2)), 1))


def train_db(model: DBStyle, steps: int, rng: np.random.Generator) -> None:
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for step in range(steps):
        x, _, mask = batch(rng, 32)
        p = model(torch.from_numpy(x))
        loss = F.binary_cross_entropy(p, torch.from_numpy(mask)[:, None])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"db step {step}: bce {loss.item():.4f}")


def paddle_style_resize(path: Path) -> None:
    """Rewrite every Resize as paddle2onnx writes it: roi and scales empty Constant tensors, sizes given."""
    import onnx
    from onnx import helper, numpy_helper, shape_inference

    model = shape_inference.infer_shapes(onnx.load(str(path)))
    shapes = {
        vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
        for vi in [*model.graph.value_info, *model.graph.output]
    }
    nodes = []
    for node in model.graph.node:
        if node.op_type == "Resize":
            base = node.name or node.output[0]
            empty = [
                helper.make_node(
                    "Constant",
                    [],
                    [f"{base}_{k}"],
                    name=f"{base}_{k}_const",
                    value=numpy_helper.from_array(np.zeros(0, np.float32), f"{base}_{k}"),
                )
                for k in ("roi", "scales")
            ]
            sizes = helper.make_node(
                "Constant",
                [],
                [f"{base}_sizes"],
                name=f"{base}_sizes_const",
                value=numpy_helper.from_array(np.array(shapes[node.output[0]], np.int64)),
            )
            nodes += [*empty, sizes]
            del node.input[1:]
            node.input.extend([f"{base}_roi", f"{base}_scales", f"{base}_sizes"])
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    del model.graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def main(argv: list[str]) -> None:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "tests" / "e2e" / "data" / "detectors"
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    yolo = YoloV8Style()
    train_yolo(yolo, 400, rng)
    db = DBStyle()
    train_db(db, 300, rng)
    yolo.eval()
    db.eval()
    data = np.random.default_rng(1)
    np.save(out / "calib.npy", batch(data, 32)[0])
    np.save(out / "test.npy", batch(data, 8)[0])
    x = torch.zeros(1, 3, SIZE, SIZE)
    # dynamic batch, height and width, as `yolo export dynamic=True` writes it: the anchor grid is then
    # Shape -> Gather -> Range -> Expand arithmetic in the graph (compile with --input-shape images:1,3,64,64)
    torch.onnx.export(
        yolo,
        (x,),
        str(out / "yolov8_style.onnx"),
        opset_version=17,
        dynamo=False,
        input_names=["images"],
        output_names=["output0"],
        do_constant_folding=False,
        dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "output0": {0: "batch", 2: "anchors"}},
    )
    torch.onnx.export(
        db,
        (x,),
        str(out / "db_style.onnx"),
        opset_version=12,
        dynamo=False,
        input_names=["x"],
        output_names=["maps"],
        do_constant_folding=True,
    )
    paddle_style_resize(out / "db_style.onnx")
    for p in sorted(out.iterdir()):
        print(f"wrote {p} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:])
