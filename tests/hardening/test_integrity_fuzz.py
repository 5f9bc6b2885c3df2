"""Property tests of program integrity on random programs (the generator of test_asm_fuzz.py).

* A compiled-form text (with its `.contents` line) damaged once — cut after a
  line or inside one, a line deleted or repeated, a character replaced —
  either fails with an AsmError or assembles to the same content hash; when a
  line of content (anything but a blank line, a comment, an `@layer` or the
  `.contents` line) is lost or repeated, it fails.
* The binary cache of a random program loads back to the same image, and
  with any one byte flipped it is refused.

NPUC_FUZZ_EXAMPLES sets the examples (default 1500; a third of that for the cache).
"""

from __future__ import annotations

import hashlib
import importlib.util
import random
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npuc.isa import binprog
from npuc.isa.asm import AsmError, assemble, format_program
from npuc.isa.image import ProgramImage, content_digest

_spec = importlib.util.spec_from_file_location("asm_fuzz", Path(__file__).with_name("test_asm_fuzz.py"))
assert _spec is not None and _spec.loader is not None
asm_fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(asm_fuzz)

FUZZ = settings(max_examples=asm_fuzz.EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CACHE = settings(FUZZ, max_examples=max(1, asm_fuzz.EXAMPLES // 3))
seeds = st.integers(0, 2**64 - 1)


def _content(line: str) -> bool:
    s = line.strip(" \t\r")
    return bool(s) and not s.startswith((";", "@layer", ".contents"))


def _damage(text: str, rnd: random.Random) -> tuple[str, bool]:
    """(damaged text, whether it must fail)."""
    lines = text.split("\n")[:-1]  # the text ends in a newline
    kind = rnd.choice(["cut", "cut-inside", "delete", "repeat", "replace"])
    if kind == "cut":
        k = rnd.randrange(len(lines))
        return "".join(ln + "\n" for ln in lines[:k]), any(map(_content, lines[k:]))
    if kind == "cut-inside":
        return text[:rnd.randrange(len(text))], False
    i = rnd.randrange(len(lines))
    if kind == "delete":
        return "".join(ln + "\n" for j, ln in enumerate(lines) if j != i), _content(lines[i])
    if kind == "repeat":
        return "".join(ln + "\n" for ln in lines[:i + 1] + lines[i:]), _content(lines[i]) or \
            lines[i].startswith(".contents")
    pos = rnd.randrange(len(text))
    return text[:pos] + rnd.choice("0123456789abcdef=, ;.x-") + text[pos + 1:], False


@FUZZ
@given(seeds, seeds)
def test_damaged_text_fails_or_is_the_same_program(program_seed, damage_seed):
    prog = asm_fuzz.random_program(program_seed)
    text = format_program(prog)
    digest = content_digest(ProgramImage.from_program(prog))
    damaged, must_fail = _damage(text, random.Random(damage_seed))
    try:
        image = assemble(damaged, "fuzz.s").image
    except AsmError as e:
        asm_fuzz._check_error(e, damaged)
        return
    assert not must_fail, "lost or repeated content was accepted"
    assert content_digest(image) == digest, "the damaged text assembled to another program"


@CACHE
@given(seeds, seeds)
def test_the_cache_round_trips_and_refuses_any_flipped_byte(tmp_path_factory, program_seed, flip_seed):
    prog = asm_fuzz.random_program(program_seed)
    image = ProgramImage.from_program(prog)
    key = hashlib.sha256(str(program_seed).encode()).digest()
    blob = binprog.to_bytes(image, key)
    d = tmp_path_factory.mktemp("cache")
    path = d / "p.s.npub"
    path.write_bytes(blob)
    back = binprog.from_file(path, key, d)
    assert back is not None and content_digest(back) == content_digest(image)
    assert np.array_equal(back.lines, image.lines) and back.to_program() == prog
    i = random.Random(flip_seed).randrange(len(blob))
    path.write_bytes(blob[:i] + bytes([blob[i] ^ (1 << (flip_seed % 8))]) + blob[i + 1:])
    assert binprog.from_file(path, key, d) is None
