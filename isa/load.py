"""Load prog.s for a run: from its binary cache when that is intact, else from the text.

    image = load_program("prog.s")       # ProgramImage; builds prog.s.<sha>.npub on a miss

The text is the source of truth; the cache (`isa/binprog.py`) is named by the
SHA-256 of prog.s's bytes, so an edited prog.s never meets an old cache. A
missing, stale or damaged cache is rebuilt from the text, never used and
never an error; a cache that cannot be written (a read-only directory, a
full disk) is simply not written. The text path imports the assembler (and
lark); the cache path does not.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from npuc.fsutil import atomic_write_bytes, read_bytes

from . import binprog
from .image import ProgramImage
from .names import BINARY_SUFFIX, content_name, remove_stale


def load_program(path: str | os.PathLike[str], *, cache: bool = True) -> ProgramImage:
    """The program at `path` in binary form. Raises AsmError (or FileReadError) for a bad one.

    `cache=False` parses the text and neither reads nor writes a cache."""
    p = Path(path)
    raw = read_bytes(p)
    key = hashlib.sha256(raw).digest()
    binary = content_name(p, key.hex(), BINARY_SUFFIX)
    if cache:
        image = binprog.from_file(binary, key, p.parent)
        if image is not None:
            return image
    from .asm import assemble, decode_text  # the text path: the assembler and lark, only now

    asm = assemble(decode_text(raw, str(p)), str(p))
    if cache:
        _write_cache(p, binary, binprog.to_bytes(asm.image, key, asm.sidecar))
    return asm.image


def _write_cache(program: Path, binary: Path, blob: bytes) -> None:
    """Write the cache atomically (no fsync: its checksum catches a torn file), then remove the
    caches of earlier texts of the same prog.s. Failing to write is not an error."""
    with contextlib.suppress(OSError):
        atomic_write_bytes(binary, blob, durable=False)
        remove_stale(program, BINARY_SUFFIX, binary.name)
