"""The assembler: prog.s text <-> Program, and prog.s files with their weights sidecar.

    prog = read_program("prog.s")            # text (+ sidecar) -> Program
    write_program(prog, "prog.s")            # atomic; big data goes to prog.s.weights
    text = format_program(prog)              # canonical text
    prog = parse_program(text, "prog.s")

Three parts: `isa/asm_syntax.py` reads the syntax (`isa/npu.lark`, plus a
fast path for canonical lines), `isa/asm_check.py` checks the meaning
against `isa/table.py`, `isa/asm_print.py` prints the canonical form. Every
error is an `AsmError` reading `path:line:col: message`. The format is
specified in ISA.md, "Assembly text format".
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from npuc.fsutil import atomic_write_bytes, check_writable, read_bytes

from .asm_check import AsmError, Assembler, canonical_segments
from .asm_print import Sidecar, format_program, make_sidecar
from .image import ProgramImage, SidecarRef
from .names import BINARY_SUFFIX, SIDECAR_SUFFIX, content_name, remove_stale
from .program import Program

__all__ = [
    "DEFAULT_SIDECAR_THRESHOLD",
    "AsmError",
    "Assembled",
    "assemble",
    "canonical_segments",
    "format_program",
    "parse_program",
    "read_program",
    "write_program",
]

DEFAULT_SIDECAR_THRESHOLD = 1 << 20


@dataclass(frozen=True)
class Assembled:
    """What the assembler produces: the program, its binary form, and the sidecar it read."""

    program: Program
    image: ProgramImage
    sidecar: SidecarRef | None


def assemble(text: str, path: str = "<string>") -> Assembled:
    """Assemble prog.s text and check it holds what its `.contents` line declares.

    A `.weights` sidecar is read relative to `path`'s directory. An error on the last line
    of a text that does not end in a newline says the file may be cut there."""
    base = Path(path).parent if path != "<string>" else Path.cwd()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    asm = Assembler(path, base, lines)
    try:
        try:
            for lineno in range(1, len(lines) + 1):
                asm.feed_line(lineno)
        except AsmError:
            asm.check_deferred()  # an earlier instruction's range error comes first
            raise
        asm.check_deferred()
    except AsmError as e:
        if e.line == len(lines) and text and not text.endswith("\n"):
            raise AsmError(e.path, e.line, e.column, e.message + " (the file ends inside this line: truncated?)") \
                from None
        raise
    prog = asm.finish(len(lines))
    image = ProgramImage.from_program(prog)
    asm.check_contents(image)
    sidecar = None
    if asm.sidecar is not None:
        sidecar = SidecarRef(asm.sidecar_name, asm.sidecar_sha256, len(asm.sidecar), asm.sidecar_index)
    return Assembled(prog, image, sidecar)


def parse_program(text: str, path: str = "<string>") -> Program:
    """Assemble prog.s text. A `.weights` sidecar is read relative to `path`'s directory."""
    return assemble(text, path).program


def decode_text(raw: bytes, path: str) -> str:
    """prog.s bytes as text; bytes that are not UTF-8 are an AsmError at their line and column."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise AsmError(path, line, col, "not UTF-8 text") from None


def read_program(path: str | os.PathLike[str]) -> Program:
    """Read prog.s and, when it names one, its weights sidecar."""
    p = Path(path)
    return parse_program(decode_text(read_bytes(p), str(p)), str(p))


def write_program(prog: Program, path: str | os.PathLike[str],
                  sidecar_threshold: int = DEFAULT_SIDECAR_THRESHOLD) -> None:
    """Write prog.s atomically; data beyond `sidecar_threshold` bytes goes to a sidecar file.

    The sidecar is named by its content (`<name>.<sha256[:16]>.weights`), so
    writing a new one never touches the one the current prog.s names: each
    file is written to a temporary file in the same directory, fsynced and
    renamed into place (`npuc.fsutil`), the sidecar first and prog.s last —
    the rename of prog.s is the one moment the new program replaces the old.
    Only then are the sidecars of earlier versions and the binary caches of
    the old text removed. On any failure, temporary files are removed, and so
    is a sidecar written for this prog.s (one that was there before stays: an
    older prog.s with the same data may use it).
    """
    p = Path(path)
    check_writable(p)  # before anything is written: a sidecar must not be left beside a failure
    total = sum(len(seg) for _, seg in prog.data) + sum(len(h.model) for h in prog.hosts)
    sidecar: Sidecar | None = None
    if total > sidecar_threshold:
        sidecar = make_sidecar(prog, "")
        sidecar = dataclasses.replace(sidecar, name=content_name(p, sidecar.sha256, SIDECAR_SUFFIX).name)
    text = format_program(prog, sidecar=sidecar)
    new_sidecar = None
    if sidecar is not None:
        side_path = p.with_name(sidecar.name)
        if not side_path.exists():  # one that exists has this content: the current prog.s may use it
            new_sidecar = side_path
        atomic_write_bytes(side_path, sidecar.blob)
    try:
        atomic_write_bytes(p, text.encode("utf-8"))
    except BaseException:
        if new_sidecar is not None:
            new_sidecar.unlink(missing_ok=True)
        raise
    remove_stale(p, SIDECAR_SUFFIX, sidecar.name if sidecar is not None else None)
    remove_stale(p, BINARY_SUFFIX, None)  # caches of the old text: the next run builds a new one
