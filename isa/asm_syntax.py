"""prog.s text -> line items: the lark grammar (`isa/npu.lark`) plus a fast path.

The grammar is the definition of the syntax. A line of prog.s is one item (a
directive, a layer scope or an instruction), so the text is parsed line by
line. Lark's pure-Python LALR parser reads ~2,000 fifteen-field instruction
lines a second, far too slow for programs of 10^5-10^6 instructions, so lines
already in the printer's canonical form (single blanks, `key=value` without
spaces, integer values) are recognized by strict regular expressions and
split with str methods. The fast path accepts a subset of the grammar's
language and builds the same item; every other line goes through lark, and a
test checks both paths agree. Fast-path items carry no token columns: the
assembler asks for a lark re-parse of the line when it must report an error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import cast

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from .table import INSNS, NUM_TOKENS

GRAMMAR_PATH = Path(__file__).with_name("npu.lark")


class Word(str):
    """A bare identifier used as a value (`role=input`), unlike a quoted string."""


Value = int | float | str | tuple[int, ...]


@dataclass(slots=True)
class ItemPos:
    """1-based columns of an item's tokens, for error messages."""

    args: list[int]  # each positional operand
    keys: list[int]  # each key of a key=value operand
    values: list[tuple[int, ...]]  # each value; one column per element of an integer list


@dataclass(slots=True)
class Item:
    """One non-blank line: a directive, a layer scope or an instruction.

    `kind` is the grammar rule (`version`, `contents`, `hw`, `dram`, `tensor`, `layer`,
    `data`, `weights`, `segment`, `host`, `host_tensor`, `host_model`,
    `host_segment`, `scope`, `host_at`, `insn`); `head` is the mnemonic of
    an instruction. Positional operands are already converted (ints, bytes of a
    `.data` line, decoded strings); key=value operands keep source order.
    """

    kind: str
    line: int
    col: int
    head: str
    args: tuple
    kvs: list[tuple[str, Value]]
    pos: ItemPos | None  # None for a fast-path item


class SyntaxFault(Exception):
    """A syntax error at a column of the line being parsed (the caller adds path and line)."""

    def __init__(self, col: int, message: str) -> None:
        super().__init__(message)
        self.col = col
        self.message = message


def parse_int(text: str) -> int:
    """An INT token's value: decimal, or hex with a 0x prefix; both may be negative."""
    try:
        return int(text)
    except ValueError:
        return int(text, 16)


def decode_hex(text: str, col: int) -> bytes:
    """The bytes of a HEX token starting at `col`; a bad digit is reported at its column."""
    try:
        return bytes.fromhex(text)
    except ValueError:
        pass
    for i, ch in enumerate(text):
        if ch not in "0123456789abcdefABCDEF":
            raise SyntaxFault(col + i, f"bad hex digit {ch!r}")
    raise SyntaxFault(col, f"odd number of hex digits ({len(text)}): bytes are two digits each")


# ---- the lark path -----------------------------------------------------------------------


class _V:
    """A transformed value with the columns of its tokens."""

    __slots__ = ("cols", "value")

    def __init__(self, value: Value, cols: tuple[int, ...]) -> None:
        self.value = value
        self.cols = cols


def _col(tok: Token) -> int:
    return tok.column or 0


def _value(v: _V | Token) -> _V:
    if isinstance(v, _V):
        return v
    col = _col(v)
    if v.type == "FLOAT":
        return _V(float(v), (col,))
    if v.type == "STRING":
        return _V(_string(v), (col,))
    return _V(Word(v), (col,))  # NAME


def _string(tok: Token) -> str:
    try:
        s = json.loads(tok)
    except json.JSONDecodeError as e:
        raise SyntaxFault(_col(tok) + e.pos, f"bad string: {e.msg}") from None
    assert isinstance(s, str)
    return s


