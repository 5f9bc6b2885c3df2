"""Program -> prog.s text, in the one canonical form the assembler reads back.

`parse_program(format_program(p)) == p` for every valid program, and the
output is stable (`format_program(parse_program(t))` is t's canonical form),
so golden files diff cleanly. Instructions are printed in the fast path's
form (isa/asm_syntax.py): that keeps big programs quick to read back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from npuc.hw import HwConfig

from .image import ProgramImage, content_digest
from .program import HostOp, Insn, Program, TensorInfo
from .table import BY_MNEMONIC, INSNS

FORMAT_VERSION = 1
DATA_BYTES_PER_LINE = 64
_MNEMONIC_WIDTH = max(len(s.mnemonic) for s in INSNS)
_HW_ORDER = tuple(HwConfig().to_flat())

# "gemm  dst={} a={} ..." per mnemonic: one str.format call per instruction
_INSN_FORMAT = {s.mnemonic: " ".join([s.mnemonic.ljust(_MNEMONIC_WIDTH)] + [f"{f.name}={{}}" for f in s.fields])
                for s in INSNS}


@dataclass(frozen=True)
class Sidecar:
    """The data segments, then the host ops' models, as one blob: `blob[offset:offset+len]`
    goes to DRAM `addr` (`index`), or is host op `id`'s model (`host_index`)."""

    name: str  # file name written in the header, relative to the .s file
    blob: bytes
    index: tuple[tuple[int, int, int], ...]  # (addr, offset, len) per segment
    host_index: tuple[tuple[int, int, int], ...] = ()  # (host id, offset, len) per host op

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.blob).hexdigest()


def make_sidecar(prog: Program, name: str) -> Sidecar:
    """Concatenate the data segments, in program order, and the host models into a sidecar blob."""
    index, host_index, offset = [], [], 0
    for addr, seg in prog.data:
        index.append((addr, offset, len(seg)))
        offset += len(seg)
    for hid, h in enumerate(prog.hosts):
        host_index.append((hid, offset, len(h.model)))
        offset += len(h.model)
    blob = b"".join([*(seg for _, seg in prog.data), *(h.model for h in prog.hosts)])
    return Sidecar(name, blob, tuple(index), tuple(host_index))


def quote(s: str) -> str:
    """A string in the grammar's STRING syntax (JSON escapes, UTF-8 kept)."""
    return json.dumps(s, ensure_ascii=False)


def format_value(v: Any) -> str:
    """A .hw / .tensor value: strings quoted, bools true / false, floats by repr (exact round trip),
    ints decimal."""
    if isinstance(v, str):
        return quote(v)
    if isinstance(v, bool):  # a Bool hardware field, as TOML writes it
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (tuple, list)):
        return ",".join(str(int(x)) for x in v) if v else "()"
    return str(int(v))


@cache
def format_tokens(mask: int) -> str:
    """A token mask as the set of its bits: 0b1001 -> "0,3"."""
    return ",".join(str(b) for b in range(16) if mask >> b & 1)


def format_insn(insn: Insn) -> str:
    text = _INSN_FORMAT[insn.op].format(*insn.fields)
    if insn.wait:
        text += " wait=" + format_tokens(insn.wait)
    if insn.signal:
        text += " signal=" + format_tokens(insn.signal)
    return text


def _tensor_line(t: TensorInfo, head: str = ".tensor") -> str:
    dtype = "" if t.dtype == "int8" else f" dtype={t.dtype}"  # int8, the default, goes unsaid
    return (f"{head} name={quote(t.name)} role={t.role} addr=0x{t.addr:x} shape={format_value(t.shape)}"
            f" layout={t.layout} scale={float(t.scale)!r} zp={t.zp}{dtype}")


def _layer_line(prog: Program, i: int, name: str) -> str:
    work = prog.work.get(i)
    return f".layer {i} {quote(name)}" + (f" macs={work.macs} bytes={work.bytes}" if work is not None else "")


def _hw_line(hw: dict[str, Any]) -> str:
    keys = [k for k in _HW_ORDER if k in hw] + [k for k in hw if k not in _HW_ORDER]
    return ".hw " + " ".join(f"{k}={format_value(hw[k])}" for k in keys)


def _data_lines(prog: Program) -> list[str]:
    out = []
    for addr, seg in prog.data:
        for off in range(0, len(seg), DATA_BYTES_PER_LINE):
            out.append(f".data 0x{addr + off:08x} {seg[off:off + DATA_BYTES_PER_LINE].hex()}")
    return out


