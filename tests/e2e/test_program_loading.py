"""Loading a program for `npuc sim` (issue 12, the program-loading half).

* Lean start: `npuc sim` of a program without host ops imports neither onnx
  nor networkx, and lark only when it parses text (a cache miss); with host
  ops it imports onnx (it needs it). Each in a fresh process, reading
  `sys.modules` at exit.
* The binary cache changes nothing: the run from the cache equals the run
  from the text (outputs, cycles, per-layer table, trace), and per-layer
  statistics equal a per-instruction loop written from ISA.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from npuc.compiler import compile_model
from npuc.examples import SMALL_CNN, SMALL_CNN_SAMPLES
from npuc.hw import load_hw
from npuc.isa.asm import read_program, write_program
from npuc.isa.load import load_program
from npuc.isa.table import BY_MNEMONIC
from npuc.sim.driver import random_inputs, run_program, write_trace

from .models import make_model

ROOT = Path(__file__).resolve().parents[2]
WATCHED = ("onnx", "networkx", "lark")

_PROBE = f"""
import sys, atexit
def report():
    loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({WATCHED!r}))
    sys.stderr.write('loaded: ' + ','.join(loaded) + '\\n')
atexit.register(report)
from npuc.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _sim_imports(*argv: str) -> list[str]:
    r = subprocess.run([sys.executable, "-c", _PROBE, "sim", *argv], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("loaded: ")]
    return [m for m in line[len("loaded: "):].split(",") if m]


@pytest.fixture(scope="module")
def cnn(tmp_path_factory) -> Path:
    """The bundled CNN on the tiny preset, weights in a sidecar: ~4,000 lines."""
    path = tmp_path_factory.mktemp("cnn") / "cnn.s"
    write_program(compile_model(SMALL_CNN, load_hw("tiny"), calib=SMALL_CNN_SAMPLES).program, path,
                  sidecar_threshold=1000)
    return path


def test_npuc_sim_loads_only_what_simulation_needs(cnn, tmp_path):
    prog = tmp_path / cnn.name
    prog.write_bytes(cnn.read_bytes())
    for side in cnn.parent.glob(cnn.name + ".*.weights"):
        (tmp_path / side.name).write_bytes(side.read_bytes())
    assert _sim_imports(str(prog)) == ["lark"]  # a cache miss parses the text
    assert list(tmp_path.glob("*.npub"))
    assert _sim_imports(str(prog), "-o", str(tmp_path / "o.npz"), "--trace", str(tmp_path / "t.json")) == []
    assert _sim_imports(str(prog), "--no-cache") == ["lark"]


def test_host_ops_bring_onnx_only_when_present(tmp_path):
    golden = ROOT / "tests" / "golden" / "tiny_cnn-tiny.s"
    assert "onnx" not in _sim_imports(str(golden), "--no-cache")
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "G"], ["g"], transB=1, name="fc"),
             helper.make_node("Softmax", ["g"], ["y"], axis=1, name="sm")]
    g = np.random.default_rng(0).normal(size=(4, 12)).astype(np.float32)
    onnx.save(make_model(nodes, {"G": g}, (1, 3, 2, 2)), tmp_path / "sm.onnx")
    prog = tmp_path / "sm.s"
    write_program(compile_model(tmp_path / "sm.onnx", load_hw("tiny")).program, prog)
    assert "@host 0" in prog.read_text()
    assert _sim_imports(str(prog)) == ["lark", "onnx"]
    assert _sim_imports(str(prog)) == ["onnx"]  # from the cache


def _layers_by_loop(prog, start, end) -> list[tuple]:
    """Per-layer figures as ISA.md's statistics define them, one instruction at a time."""
    names = prog.layers or ["layer0"]
    out = {}
    for i, insn in enumerate(prog.insns):
        rec = out.setdefault(insn.layer, {"first": None, "last": 0, "busy": [0, 0, 0], "macs": 0, "dram": 0,
                                          "n": 0})
        s, e = int(start[i]), int(end[i])
        rec["first"] = s if rec["first"] is None else min(rec["first"], s)
        rec["last"] = max(rec["last"], e)
        rec["busy"][int(BY_MNEMONIC[insn.op].unit)] += e - s
        f = insn.as_dict()
        if insn.op == "gemm":
            rec["macs"] += f["m0"] * f["m1"] * f["k"] * f["n"]
        if insn.op in ("ld", "st"):
            rec["dram"] += f["n0"] * f["n1"] * f["n2"]
        if insn.op == "lda":
            rec["dram"] += 4 * f["n0"] * f["n1"]
        rec["n"] += 1
    return [(names[k], r["last"] - r["first"], tuple(r["busy"]), r["macs"], r["dram"], r["n"])
            for k, r in sorted(out.items())]


def _spans_by_layer(prog, end) -> dict[int, int]:
    """Per layer id, the last end of its instructions."""
    out: dict[int, int] = {}
    for insn, e in zip(prog.insns, end.tolist()):
        out[insn.layer] = max(out.get(insn.layer, 0), e)
    return out


def test_the_cache_changes_nothing(cnn, tmp_path):
    text_prog = read_program(cnn)
    inputs = random_inputs(text_prog, seed=3)
    runs = {"program": run_program(text_prog, inputs, trace=True),
            "text": run_program(load_program(cnn, cache=False), inputs, trace=True)}
    load_program(cnn)  # writes the cache
    cached = load_program(cnn)
    runs["cache"] = run_program(cached, inputs, trace=True)
    ref = runs["program"]
    for name, r in runs.items():
        assert r.stats == ref.stats, name
        assert all(np.array_equal(r.raw[k], ref.raw[k]) for k in ref.raw), name
        assert r.layers == ref.layers, name
        assert np.array_equal(r.insn_start, ref.insn_start) and np.array_equal(r.insn_end, ref.insn_end), name
    by_loop = _layers_by_loop(text_prog, ref.insn_start, ref.insn_end)
    got = [(ls.name, ls.span, tuple(ls.busy.values()), ls.macs, ls.dram_bytes, ls.insns) for ls in ref.layers]
    assert got == by_loop and len(got) > 3
    # a layer's cycles are its share of the run: how far it moved the completion frontier
    frontier, shares = 0, []
    for _, r in sorted(_spans_by_layer(text_prog, ref.insn_end).items()):
        shares.append(max(0, r - frontier))
        frontier = max(frontier, r)
    assert [ls.cycles for ls in ref.layers] == shares and sum(shares) == ref.stats[0].cycles
    traces = []
    for name, prog in (("program", text_prog), ("cache", cached)):
        write_trace(prog, runs[name], tmp_path / f"{name}.json")
        traces.append(json.loads((tmp_path / f"{name}.json").read_text()))
    assert traces[0] == traces[1]
    events = [e for e in traces[0]["traceEvents"] if e["ph"] == "X"]
    assert [e["name"] for e in events] == [i.op for i in text_prog.insns]
    assert [e["args"]["layer"] for e in events] == [text_prog.layers[i.layer] for i in text_prog.insns]
