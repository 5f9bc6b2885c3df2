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
import glob
import os
from pathlib import Path

from npuc.fsutil import atomic_write_bytes

from .asm_check import AsmError, Assembler, canonical_segments
from .asm_print import Sidecar, format_program, make_sidecar
from .program import Program

__all__ = [
    "DEFAULT_SIDECAR_THRESHOLD",
    "AsmError",
    "canonical_segments",
    "format_program",
    "parse_program",
    "read_program",
    "write_program",
]

DEFAULT_SIDECAR_THRESHOLD = 1 << 20


def parse_program(text: str, path: str = "<string>") -> Program:
    """Assemble prog.s text. A `.weights` sidecar is read relative to `path`'s directory."""
    base = Path(path).parent if path != "<string>" else Path.cwd()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    asm = Assembler(path, base, lines)
    try:
        for lineno in range(1, len(lines) + 1):
            asm.feed_line(lineno)
    except AsmError:
        asm.check_deferred()  # an earlier instruction's range error comes first
        raise
    asm.check_deferred()
    return asm.finish(len(lines))


def read_program(path: str | os.PathLike[str]) -> Program:
    """Read prog.s and, when it names one, its weights sidecar."""
    p = Path(path)
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise AsmError(str(p), line, col, "not UTF-8 text") from None
    return parse_program(text, str(p))


def _is_sidecar_name(candidate: str, program: str) -> bool:
    """`prog.s.weights` (older name) or `prog.s.<16 hex>.weights`."""
    middle = candidate[len(program):-len(".weights")]
    return middle == "" or (len(middle) == 17 and middle[0] == "." and all(c in "0123456789abcdef" for c in middle[1:]))


def write_program(prog: Program, path: str | os.PathLike[str],
                  sidecar_threshold: int = DEFAULT_SIDECAR_THRESHOLD) -> None:
    """Write prog.s atomically; data beyond `sidecar_threshold` bytes goes to a sidecar file.

    The sidecar is named by its content (`<name>.<sha256[:16]>.weights`), so
    writing a new one never touches the one the current prog.s names: each
    file is written to a temporary file in the same directory, fsynced and
    renamed into place (`npuc.fsutil`), the sidecar first and prog.s last —
    the rename of prog.s is the one moment the new program replaces the old.
    Only then are sidecars of earlier versions removed. Temporary files are
    removed on any failure.
    """
    p = Path(path)
    total = sum(len(seg) for _, seg in prog.data) + sum(len(h.model) for h in prog.hosts)
    sidecar: Sidecar | None = None
    if total > sidecar_threshold:
        sidecar = make_sidecar(prog, "")
        sidecar = dataclasses.replace(sidecar, name=f"{p.name}.{sidecar.sha256[:16]}.weights")
    text = format_program(prog, sidecar=sidecar)
    if sidecar is not None:
        atomic_write_bytes(p.with_name(sidecar.name), sidecar.blob)
    atomic_write_bytes(p, text.encode("utf-8"))
    keep = sidecar.name if sidecar is not None else None
    for stale in p.parent.glob(f"{glob.escape(p.name)}.*weights"):
        if stale.name != keep and _is_sidecar_name(stale.name, p.name):
            stale.unlink(missing_ok=True)
