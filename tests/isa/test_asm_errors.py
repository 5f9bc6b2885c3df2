"""Every assembler error names the file, the line and the column of what is wrong.

Each case edits a valid program; `^` in the edit marks where the error must
point (it is removed before assembling).
"""

from __future__ import annotations

import pytest

from npuc.hw import HwConfig
from npuc.isa.asm import AsmError, parse_program

BASE = """\
.npuc 1
.hw rows=4 cols=8 dataflow="ws" spad_kib=256 acc_kib=64 dram_bw=16 dram_latency=100 vec_lanes=16 vec_latency=4 clock_mhz=1000.0 weight_granularity="per_channel" act_mode="symmetric" scale_rule="pow2" rounding="half_even" acc_bits=32
.dram 1024
.tensor name="x" role=input addr=0x0 shape=1,4,4,2 layout=nhwc scale=0.5 zp=0
.layer 0 "conv"
.data 0x00000200 0001020304050607

@layer 0  ; conv
ld    dst=0 src=0 n0=1 n1=1 n2=32 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 signal=0
gemm  dst=0 a=0 w=0 m0=4 m1=1 k=4 n=8 as0=4 as1=0 ws=8 ds0=8 ds1=0 acc=0 bias=0 wait=0
"""
HW_LINE = BASE.split("\n")[1] + "\n"
TENSOR = BASE.split("\n")[3]

CASES = {
    # syntax
    "bad integer": [("src=0 n0", "src=^0x n0")],
    "stray character": [("fill=0 ", "fill=0 ^$ ")],
    "unknown directive": [(".layer 0", "^.lyer 0")],
    "bad string escape": [('"conv"', '"co^\\qnv"')],
    "bad hex digit": [("0001020304050607", "000102030405^zz07")],
    "odd hex digits": [("0001020304050607", "^000102030405060")],
    # instructions against the table
    "unknown mnemonic": [("gemm  dst", "^gemn  dst")],
    "missing field": [("gemm  dst", "^gemm  dst"), (" acc=0", "")],
    "unknown field": [("bias=0 wait", "bias=0 ^bogus=1 wait")],
    "field given twice": [("bias=0 wait", "bias=0 ^acc=1 wait")],
    "field out of range": [("n2=32", "n2=^-1")],
    "not an integer": [("k=4", 'k=^"4"')],
    "gemm tile too big": [("k=4", "k=^5")],
    "token out of range": [("wait=0", "wait=0,^16")],
    "token repeated": [("wait=0", "wait=0,^0")],
    "undeclared layer": [("@layer 0", "@layer ^3")],
    "vmul shift out of range": [("gemm  dst=0 a=0 w=0 m0=4 m1=1 k=4 n=8 as0=4 as1=0 ws=8 ds0=8 ds1=0 acc=0 bias=0", "vmul  dst=0 a=0 b=64 m=1 n=8 ds=8 as=8 bs=0 za=0 zb=0 mul=1 sh=SH zp=0 lo=-128 hi=127 rnd=0".replace("sh=SH", "sh=^63"))],
    "vmul multiplier out of range": [("gemm  dst=0 a=0 w=0 m0=4 m1=1 k=4 n=8 as0=4 as1=0 ws=8 ds0=8 ds1=0 acc=0 bias=0", "vmul  dst=0 a=0 b=64 m=1 n=8 ds=8 as=8 bs=0 za=0 zb=0 mul=1 sh=SH zp=0 lo=-128 hi=127 rnd=0".replace("mul=1", "mul=^2147483648").replace("SH", "0"))],
    "vmul zero point out of range": [("gemm  dst=0 a=0 w=0 m0=4 m1=1 k=4 n=8 as0=4 as1=0 ws=8 ds0=8 ds1=0 acc=0 bias=0", "vmul  dst=0 a=0 b=64 m=1 n=8 ds=8 as=8 bs=0 za=0 zb=0 mul=1 sh=SH zp=0 lo=-128 hi=127 rnd=0".replace("zb=0", "zb=^128").replace("SH", "0"))],
    "vlut missing field": [("gemm  dst=0 a=0 w=0 m0=4 m1=1 k=4 n=8 as0=4 as1=0 ws=8 ds0=8 ds1=0 acc=0 bias=0", "^vlut  dst=0 src=0 tab=256 m=1 n=8 ds=8 ss=8 ts=TS".replace(" ts=TS", ""))],
    "vlut stride not an integer": [("gemm  dst=0 a=0 w=0 m0=4 m1=1 k=4 n=8 as0=4 as1=0 ws=8 ds0=8 ds1=0 acc=0 bias=0", "vlut  dst=0 src=0 tab=256 m=1 n=8 ds=8 ss=8 ts=TS".replace("ts=TS", 'ts=^"256"'))],
    # header directives
    "version": [(".npuc 1", ".npuc ^2")],
    "no version first": [(".npuc 1\n", ""), (".hw", "^.hw")],
    "duplicate directive": [(".dram 1024\n", ".dram 1024\n^.dram 2048\n")],
    "directive after the body": [("wait=0\n", "wait=0\n^.dram 5\n")],
    "missing .hw": [(HW_LINE, ""), ("@layer 0", "^@layer 0")],
    "unknown .hw key": [("rows=4", "^rowz=4")],
    "bad .hw value": [("dram_bw=16", "dram_bw=^0")],
    "unquoted .hw string": [('dataflow="ws"', "dataflow=^ws")],
    "missing tensor key": [(".tensor", "^.tensor"), (" zp=0", "")],
    "bad zero point": [("zp=0", "zp=^200")],
    "bad role": [("role=input", "role=^inptu")],
    "tensor outside DRAM": [("addr=0x0 shape=1,4,4,2", "addr=^0x0 shape=1,4,4,200")],
    "duplicate tensor": [(TENSOR, TENSOR + "\n" + TENSOR.replace(".tensor name=", '.tensor name=^'))],
    "dram size": [(".dram 1024", ".dram ^0")],
    "layer out of order": [('.layer 0 "conv"', '.layer ^1 "conv"')],
    "data outside DRAM": [(".data 0x00000200", ".data ^0x000003fc")],
    "overlapping data": [("0607\n", "0607\n.data ^0x00000204 ff\n")],
    "segment without sidecar": [("0607\n", "0607\n^.segment 0 0 1\n")],
    "missing sidecar": [("0607\n", '0607\n.weights ^"nope.w" sha256=00\n')],
}

