"""Fuzzing the assembler: random valid programs round-trip, mutated text ends in a Program or an AsmError.

Properties, on random programs (any instruction, fields anywhere in their
range with the extremes favoured, token masks, tensors, layers, data):

* valid programs: `parse(format(p)) == p`, printing is stable, and the binary
  encoding decodes back to the same instructions;
* mutated text (characters inserted, deleted or replaced, lines deleted,
  duplicated, swapped or cut, tokens spliced in; with and without the
  `.contents` line, see test_integrity_fuzz.py): `parse_program` either
  returns a Program or raises `AsmError` whose line and column lie inside the
  text and whose message is one line; any other exception fails. An accepted
  text is then a valid program: it prints, re-parses to itself, encodes, and
  runs on the C simulator to a result or a `SimError` naming an instruction.

Example counts come from NPUC_FUZZ_EXAMPLES (default 1500 mutated texts; the
round trip runs a fifth of that): `NPUC_FUZZ_EXAMPLES=20000 pytest tests/hardening`
for a long run.
"""

from __future__ import annotations

import os
import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npuc.hw import HwConfig
from npuc.isa.asm import AsmError, format_program, parse_program
from npuc.isa.encoding import decode, encode
from npuc.isa.program import Insn, Program, TensorInfo
from npuc.isa.table import INSNS
from npuc.sim.core import SimError, run_words

