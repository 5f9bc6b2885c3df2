"""Every I/O error is one line naming the user's path and the cause, exit 1, nothing left behind
(issue 16, acceptance 3): a missing directory, a directory in the way, a file where a directory
should be, no permission, a full disk — for `npuc compile -o`, `npuc sim -o` / `--trace`, and
reading a program or an input. Never a temporary name."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from npuc import fsutil
from npuc.cli import main
from npuc.fsutil import FileWriteError
from npuc.hw import HwConfig
from npuc.isa.asm import write_program
from npuc.isa.program import Program, make_insn

ONE_LINE_PROGRAM = """\
.npuc 1
.hw rows=4 cols=4 spad_kib=1 acc_kib=1 dram_bw=4 dram_latency=10 vec_lanes=4
.dram 256
.tensor name="x" role=input addr=0x0 shape=1,16 layout=flat scale=0.5 zp=0
.tensor name="y" role=output addr=0x40 shape=1,16 layout=flat scale=0.5 zp=0
ld dst=0 src=0 n0=1 n1=1 n2=16 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 signal=0
st dst=64 src=0 n0=1 n1=1 n2=16 ds0=0 ds1=0 ss0=0 ss1=0 wait=0
"""


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    """Conv-relu-fc: compiles in well under a second."""
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


def listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def _sim(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["sim", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def prog_file(tmp_path) -> Path:
    (tmp_path / "p.s").write_text(ONE_LINE_PROGRAM)
    return tmp_path / "p.s"


def test_sim_output_in_a_missing_directory(tmp_path, capsys, prog_file):
    target = tmp_path / "no" / "such" / "o.npz"
    rc, out, err = _sim(capsys, str(prog_file), "-o", str(target))
    assert rc == 1 and out == ""  # refused before the run
    assert err == f"npuc: error: cannot write {target}: directory {tmp_path / 'no'} does not exist\n"
    assert listing(tmp_path) == ["p.s"]


def test_sim_output_under_a_file(tmp_path, capsys, prog_file):
    target = prog_file / "o.npz"
    rc, _, err = _sim(capsys, str(prog_file), "-o", str(target))
    assert rc == 1 and err == f"npuc: error: cannot write {target}: {prog_file} is not a directory\n"


@pytest.mark.parametrize("flag", ["-o", "--trace"])
def test_sim_output_is_a_directory(tmp_path, capsys, prog_file, flag):
    (tmp_path / "d").mkdir()
    rc, _, err = _sim(capsys, str(prog_file), flag, str(tmp_path / "d"))
    assert rc == 1 and err == f"npuc: error: cannot write {tmp_path / 'd'}: it is a directory\n"
    assert listing(tmp_path) == ["d", "p.s"] and listing(tmp_path / "d") == []


def test_a_directory_that_appears_after_the_check(tmp_path, capsys, prog_file, monkeypatch):
    """The write itself names the user's path too (the race the early check cannot close)."""
    monkeypatch.setattr(fsutil, "check_writable", lambda path: None)
    (tmp_path / "o.npz").mkdir()
    rc, _, err = _sim(capsys, str(prog_file), "-o", str(tmp_path / "o.npz"), "--no-cache")
    assert rc == 1 and err == f"npuc: error: cannot write {tmp_path / 'o.npz'}: it is a directory\n"
    assert listing(tmp_path) == ["o.npz", "p.s"] and ".tmp" not in err


@pytest.mark.parametrize("code, cause", [(errno.EACCES, "permission denied (directory {d})"),
                                         (errno.ENOSPC, "No space left on device (disk full)"),
                                         (errno.EROFS, "read-only file system"),
                                         (errno.EDQUOT, "disk quota exceeded")])
def test_causes_in_words(tmp_path, capsys, prog_file, monkeypatch, code, cause):
    def refuse(*a, **k):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fsutil.tempfile, "mkstemp", refuse)
    rc, _, err = _sim(capsys, str(prog_file), "-o", str(tmp_path / "o.npz"))
    assert rc == 1 and err == f"npuc: error: cannot write {tmp_path / 'o.npz'}: {cause.format(d=tmp_path)}\n"