MESSAGES = {
    "bad integer": "unexpected '0x'", "stray character": "unexpected character '$'",
    "unknown directive": "unknown directive '.lyer'", "bad string escape": "bad string",
    "bad hex digit": "bad hex digit 'z'", "odd hex digits": "odd number of hex digits",
    "unknown mnemonic": "unknown mnemonic 'gemn' (did you mean 'gemm'?)",
    "missing field": "gemm: missing field 'acc'", "unknown field": "gemm: unknown field 'bogus'",
    "field given twice": "field 'acc' given twice", "field out of range": "ld n2=-1 outside [0, 2147483647]",
    "not an integer": "gemm k: expected an integer", "gemm tile too big": "gemm k=5 exceeds the array's 4 rows",
    "token out of range": "gemm wait: token 16 outside [0, 15]", "token repeated": "gemm wait: token 0 repeated",
    "undeclared layer": "undeclared layer 3",
    "vmul shift out of range": "vmul sh=63 outside [0, 62]",
    "vmul multiplier out of range": "vmul mul=2147483648 outside [-2147483648, 2147483647]",
    "vmul zero point out of range": "vmul zb=128 outside [-128, 127]",
    "vlut missing field": "vlut: missing field 'ts'", "vlut stride not an integer": "vlut ts: expected an integer", "version": "unsupported format version 2",
    "no version first": "expected '.npuc 1' before anything else",
    "duplicate directive": "duplicate .dram (first on line 3)",
    "directive after the body": ".dram after the first instruction (line 8)",
    "missing .hw": "missing .hw", "unknown .hw key": "unknown .hw key 'rowz' (did you mean 'rows'?)",
    "bad .hw value": "memory.dram_bw = 0", "unquoted .hw string": 'strings are quoted: dataflow="ws"',
    "missing tensor key": "missing .tensor key 'zp'", "bad zero point": "zp: 200 outside the int8 range",
    "bad role": "'inptu' is not one of input, output",
    "tensor outside DRAM": "tensor 'x' [0x0, 0xc80) outside DRAM of 1024 bytes",
    "duplicate tensor": "tensor 'x' already declared on line 4", "dram size": "DRAM size 0 outside",
    "layer out of order": "layer id 1 out of order", "data outside DRAM": "outside DRAM of 1024 bytes",
    "overlapping data": "overlaps the segment of line 6", "segment without sidecar": "needs a .weights",
    "missing sidecar": "weights sidecar 'nope.w' not found",
}