def _host_lines(prog: Program, sidecar: Sidecar | None) -> list[str]:
    """Per host op: `.host`, its tensors, its model (hex pieces, or its place in the sidecar)."""
    out = []
    for hid, h in enumerate(prog.hosts):
        out.append(f".host {hid} {quote(h.name)} {quote(h.op)}")
        out += [_tensor_line(t, f".host_tensor {hid}") for t in h.tensors]
        if sidecar is not None:
            _, off, n = sidecar.host_index[hid]
            out.append(f".host_segment {hid} {off} {n}")
        else:
            out += [f".host_model {hid} {h.model[i:i + DATA_BYTES_PER_LINE].hex()}"
                    for i in range(0, len(h.model), DATA_BYTES_PER_LINE)]
    return out


def _host_marker(hid: int, h: HostOp) -> str:
    name, op = (s if s.isprintable() else json.dumps(s) for s in (h.name, h.op))  # a comment is one line
    return f"@host {hid}  ; {name} ({op}) runs on the host"


def _sidecar_lines(sidecar: Sidecar) -> list[str]:
    out = [f".weights {quote(sidecar.name)} sha256={sidecar.sha256}"]
    out += [f".segment 0x{addr:08x} {off} {n}" for addr, off, n in sidecar.index]
    return out


def _body_lines(prog: Program) -> list[str]:
    """Instructions, with an `@layer` line (layer name in its comment) where the layer changes
    and an `@host` line where a host op runs."""
    out: list[str] = []
    layer = None if prog.layers else 0  # with a layer table, always say where the body starts
    hosts = sorted(enumerate(prog.hosts), key=lambda e: (e[1].at, e[0]))
    k = 0
    for i, insn in enumerate(prog.insns):
        while k < len(hosts) and hosts[k][1].at <= i:
            out += ["", _host_marker(*hosts[k])]
            k += 1
        if insn.layer != layer:
            layer = insn.layer
            name = prog.layers[layer] if layer < len(prog.layers) else "?"
            out += ["", f"@layer {layer}  ; {name if name.isprintable() else json.dumps(name)}"]
        out.append(format_insn(insn))
    for hid, h in hosts[k:]:  # host ops after the last instruction
        out += ["", _host_marker(hid, h)]
    if out and out[0]:
        out.insert(0, "")
    return out


def contents_line(prog: Program) -> str:
    """`.contents insns=N data=B sha256=H`: what the program holds (ISA.md, "Program integrity")."""
    image = ProgramImage.from_program(dataclasses.replace(prog, hw_keys=None))  # the .hw line states every field
    return f".contents insns={image.n_insns} data={image.data_bytes()} sha256={content_digest(image)}"


def format_program(prog: Program, weights_file: str | None = None, *, sidecar: Sidecar | None = None,
                   contents: bool = True) -> str:
    """The canonical text of `prog`.

    With `weights_file`, the data segments are referenced from that sidecar
    file (`.weights` + `.segment` lines; the caller writes `make_sidecar`'s
    blob there) instead of printed inline as `.data` hex. The `.contents` line
    comes second, right after `.npuc`, so that a file cut anywhere after it still
    says what it lacks; `contents=False` leaves it out (a hand-written program's form).
    """
    for insn in prog.insns:
        spec = BY_MNEMONIC.get(insn.op)
        if spec is None or len(insn.fields) != len(spec.fields):
            raise ValueError(f"cannot print {insn.op} with {len(insn.fields)} fields")
    ats = [h.at for h in prog.hosts]
    if ats != sorted(ats) or any(not 0 <= a <= len(prog.insns) for a in ats):
        raise ValueError(f"host ops must run in id order at instruction indices in [0, {len(prog.insns)}]: {ats}")
    lines = [f".npuc {FORMAT_VERSION}"]
    if contents:
        lines.append(contents_line(prog))
    lines += [_hw_line(prog.hw), f".dram {prog.dram_size}"]
    lines += [_tensor_line(t) for t in prog.tensors]
    lines += [_layer_line(prog, i, name) for i, name in enumerate(prog.layers)]
    if weights_file is not None or sidecar is not None:
        sidecar = sidecar or make_sidecar(prog, weights_file or "")
        lines += _sidecar_lines(sidecar)
    else:
        lines += _data_lines(prog)
    lines += _host_lines(prog, sidecar)
    lines += _body_lines(prog)
    return "\n".join(lines) + "\n"
