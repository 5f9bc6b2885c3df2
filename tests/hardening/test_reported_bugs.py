"""Bugs found by the hardening work, each a minimal reproducer that now passes.

(The sidecar rewrite one lives with the atomic-output tests.)
"""

from __future__ import annotations

import subprocess
import sys

from npuc.cli import main

NO_LAYER_TABLE = """\
.npuc 1
.hw rows=4 cols=4
.dram 16
st dst=0 src=0 n0=1 n1=1 n2=1 ds0=0 ds1=0 ss0=0 ss1=0
"""


def test_sim_of_a_program_without_layer_table(tmp_path, capsys):
    (tmp_path / "p.s").write_text(NO_LAYER_TABLE)
    assert main(["sim", str(tmp_path / "p.s")]) == 0


def _program(tensor: str, stored: int = 1) -> str:
    return (".npuc 1\n.hw rows=4 cols=4\n.dram 64\n" + tensor + "\n.layer 0 \"l\"\n"
            f"st dst=32 src=0 n0=1 n1=1 n2={stored} ds0=0 ds1=0 ss0=0 ss1=0\n")


def test_sim_of_an_nhwc_tensor_that_is_not_4d(tmp_path, capsys):
    (tmp_path / "p.s").write_text(_program('.tensor name="x" role=input addr=0x0 shape=1,16 layout=nhwc '
                                           'scale=0.5 zp=0'))
    assert main(["sim", str(tmp_path / "p.s")]) == 1
    err = capsys.readouterr().err
    assert "p.s:4:" in err and "nhwc (channels last) needs a shape (1, C, ...) of rank >= 3" in err


def test_sim_of_a_tensor_whose_axis_0_is_not_the_batch(tmp_path, capsys):
    """A run's tensor may be (2, 3) (an input whose batch is another axis is one sample whole)."""
    (tmp_path / "p.s").write_text(_program('.tensor name="y" role=output addr=0x20 shape=2,3 layout=flat '
                                           'scale=0.5 zp=0', stored=6))
    assert main(["sim", str(tmp_path / "p.s")]) == 0
    assert "output y: shape (2, 3)" in capsys.readouterr().out


def test_sim_of_a_runaway_program_ends(tmp_path):
    (tmp_path / "p.s").write_text(".npuc 1\n.hw rows=4 cols=4 spad_kib=1 acc_kib=1\n.dram 16\n.layer 0 \"l\"\n"
                                  "gemm dst=0 a=0 w=0 m0=2147483647 m1=2147483647 k=1 n=1 as0=0 as1=0 ws=0 "
                                  "ds0=0 ds1=0 acc=0\n")
    r = subprocess.run([sys.executable, "-m", "npuc.cli", "sim", "p.s", "--max-work", "1000000"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1 and "work limit" in r.stderr
