"""The binary program file: a `ProgramImage` as bytes, cached beside prog.s (ISA.md, "Binary program cache").

    blob = to_bytes(image, source_sha256, sidecar)       # what load_program writes
    image = from_file(path, source_sha256, base_dir)     # None unless intact and built from that text

Layout (integers little-endian; every section starts at a multiple of 8 so the
arrays are aligned views of the mapped file):

    0    8   magic b"NPUCBIN\\0"
    8    u32 version (1)
    12   u32 reserved, 0
    16   32  SHA-256 of the prog.s bytes the file was built from
    48   u64 meta offset,  56 u64 meta length        (UTF-8 JSON, below)
    64   u64 words offset, 72 u64 instruction count   (WORDS_PER_INSN uint32 each)
    80   u64 lines offset                             (one uint32 per instruction)
    88   u64 data offset,  96 u64 data length         (inline segments, then host models)
    104  u64 file length, checksum included
    ...  the sections
    end-32  32  SHA-256 of every byte before it

The meta JSON: {"program": `image.header_record`, "contents": the content hash,
"sidecar": {"name", "sha256", "size"} or null, "segments": [[addr, len, where,
offset], ...] with where "inline" (offset into the data section) or "sidecar"
(offset into the sidecar file), "host_models": [[offset, len], ...]}.

Data that came from the weights sidecar is referenced, not copied: the cache
of a 12 MB ResNet-18 is 5 MB of instructions. Loading maps the file (and the
sidecar) read-only and checks both checksums; nothing is parsed but the JSON.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .image import ProgramImage, SidecarRef, canonical_json, content_digest, header_record, tensor_from_record
from .program import HostOp, LayerWork
from .table import WORDS_PER_INSN

MAGIC = b"NPUCBIN\0"
VERSION = 1
_HEAD = struct.Struct("<8sII32sQQQQQQQQ")  # magic .. file length: 112 bytes
_SUM = 32
ALIGN = 8


def _pad(n: int) -> int:
    return -n % ALIGN


def to_bytes(image: ProgramImage, source_sha256: bytes, sidecar: SidecarRef | None = None) -> bytes:
    """The binary file of `image`, built from the prog.s whose bytes hash to `source_sha256`."""
    inline: list[bytes | memoryview] = []
    offset = 0
    segments: list[list[Any]] = []
    for addr, seg in image.data:
        where = sidecar.index.get((addr, len(seg))) if sidecar is not None else None
        if where is not None:
            segments.append([addr, len(seg), "sidecar", where])
        else:
            segments.append([addr, len(seg), "inline", offset])
            inline.append(seg)
            offset += len(seg)
    host_models = []
    for h in image.hosts:
        host_models.append([offset, len(h.model)])
        inline.append(h.model)
        offset += len(h.model)
    meta = canonical_json({
        "program": header_record(image), "contents": content_digest(image), "segments": segments,
        "host_models": host_models,
        "sidecar": None if sidecar is None else {"name": sidecar.name, "sha256": sidecar.sha256,
                                                 "size": sidecar.size},
    })
    words = np.ascontiguousarray(image.words, dtype="<u4").tobytes()
    lines = np.ascontiguousarray(image.lines, dtype="<u4").tobytes()
    parts: list[bytes | memoryview] = []
    pos = _HEAD.size
    offsets = []
    for section in ([meta], [words], [lines], inline):
        size = sum(len(b) for b in section)
        offsets.append((pos, size))
        parts += section
        parts.append(bytes(_pad(size)))
        pos += size + _pad(size)
    total = pos + _SUM
    (meta_at, meta_len), (words_at, _), (lines_at, _), (data_at, data_len) = offsets
    head = _HEAD.pack(MAGIC, VERSION, 0, source_sha256, meta_at, meta_len, words_at, image.n_insns, lines_at,
                      data_at, data_len, total)
    body = b"".join([head, *parts])
    return body + hashlib.sha256(body).digest()


def _map(path: Path) -> mmap.mmap | None:
    try:
        with open(path, "rb") as f:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # missing, unreadable, empty
        return None


def from_file(path: Path, source_sha256: bytes, base_dir: Path) -> ProgramImage | None:
    """The image in the binary file `path`, or None when the file is missing, damaged, of another
    version, built from other text, or its sidecar is missing or does not match: the caller then
    assembles the text, which reports what is wrong with the sidecar, if anything."""
    mm = _map(path)
    if mm is None:
        return None
    try:
        return _decode(mm, source_sha256, base_dir)
    except (ValueError, KeyError, TypeError, IndexError, struct.error, UnicodeDecodeError):
        return None  # a file that passed its checksum yet does not decode: not ours, rebuild


def _decode(mm: mmap.mmap, source_sha256: bytes, base_dir: Path) -> ProgramImage | None:
    size = len(mm)
    if size < _HEAD.size + _SUM:
        return None
    (magic, version, _, source, meta_at, meta_len, words_at, n_insns, lines_at, data_at, data_len,
     total) = _HEAD.unpack_from(mm, 0)
    if magic != MAGIC or version != VERSION or total != size or source != source_sha256:
        return None
    buf = memoryview(mm)
    if hashlib.sha256(buf[:size - _SUM]).digest() != bytes(buf[size - _SUM:]):
        return None
    for at, length in ((meta_at, meta_len), (words_at, 4 * WORDS_PER_INSN * n_insns), (lines_at, 4 * n_insns),
                       (data_at, data_len)):
        if at % ALIGN or at + length > size - _SUM:
            return None
    meta = json.loads(bytes(buf[meta_at:meta_at + meta_len]))
    rec = meta["program"]
    data_section = buf[data_at:data_at + data_len]
    side = None
    if meta["sidecar"] is not None:
        side = _sidecar(base_dir, meta["sidecar"])
        if side is None:
            return None
    data = []
    for addr, length, where, offset in meta["segments"]:
        src = data_section if where == "inline" else side
        if src is None or offset + length > len(src):
            return None
        data.append((int(addr), src[offset:offset + length]))
    hosts = []
    for h, (offset, length) in zip(rec["hosts"], meta["host_models"], strict=True):
        hosts.append(HostOp(h["name"], h["op"], int(h["at"]), tuple(tensor_from_record(t) for t in h["tensors"]),
                            bytes(data_section[offset:offset + length])))
    words = np.frombuffer(mm, dtype="<u4", count=WORDS_PER_INSN * n_insns, offset=words_at)
    lines = np.frombuffer(mm, dtype="<u4", count=n_insns, offset=lines_at)
    from npuc.hw import HwConfig

    # the record holds the stated fields; the ones a program leaves out take today's defaults
    hw = HwConfig.from_flat(dict(rec["hw"])).to_flat()
    work = {int(i): LayerWork(int(m), int(b)) for i, (m, b) in rec.get("work", {}).items()}
    return ProgramImage(hw, int(rec["dram"]), tuple(tensor_from_record(t) for t in rec["tensors"]),
                        tuple(rec["layers"]), tuple(data), tuple(hosts), words, lines, tuple(sorted(rec["hw"])), work)


def _sidecar(base_dir: Path, info: dict[str, Any]) -> memoryview | None:
    """The sidecar's bytes, mapped, if it is there and its SHA-256 is the one recorded."""
    mm = _map(base_dir / info["name"])
    if mm is None or len(mm) != info["size"]:
        return None
    view = memoryview(mm)
    if hashlib.sha256(view).hexdigest() != info["sha256"]:
        return None
    return view
