"""Host points in prog.s: `.host`, `.host_tensor`, `.host_model`, `.host_segment` and `@host`.

Random round trips are in test_asm_roundtrip.py (its programs carry host
ops); here: the ISA.md example, the sidecar, and every error at its column.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from npuc.isa.asm import AsmError, format_program, parse_program, read_program, write_program
from npuc.isa.program import HostOp, TensorInfo, make_insn

ISA_MD = Path(__file__).parents[2] / "isa" / "ISA.md"

BASE = """\
.npuc 1
.hw rows=4 cols=8
.dram 1024
.tensor name="x" role=input addr=0x0 shape=1,16 layout=flat scale=0.5 zp=0
.tensor name="k" role=output addr=0x80 shape=1,1 layout=flat scale=1.0 zp=0 dtype=int64
.layer 0 "fc"
.host 0 "am" "ArgMax"
.host_tensor 0 name="x" role=input addr=0x40 shape=1,16 layout=flat scale=0.25 zp=-2
.host_tensor 0 name="k" role=output addr=0x80 shape=1,1 layout=flat scale=1.0 zp=0 dtype=int64
.host_model 0 0a0b0c

@layer 0  ; fc
st    dst=64 src=0 n0=1 n1=1 n2=16 ds0=0 ds1=0 ss0=0 ss1=0

@host 0  ; am (ArgMax) runs on the host
"""


def test_base_program():
    prog = parse_program(BASE)
    (h,) = prog.hosts
    assert (h.name, h.op, h.at, h.model) == ("am", "ArgMax", 1, b"\x0a\x0b\x0c")
    assert [t.dtype for t in h.tensors] == ["int8", "int64"] and h.outputs()[0].nbytes == 8
    assert prog.outputs()[0].dtype == "int64"
    # canonical but for the full .hw and the .contents line the printer adds
    assert format_program(prog, contents=False).split("\n")[2:] == BASE.split("\n")[2:]
    assert format_program(prog).split("\n")[1].startswith(".contents insns=1 data=0 sha256=")


def test_isa_md_example_assembles():
    text = ISA_MD.read_text().split("## Assembly text format")[1]
    example = re.search(r"```\n(.*?)```", text, re.DOTALL).group(1)
    prog = parse_program(example)
    assert [(h.name, h.op, h.at) for h in prog.hosts] == [("sm", "Softmax", len(prog.insns))]


def test_model_pieces_concatenate():
    prog = parse_program(BASE.replace(".host_model 0 0a0b0c", ".host_model 0 0a0b\n.host_model 0 0c"))
    assert prog == parse_program(BASE)


def test_inputs_come_first_whatever_the_line_order():
    lines = BASE.split("\n")
    lines[7], lines[8] = lines[8], lines[7]
    (h,) = parse_program("\n".join(lines)).hosts
    assert [t.role for t in h.tensors] == ["input", "output"]


def test_host_models_go_to_the_sidecar_with_the_data(tmp_path):
    prog = parse_program(BASE)
    prog.data = [(0x200, bytes(range(40)))]
    prog.hosts = [HostOp("am", "ArgMax", 0, prog.hosts[0].tensors, bytes(range(200)))] + [
        HostOp("r", "Relu", 1, (TensorInfo("y", "output", 0x300, (1, 4), "flat", 0.5, 0),), b"\x01")]
    path = tmp_path / "p.s"
    write_program(prog, path, sidecar_threshold=100)
    text = path.read_text()
    assert ".host_model" not in text and ".host_segment 0 40 200" in text and ".host_segment 1 240 1" in text
    (side,) = tmp_path.glob("p.s.*.weights")
    assert side.stat().st_size == 241
    assert read_program(path) == prog


def test_host_points_at_the_same_place_and_at_the_start():
    prog = parse_program(BASE)
    out = TensorInfo("y", "output", 0x300, (1, 4), "flat", 0.5, 0)
    prog.insns = [make_insn("st", n0=1, n1=1, n2=1)] * 2
    prog.hosts = [HostOp(str(i), "Relu", at, (out,), b"\x00") for i, at in enumerate([0, 0, 2])]
    text = format_program(prog)
    assert text.index("@host 1") < text.index("@layer 0") < text.index("@host 2")
    assert parse_program(text) == prog


CASES = {
    "undeclared host in the body": ([("@host 0 ", "@host ^1 ")],
                                    "undeclared host op 1 (the .host lines declare ids 0..0)"),
    "host placed twice": ([("@host 0 ", "@host 0\n@host ^0 ")], "host op 0 already placed"),
    "host id out of order": ([('.host 0 "am"', '.host ^1 "am"')], "host op id 1 out of order"),
    "empty op": ([('"am" "ArgMax"', '"am" ^""')], "ONNX op type is empty"),
    "tensor of an undeclared host": ([(".host_tensor 0 name=\"x\"", ".host_tensor ^3 name=\"x\"")],
                                     "undeclared host op 3"),
    "bad dtype": ([("zp=0 dtype=int64\n.host_model", "zp=0 dtype=^int16\n.host_model")],
                  "dtype: 'int16' is not one of int8, int64"),
    "tensor name twice in a host op": ([('.host_tensor 0 name="k"', '.host_tensor 0 name=^"x"')],
                                       "tensor 'x' already declared on line 8"),
    "host tensor outside DRAM": ([("addr=0x40", "addr=^0x3f8")], "outside DRAM of 1024 bytes"),
    "missing host tensor key": ([(".host_tensor 0 name=\"x\"", "^.host_tensor 0 name=\"x\""), (" zp=-2", "")],
                                "missing .host_tensor key 'zp'"),
    "model piece bad hex": ([(".host_model 0 0a0b0c", ".host_model 0 ^0")], "odd number of hex digits"),
    "host segment without sidecar": ([(".host_model 0 0a0b0c", "^.host_segment 0 0 1")], "needs a .weights"),
    "host directive in the body": ([("@host 0 ", "^.host 1 \"z\" \"Relu\"\n@host 0 ")],
                                   ".host after the first instruction"),
    "no output tensor": ([('.host_tensor 0 name="k"', '; .host_tensor 0 name="k"'), (".host 0", "^.host 0")],
                         "host op 0 ('am') has no role=output .host_tensor"),
    "no model": ([(".host_model 0 0a0b0c\n", ""), (".host 0", "^.host 0")],
                 "has no model (.host_model or .host_segment)"),
    "never placed": ([("@host 0  ; am (ArgMax) runs on the host\n", ""), (".host 0", "^.host 0")],
                     "no '@host 0' line in the body"),
}


def _mutate(edits: list[tuple[str, str]]) -> tuple[str, int, int]:
    text = BASE
    for old, new in edits:
        assert text.count(old) >= 1, old
        text = text.replace(old, new, 1)
    at = text.index("^")
    return text.replace("^", "", 1), text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1


@pytest.mark.parametrize("case", sorted(CASES))
def test_error_points_at_the_culprit(case):
    edits, message = CASES[case]
    text, line, col = _mutate(edits)
    with pytest.raises(AsmError) as e:
        parse_program(text, "p.s")
    assert (e.value.line, e.value.column) == (line, col), str(e.value)
    assert message in e.value.message, e.value.message
    assert str(e.value).startswith(f"p.s:{line}:{col}: ")
