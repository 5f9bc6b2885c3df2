"""Program integrity: the `.contents` header line and the content hash (ISA.md, "Program integrity").

The hash is computed independently here (hashlib over the documented byte
layout), so a digest that leaves out a part of the program fails.
"""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest

from npuc.hw import HwConfig
from npuc.isa.asm import AsmError, format_program, parse_program
from npuc.isa.encoding import encode
from npuc.isa.image import ProgramImage, content_digest
from npuc.isa.program import HostOp, Program, TensorInfo, make_insn


def small_program() -> Program:
    hw = HwConfig(rows=4, cols=4, spad_kib=1, acc_kib=1).to_flat()
    tensors = [TensorInfo("x", "input", 0, (1, 16), "flat", 0.5, 0),
               TensorInfo("y", "output", 64, (1, 16), "flat", 0.25, -2)]
    insns = [make_insn("ld", n0=1, n1=1, n2=16, signal=1),
             make_insn("st", dst=64, n0=1, n1=1, n2=16, wait=1, layer=1)]
    return Program(hw, 256, tensors, ["load", "store"], [(128, bytes(range(40))), (200, b"\x07" * 9)], insns)


def expected_digest(prog: Program) -> str:
    """The content hash by its definition in ISA.md, written out again."""
    tensor = lambda t: [t.name, t.role, t.addr, list(t.shape), t.layout, float(t.scale), t.zp, t.dtype]  # noqa: E731
    head = {"hw": HwConfig.from_flat(prog.hw).to_flat(), "dram": prog.dram_size,
            "tensors": [tensor(t) for t in prog.tensors], "layers": prog.layers,
            "hosts": [{"name": h.name, "op": h.op, "at": h.at, "tensors": [tensor(t) for t in h.tensors],
                       "model_bytes": len(h.model)} for h in prog.hosts]}
    js = json.dumps(head, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    h = hashlib.sha256(b"npuc-program-content-1\0")
    h.update(struct.pack("<Q", len(js)) + js)
    h.update(struct.pack("<Q", len(prog.insns)) + encode(prog.insns).astype("<u4").tobytes())
    data = sorted(prog.data)
    h.update(struct.pack("<Q", len(data)))
    for addr, seg in data:
        h.update(struct.pack("<QQ", addr, len(seg)) + seg)
    for host in prog.hosts:
        h.update(host.model)
    return h.hexdigest()


def test_the_printer_writes_what_the_program_holds():
    prog = small_program()
    lines = format_program(prog).split("\n")
    assert lines[0] == ".npuc 1"
    assert lines[1] == f".contents insns=2 data=49 sha256={expected_digest(prog)}"
    assert parse_program("\n".join(lines)) == prog


def test_the_digest_covers_every_part():
    base = small_program()
    host = HostOp("sm", "Softmax", 2, (TensorInfo("y", "input", 64, (1, 16), "flat", 0.25, -2),
                                      TensorInfo("p", "output", 96, (1, 16), "flat", 1 / 256, -128)), b"\x01\x02")
    variants = {
        "hw": Program({**base.hw, "dram_bw": 8}, base.dram_size, base.tensors, base.layers, base.data, base.insns),
        "dram": Program(base.hw, 512, base.tensors, base.layers, base.data, base.insns),
        "tensor": Program(base.hw, base.dram_size, base.tensors[:1], base.layers, base.data, base.insns),
        "scale": Program(base.hw, base.dram_size, [base.tensors[0], TensorInfo("y", "output", 64, (1, 16), "flat",
                         0.5, -2)], base.layers, base.data, base.insns),
        "layer name": Program(base.hw, base.dram_size, base.tensors, ["load", "st"], base.data, base.insns),
        "data byte": Program(base.hw, base.dram_size, base.tensors, base.layers,
                             [(128, bytes(range(39)) + b"\xff"), base.data[1]], base.insns),
        "data address": Program(base.hw, base.dram_size, base.tensors, base.layers,
                                [base.data[0], (201, b"\x07" * 9)], base.insns),
        "field": Program(base.hw, base.dram_size, base.tensors, base.layers, base.data,
                         [base.insns[0], make_insn("st", dst=65, n0=1, n1=1, n2=16, wait=1, layer=1)]),
        "token": Program(base.hw, base.dram_size, base.tensors, base.layers, base.data,
                         [base.insns[0], make_insn("st", dst=64, n0=1, n1=1, n2=16, wait=2, layer=1)]),
        "layer id": Program(base.hw, base.dram_size, base.tensors, base.layers, base.data,
                            [base.insns[0], make_insn("st", dst=64, n0=1, n1=1, n2=16, wait=1, layer=0)]),
        "order": Program(base.hw, base.dram_size, base.tensors, base.layers, base.data, base.insns[::-1]),
        "host op": Program(base.hw, base.dram_size, base.tensors, base.layers, base.data, base.insns, [host]),
    }
    digests = {content_digest(ProgramImage.from_program(p)) for p in variants.values()}
    assert content_digest(ProgramImage.from_program(base)) not in digests and len(digests) == len(variants)
    for p in [base, *variants.values()]:
        assert content_digest(ProgramImage.from_program(p)) == expected_digest(p)


def test_the_digest_ignores_spelling():
    """Comments, blank lines, field order, hex vs decimal, data split across lines: same content."""
    text = format_program(small_program())
    lines = text.split("\n")
    respelled = [lines[0], "; a comment", lines[1], *lines[2:]]
    respelled = [ln.replace("st    dst=64 src=0", "st src=0x0    dst=0x40 ") for ln in respelled]
    data = next(i for i, ln in enumerate(respelled) if ln.startswith(".data 0x00000080"))
    addr, hexes = 128, respelled[data].split()[2]
    respelled[data:data + 1] = [f".data {addr} {hexes[:20]}", f".data {addr + 10} {hexes[20:]}  ; split"]
    assert parse_program("\n".join(respelled)) == small_program()


def _error(text: str) -> AsmError:
    with pytest.raises(AsmError) as e:
        parse_program(text, "p.s")
    return e.value


def test_a_cut_program_says_truncated():
    lines = format_program(small_program()).rstrip("\n").split("\n")
    e = _error("\n".join(lines[:-1]) + "\n")
    assert e.line == 2 and str(e) == (f"p.s:2:{e.column}: truncated: .contents declares 2 instructions, found 1 "
                                      f"(the file ends at line {len(lines) - 1})")


def test_a_repeated_instruction_says_damaged():
    lines = format_program(small_program()).rstrip("\n").split("\n")
    e = _error("\n".join([*lines, lines[-1]]))
    assert "damaged: .contents declares 2 instructions, found 3" in e.message


def test_lost_data_says_truncated():
    lines = format_program(small_program()).split("\n")
    e = _error("\n".join(ln for ln in lines if not ln.startswith(".data 0x000000c8")))
    assert e.message.startswith("truncated: .contents declares 49 data bytes, found 40")


def test_a_changed_value_breaks_the_hash():
    text = format_program(small_program()).replace("scale=0.25", "scale=0.125")
    e = _error(text)
    assert e.line == 2 and e.message.startswith("damaged: the program's content hash is")
    assert "delete the .contents line" in e.message


def test_without_the_line_a_program_is_hand_written():
    lines = format_program(small_program()).split("\n")
    assert parse_program("\n".join(ln for ln in lines if not ln.startswith(".contents"))) == small_program()


def test_a_file_cut_inside_a_line_says_so():
    text = format_program(small_program())
    e = _error(text[:text.rindex("n2=16") + 3])  # "... n2" : a key without its value
    assert e.message.endswith("(the file ends inside this line: truncated?)")


@pytest.mark.parametrize("line, message", [
    (".contents insns=-1 data=0 sha256=" + "0" * 64, "instruction count -1 is negative"),
    (".contents insns=0 data=-5 sha256=" + "0" * 64, "data byte count -5 is negative"),
    (".contents insns=0 data=0 sha256=abc", "sha256 must be 64 lowercase hex digits, got 3 characters (abc)"),
    (".contents insns=0 data=0 sha256=" + "A" * 64, "sha256 must be 64 lowercase hex digits"),
    (".contents data=0 insns=0 sha256=" + "0" * 64, "unexpected 'data'"),
])
def test_malformed_contents_lines(line, message):
    e = _error(f".npuc 1\n{line}\n.hw rows=4\n.dram 64\n")
    assert e.line == 2 and message in e.message


def test_contents_once_and_in_the_header():
    line = ".contents insns=0 data=0 sha256=" + "0" * 64
    assert "duplicate .contents" in _error(f".npuc 1\n{line}\n{line}\n.hw\n.dram 64\n").message
    late = f".npuc 1\n.hw\n.dram 64\nvsum dst=0 src=0 m=0 n=0 ss=0 acc=0\n{line}\n"
    assert "after the first instruction" in _error(late).message


def test_an_empty_program_checks_too():
    prog = Program(HwConfig().to_flat(), 64)
    text = format_program(prog)
    assert ".contents insns=0 data=0 sha256=" in text and parse_program(text) == prog
    assert np.array_equal(ProgramImage.from_program(prog).words, np.zeros(0, np.uint32))
