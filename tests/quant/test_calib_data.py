"""Calibration data loading: accepted layouts and the errors for everything else."""

from __future__ import annotations

import numpy as np
import pytest

from npuc.ir import IR
from npuc.quant.calib_data import CalibrationError, load_calibration, random_calibration


def model(*inputs: tuple[str, tuple[int, ...]]) -> IR:
    ir = IR()
    for name, shape in inputs:
        ir.add(name, "Input", shape=shape)
        ir.inputs.append(name)
    return ir


ONE = model(("x", (1, 3, 4, 4)))
TWO = model(("a", (1, 3, 4, 4)), ("b", (1, 5)))


def test_npy_batch(tmp_path):
    np.save(tmp_path / "c.npy", np.ones((6, 3, 4, 4), np.float32))
    samples = load_calibration(tmp_path / "c.npy", ONE)
    assert len(samples) == 6 and samples[0]["x"].shape == (3, 4, 4) and samples[0]["x"].dtype == np.float32


def test_npz_by_input_name(tmp_path):
    np.savez(tmp_path / "c.npz", a=np.ones((4, 3, 4, 4)), b=np.zeros((4, 5), np.float32))
    samples = load_calibration(tmp_path / "c.npz", TWO)
    assert len(samples) == 4 and set(samples[0]) == {"a", "b"}


def test_directory_of_samples_and_batches(tmp_path):
    np.save(tmp_path / "0.npy", np.ones((3, 4, 4), np.float32))
    np.save(tmp_path / "1.npy", np.zeros((2, 3, 4, 4), np.float32))
    samples = load_calibration(tmp_path, ONE)
    assert [float(s["x"].mean()) for s in samples] == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("array, match", [
    (np.ones((3, 4, 4), np.float32), r"shape \(3, 4, 4\) for input 'x'; expected \(n, 3, 4, 4\)"),
    (np.ones((2, 3, 4, 5), np.float32), r"expected \(n, 3, 4, 4\)"),
    (np.ones((2, 3, 4, 4), np.uint8), "dtype uint8; expected floating-point"),
    (np.full((2, 3, 4, 4), np.nan, np.float32), "NaN or infinity"),
])
def test_npy_errors_name_the_file_and_expected_shape(tmp_path, array, match):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(CalibrationError, match=match) as e:
        load_calibration(path, ONE)
    assert str(path) in str(e.value)


def test_empty_npy(tmp_path):
    np.save(tmp_path / "e.npy", np.zeros((0, 3, 4, 4), np.float32))
    with pytest.raises(CalibrationError, match="holds no samples"):
        load_calibration(tmp_path / "e.npy", ONE)


def test_npy_needs_a_single_input_model(tmp_path):
    np.save(tmp_path / "c.npy", np.ones((2, 5), np.float32))
    with pytest.raises(CalibrationError, match="inputs a, b; use a .npz"):
        load_calibration(tmp_path / "c.npy", TWO)


def test_npz_missing_input_and_count_mismatch(tmp_path):
    np.savez(tmp_path / "m.npz", a=np.ones((4, 3, 4, 4), np.float32))
    with pytest.raises(CalibrationError, match="no array for input 'b'"):
        load_calibration(tmp_path / "m.npz", TWO)
    np.savez(tmp_path / "n.npz", a=np.ones((4, 3, 4, 4), np.float32), b=np.ones((3, 5), np.float32))
    with pytest.raises(CalibrationError, match="different sample counts"):
        load_calibration(tmp_path / "n.npz", TWO)


def test_bad_paths(tmp_path):
    with pytest.raises(CalibrationError, match="no such file"):
        load_calibration(tmp_path / "missing.npy", ONE)
    (tmp_path / "c.txt").write_text("1 2 3")
    with pytest.raises(CalibrationError, match="must be a .npy, a .npz or a directory"):
        load_calibration(tmp_path / "c.txt", ONE)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(CalibrationError, match="not a readable .npy"):
        load_calibration(tmp_path / "junk.npy", ONE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationError, match="no .npy files"):
        load_calibration(tmp_path / "empty", ONE)


def test_random_calibration_is_seeded():
    a, b = random_calibration(TWO, 3, seed=5), random_calibration(TWO, 3, seed=5)
    assert len(a) == 3 and a[0]["b"].shape == (5,)
    np.testing.assert_array_equal(a[2]["a"], b[2]["a"])
