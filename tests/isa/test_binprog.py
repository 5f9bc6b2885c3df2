"""The binary program cache (`isa/binprog.py`, `isa/load.py`; ISA.md, "Binary program cache").

An intact cache gives the image the text gives; anything else about it — a
flipped byte anywhere, a cut, another text's cache, a sidecar that changed —
makes the loader fall back to the text, rebuild the cache, and never fail
because of it.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from npuc.hw import HwConfig
from npuc.isa import binprog
from npuc.isa.asm import AsmError, assemble, format_program, write_program
from npuc.isa.image import ProgramImage, content_digest
from npuc.isa.load import load_program
from npuc.isa.program import HostOp, Program, TensorInfo, make_insn


def program(data_bytes: int = 300) -> Program:
    rng = np.random.default_rng(3)
    hw = HwConfig(rows=4, cols=4, spad_kib=1, acc_kib=1).to_flat()
    tensors = [TensorInfo("x", "input", 0, (1, 16), "flat", 0.5, 0),
               TensorInfo("y", "output", 64, (1, 16), "flat", 0.25, -2)]
    insns = [make_insn("ld", n0=1, n1=1, n2=16, signal=1),
             make_insn("st", dst=64, n0=1, n1=1, n2=16, wait=1, layer=1)]
    host = HostOp("am", "ArgMax", 2, (TensorInfo("y", "input", 64, (1, 16), "flat", 0.25, -2),
                                      TensorInfo("k", "output", 96, (1, 1), "flat", 1.0, 0, "int64")), b"\x0a\x0b")
    data = [(512, rng.bytes(data_bytes)), (4096, rng.bytes(17))]
    return Program(hw, 8192, tensors, ["load", "store"], data, insns, [host])


def same(a: ProgramImage, b: ProgramImage) -> bool:
    return (content_digest(a) == content_digest(b) and np.array_equal(a.lines, b.lines)
            and a.hw == b.hw and a.tensors == b.tensors and a.hosts == b.hosts)


def cache_of(path: Path) -> Path:
    (cache,) = path.parent.glob(path.name + ".*.npub")
    assert cache.name == f"{path.name}.{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}.npub"
    return cache


@pytest.mark.parametrize("threshold", [1 << 20, 100], ids=["inline", "sidecar"])
def test_the_cache_gives_what_the_text_gives(tmp_path, threshold):
    path = tmp_path / "p.s"
    write_program(program(), path, sidecar_threshold=threshold)
    text = assemble(path.read_text(), str(path)).image
    first = load_program(path)  # a miss: parses and writes the cache
    cache = cache_of(path)
    second = load_program(path)  # a hit
    assert same(first, text) and same(second, text)
    side = list(tmp_path.glob("p.s.*.weights"))
    data_section = struct.unpack_from("<Q", cache.read_bytes(), 96)[0]
    assert data_section == (2 if side else 317 + 2)  # sidecar data is referenced, not copied; host models are
    assert second.to_program() == program()


def test_a_hit_does_not_parse(tmp_path, monkeypatch):
    path = tmp_path / "p.s"
    write_program(program(), path)
    load_program(path)
    import npuc.isa.asm as asm

    monkeypatch.setattr(asm, "assemble", lambda *a, **k: pytest.fail("parsed a program with a valid cache"))
    load_program(path)


def _flip(blob: bytes, i: int) -> bytes:
    return blob[:i] + bytes([blob[i] ^ 0x20]) + blob[i + 1:]


def test_every_flipped_byte_is_refused(tmp_path):
    path = tmp_path / "p.s"
    write_program(program(), path)
    load_program(path)
    cache = cache_of(path)
    blob = cache.read_bytes()
    key = hashlib.sha256(path.read_bytes()).digest()
    assert binprog.from_file(cache, key, tmp_path) is not None
    for i in range(len(blob)):
        cache.write_bytes(_flip(blob, i))
        assert binprog.from_file(cache, key, tmp_path) is None, f"byte {i} flipped and accepted"


def test_cut_or_foreign_caches_are_refused(tmp_path):
    path = tmp_path / "p.s"
    write_program(program(), path)
    load_program(path)
    cache = cache_of(path)
    blob = cache.read_bytes()
    key = hashlib.sha256(path.read_bytes()).digest()
    for n in (0, 1, 8, 111, 112, len(blob) // 2, len(blob) - 33, len(blob) - 1):
        cache.write_bytes(blob[:n])
        assert binprog.from_file(cache, key, tmp_path) is None
    cache.write_bytes(blob + b"\0" * 8)
    assert binprog.from_file(cache, key, tmp_path) is None
    cache.write_bytes(blob)
    assert binprog.from_file(cache, hashlib.sha256(b"another text").digest(), tmp_path) is None
    # a well-formed file of another version, checksum and all
    other = bytearray(blob[:-32])
    struct.pack_into("<I", other, 8, binprog.VERSION + 1)
    cache.write_bytes(bytes(other) + hashlib.sha256(other).digest())
    assert binprog.from_file(cache, key, tmp_path) is None


@pytest.mark.parametrize("damage", ["flip", "cut", "empty", "directory"])
def test_a_damaged_cache_is_rebuilt_never_an_error(tmp_path, damage):
    path = tmp_path / "p.s"
    write_program(program(), path)
    want = load_program(path)
    cache = cache_of(path)
    blob = cache.read_bytes()
    if damage == "flip":
        cache.write_bytes(_flip(blob, len(blob) // 3))
    elif damage == "cut":
        cache.write_bytes(blob[:len(blob) // 2])
    elif damage == "empty":
        cache.write_bytes(b"")
    else:
        cache.unlink()
        cache.mkdir()  # something in the way that cannot be replaced
    assert same(load_program(path), want)
    if damage != "directory":
        assert cache.read_bytes() == blob  # rebuilt, byte for byte
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(("p.s", cache.name))) == []


def test_an_edited_program_gets_a_new_cache_and_the_old_one_goes(tmp_path):
    path = tmp_path / "p.s"
    write_program(program(), path)
    load_program(path)
    old = cache_of(path)
    path.write_text(path.read_text() + "; a comment\n")  # other bytes, same program
    assert same(load_program(path), load_program(path))
    new = cache_of(path)
    assert new != old and not old.exists()
    write_program(program(data_bytes=301), path)  # the compiler writes a new version: stale caches go
    assert list(tmp_path.glob("p.s.*.npub")) == []


def test_a_flipped_sidecar_byte_is_an_error_cache_or_not(tmp_path):
    path = tmp_path / "p.s"
    write_program(program(), path, sidecar_threshold=100)
    load_program(path)  # a valid cache exists
    (side,) = tmp_path.glob("p.s.*.weights")
    blob = side.read_bytes()
    for i in (0, len(blob) // 2, len(blob) - 1):
        side.write_bytes(_flip(blob, i))
        for cache in (True, False):
            with pytest.raises(AsmError, match="weights sidecar .* does not match"):
                load_program(path, cache=cache)
    side.write_bytes(blob)
    load_program(path)


def test_a_read_only_directory_only_costs_the_cache(tmp_path, monkeypatch):
    """As root (CI) a chmod does not stop writes: make every write fail instead."""
    from npuc import fsutil

    path = tmp_path / "p.s"
    write_program(program(), path)

    def refuse(*a, **k):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(fsutil.tempfile, "mkstemp", refuse)
    assert same(load_program(path), load_program(path, cache=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.s"]


def test_the_cache_path_loads_no_parser(tmp_path):
    """The hit path imports neither the assembler nor lark (lean start; a subprocess to see sys.modules)."""
    import subprocess

    path = tmp_path / "p.s"
    path.write_text(format_program(program()))
    code = ("import sys; from npuc.isa.load import load_program; load_program(sys.argv[1]); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'lark', 'onnx', 'networkx'}), "
            "'npuc.isa.asm' in sys.modules)")
    runs = [subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
            for _ in range(2)]
    assert runs[0].stdout.split() == ["['lark']", "True"]  # a miss: the text is parsed
    assert runs[1].stdout.split() == ["[]", "False"]  # a hit
