"""Instructions <-> the binary stream the simulators execute (ISA.md, "Binary encoding").

One instruction is `WORDS_PER_INSN` little-endian uint32 words: word 0 holds
the opcode (bits 0-7, bits 8-15 reserved zero) and the layer id (bits 16-31),
word 1 the wait (bits 0-15) and signal (bits 16-31) token masks, words 2.. the
fields in table order as int32, unused words zero. Everything comes from
`isa/table.py`. Both directions work per mnemonic on whole numpy columns:
programs have 10^5-10^6 instructions.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

import numpy as np

from .program import Insn
from .table import BY_MNEMONIC, BY_OPCODE, HEADER_WORDS, INSNS, MAX_LAYERS, WORDS_PER_INSN, InsnSpec

_U16 = 0xFFFF


class EncodeError(ValueError):
    """An instruction cannot be encoded; `insn` is its index in the list."""

    def __init__(self, insn: int, message: str) -> None:
        super().__init__(f"insn {insn}: {message}")
        self.insn = insn
        self.message = message


class DecodeError(ValueError):
    """A malformed instruction word; `insn` is its index. Texts match the C simulator's decoder."""

    def __init__(self, insn: int, message: str) -> None:
        super().__init__(f"insn {insn}: {message}")
        self.insn = insn
        self.message = message


def _bounds(spec: InsnSpec) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([f.lo for f in spec.fields], dtype=np.int64),
            np.array([f.hi for f in spec.fields], dtype=np.int64))


_BOUNDS = {s.mnemonic: _bounds(s) for s in INSNS}


def encode(insns: Sequence[Insn]) -> np.ndarray:
    """The uint32 words of `insns`, `WORDS_PER_INSN` per instruction, as one flat array.

    Raises EncodeError for the first (lowest-index) instruction that has an
    unknown mnemonic, a wrong number of fields, a field outside its table
    range, or a token mask or layer id that does not fit 16 bits; the message
    gives its prog.s line when known.
    """
    n = len(insns)
    out = np.zeros((n, WORDS_PER_INSN), dtype=np.uint32)
    errors: list[tuple[int, str]] = []  # the first bad instruction of each kind of check
    by_op: dict[str, list[int]] = {}
    for i, insn in enumerate(insns):
        by_op.setdefault(insn.op, []).append(i)
    for op, idx in by_op.items():
        error = _encode_op(insns, op, idx, out)
        if error is not None:
            errors.append(error)
    head = np.stack([np.fromiter((i.layer for i in insns), dtype=np.int64, count=n),
                     np.fromiter((i.wait for i in insns), dtype=np.int64, count=n),
                     np.fromiter((i.signal for i in insns), dtype=np.int64, count=n)], axis=1)
    bad = np.flatnonzero(((head < 0) | (head > _U16)).any(axis=1))
    if bad.size:
        i = int(bad[0])
        errors.append((i, (f"layer {insns[i].layer}, wait 0x{insns[i].wait:x} and signal 0x{insns[i].signal:x} "
                           f"must each fit 16 bits (layers < {MAX_LAYERS})")))
    if errors:
        i, message = min(errors)
        raise EncodeError(i, _where(insns[i]) + message)
    out[:, 0] |= (head[:, 0] << 16).astype(np.uint32)
    out[:, 1] = (head[:, 1] | head[:, 2] << 16).astype(np.uint32)
    return out.reshape(-1)


def _encode_op(insns: Sequence[Insn], op: str, idx: list[int], out: np.ndarray) -> tuple[int, str] | None:
    """Fill the rows `idx` (all instructions `op`) of `out`; or the first bad one and what is wrong."""
    spec = BY_MNEMONIC.get(op)
    if spec is None:
        return idx[0], f"unknown mnemonic {op!r}"
    nf = len(spec.fields)
    rows_fields = [insns[i].fields for i in idx]
    try:
        if any(len(f) != nf for f in rows_fields):
            raise ValueError("a row has the wrong number of fields")
        vals = np.fromiter(chain.from_iterable(rows_fields), dtype=np.int64, count=len(idx) * nf)
    except (ValueError, OverflowError, TypeError):
        bad = next(i for i, f in zip(idx, rows_fields) if len(f) != nf or not _fits_int64(f))
        return bad, f"{op} needs {nf} int32 fields, got {insns[bad].fields!r}"
    vals = vals.reshape(len(idx), nf)
    lo, hi = _BOUNDS[op]
    bad_rows = np.flatnonzero(((vals < lo) | (vals > hi)).any(axis=1))
    if bad_rows.size:
        r = int(bad_rows[0])
        f = int(np.flatnonzero((vals[r] < lo) | (vals[r] > hi))[0])
        fd = spec.fields[f]
        return idx[r], f"{op} {fd.name} = {int(vals[r, f])} outside [{fd.lo}, {fd.hi}]"
    rows = np.asarray(idx, dtype=np.intp)
    out[rows, 0] = spec.opcode
    out[rows, HEADER_WORDS:HEADER_WORDS + nf] = (vals & 0xFFFFFFFF).astype(np.uint32)
    return None


