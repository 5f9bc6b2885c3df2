"""A program as the simulator runs it: header, tensor table, encoded instruction stream, data.

`ProgramImage` is what the assembler produces once the text is checked: the
instructions already encoded (`isa/encoding.py`), one uint32 array, so a run
needs no Python object per instruction. It is built from a `Program`
(`ProgramImage.from_program`), or loaded from the binary program cache
(`isa/binprog.py`) without parsing any text; the arrays may then be views of
a memory-mapped file.

`content_digest` is the program's content hash, the `sha256=` of the
`.contents` header line (ISA.md, "Program integrity"): it covers everything
that decides what a program computes and nothing about how its text is
spelled (comments, blank lines, field order, the sidecar split, line numbers).
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .program import HostOp, Insn, LayerWork, Program, TensorInfo
from .table import WORDS_PER_INSN

Segment = tuple[int, "bytes | memoryview"]  # DRAM address, initial bytes

_DIGEST_MAGIC = b"npuc-program-content-1\0"


@dataclass(frozen=True, eq=False)
class ProgramImage:
    """A checked program in binary form. `words` holds `WORDS_PER_INSN` uint32 per instruction
    (flat); `lines[i]` is instruction i's line in prog.s (0 when unknown)."""

    hw: dict[str, Any]  # flat hardware config, canonical (HwConfig.to_flat())
    dram_size: int
    tensors: tuple[TensorInfo, ...]
    layers: tuple[str, ...]
    data: tuple[Segment, ...]  # canonical: sorted by address, non-empty, none touching
    hosts: tuple[HostOp, ...]
    words: np.ndarray  # uint32, flat
    lines: np.ndarray  # uint32, one per instruction
    # the stated hardware fields, sorted (`Program.hw_keys`); () = all
    hw_keys: tuple[str, ...] = field(default=(), compare=False)
    work: dict[int, LayerWork] = field(default_factory=dict)  # the Conv/Gemm layers' work (`Program.work`)

    @property
    def n_insns(self) -> int:
        return self.words.size // WORDS_PER_INSN

    @property
    def rows(self) -> np.ndarray:
        """The words as one row per instruction."""
        return self.words.reshape(-1, WORDS_PER_INSN)

    def inputs(self) -> list[TensorInfo]:
        return [t for t in self.tensors if t.role == "input"]

    def outputs(self) -> list[TensorInfo]:
        return [t for t in self.tensors if t.role == "output"]

    def data_bytes(self) -> int:
        return sum(len(seg) for _, seg in self.data)

    @classmethod
    def from_program(cls, prog: Program) -> ProgramImage:
        """Encode `prog`, its data in canonical form (raises EncodeError for an instruction that
        does not encode, ValueError for overlapping data segments)."""
        from npuc.hw import HwConfig

        from .encoding import encode

        words = encode(prog.insns)
        lines = np.fromiter((i.line for i in prog.insns), dtype=np.uint32, count=len(prog.insns))
        hw = HwConfig.from_flat(prog.hw).to_flat()
        keys = tuple(sorted(prog.hw_keys if prog.hw_keys is not None else hw))
        return cls(hw, int(prog.dram_size), tuple(prog.tensors), tuple(prog.layers),
                   tuple(canonical_segments(prog.data)), tuple(prog.hosts), words, lines, keys, dict(prog.work))

    def insns(self) -> list[Insn]:
        """The instructions as objects (decoded; for tools, not for running)."""
        from .encoding import decode

        return [Insn(i.op, i.fields, i.wait, i.signal, i.layer, int(line))
                for i, line in zip(decode(self.words), self.lines.tolist())]

    def to_program(self) -> Program:
        return Program(dict(self.hw), self.dram_size, list(self.tensors), list(self.layers),
                       [(a, bytes(s)) for a, s in self.data], self.insns(), list(self.hosts), dict(self.work),
                       self.hw_keys or None)


def canonical_segments(segments: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """DRAM init segments sorted by address, empty ones dropped and touching ones merged.

    The text format describes a DRAM image, so this is the form the assembler
    returns (overlapping segments are an error there, and raise ValueError here).
    """
    out: list[tuple[int, bytearray]] = []
    for addr, seg in sorted((a, s) for a, s in segments if s):
        if out and addr < out[-1][0] + len(out[-1][1]):
            raise ValueError(f"data segment at 0x{addr:x} overlaps the one at 0x{out[-1][0]:x}")
        if out and addr == out[-1][0] + len(out[-1][1]):
            out[-1][1].extend(seg)
        else:
            out.append((addr, bytearray(seg)))
    return [(a, bytes(s)) for a, s in out]


@dataclass(frozen=True)
class SidecarRef:
    """The weights sidecar a program's data came from: its file name (relative to the .s file),
    SHA-256, size, and where each `.segment` line's bytes lie in it: (addr, len) -> offset."""

    name: str
    sha256: str
    size: int
    index: dict[tuple[int, int], int]


def _canon(v: Any) -> Any:
    """A header value in one spelling: an int is an int, a float a float, whatever type held it."""
    if isinstance(v, str | bool):  # a bool stays one: HwConfig takes true / false, not 1 / 0
        return v
    if isinstance(v, int | np.integer):
        return int(v)
    return float(v)


def tensor_record(t: TensorInfo) -> list[Any]:
    return [t.name, t.role, int(t.addr), [int(d) for d in t.shape], t.layout, float(t.scale), int(t.zp), t.dtype]


def tensor_from_record(r: Sequence[Any]) -> TensorInfo:
    name, role, addr, shape, layout, scale, zp, dtype = r
    return TensorInfo(name, role, addr, tuple(shape), layout, scale, zp, dtype)


def header_record(image: ProgramImage) -> dict[str, Any]:
    """Everything but the instructions and the bytes, as JSON-ready values in one canonical form."""
    out: dict[str, Any] = {
        "hw": {k: _canon(image.hw[k]) for k in (image.hw_keys or image.hw)},  # the stated fields
        "dram": int(image.dram_size),
        "tensors": [tensor_record(t) for t in image.tensors],
        "layers": list(image.layers),
        "hosts": [{"name": h.name, "op": h.op, "at": int(h.at), "tensors": [tensor_record(t) for t in h.tensors],
                   "model_bytes": len(h.model)} for h in image.hosts],
    }
    if image.work:  # absent when empty: the hash of a program without a layer's work stays what it was
        out["work"] = {str(i): [int(w.macs), int(w.bytes)] for i, w in sorted(image.work.items())}
    return out


def canonical_json(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def content_digest(image: ProgramImage) -> str:
    """The SHA-256 (hex) of the program's content, in this order (integers little-endian):

    magic `npuc-program-content-1\\0`; u64 length + the canonical JSON of `header_record`;
    u64 instruction count + the instruction words; u64 segment count + per segment u64
    address, u64 length, its bytes; per host op its model's bytes (lengths are in the JSON).
    """
    h = hashlib.sha256(_DIGEST_MAGIC)
    head = canonical_json(header_record(image))
    h.update(struct.pack("<Q", len(head)))
    h.update(head)
    h.update(struct.pack("<Q", image.n_insns))
    h.update(np.ascontiguousarray(image.words, dtype="<u4").data)
    h.update(struct.pack("<Q", len(image.data)))
    for addr, seg in image.data:
        h.update(struct.pack("<QQ", addr, len(seg)))
        h.update(seg)
    for host in image.hosts:
        h.update(host.model)
    return h.hexdigest()