class _ToItems(Transformer):
    """Tree -> Item, one per line. Runs inside the LALR parser (no tree is built)."""

    def ints(self, toks: list[Token]) -> _V:
        cols = tuple(_col(t) for t in toks)
        if len(toks) == 1:
            return _V(parse_int(toks[0]), cols)
        return _V(tuple(parse_int(t) for t in toks), cols)

    def empty(self, toks: list[Token]) -> _V:
        return _V((), (_col(toks[0]),))

    def kv(self, c: list) -> tuple[str, int, _V]:
        return (str(c[0]), _col(c[0]), _value(c[1]))

    def _kvs_item(self, kind: str, head: str, kvs: list[tuple[str, int, _V]]) -> Item:
        pos = ItemPos([], [k[1] for k in kvs], [k[2].cols for k in kvs])
        return Item(kind, 0, 0, head, (), [(k[0], k[2].value) for k in kvs], pos)

    def _args_item(self, kind: str, args: list, toks: list[Token]) -> Item:
        return Item(kind, 0, 0, "", tuple(args), [], ItemPos([_col(t) for t in toks], [], []))

    def _mixed_item(self, kind: str, args: list, toks: list[Token], kvs: list[tuple[str, int, _V]]) -> Item:
        item = self._kvs_item(kind, "", kvs)
        assert item.pos is not None
        item.args, item.pos.args = tuple(args), [_col(t) for t in toks]
        return item

    def hw(self, c: list) -> Item:
        return self._kvs_item("hw", "", c)

    def tensor(self, c: list) -> Item:
        return self._kvs_item("tensor", "", c)

    def insn(self, c: list) -> Item:
        return self._kvs_item("insn", str(c[0]), c[1:])

    def version(self, c: list[Token]) -> Item:
        return self._args_item("version", [parse_int(c[0])], c)

    def dram(self, c: list[Token]) -> Item:
        return self._args_item("dram", [parse_int(c[0])], c)

    def scope(self, c: list[Token]) -> Item:
        return self._args_item("scope", [parse_int(c[0])], c)

    def segment(self, c: list[Token]) -> Item:
        return self._args_item("segment", [parse_int(t) for t in c], c)

    def host(self, c: list[Token]) -> Item:
        return self._args_item("host", [parse_int(c[0]), _string(c[1]), _string(c[2])], c)

    def host_tensor(self, c: list) -> Item:
        return self._mixed_item("host_tensor", [parse_int(c[0])], c[:1], c[1:])

    def host_model(self, c: list[Token]) -> Item:
        return self._args_item("host_model", [parse_int(c[0]), decode_hex(c[1], _col(c[1]))], c)

    def host_segment(self, c: list[Token]) -> Item:
        return self._args_item("host_segment", [parse_int(t) for t in c], c)

    def host_at(self, c: list[Token]) -> Item:
        return self._args_item("host_at", [parse_int(c[0])], c)

    def layer(self, c: list) -> Item:
        return self._mixed_item("layer", [parse_int(c[0]), _string(c[1])], c[:2], c[2:])

    def data(self, c: list[Token]) -> Item:
        return self._args_item("data", [parse_int(c[0]), decode_hex(c[1], _col(c[1]))], c)

    def contents(self, c: list[Token]) -> Item:
        return self._args_item("contents", [parse_int(c[0]), parse_int(c[1]), str(c[2])], c)

    def weights(self, c: list[Token]) -> Item:
        return self._args_item("weights", [_string(c[0]), str(c[1])], c)

    def start(self, items: list[Item]) -> list[Item]:
        return items


def has_interegular() -> bool:
    """Whether lark can run strict mode (its terminal-collision check needs `interegular`)."""
    try:
        import interegular  # noqa: F401
    except ImportError:
        return False
    return True


@cache
def _parser(strict: bool | None = None) -> Lark:
    """The LALR parser. Strict (no grammar conflict, no colliding terminals) whenever lark can
    check it; tests build it strict unconditionally, so a conflict cannot get in unnoticed."""
    return Lark(GRAMMAR_PATH.read_text(), parser="lalr", lexer="contextual",
                strict=has_interegular() if strict is None else strict, transformer=_ToItems())


_TERMINAL_WORDS = {
    "INT": "an integer", "FLOAT": "a number", "STRING": "a quoted string", "NAME": "a name",
    "HEX": "hex bytes", "_NL": "end of line", "$END": "end of line",
}


