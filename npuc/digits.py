"""scikit-learn's bundled digits (8×8 images, 10 classes) with npuc's fixed train/calibration/test split.

The trained example `npuc/examples/digits_cnn.onnx` (built by
`examples/train_digits.py`), its tests and the quantization benchmarks all
read the data through `digits_split`, so they see the same samples. Needs
scikit-learn (the ``test`` extra); the data ships inside it, nothing is
downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL = Path(__file__).parent / "examples" / "digits_cnn.onnx"
SEED = 0
N_CALIB, N_TEST = 200, 400  # the remaining 1197 of 1797 images train


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # (n, 1, 8, 8) float32, pixels 0..16 mapped to [-1, 1]
    y: np.ndarray  # (n,) int64


def digits_split() -> dict[str, Split]:
    """{"train", "calib", "test"}: a seeded permutation of the 1797 images, disjoint parts."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images.astype(np.float32) / 8.0 - 1.0)[:, None, :, :]
    y = data.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(y))
    test, calib, train = order[:N_TEST], order[N_TEST:N_TEST + N_CALIB], order[N_TEST + N_CALIB:]
    return {"train": Split(x[train], y[train]), "calib": Split(x[calib], y[calib]), "test": Split(x[test], y[test])}


def dead_channel_model(channel: int = 3, gain: float = 20.0, seed: int = 0):
    """The digits CNN with a dead channel: bn1's channel `channel` gets bias -100 (after the ReLU it is
    always 0) and conv2 reads it through weights of std `gain` — the float model is unchanged up to that
    channel, but conv2's weight range is set by weights that never matter, so int8 weights (per channel
    or per tensor) crush conv2's real ones. A fixture for mixed precision: a model int8 alone cannot save."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(MODEL)
    inits = {i.name: i for i in model.graph.initializer}
    b = numpy_helper.to_array(inits["bn1.B"]).copy()
    b[channel] = -100.0
    w = numpy_helper.to_array(inits["conv2.W"]).copy()
    w[:, channel] = np.random.default_rng(seed).standard_normal(w[:, channel].shape) * gain
    for name, value in (("bn1.B", b), ("conv2.W", w)):
        inits[name].CopyFrom(numpy_helper.from_array(value.astype(np.float32), name))
    return model
