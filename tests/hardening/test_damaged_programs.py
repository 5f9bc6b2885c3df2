"""A damaged program is an error, never silent zeros (issue 16, acceptance 1 and 2).

Two compiled programs of a few hundred lines — the golden tiny CNN (data
inline) and a CNN with a host Softmax whose weights and host model live in a
sidecar — are damaged in every way a file gets damaged: cut after every line,
every line deleted, every line repeated, bytes flipped. Each damaged text is
assembled and run in process. The oracle: it fails with a one-line error, or
it is the same program (same content hash) — and for a line that holds
content (an instruction, data, a tensor, a host op, ...) it must fail. Only
blank lines, comments, a repeated `@layer` and the `.contents` line itself
(whose removal makes a hand-written program) may go without an error.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from npuc.cli import main
from npuc.compiler import compile_model
from npuc.host import HostError
from npuc.hw import load_hw
from npuc.isa.asm import AsmError, assemble, format_program, parse_program, write_program
from npuc.isa.image import content_digest
from npuc.sim.core import SimError
from npuc.sim.driver import InputError, random_inputs, run_program

ROOT = Path(__file__).resolve().parents[2]
ERRORS = (AsmError, SimError, HostError, InputError)


def _softmax_model() -> onnx.ModelProto:
    rng = np.random.default_rng(2)
    w = lambda *s: (rng.normal(size=s) / np.sqrt(np.prod(s[1:]))).astype(np.float32)  # noqa: E731
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1] * 4, name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "G"], ["g"], transB=1, name="fc"),
             helper.make_node("Softmax", ["g"], ["y"], axis=1, name="sm")]
    inits = [onnx.numpy_helper.from_array(a, n) for n, a in (("W", w(4, 3, 3, 3)), ("G", 3 * w(6, 4 * 4 * 4)))]
    graph = helper.make_graph(nodes, "sm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


@pytest.fixture(scope="module")
def programs(tmp_path_factory) -> dict[str, Path]:
    """name -> prog.s path: the golden tiny CNN (inline data) and the host-Softmax CNN (sidecar)."""
    d = tmp_path_factory.mktemp("damaged")
    out = {"tiny_cnn": d / "tiny_cnn.s"}
    out["tiny_cnn"].write_text((ROOT / "tests" / "golden" / "tiny_cnn-tiny.s").read_text())
    onnx.save(_softmax_model(), d / "sm.onnx")
    rng = np.random.default_rng(1)
    calib = [{"x": rng.normal(size=(3, 4, 4)).astype(np.float32)} for _ in range(4)]
    prog = compile_model(d / "sm.onnx", load_hw("tiny"), calib=calib).program
    out["softmax_sidecar"] = d / "softmax_sidecar.s"
    write_program(prog, out["softmax_sidecar"], sidecar_threshold=64)
    return out


def outcome(text: str, path: Path) -> tuple[str, str]:
    """("ok", content hash) or ("error", the one-line message) of assembling and running `text`."""
    try:
        image = assemble(text, str(path)).image
        run_program(image, random_inputs(image), program_name=str(path))
    except ERRORS as e:
        message = str(e)
        assert message and "\n" not in message, f"not one line: {message!r}"
        return "error", message
    return "ok", content_digest(image)


def lines_of(path: Path) -> list[str]:
    text = path.read_text()
    assert text.endswith("\n") and len(text.splitlines()) <= 400  # "a program of a few hundred lines"
    return text.splitlines()


def _kind(line: str) -> str:
    s = line.strip()
    if not s or s.startswith(";"):
        return "blank"
    if s.startswith("@layer"):
        return "scope"
    if s.startswith(".contents"):
        return "contents"
    return "content"


@pytest.mark.parametrize("name", ["tiny_cnn", "softmax_sidecar"])
def test_the_programs_run(programs, name):
    path = programs[name]
    kind, _ = outcome(path.read_text(), path)
    assert kind == "ok"
    kinds = {_kind(ln) for ln in lines_of(path)}
    assert kinds == {"blank", "scope", "contents", "content"}
    if name == "softmax_sidecar":
        text = path.read_text()
        assert all(d in text for d in (".weights", ".segment", ".host_segment", "@host 0"))


@pytest.mark.parametrize("name", ["tiny_cnn", "softmax_sidecar"])
def test_a_program_cut_after_any_line_fails(programs, name):
    path = programs[name]
    lines = lines_of(path)
    for k in range(len(lines)):
        kind, message = outcome("".join(ln + "\n" for ln in lines[:k]), path)
        assert kind == "error", f"cut after line {k} of {len(lines)} ran"


@pytest.mark.parametrize("name", ["tiny_cnn", "softmax_sidecar"])
def test_a_program_with_any_line_deleted_fails_or_is_unchanged(programs, name):
    path = programs[name]
    lines = lines_of(path)
    _, digest = outcome(path.read_text(), path)
    failed = 0
    for i, line in enumerate(lines):
        kind, got = outcome("".join(ln + "\n" for j, ln in enumerate(lines) if j != i), path)
        if _kind(line) == "content":
            assert kind == "error", f"line {i + 1} ({line[:40]!r}) deleted and the program ran"
            failed += 1
        elif kind == "ok":
            assert got == digest, f"line {i + 1} ({line[:40]!r}) deleted and the program changed silently"
        else:
            assert _kind(line) == "scope", f"deleting line {i + 1} ({line[:40]!r}) should be harmless: {got}"
    assert failed >= 30  # the programs hold that many content lines at least


@pytest.mark.parametrize("name", ["tiny_cnn", "softmax_sidecar"])
def test_a_program_with_any_line_repeated_fails_or_is_unchanged(programs, name):
    path = programs[name]
    lines = lines_of(path)
    _, digest = outcome(path.read_text(), path)
    for i, line in enumerate(lines):
        kind, got = outcome("".join(ln + "\n" for ln in lines[:i + 1] + lines[i:]), path)
        if _kind(line) in ("content", "contents"):
            assert kind == "error", f"line {i + 1} ({line[:40]!r}) repeated and the program ran"
        else:
            assert (kind, got) == ("ok", digest), f"line {i + 1} ({line[:40]!r}) repeated: {got}"


@pytest.mark.parametrize("name", ["tiny_cnn", "softmax_sidecar"])
def test_flipped_characters_fail_or_leave_the_program_unchanged(programs, name):
    path = programs[name]
    text = path.read_text()
    _, digest = outcome(text, path)
    rng = np.random.default_rng(5)
    for pos in rng.choice(len(text), size=min(400, len(text)), replace=False):
        ch = text[pos]
        new = "7" if ch != "7" else "3"  # a digit: the likeliest to make another valid program
        kind, got = outcome(text[:pos] + new + text[pos + 1:], path)
        assert kind == "error" or got == digest, f"byte {pos} ({ch!r} -> {new!r}) changed the program silently"


def test_a_flipped_sidecar_byte_fails(programs, tmp_path):
    src = programs["softmax_sidecar"]
    (side,) = src.parent.glob(src.name + ".*.weights")
    for i in range(0, side.stat().st_size, 97):
        (tmp_path / src.name).write_text(src.read_text())
        blob = bytearray(side.read_bytes())
        blob[i] ^= 1
        (tmp_path / side.name).write_bytes(bytes(blob))
        kind, message = outcome(src.read_text(), tmp_path / src.name)
        assert kind == "error" and "weights sidecar" in message and "does not match" in message


# ---- outputs never written (acceptance 2) ---------------------------------------------------

def _without_contents(text: str) -> str:
    return "".join(ln + "\n" for ln in text.splitlines() if not ln.startswith(".contents"))


def test_a_hand_written_cut_program_fails_naming_the_output(programs):
    """Without `.contents` nothing says how long the program was: the unwritten output does."""
    path = programs["tiny_cnn"]
    lines = _without_contents(path.read_text()).splitlines()
    last_st = max(i for i, ln in enumerate(lines) if ln.startswith("st "))
    kind, message = outcome("".join(ln + "\n" for ln in lines[:last_st]), path)
    assert kind == "error"
    assert message.startswith(f"{path}: output 'y' is never written: 5 of its 5 bytes are stored by no instruction "
                              "(the first at index (0, 0))")


def test_a_partly_written_output_fails_with_the_first_gap():
    text = """\