EXAMPLES = int(os.environ.get("NPUC_FUZZ_EXAMPLES", "1500"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ROUND_TRIP = settings(FUZZ, max_examples=max(1, EXAMPLES // 5))
SIM_MEMORY_CAP = 1 << 24  # accepted mutants with bigger memories are parsed but not simulated
MAX_WORK = 20_000

SPECIAL_CHARS = "\"\\\n\té\u2028 ;=,"


def _name(rnd: random.Random) -> str:
    return "".join(rnd.choice("abcxyz_0" + SPECIAL_CHARS) for _ in range(rnd.randint(0, 6)))


def _field(rnd: random.Random, f, hw: HwConfig) -> int:
    hi = {"k": hw.rows, "n": hw.cols}.get(f.name, f.hi)
    roll = rnd.random()
    if roll < 0.6:
        return rnd.randint(max(f.lo, -64), min(hi, 300))
    if roll < 0.85:
        return rnd.choice([f.lo, hi, max(f.lo, 0)])
    return rnd.randint(f.lo, hi)


def random_program(seed: int) -> Program:
    """A valid program from a seed (seeded generation is ~50x faster than composite strategies;
    hypothesis still explores and replays the seeds)."""
    rnd = random.Random(seed)
    hw = HwConfig(rows=rnd.randint(1, 16), cols=rnd.randint(1, 16), spad_kib=rnd.randint(1, 8),
                  acc_kib=rnd.randint(1, 4), dram_bw=rnd.randint(1, 64), dram_latency=rnd.randint(0, 200),
                  vec_lanes=rnd.randint(1, 16), vec_latency=rnd.randint(0, 8),
                  rounding=rnd.choice(["half_even", "half_up", "truncate", "half_away"]))
    dram = rnd.randint(128, 8192)  # the tensors below end by byte 32 + 3**4
    names = list(dict.fromkeys(_name(rnd) for _ in range(rnd.randint(0, 2))))
    tensors = [TensorInfo(n, rnd.choice(["input", "output"]), rnd.randint(0, 32),
                          (1,) + tuple(rnd.randint(1, 3) for _ in range(3)), rnd.choice(["nhwc", "flat"]),
                          rnd.choice([0.5, 1e-6, 3.0, rnd.uniform(1e-6, 1e6)]), rnd.randint(-128, 127))
               for n in names]
    layers = [_name(rnd) for _ in range(rnd.randint(0, 3))]
    data, addr = [], rnd.randint(0, 40)
    for _ in range(rnd.randint(0, 2)):
        size = rnd.randint(1, 40)
        if addr + size > dram:
            break
        data.append((addr, rnd.randbytes(size)))
        addr += size + rnd.randint(1, 50)
    body = []
    for _ in range(rnd.randint(0, 8)):
        spec = rnd.choice(INSNS)
        fields = tuple(_field(rnd, f, hw) for f in spec.fields)
        wait, signal = (rnd.choice([0, 0, rnd.randint(0, 3), rnd.randint(0, 0xFFFF)]) for _ in range(2))
        body.append(Insn(spec.mnemonic, fields, wait, signal, rnd.randint(0, max(0, len(layers) - 1))))
    return Program(hw.to_flat(), dram, tensors, layers, data, body)


seeds = st.integers(0, 2**64 - 1)


# ---- valid programs ------------------------------------------------------------------------------

@ROUND_TRIP
@given(seeds)
def test_valid_programs_round_trip(seed):
    prog = random_program(seed)
    text = format_program(prog)
    back = parse_program(text)
    assert back == prog
    assert format_program(back) == text
    assert decode(encode(back.insns)) == back.insns


# ---- mutated text --------------------------------------------------------------------------------

CHARS = list("0123456789abcdefxXz=,;.@-+\"\\() \t\r\n") + ["é", "\x00", "\u2028", "ｘ", "\ufeff"]
TOKENS = [".npuc 1", ".hw", ".dram 0", ".dram 4294967296", ".layer 0 \"l\"", ".layer 9 \"x\"",
          ".data 0x0 zz", ".data 0x10 00ff", ".segment 0 0 1", ".weights \"w\" sha256=00", ".tensor",
          "@layer 0", "@layer 7", "gemm", "vrq", "ld", "wait=16", "signal=0,0", "k=99999", "n=0",
          "dst=-1", "=", "0x", "-0x", "1e5", "1.5", "()", "\"\\u00e9\"", "\"unterminated", "rows=0",
          "spad_kib=1048576", "acc=2", "fill=128", "; comment", "2147483648", "-2147483649"]


MUTATIONS = ["insert", "delete", "replace", "token", "line-delete", "line-dup", "line-swap", "cut"]


def mutate(text: str, rnd: random.Random) -> str:
    for _ in range(rnd.randint(1, 4)):
        kind = rnd.choice(MUTATIONS)
        lines = text.split("\n")
        pos = rnd.randint(0, len(text))
        if kind == "insert":
            text = text[:pos] + rnd.choice(CHARS) + text[pos:]
        elif kind == "delete":
            text = text[:pos] + text[pos + rnd.randint(1, 8):]
        elif kind == "replace" and pos < len(text):
            text = text[:pos] + rnd.choice(CHARS) + text[pos + 1:]
        elif kind == "token":
            text = text[:pos] + rnd.choice(["", " "]) + rnd.choice(TOKENS) + text[pos:]
        elif kind == "line-delete" and len(lines) > 1:
            del lines[rnd.randrange(len(lines))]
            text = "\n".join(lines)
        elif kind == "line-dup":
            lines.insert(rnd.randint(0, len(lines)), lines[rnd.randrange(len(lines))])
            text = "\n".join(lines)
        elif kind == "line-swap":
            i, j = rnd.randrange(len(lines)), rnd.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        elif kind == "cut":
            text = text[:pos]
    return text


def _check_error(e: AsmError, text: str) -> None:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    assert 1 <= e.line <= max(1, len(lines)), (e.line, len(lines), str(e))
    line = lines[e.line - 1] if lines else ""
    assert 1 <= e.column <= len(line) + 1, (e.column, line, str(e))
    assert str(e) == f"{e.path}:{e.line}:{e.column}: {e.message}"
    assert e.message and "\n" not in str(e), str(e)


def _simulate(prog: Program) -> None:
    hw = HwConfig.from_flat(prog.hw)
    if prog.dram_size + hw.spad_bytes + 4 * hw.acc_words > SIM_MEMORY_CAP:
        return
    dram = np.zeros(prog.dram_size, np.uint8)
    for addr, blob in prog.data:
        dram[addr:addr + len(blob)] = np.frombuffer(blob, np.uint8)
    try:
        r = run_words(encode(prog.insns), dram, hw, max_work=MAX_WORK)
    except SimError as e:
        assert -1 <= e.insn <= len(prog.insns) and e.message, str(e)
        if e.insn >= 0:
            assert str(e).startswith(f"insn {e.insn}: ")
        return
    assert r.dram.shape == (prog.dram_size,)


@FUZZ
@given(seeds, seeds)
def test_mutated_text_ends_in_a_program_or_a_located_error(program_seed, mutation_seed):
    # half the texts without `.contents`, as hand-written: with it, most mutants stop at its checks
    text = format_program(random_program(program_seed), contents=bool(program_seed & 1))
    text = mutate(text, random.Random(mutation_seed))
    try:
        prog = parse_program(text, "fuzz.s")
    except AsmError as e:
        _check_error(e, text)
        return
    canonical = format_program(prog)
    assert parse_program(canonical) == prog  # whatever was accepted is a valid program
    _simulate(prog)