def _mutate(edits: list[tuple[str, str]]) -> tuple[str, int, int]:
    text = BASE
    for old, new in edits:
        assert text.count(old) >= 1, old
        text = text.replace(old, new, 1)
    at = text.index("^")
    line = text.count("\n", 0, at) + 1
    col = at - (text.rfind("\n", 0, at) + 1) + 1
    return text.replace("^", "", 1), line, col


def test_base_program_is_valid():
    assert len(parse_program(BASE).insns) == 2


@pytest.mark.parametrize("case", sorted(CASES))
def test_error_points_at_the_culprit(case):
    text, line, col = _mutate(CASES[case])
    with pytest.raises(AsmError) as e:
        parse_program(text, "model/prog.s")
    err = e.value
    assert isinstance(err, ValueError)
    assert (err.path, err.line, err.column) == ("model/prog.s", line, col), str(err)
    assert MESSAGES[case] in err.message
    assert str(err) == f"model/prog.s:{line}:{col}: {err.message}"
    assert "\n" not in str(err)


def test_empty_and_truncated_programs():
    with pytest.raises(AsmError, match=r"^<string>:1:1: empty program"):
        parse_program("; nothing\n")
    with pytest.raises(AsmError, match=r"^<string>:3:1: missing .dram"):
        parse_program(BASE.split("\n.dram")[0] + "\n\n")


def test_earlier_range_error_wins_over_later_error():
    """Range checks of canonical lines are batched, yet the first error in the file is reported."""
    text, line, col = _mutate([("n2=32", "n2=^-1"), ("gemm  dst", "gemn  dst")])
    with pytest.raises(AsmError) as e:
        parse_program(text)
    assert (e.value.line, e.value.column) == (line, col)


def test_vlut_and_vmul_lines_assemble():
    text = BASE.replace("gemm  dst=0 a=0 w=0 m0=4 m1=1 k=4 n=8 as0=4 as1=0 ws=8 ds0=8 ds1=0 acc=0 bias=0", "vmul  dst=0 a=0 b=64 m=1 n=8 ds=8 as=8 bs=0 za=0 zb=0 mul=1 sh=SH zp=0 lo=-128 hi=127 rnd=0".replace("SH", "62") + "\nvlut  dst=0 src=0 tab=256 m=1 n=8 ds=8 ss=8 ts=TS".replace("TS", "256"))
    prog = parse_program(text)
    assert [i.op for i in prog.insns] == ["ld", "vmul", "vlut"]
    assert prog.insns[1].as_dict()["sh"] == 62 and prog.insns[2].as_dict()["ts"] == 256


def test_hw_fields_left_out_take_the_default_preset():
    prog = parse_program(BASE.replace(HW_LINE, ".hw rows=8 clock_mhz=500\n"))
    assert prog.hw == HwConfig(rows=8, clock_mhz=500).to_flat()


def test_grammar_is_strict_lalr():
    """No shift/reduce conflict and no two terminals that can match the same text (lark checks the
    terminals with interegular, a dependency: lark[interegular])."""
    from npuc.isa.asm_syntax import _parser

    assert _parser(strict=True).options.strict