def _fits_int64(fields: tuple[int, ...]) -> bool:
    return all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and -(1 << 63) <= v < 1 << 63
               for v in fields)


def _where(insn: Insn) -> str:
    return f"(line {insn.line}) " if insn.line else ""


def decode(words: np.ndarray | Sequence[int]) -> list[Insn]:
    """The instructions of a word stream; the inverse of `encode`.

    Checks every instruction as the C simulator's decoder does (a known
    opcode, zero reserved bits and unused words, fields inside their table
    ranges) and raises DecodeError for the first bad one.
    """
    w = np.asarray(words, dtype=np.uint32).reshape(-1)
    if w.size % WORDS_PER_INSN:
        n = w.size // WORDS_PER_INSN
        raise DecodeError(n, f"truncated: {w.size % WORDS_PER_INSN} of {WORDS_PER_INSN} words")
    rows = w.reshape(-1, WORDS_PER_INSN)
    _check_words(rows)
    n = rows.shape[0]
    opcodes = rows[:, 0] & 0xFF
    layers = (rows[:, 0] >> 16).tolist()
    waits = (rows[:, 1] & _U16).tolist()
    signals = (rows[:, 1] >> 16).tolist()
    fields: list[tuple[int, ...]] = [()] * n
    ops: list[str] = [""] * n
    for spec in INSNS:
        idx = np.flatnonzero(opcodes == spec.opcode)
        if not idx.size:
            continue
        vals = rows[idx, HEADER_WORDS:HEADER_WORDS + len(spec.fields)].view(np.int32).tolist()
        for i, v in zip(idx.tolist(), map(tuple, vals)):
            fields[i] = v
            ops[i] = spec.mnemonic
    return list(map(Insn, ops, fields, waits, signals, layers))


def _check_words(rows: np.ndarray) -> None:
    """Raise DecodeError for the first malformed instruction (lowest index, then the C check order)."""
    opcodes = rows[:, 0] & 0xFF
    known = np.isin(opcodes, list(BY_OPCODE))
    bad = ~known | ((rows[:, 0] >> 8) & 0xFF != 0)
    for spec in INSNS:
        sel = opcodes == spec.opcode
        if not sel.any():
            continue
        nf = len(spec.fields)
        vals = rows[sel, HEADER_WORDS:HEADER_WORDS + nf].view(np.int32).astype(np.int64)
        lo, hi = _BOUNDS[spec.mnemonic]
        out = ((vals < lo) | (vals > hi)).any(axis=1) | (rows[sel, HEADER_WORDS + nf:] != 0).any(axis=1)
        bad[sel] |= out
    hits = np.flatnonzero(bad)
    if hits.size:
        i = int(hits[0])
        raise DecodeError(i, _describe_bad(rows[i]))


def _describe_bad(row: np.ndarray) -> str:
    opcode = int(row[0] & 0xFF)
    spec = BY_OPCODE.get(opcode)
    if spec is None:
        return f"unknown opcode 0x{opcode:02x}"
    reserved = int(row[0] >> 8 & 0xFF)
    if reserved:
        return f"{spec.mnemonic}: reserved bits 8-15 of word 0 are 0x{reserved:02x}, must be 0"
    for f, fd in enumerate(spec.fields):
        v = int(row[HEADER_WORDS + f].view(np.int32))
        if not fd.lo <= v <= fd.hi:
            return f"{spec.mnemonic} {fd.name} = {v} outside [{fd.lo}, {fd.hi}]"
    for j in range(HEADER_WORDS + len(spec.fields), WORDS_PER_INSN):
        if row[j]:
            return f"{spec.mnemonic}: unused word {j} is 0x{int(row[j]):08x}, must be 0"
    raise AssertionError("a bad instruction with nothing wrong")
