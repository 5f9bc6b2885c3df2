"""Resource limits: refuse a model or program that would need more memory than allowed.

A malformed or hostile input (a model with a 10^5 x 10^5 input, a prog.s with
`.dram 2147483648` or `spad_kib=1048576`) must end in one clear error, not in
a machine swapping itself to death. Before allocating, the compiler and the
simulator estimate what an input needs and compare it with the limit:

* `--max-memory SIZE` on the command line, else the environment variable
  `NPUC_MAX_MEMORY`, else `DEFAULT_MAX_MEMORY` (4 GiB);
* SIZE is bytes, or a number with a unit: `512M`, `4G`, `1.5GiB`, `0` for no limit.

The estimates are deliberately coarse upper bounds of the big buffers (not of
Python's own overhead); each error names the input, what it needs and the limit.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator

ENV = "NPUC_MAX_MEMORY"
DEFAULT_MAX_MEMORY = 4 << 30
CALIB_BATCH = 16  # samples per batch in passes.calibrate (its `batch_size` default; a test checks)
REFERENCE_BYTES = 8  # the float reference computes in float64

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_override: int | None = None


class ResourceError(ValueError):
    """An input needs more memory than the configured limit; the message names it and the limit."""


def parse_size(text: str) -> int:
    """`4G`, `512M`, `1.5GiB`, `1000000` -> bytes (binary units: K = 1024). Raises ValueError."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtKMGT]?)(?:i?[bB])?\s*", text)
    if m is None:
        raise ValueError(f"memory size {text!r}: expected bytes or a number with K, M, G or T (e.g. 4G)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def max_memory() -> int:
    """The limit in bytes now in force (0: none)."""
    if _override is not None:
        return _override
    env = os.environ.get(ENV)
    if env:
        try:
            return parse_size(env)
        except ValueError as e:
            raise ResourceError(f"{ENV}={env!r}: {e}") from None
    return DEFAULT_MAX_MEMORY


@contextlib.contextmanager
def memory_limit(nbytes: int | None) -> Iterator[None]:
    """Run a block under `nbytes` (None: keep the environment's or the default limit)."""
    global _override
    saved = _override
    if nbytes is not None:
        _override = nbytes
    try:
        yield
    finally:
        _override = saved


def fmt_bytes(n: float) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def check(what: str, nbytes: float) -> None:
    """Raise ResourceError when `what` needs more than the limit."""
    limit = max_memory()
    if limit and nbytes > limit:
        raise ResourceError(f"{what} needs {fmt_bytes(nbytes)}, more than the memory limit of {fmt_bytes(limit)} "
                            f"(raise it with --max-memory or {ENV})")


def elements(shape: tuple[int, ...] | list[int]) -> int:
    return math.prod(int(d) for d in shape)


# ---- the simulator -------------------------------------------------------------------------

def program_text_bytes(text_size: int, sidecar_size: int = 0) -> int:
    """Parsing prog.s: the text, its decoded lines and an Insn object per line (measured ~6x)."""
    return 6 * text_size + 2 * sidecar_size


def simulation_bytes(dram_size: int, spad_bytes: int, acc_words: int, n_insns: int) -> int:
    """One simulation: the DRAM image in four copies (initial image, per-sample copy, the C
    core's copy, the result), SPAD and ACC, and per instruction 80 bytes of encoding plus
    16 of trace."""
    return 4 * dram_size + spad_bytes + 4 * acc_words + 96 * n_insns


def check_program(prog, source: str) -> None:
    """A parsed program (`isa.program.Program` or `isa.image.ProgramImage`) can be simulated within the limit."""
    hw = prog.hw
    spad = int(hw.get("spad_kib", 0)) * 1024
    acc = int(hw.get("acc_kib", 0)) * 256
    n = prog.n_insns if hasattr(prog, "n_insns") else len(prog.insns)  # an image, or a Program
    check(f"{source}: simulating DRAM of {prog.dram_size} bytes, SPAD of {spad} bytes, ACC of {acc} words "
          f"and {n} instructions", simulation_bytes(prog.dram_size, spad, acc, n))


def check_program_file(path, source: str) -> None:
    """A prog.s file (and a sidecar beside it) is small enough to parse within the limit."""
    from pathlib import Path

    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError:
        return  # reading it reports the error
    side = p.with_name(p.name + ".weights")
    side_size = side.stat().st_size if side.is_file() else 0
    check(f"{source}: reading a program of {size} bytes", program_text_bytes(size, side_size))


def batch_that_fits(per_sample: int, wanted: int) -> int:
    """The largest batch <= `wanted` whose working set (`per_sample` bytes a sample) fits the limit,
    at least 1: a big model (ResNet-50 at 224x224 keeps ~1 GB of float64 intermediates a sample)
    calibrates in smaller batches instead of failing; the loader already refused a model of which
    one sample does not fit."""
    limit = max_memory()
    if limit == 0 or per_sample <= 0:
        return wanted
    return max(1, min(wanted, limit // per_sample))
