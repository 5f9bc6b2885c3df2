"""Determinism: the same model, calibration data and config give the same prog.s byte for byte,
and the same outputs and cycles, whatever the process (hash seed) that compiled or ran them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from npuc.examples import SMALL_CNN as MODEL
from npuc.examples import SMALL_CNN_SAMPLES as SAMPLES


def _spawn(args: list[str], cwd: Path, hash_seed: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    return subprocess.Popen([sys.executable, "-m", "npuc.cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait(p: subprocess.Popen) -> str:
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    return out


def test_compile_and_simulate_in_separate_processes_agree(tmp_path):
    x = np.load(SAMPLES)[:2]
    np.save(tmp_path / "x.npy", x)
    # two compiles at once, in processes with different hash seeds (set and dict orders differ)
    procs = [_spawn(["compile", str(MODEL), "-o", f"p{i}.s", "--calib", str(SAMPLES), "--hw", "tiny"], tmp_path,
                    seed) for i, seed in enumerate(["1", "4242"])]
    for p in procs:
        _wait(p)
    a, b = (tmp_path / "p0.s").read_bytes(), (tmp_path / "p1.s").read_bytes()
    assert a == b
    procs = [_spawn(["sim", f"p{i}.s", "--input", "x.npy", "-o", f"o{i}.npz"], tmp_path, seed)
             for i, seed in enumerate(["7", "99"])]
    reports = [_wait(p) for p in procs]
    assert reports[0] == reports[1].replace("o1.npz", "o0.npz")  # cycles, per-unit statistics, ranges
    o0, o1 = np.load(tmp_path / "o0.npz"), np.load(tmp_path / "o1.npz")
    assert sorted(o0.files) == sorted(o1.files)
    for k in o0.files:
        np.testing.assert_array_equal(o0[k], o1[k])
