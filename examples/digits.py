"""scikit-learn's bundled digits (8×8 images, 10 classes) with npuc's fixed train/calibration/test split.

    python examples/digits.py             # (re)write the committed digits data in npuc/examples/

The trained example `npuc/examples/digits_cnn.onnx` is built from the train
split by `examples/train_digits.py`. The calibration and test splits are
committed as small .npy files beside it (`npuc.examples.digits`), so the
tests, benchmarks and README commands need neither scikit-learn nor this
script. Needs scikit-learn (the ``test`` extra); the data ships inside it,
nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parent.parent / "npuc" / "examples"
MODEL = EXAMPLES / "digits_cnn.onnx"
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


def write_committed_data(out: Path = EXAMPLES) -> None:
    """The calibration and test splits as the .npy files `npuc.examples.digits` reads."""
    split = digits_split()
    for part in ("calib", "test"):
        np.save(out / f"digits_{part}_x.npy", split[part].x)
        np.save(out / f"digits_{part}_y.npy", split[part].y)


if __name__ == "__main__":
    write_committed_data()
    print(f"wrote the digits calibration and test splits into {EXAMPLES}")