.npuc 1
.hw rows=4 cols=4 spad_kib=1 acc_kib=1 dram_bw=4 dram_latency=10 vec_lanes=4
.dram 256
.tensor name="x" role=input addr=0x0 shape=1,4,2,2 layout=nhwc scale=0.5 zp=0
.tensor name="y" role=output addr=0x40 shape=1,4,2,2 layout=nhwc scale=0.5 zp=0
ld dst=0 src=0 n0=1 n1=1 n2=16 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 signal=0
st dst=64 src=0 n0=1 n1=2 n2=3 ds0=0 ds1=4 ss0=0 ss1=4 wait=0
st dst=72 src=8 n0=1 n1=1 n2=8 ds0=0 ds1=0 ss0=0 ss1=0
"""
    with pytest.raises(SimError) as e:
        run_program(parse_program(text), program_name="p.s")
    # bytes 3 and 7 (channel 3 of pixels (0,0) and (0,1)) are never stored
    assert str(e.value) == ("p.s: output 'y' is partly written: 2 of its 16 bytes are stored by no instruction "
                            "(the first at index (0, 3, 0, 0)); the program is incomplete (truncated?) or "
                            "miscompiled")
    assert run_program(parse_program(text.replace("n2=3", "n2=4")), program_name="p.s").warnings == []


def test_an_input_never_read_is_a_warning(tmp_path, capsys):
    text = """\