def test_permission_checked_before_the_run(tmp_path, capsys, prog_file, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    if os.geteuid() == 0:  # root (CI) may write anywhere: the permission bits alone do not refuse it
        real = os.access
        monkeypatch.setattr(fsutil.os, "access", lambda path, mode: False if Path(path) == ro else real(path, mode))
    rc, out, err = _sim(capsys, str(prog_file), "-o", str(ro / "o.npz"))
    assert rc == 1 and out == "" and err == f"npuc: error: cannot write {ro / 'o.npz'}: permission denied " \
                                            f"(directory {ro})\n"


def test_compile_into_a_directory_says_so_and_writes_nothing(tmp_path, capsys, small_model):
    (tmp_path / "existing_dir").mkdir()
    capsys.readouterr()
    rc = main(["compile", str(small_model), "-o", str(tmp_path / "existing_dir")])
    out, err = capsys.readouterr()
    assert rc == 1 and err == f"npuc: error: cannot write {tmp_path / 'existing_dir'}: it is a directory\n"
    assert "calibrat" not in out  # refused before compiling
    assert listing(tmp_path) == ["existing_dir"] and listing(tmp_path / "existing_dir") == []


def test_compile_into_a_missing_directory(tmp_path, capsys, small_model):
    capsys.readouterr()
    target = tmp_path / "gone" / "p.s"
    assert main(["compile", str(small_model), "-o", str(target)]) == 1
    assert capsys.readouterr().err == f"npuc: error: cannot write {target}: directory {tmp_path / 'gone'} " \
                                      "does not exist\n"
    assert listing(tmp_path) == []


def _big_program() -> Program:
    return Program(HwConfig().to_flat(), 1 << 16, layers=["l"], data=[(0, bytes(5000))],
                   insns=[make_insn("st", n0=1, n1=1, n2=8)])


def test_write_program_leaves_no_sidecar_when_the_program_cannot_be_written(tmp_path, monkeypatch):
    """A directory at the path, appearing after the early check: the new sidecar goes again."""
    monkeypatch.setattr("npuc.isa.asm.check_writable", lambda path: None)
    (tmp_path / "p.s").mkdir()
    with pytest.raises(FileWriteError) as e:
        write_program(_big_program(), tmp_path / "p.s", sidecar_threshold=100)
    assert str(e.value) == f"cannot write {tmp_path / 'p.s'}: it is a directory"
    assert listing(tmp_path) == ["p.s"]


def test_a_failed_rewrite_keeps_the_sidecar_the_old_program_uses(tmp_path, monkeypatch):
    path = tmp_path / "p.s"
    write_program(_big_program(), path, sidecar_threshold=100)
    before = listing(tmp_path)
    real = fsutil.os.replace

    def fail_on_program(src, dst):
        if Path(dst) == path:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(fsutil.os, "replace", fail_on_program)
    with pytest.raises(FileWriteError, match="No space left"):
        write_program(_big_program(), path, sidecar_threshold=100)  # the same sidecar content
    assert listing(tmp_path) == before


@pytest.mark.parametrize("what", ["program", "input"])
def test_reading_a_missing_file(tmp_path, capsys, prog_file, what):
    missing = tmp_path / "nope" / "x.npy"
    argv = [str(missing)] if what == "program" else [str(prog_file), "--input", str(missing)]
    rc, _, err = _sim(capsys, *argv)
    assert rc == 1 and err == f"npuc: error: cannot read {missing}: directory {tmp_path / 'nope'} does not exist\n"
    argv = [str(tmp_path / "x.npy")] if what == "program" else [str(prog_file), "--input", str(tmp_path / "x.npy")]
    rc, _, err = _sim(capsys, *argv)
    assert rc == 1 and err == f"npuc: error: cannot read {tmp_path / 'x.npy'}: no such file\n"


def test_reading_a_directory(tmp_path, capsys):
    rc, _, err = _sim(capsys, str(tmp_path))
    assert rc == 1 and err == f"npuc: error: cannot read {tmp_path}: it is a directory\n"


def test_an_input_that_is_not_npy(tmp_path, capsys, prog_file):
    (tmp_path / "x.npy").write_bytes(b"not numpy")
    rc, _, err = _sim(capsys, str(prog_file), "--input", str(tmp_path / "x.npy"))
    assert rc == 1 and err.startswith(f"npuc: error: {tmp_path / 'x.npy'}: cannot read as .npy/.npz")
    np.save(tmp_path / "ok.npy", np.zeros((1, 16), np.float32))
    assert main(["sim", str(prog_file), "--input", str(tmp_path / "ok.npy")]) == 0
