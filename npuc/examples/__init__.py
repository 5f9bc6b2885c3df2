"""The bundled example models and their data, so `npuc demo`, the README and the tests run after
`pip install .` with nothing else (the scripts that made them are in the repository's `examples/`).

* `SMALL_CNN` (`examples/make_cnn.py`) and `SMALL_CNN_SAMPLES`, its 64 samples, batch first;
* `DIGITS_CNN`, a CNN trained on scikit-learn's digits (`examples/train_digits.py`), and
  `digits(part)`, that dataset's fixed calibration ("calib", 200) and test ("test", 400) splits
  (`examples/digits.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

EXAMPLES = Path(__file__).parent
SMALL_CNN = EXAMPLES / "small_cnn.onnx"
SMALL_CNN_SAMPLES = EXAMPLES / "small_cnn_calib.npy"
DIGITS_CNN = EXAMPLES / "digits_cnn.onnx"
DIGITS_PARTS = ("calib", "test")


def digits_path(part: str, what: str = "x") -> Path:
    """The .npy of a digits split: images `x` (n, 1, 8, 8) float32 in [-1, 1], or labels `y` (n,) int64."""
    if part not in DIGITS_PARTS or what not in ("x", "y"):
        raise ValueError(f"digits split {part!r}/{what!r}: parts are {DIGITS_PARTS}, arrays x and y")
    return EXAMPLES / f"digits_{part}_{what}.npy"


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # (n, 1, 8, 8) float32, pixels 0..16 mapped to [-1, 1]
    y: np.ndarray  # (n,) int64 labels


def digits(part: str) -> Split:
    """Images and labels of the digits split `part` ("calib": 200, or "test": 400)."""
    return Split(np.load(digits_path(part, "x")), np.load(digits_path(part, "y")))


def dead_channel_digits(channel: int = 3, gain: float = 20.0, seed: int = 0) -> Any:
    """The digits CNN with a dead channel (an onnx.ModelProto): bn1's channel `channel` gets bias -100
    (after the ReLU it is always 0) and conv2 reads it through weights of std `gain` — the float model
    is unchanged, but conv2's weight range is set by weights that never matter, so int8 weights (per
    channel or per tensor) crush conv2's real ones. A fixture for mixed precision: a model int8 alone
    cannot save."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(DIGITS_CNN)
    inits = {i.name: i for i in model.graph.initializer}
    b = numpy_helper.to_array(inits["bn1.B"]).copy()
    b[channel] = -100.0
    w = numpy_helper.to_array(inits["conv2.W"]).copy()
    w[:, channel] = np.random.default_rng(seed).standard_normal(w[:, channel].shape) * gain
    for name, value in (("bn1.B", b), ("conv2.W", w)):
        inits[name].CopyFrom(numpy_helper.from_array(value.astype(np.float32), name))
    return model
