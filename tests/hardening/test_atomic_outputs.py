"""Atomic outputs: a failed or interrupted command never leaves a partial file or a temporary one.

Failures are injected into the write itself (a disk that fills after part of
the bytes went out, an interrupt in the middle), into fsync and into the
final rename, for `npuc compile -o` (prog.s and its weights sidecar),
`npuc sim -o` and `--trace`. The file that was there before is untouched
and the directory holds nothing new.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from npuc import fsutil
from npuc.cli import main
from npuc.hw import HwConfig
from npuc.isa.asm import read_program, write_program
from npuc.isa.program import Program, make_insn

ONE_LINE_PROGRAM = """\
.npuc 1
.hw rows=4 cols=4 spad_kib=1 acc_kib=1 dram_bw=4 dram_latency=10 vec_lanes=4
.dram 256
.tensor name="x" role=input addr=0x0 shape=1,16 layout=flat scale=0.5 zp=0
.tensor name="y" role=output addr=0x40 shape=1,16 layout=flat scale=0.5 zp=0
.layer 0 "copy"
ld dst=0 src=0 n0=1 n1=1 n2=16 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 signal=0
st dst=64 src=0 n0=1 n1=1 n2=16 ds0=0 ds1=0 ss0=0 ss1=0 wait=0
"""


class _FailingFile:
    """A file object that writes through to `real` until `budget` bytes went out, then raises `exc`
    (a full disk, an interrupt) from that write on."""

    def __init__(self, real, budget: int, exc: BaseException, text: bool) -> None:
        self.real, self.budget, self.exc, self.text = real, budget, exc, text

    def write(self, data) -> int:
        raw = data.encode("utf-8") if self.text else bytes(data)
        if len(raw) > self.budget:
            self.real.write(raw[:self.budget])
            self.budget = 0
            raise self.exc
        self.budget -= len(raw)
        self.real.write(raw)
        return len(data)

    def flush(self) -> None:
        self.real.flush()

    def fileno(self) -> int:
        return self.real.fileno()

    def close(self) -> None:
        self.real.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def fail_mid_write(monkeypatch, budget: int = 100, exc: BaseException | None = None) -> None:
    """Make every atomic write fail after `budget` bytes."""
    real_fdopen = os.fdopen
    error = exc or OSError(errno.ENOSPC, "No space left on device")

    def fdopen(fd, mode="r", *a, **kw):
        return _FailingFile(real_fdopen(fd, "wb"), budget, error, text="b" not in mode)

    monkeypatch.setattr(fsutil.os, "fdopen", fdopen)


def listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


@pytest.fixture
def program_file(tmp_path) -> Path:
    (tmp_path / "p.s").write_text(ONE_LINE_PROGRAM)
    return tmp_path / "p.s"


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    """A conv-relu-fc model with 9 KiB of weights: compiles in well under a second."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "B"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "W"),
                               numpy_helper.from_array(rng.standard_normal((10, 512)).astype(np.float32), "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("model") / "small.onnx"
    onnx.save(model, str(path))
    return path


def _compile(tmp_path: Path, capsys, model: Path, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["compile", str(model), "-o", str(tmp_path / "prog.s"), *extra])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("budget", [0, 1, 4096, 12_000])
def test_compile_fails_mid_write_and_keeps_the_old_program(tmp_path, capsys, small_model, monkeypatch, budget):
    (tmp_path / "prog.s").write_text("old program\n")
    fail_mid_write(monkeypatch, budget)
    rc, err = _compile(tmp_path, capsys, small_model)
    assert rc == 1 and err.startswith("npuc: error: ") and "No space left" in err and len(err.splitlines()) == 1
    assert (tmp_path / "prog.s").read_text() == "old program\n"
    assert listing(tmp_path) == ["prog.s"]


def test_compile_interrupted_mid_write_leaves_nothing(tmp_path, capsys, small_model, monkeypatch):
    fail_mid_write(monkeypatch, 5000, KeyboardInterrupt())
    rc, err = _compile(tmp_path, capsys, small_model)
    assert rc == 130 and "interrupted" in err
    assert listing(tmp_path) == []


@pytest.mark.parametrize("where", ["fsync", "replace"])
def test_compile_fails_at_fsync_or_rename(tmp_path, capsys, small_model, monkeypatch, where):
    def boom(*a, **kw):
        raise OSError(errno.EIO, f"I/O error in {where}")

    monkeypatch.setattr(fsutil.os, where, boom)
    rc, err = _compile(tmp_path, capsys, small_model)
    assert rc == 1 and f"I/O error in {where}" in err
    assert listing(tmp_path) == []


def test_a_failed_compile_writes_nothing(tmp_path, capsys, small_model):
    bad = tmp_path / "calib.npy"
    np.save(bad, np.zeros((2, 3, 16, 16), np.float32))  # the model takes 3x8x8
    rc, err = _compile(tmp_path, capsys, small_model, "--calib", str(bad))
    assert rc == 1 and "calib.npy" in err
    assert listing(tmp_path) == ["calib.npy"]


def _big_program() -> Program:
    rng = np.random.default_rng(0)
    return Program(HwConfig().to_flat(), 1 << 16, layers=["l"], data=[(0, rng.bytes(5000))],
                   insns=[make_insn("st", n0=1, n1=1, n2=8)])


def test_sidecar_write_failure_leaves_nothing(tmp_path, monkeypatch):
    fail_mid_write(monkeypatch, 1000)
    with pytest.raises(OSError, match="No space"):
        write_program(_big_program(), tmp_path / "prog.s", sidecar_threshold=100)
    assert listing(tmp_path) == []


def test_failed_rewrite_keeps_the_old_program_with_sidecar_readable(tmp_path, monkeypatch):
    path = tmp_path / "prog.s"
    old = _big_program()
    write_program(old, path, sidecar_threshold=100)
    new = _big_program()
    new.data = [(0, bytes(5000))]
    real = fsutil.atomic_write_bytes
    calls = []

    def second_write_fails(target, data):
        calls.append(target)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(target, data)

    monkeypatch.setattr("npuc.isa.asm.atomic_write_bytes", second_write_fails)
    with pytest.raises(OSError):
        write_program(new, path, sidecar_threshold=100)
    assert read_program(path) == old


@pytest.mark.parametrize("budget", [0, 10, 300])
def test_sim_output_fails_mid_write(tmp_path, capsys, monkeypatch, program_file, budget):
    out = tmp_path / "out.npz"
    out.write_bytes(b"old outputs")
    fail_mid_write(monkeypatch, budget)
    capsys.readouterr()
    assert main(["sim", str(program_file), "-o", str(out)]) == 1
    assert "No space left" in capsys.readouterr().err
    assert out.read_bytes() == b"old outputs"
    assert listing(tmp_path) == ["out.npz", "p.s"]


def test_sim_trace_fails_mid_write(tmp_path, capsys, monkeypatch, program_file):
    fail_mid_write(monkeypatch, 50)
    assert main(["sim", str(program_file), "--trace", str(tmp_path / "t.json")]) == 1
    assert listing(tmp_path) == ["p.s"]


def test_sim_outputs_are_written_whole(tmp_path, capsys, program_file):
    assert main(["sim", str(program_file), "-o", str(tmp_path / "out.npz"), "--trace",
                 str(tmp_path / "t.json")]) == 0
    out = np.load(tmp_path / "out.npz")
    assert out["y:int8"].shape == (1, 16)
    cache = f"p.s.{hashlib.sha256(program_file.read_bytes()).hexdigest()[:16]}.npub"  # the binary program cache
    assert listing(tmp_path) == ["out.npz", "p.s", cache, "t.json"]


def test_atomic_file_gets_the_usual_mode(tmp_path):
    old = os.umask(0o027)
    try:
        fsutil.atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o640
