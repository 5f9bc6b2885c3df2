"""prog.s round trips: Program -> text -> Program, text -> binary -> text, files with sidecars.

Random valid programs come from hypothesis: any hardware config, tensor and
layer names with quotes, backslashes, newlines and non-ASCII characters,
data segments, instructions with every field anywhere in its range, and host
ops (int8 and int64 tensors, opaque model bytes) anywhere in the stream.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npuc.hw import HwConfig
from npuc.isa import asm_check
from npuc.isa.asm import AsmError, format_program, parse_program, read_program, write_program
from npuc.isa.asm_syntax import parse_canonical_insn, parse_line_fast, parse_line_lark
from npuc.isa.encoding import decode, encode
from npuc.isa.program import HostOp, Insn, LayerWork, Program, TensorInfo, make_insn
from npuc.isa.table import INSNS

names = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@st.composite
def hw_configs(draw) -> HwConfig:
    return HwConfig(rows=draw(st.integers(1, 64)), cols=draw(st.integers(1, 64)),
                    spad_kib=draw(st.integers(1, 512)), dram_bw=draw(st.integers(1, 64)),
                    clock_mhz=draw(st.one_of(st.floats(0.001, 1e6), st.integers(1, 5000))),
                    rounding=draw(st.sampled_from(["half_even", "half_up", "truncate", "half_away"])))


def field_value(f, hw: HwConfig) -> st.SearchStrategy[int]:
    hi = {"k": hw.rows, "n": hw.cols}.get(f.name, f.hi)  # a gemm tile must fit the array
    return st.one_of(st.integers(f.lo, hi), st.sampled_from([f.lo, hi]))


@st.composite
def insns(draw, hw: HwConfig, n_layers: int) -> Insn:
    spec = draw(st.sampled_from(INSNS))
    fields = tuple(draw(field_value(f, hw)) for f in spec.fields)
    mask = st.one_of(st.just(0), st.integers(0, 0xFFFF))
    return Insn(spec.mnemonic, fields, draw(mask), draw(mask), draw(st.integers(0, max(0, n_layers - 1))))


@st.composite
def segments(draw, dram: int) -> list[tuple[int, bytes]]:
    """Canonical data: sorted, non-empty, with a gap between any two segments."""
    out, addr = [], draw(st.integers(0, 64))
    for _ in range(draw(st.integers(0, 3))):
        size = draw(st.integers(1, 150))
        if addr + size > dram:
            break
        out.append((addr, draw(st.binary(min_size=size, max_size=size))))
        addr += size + draw(st.integers(1, 100))
    return out


def _tensor(draw, name: str, role: str, dtype: str) -> TensorInfo:
    """A tensor of one sample (batch dimension 1); nhwc only on 4-D shapes, as the assembler requires."""
    rest = tuple(draw(st.lists(st.integers(0, 4), max_size=3 if dtype == "int8" else 2)))
    layout = draw(st.sampled_from(["nhwc", "flat"])) if len(rest) == 3 else "flat"
    return TensorInfo(name, role, draw(st.integers(0, 64)), (1,) + rest, layout, draw(st.floats(1e-30, 1e30)),
                      draw(st.integers(-128, 127)), dtype)


@st.composite
def host_ops(draw, n_insns: int) -> list[HostOp]:
    """Host ops at sorted instruction indices (0 and the end included), each with an output."""
    out = []
    for at in sorted(draw(st.lists(st.integers(0, n_insns), max_size=3))):
        tensors = []
        for role in ["input"] * draw(st.integers(0, 2)) + ["output"]:
            dtype = draw(st.sampled_from(["int8", "int64"]))
            tensors.append(_tensor(draw, f"{role}{len(tensors)}", role, dtype))
        out.append(HostOp(draw(names), draw(names.filter(bool)), at, tuple(tensors),
                          draw(st.binary(min_size=1, max_size=150))))
    return out


@st.composite
def programs(draw) -> Program:
    hw = draw(hw_configs())
    dram = draw(st.integers(1024, 1 << 20))
    tensors = [_tensor(draw, name, draw(st.sampled_from(["input", "output"])), "int8")
               for name in draw(st.lists(names, max_size=3, unique=True))]
    layers = draw(st.lists(names, max_size=4))
    body = draw(st.lists(insns(hw, len(layers)), max_size=12))
    work = {i: LayerWork(draw(st.integers(0, 1 << 40)), draw(st.integers(0, 1 << 40)))
            for i in range(len(layers)) if draw(st.booleans())}  # the Conv/Gemm layers' work
    return Program(hw.to_flat(), dram, tensors, layers, draw(segments(dram)), body, draw(host_ops(len(body))),
                   work)


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(programs())
def test_parse_of_format_is_identity(prog):
    text = format_program(prog)
    assert parse_program(text) == prog
    assert format_program(parse_program(text)) == text  # canonical: printing is stable


@SETTINGS
@given(programs())
def test_text_binary_text_is_identity(prog):
    text = format_program(prog)
    parsed = parse_program(text)
    back = Program(parsed.hw, parsed.dram_size, parsed.tensors, parsed.layers, parsed.data,
                   decode(encode(parsed.insns)), parsed.hosts, parsed.work)  # host ops are not in the binary stream
    assert format_program(back) == text


def _noisy(line: str, rnd: random.Random) -> str:
    """The same instruction in another spelling: shuffled fields, blanks, hex, comments."""
    head, *kvs = line.split()
    rnd.shuffle(kvs)
    out = []
    for kv in kvs:
        key, val = kv.split("=")
        parts = [str(int(v)) if key in ("wait", "signal") or rnd.random() < 0.5
                 else (hex(int(v)) if int(v) >= 0 else "-" + hex(-int(v))) for v in val.split(",")]
        sep = rnd.choice([",", " , ", ",\t"])
        out.append(key + rnd.choice(["=", " = ", "\t="]) + sep.join(parts))
    return rnd.choice(["", "  ", "\t"]) + head + " " + "  ".join(out) + rnd.choice(["", " ; note", ";x=1", " \r"])


@SETTINGS
@given(programs(), st.randoms(use_true_random=False))
def test_any_spelling_assembles_like_the_canonical_one(prog, rnd):
    lines = format_program(prog).split("\n")
    body_from = next((i for i, ln in enumerate(lines) if ln == ""), len(lines))
    noisy = [_noisy(ln, rnd) if i > body_from and ln and not ln.startswith("@") else ln
             for i, ln in enumerate(lines)]
    assert parse_program("\n".join(noisy)) == prog


@SETTINGS
@given(programs())
def test_fast_paths_agree_with_the_grammar(prog):
    for i, line in enumerate(format_program(prog).split("\n"), 1):
        slow = parse_line_lark(line, i)
        fast = parse_line_fast(line, i)
        if fast is not False:
            assert fast == slow or (fast.kvs == slow.kvs and fast.args == slow.args and fast.head == slow.head)
        canon = parse_canonical_insn(line)
        if canon is not None:
            assert slow is not None and slow.kind == "insn"
            head, fields, wait, signal = canon
            ref = dict(slow.kvs)
            assert head == slow.head
            assert fields == tuple(ref[f.name] for f in next(s for s in INSNS if s.mnemonic == head).fields)
            assert wait == sum(1 << t for t in _tokens(ref.get("wait", ())))
            assert signal == sum(1 << t for t in _tokens(ref.get("signal", ())))


def _tokens(v) -> tuple[int, ...]:
    return (v,) if isinstance(v, int) else v


def test_canonical_programs_skip_lark(monkeypatch):
    """The bulk of a big machine-written program never reaches the slow grammar path."""
    hw = HwConfig()
    rng = np.random.default_rng(0)
    body = [make_insn("gemm", dst=int(d), a=16, w=256, m0=16, m1=1, k=16, n=16, as0=16, ws=16, ds0=16,
                      wait=int(d) & 7, signal=1) for d in rng.integers(0, 4096, 3000)]
    prog = Program(hw.to_flat(), 4096, layers=["a"], data=[(0, bytes(1000))], insns=body)
    calls = []
    real = asm_check.parse_line_lark
    monkeypatch.setattr(asm_check, "parse_line_lark", lambda line, n: calls.append(n) or real(line, n))
    assert parse_program(format_program(prog)) == prog
    assert len(calls) == 5  # .npuc, .contents, .hw, .dram, .layer: the rest are fast-path lines


def test_data_segments_come_back_canonical():
    hw = HwConfig().to_flat()
    text = format_program(Program(hw, 256, data=[(10, b"\x01\x02"), (0, b"\x00"), (12, b"\x03")]))
    assert parse_program(text).data == [(0, b"\x00"), (10, b"\x01\x02\x03")]


def _big_program() -> Program:
    rng = np.random.default_rng(1)
    data = [(0, rng.bytes(3000)), (4000, rng.bytes(500))]
    return Program(HwConfig().to_flat(), 8192, [TensorInfo("x", "input", 0, (1, 8), "flat", 0.5, 0)],
                   ["l0"], data, [make_insn("st", n0=1, n1=1, n2=8)])


def test_large_data_goes_to_a_checked_sidecar(tmp_path):
    prog = _big_program()
    path = tmp_path / "prog.s"
    write_program(prog, path, sidecar_threshold=1000)
    text = path.read_text()
    (side,) = tmp_path.glob("prog.s.*.weights")  # named by its content
    assert f'.weights "{side.name}" sha256=' in text and ".data" not in text
    assert side.stat().st_size == 3500
    umask = os.umask(0)
    os.umask(umask)
    assert {f.stat().st_mode & 0o777 for f in tmp_path.iterdir()} == {0o666 & ~umask}  # not mkstemp's 0600
    assert read_program(path) == prog
    write_program(prog, tmp_path / "inline.s")  # below the default threshold: inline hex
    assert ".data 0x" in (tmp_path / "inline.s").read_text()
    assert read_program(tmp_path / "inline.s") == prog


def test_sidecar_missing_or_changed_is_an_error(tmp_path):
    path = tmp_path / "prog.s"
    write_program(_big_program(), path, sidecar_threshold=0)
    line = next(i for i, ln in enumerate(path.read_text().split("\n"), 1) if ln.startswith(".weights"))
    (side,) = tmp_path.glob("prog.s.*.weights")
    blob = bytearray(side.read_bytes())
    blob[7] ^= 1
    side.write_bytes(bytes(blob))
    with pytest.raises(AsmError, match="does not match") as e:
        read_program(path)
    assert (e.value.line, e.value.column) == (line, len(f'.weights "{side.name}" sha256=') + 1)
    side.unlink()
    with pytest.raises(AsmError, match="not found") as e:
        read_program(path)
    assert (e.value.path, e.value.line, e.value.column) == (str(path), line, 10)


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "prog.s"
    path.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_program(_big_program(), path, sidecar_threshold=0)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prog.s"]  # no temporary file left
