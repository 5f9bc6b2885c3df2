"""Calibration data: load the user's samples, or make random ones when there are none.

A sample is a dict input name -> array shaped like the model input without
its batch axis (`sample_shape`: an input whose axis 0 is not the batch, as
MultiheadAttention's (L, 1, E), is one sample whole). Accepted files:

* ``.npy`` — single-input models: an array whose first axis indexes samples,
  shape (n, *input_shape[1:]);
* ``.npz`` — one such array per input, keyed by input name (same n for all);
* a directory of ``.npy`` files (single-input models), each one sample
  (shape input_shape[1:]) or a batch of them (n, *input_shape[1:]), read in
  file-name order.

Every error names the file and the shape that was expected.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..ir import IR

Sample = dict[str, np.ndarray]


class CalibrationError(ValueError):
    """Calibration data is missing or malformed; the message names the file."""


def load_calibration(path: str | Path, ir: IR) -> list[Sample]:
    """Read calibration samples for `ir` from a .npy, a .npz or a directory of .npy files."""
    path = Path(path)
    if path.is_dir():
        samples = _from_dir(path, ir)
    elif not path.exists():
        raise CalibrationError(f"{path}: no such file or directory")
    elif path.suffix == ".npz":
        samples = _from_npz(path, ir)
    elif path.suffix == ".npy":
        name = _single_input(ir, path)
        samples = [{name: s} for s in _batch(_read_npy(path), path, ir, name, allow_single=False)]
    else:
        raise CalibrationError(f"{path}: calibration data must be a .npy, a .npz or a directory of .npy files")
    if not samples:
        raise CalibrationError(f"{path}: holds no samples")
    return samples


def random_calibration(ir: IR, n: int = 16, seed: int = 0) -> list[Sample]:
    """A fallback when no data is given: standard-normal samples for every input.

    The ranges it yields are those of N(0, 1) inputs, not of the real data;
    accuracy figures from it say little about the deployed model.
    """
    rng = np.random.default_rng(seed)
    return [
        {name: rng.standard_normal(sample_shape(ir.node(name)["shape"])).astype(np.float32) for name in ir.inputs}
        for _ in range(n)
    ]


def sample_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """One sample of an input of (per-run) shape `shape`: without the batch axis when it is 1."""
    return tuple(shape[1:]) if shape[0] == 1 else tuple(shape)


def stack(shape: tuple[int, ...], samples: list[np.ndarray]) -> np.ndarray:
    """Samples of an input of shape `shape` as one batch: along a new axis 0, or along axis 0 when the
    input's axis 0 is not the batch (`npuc.host`: B samples of (n0, ...) are (B·n0, ...))."""
    return np.stack(samples) if shape[0] == 1 else np.concatenate(samples)


def _single_input(ir: IR, path: Path) -> str:
    if len(ir.inputs) != 1:
        raise CalibrationError(f"{path}: the model has inputs {', '.join(ir.inputs)}; "
                               "use a .npz keyed by input name")
    return ir.inputs[0]


def _expected(ir: IR, name: str) -> tuple[int, ...]:
    return sample_shape(tuple(ir.node(name)["shape"]))


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise CalibrationError(f"{path}: not a readable .npy array ({e})") from None


def _batch(a: np.ndarray, where: Path | str, ir: IR, name: str, allow_single: bool) -> list[np.ndarray]:
    """Split a sample batch (or, when allowed, one sample) into float32 samples, checking shape and dtype."""
    want = _expected(ir, name)
    if a.dtype.kind != "f":
        raise CalibrationError(f"{where}: dtype {a.dtype}; expected floating-point samples (the model's float "
                               f"input after preprocessing), shape (n, {', '.join(map(str, want))})")
    full = tuple(ir.node(name)["shape"])
    if full[0] != 1:  # the input is one sample whole: a batch is several stacked along axis 0
        if a.ndim != len(full) or a.shape[1:] != full[1:] or a.shape[0] % full[0] or not np.all(np.isfinite(a)):
            raise CalibrationError(f"{where}: array of shape {a.shape} for input {name!r}; expected "
                                   f"(n·{full[0]}, {', '.join(map(str, full[1:]))}), finite")
        return list(a.astype(np.float32).reshape(-1, *full))
    if allow_single and a.shape == want:
        return [a.astype(np.float32)]
    if a.ndim != len(want) + 1 or a.shape[1:] != want:
        single = f"{want} or " if allow_single else ""
        raise CalibrationError(f"{where}: array of shape {a.shape} for input {name!r}; expected "
                               f"{single}(n, {', '.join(map(str, want))})")
    if not np.all(np.isfinite(a)):
        raise CalibrationError(f"{where}: contains NaN or infinity")
    return list(a.astype(np.float32))


def _from_npz(path: Path, ir: IR) -> list[Sample]:
    try:
        archive = np.load(path, allow_pickle=False)
        arrays = {k: archive[k] for k in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise CalibrationError(f"{path}: not a readable .npz archive ({e})") from None
    missing = [n for n in ir.inputs if n not in arrays]
    if missing:
        raise CalibrationError(f"{path}: no array for input {missing[0]!r} (has: {', '.join(arrays) or 'nothing'})")
    per_input = {n: _batch(arrays[n], f"{path}[{n}]", ir, n, allow_single=False) for n in ir.inputs}
    counts = {len(v) for v in per_input.values()}
    if len(counts) > 1:
        raise CalibrationError(f"{path}: inputs have different sample counts "
                               f"({', '.join(f'{n}: {len(v)}' for n, v in per_input.items())})")
    return [{n: per_input[n][i] for n in ir.inputs} for i in range(counts.pop())]


def _from_dir(path: Path, ir: IR) -> list[Sample]:
    name = _single_input(ir, path)
    files = sorted(path.glob("*.npy"))
    if not files:
        raise CalibrationError(f"{path}: directory has no .npy files")
    return [{name: s} for f in files for s in _batch(_read_npy(f), f, ir, name, allow_single=True)]