.npuc 1
.hw rows=4 cols=4 spad_kib=1 acc_kib=1
.dram 256
.tensor name="x" role=input addr=0x0 shape=1,16 layout=flat scale=0.5 zp=0
.tensor name="unused" role=input addr=0x80 shape=1,4 layout=flat scale=0.5 zp=0
.tensor name="y" role=output addr=0x40 shape=1,16 layout=flat scale=0.5 zp=0
ld dst=0 src=0 n0=1 n1=1 n2=16 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 signal=0
st dst=64 src=0 n0=1 n1=1 n2=16 ds0=0 ds1=0 ss0=0 ss1=0 wait=0
"""
    result = run_program(parse_program(text), program_name="p.s")
    assert result.warnings == ["p.s: input 'unused' is never read by the program"]
    (tmp_path / "p.s").write_text(text)
    capsys.readouterr()
    assert main(["sim", str(tmp_path / "p.s")]) == 0
    assert f"npuc: warning: {tmp_path / 'p.s'}: input 'unused' is never read by the program" in capsys.readouterr().err


# ---- the command line, on a sample -----------------------------------------------------------

@pytest.mark.parametrize("keep", [2, 9, 30, -1])
def test_npuc_sim_of_a_cut_program_exits_1_with_one_line(programs, tmp_path, capsys, keep):
    lines = lines_of(programs["tiny_cnn"])
    cut = tmp_path / "cut.s"
    cut.write_text("".join(ln + "\n" for ln in lines[:keep]))
    capsys.readouterr()
    assert main(["sim", str(cut)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"npuc: error: {cut}:")
    if keep >= 9:
        assert "truncated: .contents declares" in err


def test_npuc_sim_of_a_cut_program_in_a_fresh_process(programs, tmp_path):
    text = programs["tiny_cnn"].read_text()
    cut = tmp_path / "cut.s"
    cut.write_text(text[:len(text) * 3 // 4])  # mid-line, as a copy that stopped half-way
    r = subprocess.run([sys.executable, "-m", "npuc", "sim", str(cut)], capture_output=True, text=True, check=False)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"npuc: error: {cut}:")


def test_npuc_sim_of_a_program_without_stores_names_the_output(programs, tmp_path, capsys):
    text = _without_contents(programs["tiny_cnn"].read_text())
    body = "".join(ln + "\n" for ln in text.splitlines() if not ln.startswith("st "))
    (tmp_path / "p.s").write_text(body)
    capsys.readouterr()
    assert main(["sim", str(tmp_path / "p.s")]) == 1
    err = capsys.readouterr().err
    assert err == (f"npuc: error: {tmp_path / 'p.s'}: output 'y' is never written: 5 of its 5 bytes are stored "
                   "by no instruction (the first at index (0, 0)); the program is incomplete (truncated?) or "
                   "miscompiled\n")


def test_format_program_of_the_damaged_text_round_trips(programs):
    """The canonical printer writes `.contents` back for an intact program (a sanity check of the oracle)."""
    path = programs["tiny_cnn"]
    assert format_program(parse_program(path.read_text())) == path.read_text()