def _describe(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    term = _parser().get_terminal(name)
    return repr(term.pattern.value)


def _expected(names: set[str] | frozenset[str]) -> str:
    words = sorted({_describe(n) for n in names})
    if len(words) > 6:
        words = words[:6] + ["..."]
    return ", ".join(words)


def _directives() -> list[str]:
    return sorted(t.pattern.value for t in _parser().terminals
                  if isinstance(t.pattern.value, str) and t.pattern.value.startswith((".", "@")))


def _lark_fault(e: UnexpectedInput, line: str) -> SyntaxFault:
    """A lark error as one readable sentence at its column."""
    col = e.column if isinstance(e.column, int) and e.column > 0 else 1
    if isinstance(e, UnexpectedCharacters):
        rest = line[col - 1:]
        if rest.startswith((".", "@")):
            word = re.match(r"[.@][A-Za-z0-9_]*", rest)
            text = word.group(0) if word else rest[:1]
            return SyntaxFault(col, f"unknown directive {text!r} (known: {', '.join(_directives())})")
        return SyntaxFault(col, f"unexpected character {rest[:1]!r}; expected {_expected(e.allowed)}")
    if isinstance(e, UnexpectedToken):
        tok = e.token
        word = re.match(r"[^ \t\r,;=()]+", line[col - 1:])
        what = "end of line" if tok.type in ("_NL", "$END") else repr(word.group(0) if word else str(tok))
        return SyntaxFault(col, f"unexpected {what}; expected {_expected(e.expected)}")
    return SyntaxFault(col, str(e).splitlines()[0])


def parse_line_lark(line: str, lineno: int) -> Item | None:
    """Parse one line with the grammar; None for a blank or comment-only line."""
    try:
        items = cast(list[Item], _parser().parse(line + "\n"))  # the transformer's `start`
    except UnexpectedInput as e:
        raise _lark_fault(e, line) from None
    if not items:
        return None
    item = items[0]
    item.line = lineno
    item.col = _first_col(line)
    return item


def _first_col(line: str) -> int:
    return len(line) - len(line.lstrip(" \t\r")) + 1


# ---- the fast path -----------------------------------------------------------------------

_INT = r"-?(?:0[xX][0-9a-fA-F]+|[0-9]+)"
_TAIL = r"[ \t\r]*(?:;.*)?"
_INSN_RE = re.compile(
    rf"[ \t]*[A-Za-z_][A-Za-z0-9_]*(?:[ \t]+[A-Za-z_][A-Za-z0-9_]*={_INT}(?:,{_INT})*)*{_TAIL}", re.ASCII)
# `.data` and `.host_model` lines: the bulk of a header, hex bytes after one integer
_DATA_RE = re.compile(rf"([ \t]*)\.(data|host_model)[ \t]+({_INT})[ \t]+((?:[0-9a-fA-F]{{2}})+){_TAIL}", re.ASCII)
_SCOPE_RE = re.compile(rf"([ \t]*)@layer[ \t]+({_INT}){_TAIL}", re.ASCII)


# An instruction exactly as the printer writes it: every field in table order,
# decimal values, then the optional token sets. One regex per mnemonic, made
# from the table, so a new instruction needs no edit here either.
_DEC = r"-?[0-9]{1,10}"  # at most 10 digits: the values fit int64 for a batched range check
_TOKENS = r"[0-9]+(?:,[0-9]+)*"
_CANONICAL_INSN = {
    s.mnemonic: re.compile(
        rf"({s.mnemonic}) +" + " ".join(f"{f.name}=({_DEC})" for f in s.fields)
        + rf"(?: wait=({_TOKENS}))?(?: signal=({_TOKENS}))?{_TAIL}", re.ASCII)
    for s in INSNS
}
_MASKS: dict[str | None, int | None] = {None: 0}


def _token_mask(text: str | None) -> int | None:
    """The mask of a canonical token set ("0,3"); None when it is not a valid one."""
    try:
        return _MASKS[text]
    except KeyError:
        pass
    assert text is not None
    toks = [int(t) for t in text.split(",")]
    mask = sum(1 << t for t in set(toks) if t < NUM_TOKENS)
    ok = len(set(toks)) == len(toks) and all(t < NUM_TOKENS for t in toks)
    if len(_MASKS) < 1 << 17:
        _MASKS[text] = mask if ok else None
    return mask if ok else None


def parse_canonical_insn(line: str) -> tuple[str, tuple[int, ...], int | None, int | None] | None:
    """(mnemonic, fields, wait mask, signal mask) of an instruction line in canonical form, else None.

    The fastest path, for the bulk of machine-written programs: one regex
    match and one int() per field. The masks are None for a token set that
    is not valid (out of range or repeated ids); the fields are not
    range-checked yet.
    """
    canon = _CANONICAL_INSN.get(line[:line.find(" ")])
    if canon is None:
        return None
    m = canon.fullmatch(line)
    if m is None:
        return None
    g = m.groups()
    return g[0], tuple(map(int, g[1:-2])), _token_mask(g[-2]), _token_mask(g[-1])


def parse_line_fast(line: str, lineno: int) -> Item | None | bool:
    """The item of a canonical line, None for a blank one, False when lark must decide."""
    stripped = line.lstrip(" \t\r")
    if not stripped or stripped[0] == ";":
        return None
    first = stripped[0]
    if first == ".":
        m = _DATA_RE.fullmatch(line)
        if m is None:
            return False
        col = len(m.group(1)) + 1
        pos = ItemPos([m.start(3) + 1, m.start(4) + 1], [], [])
        return Item(m.group(2), lineno, col, "", (parse_int(m.group(3)), bytes.fromhex(m.group(4))), [], pos)
    if first == "@":
        m = _SCOPE_RE.fullmatch(line)
        if m is None:
            return False
        pos = ItemPos([m.start(2) + 1], [], [])
        return Item("scope", lineno, len(m.group(1)) + 1, "", (parse_int(m.group(2)),), [], pos)
    if _INSN_RE.fullmatch(line) is None:
        return False
    words = line.partition(";")[0].split()
    kvs: list[tuple[str, Value]] = []
    for w in words[1:]:
        key, _, val = w.partition("=")
        if "," in val:
            kvs.append((key, tuple(parse_int(v) for v in val.split(","))))
        else:
            kvs.append((key, parse_int(val)))
    return Item("insn", lineno, _first_col(line), words[0], (), kvs, None)
