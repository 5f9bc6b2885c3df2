"""The command line as a user runs it: exit codes, one-line errors, files written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from npuc.cli import main
from npuc.examples import SMALL_CNN as MODEL
from npuc.examples import SMALL_CNN_SAMPLES as SAMPLES

NPUC = [sys.executable, "-m", "npuc.cli"]


def npuc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(NPUC + list(args), cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    r = npuc("compile", str(MODEL), "-o", "prog.s", "--calib", str(SAMPLES), cwd=d)
    assert r.returncode == 0, r.stderr
    assert "wrote prog.s" in r.stdout
    return d / "prog.s"


def test_sim_reports_cycles_first_and_writes_outputs(compiled, tmp_path):
    x = np.load(SAMPLES)[:3]
    np.save(tmp_path / "x.npy", x)
    r = npuc("sim", str(compiled), "--input", "x.npy", "-o", "out.npz", "--stats", "--trace", "t.json",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith("cycles: ") and int(first.split()[1]) > 0
    out = np.load(tmp_path / "out.npz")
    assert out["logits"].shape == (3, 10) and out["logits"].dtype == np.float32
    assert out["logits:int8"].dtype == np.int8
    assert (tmp_path / "t.json").stat().st_size > 0
    assert "conv1" in r.stdout  # the per-layer table


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_sim_stats_for_tools_alone_on_stdout(compiled, tmp_path, fmt):
    r = npuc("sim", str(compiled), "--stats-format", fmt, "-o", "out.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    if fmt == "json":
        import json

        doc = json.loads(r.stdout)
        layers = [layer["layer"] for layer in doc["layers"]]
        assert doc["total"]["cycles"] == sum(layer["cycles"] for layer in doc["layers"])
    else:
        layers = [line.split(",")[0] for line in r.stdout.splitlines()[1:-1]]
        assert r.stdout.splitlines()[-1].startswith("total,")
    assert "conv1" in layers and "fc1" in layers
    assert "wrote out.npz" in r.stderr and "output logits" in r.stderr


def test_sim_is_deterministic(compiled, tmp_path):
    a = npuc("sim", str(compiled), cwd=tmp_path)
    b = npuc("sim", str(compiled), cwd=tmp_path)
    assert a.returncode == 0 and a.stdout == b.stdout


def test_compile_twice_gives_identical_programs(compiled, tmp_path):
    r = npuc("compile", str(MODEL), "-o", "again.s", "--calib", str(SAMPLES), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "again.s").read_bytes() == compiled.read_bytes()


def _hand_program(body: str) -> str:
    return (
        '.npuc 1\n'
        '.hw rows=4 cols=4 spad_kib=1 acc_kib=1 dram_bw=4 dram_latency=10 vec_lanes=4\n'
        '.dram 256\n'
        + body
    )


def test_out_of_range_address_names_the_line(tmp_path):
    prog = _hand_program(
        "ld dst=0 src=0 n0=1 n1=1 n2=16 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0\n"
        "st dst=250 src=0 n0=1 n1=1 n2=16 ds0=0 ds1=0 ss0=0 ss1=0\n"
    )
    (tmp_path / "bad.s").write_text(prog)
    r = npuc("sim", "bad.s", cwd=tmp_path)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.s:5" in lines[0] and "DRAM" in lines[0], r.stderr


def test_malformed_line_names_line_and_column(tmp_path):
    (tmp_path / "bad.s").write_text(_hand_program("ld dst=0 src=zz\n"))
    r = npuc("sim", "bad.s", cwd=tmp_path)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "bad.s:4:" in lines[0], r.stderr


def test_unknown_mnemonic(tmp_path):
    (tmp_path / "bad.s").write_text(_hand_program("gemmm dst=0\n"))
    r = npuc("sim", "bad.s", cwd=tmp_path)
    assert r.returncode == 1 and "bad.s:4" in r.stderr and "gemmm" in r.stderr


def test_missing_files_are_one_line_errors(tmp_path):
    for args in (["sim", "nope.s"], ["compile", "nope.onnx", "-o", "p.s"]):
        r = npuc(*args, cwd=tmp_path)
        assert r.returncode == 1, args
        assert len(r.stderr.strip().splitlines()) == 1 and "nope" in r.stderr
    assert not (tmp_path / "p.s").exists()


def test_not_an_onnx_file_leaves_nothing_behind(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"this is not a protobuf")
    r = npuc("compile", "m.onnx", "-o", "p.s", cwd=tmp_path)
    assert r.returncode == 1 and "m.onnx" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_bad_hardware_field_is_named(tmp_path):
    (tmp_path / "hw.toml").write_text("[array]\nrows = 0\n")
    r = npuc("compile", str(MODEL), "--hw", "hw.toml", "-o", "p.s", cwd=tmp_path)
    assert r.returncode == 1 and "array.rows" in r.stderr


def test_hw_command_prints_a_loadable_preset(tmp_path, capsys):
    assert main(["hw", "tiny"]) == 0
    text = capsys.readouterr().out
    (tmp_path / "t.toml").write_text(text)
    from npuc.hw import load_hw

    assert load_hw(tmp_path / "t.toml") == load_hw("tiny")
