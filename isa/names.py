"""Files beside prog.s named by content: the weights sidecar and the binary program cache.

`prog.s.<16 hex>.weights` (the SHA-256 of the sidecar's bytes) and
`prog.s.<16 hex>.npub` (the SHA-256 of prog.s's bytes): a new version of a
program never overwrites a file an older one may still use, and the files of
older versions are removed once the new one is in place.
"""

from __future__ import annotations

import glob
from pathlib import Path

SIDECAR_SUFFIX = ".weights"
BINARY_SUFFIX = ".npub"  # the binary program cache (isa/binprog.py)
_HEX = frozenset("0123456789abcdef")


def content_name(program: Path, digest: str, suffix: str) -> Path:
    """`<program>.<first 16 hex digits of digest><suffix>`, beside `program`."""
    return program.with_name(f"{program.name}.{digest[:16]}{suffix}")


def is_content_name(candidate: str, program: str, suffix: str) -> bool:
    """`prog.s<suffix>` (the older, unhashed name) or `prog.s.<16 hex><suffix>`."""
    if not (candidate.startswith(program) and candidate.endswith(suffix)):
        return False
    middle = candidate[len(program):len(candidate) - len(suffix)]
    return middle == "" or (len(middle) == 17 and middle[0] == "." and set(middle[1:]) <= _HEX)


def remove_stale(program: Path, suffix: str, keep: str | None) -> None:
    """Remove the content-named `suffix` files of `program` but `keep`: those of earlier versions."""
    for stale in program.parent.glob(f"{glob.escape(program.name)}*{suffix}"):
        if stale.name != keep and is_content_name(stale.name, program.name, suffix):
            stale.unlink(missing_ok=True)
