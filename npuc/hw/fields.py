"""How a hardware field is declared: once, as a `HwConfig` dataclass field made by `hw_field`.

    rows: int = hw_field("array", 16, Int(1, 1024), "systolic array rows: ...", c=ToC())

The record (`HwField`, in the dataclass field's metadata) holds the TOML
section, the kind (which values the field takes: `Int`, `Real`, `Bool`,
`Choice`), the doc line, and whether the C core gets the field (`ToC`).
Everything else is read from it: validation and its messages, TOML loading
and `to_toml`, the C `npu_hw` struct (`npuc/hw/cgen.py`), the values
`npuc.sim` passes to the C core, and the check of the README's table.
A new section needs no registration: it exists once a field names it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from typing import Any

_KEY = "npuc.hw"  # the metadata key of a declared field
_INT32 = (-(2**31), 2**31 - 1)


class HwConfigError(ValueError):
    """A hardware config file or field is invalid; the message names it."""


class Kind:
    """Which values a field takes. `allowed` is the phrase the error message and the README
    table use ("an integer in [1, 1024]"); `c_range` is None for a kind with no int32 form."""

    py_type: type = object

    def allowed(self) -> str:
        raise NotImplementedError

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def problem(self, value: Any) -> str | None:
        """None for a valid value, else why not (`must be ...`)."""
        return None if self.accepts(value) else f"must be {self.allowed()}"

    def toml(self, value: Any) -> str:
        """The TOML literal of a valid value."""
        return repr(value)

    def c_range(self) -> tuple[int, int] | None:
        return None

    def c_value(self, value: Any) -> int:
        raise TypeError(f"{type(self).__name__} fields have no C form")


@dataclass(frozen=True)
class Int(Kind):
    lo: int
    hi: int
    py_type = int

    def allowed(self) -> str:
        return f"an integer in [{self.lo}, {self.hi}]"

    def accepts(self, value: Any) -> bool:
        # bool is an int subclass, but `rows = true` is a mistake, not 1
        return not isinstance(value, bool) and isinstance(value, int) and self.lo <= value <= self.hi

    def toml(self, value: Any) -> str:
        return str(value)

    def c_range(self) -> tuple[int, int]:
        return self.lo, self.hi

    def c_value(self, value: Any) -> int:
        return int(value)


@dataclass(frozen=True)
class Real(Kind):
    """A number (an int is accepted as it is) above `lo` (or at it, with `lo_open=False`) and
    at most `hi`. NaN is never accepted; +inf only when `hi` is."""

    lo: float = 0.0
    hi: float = math.inf
    lo_open: bool = True
    py_type = float

    def allowed(self) -> str:
        if self.hi == math.inf:
            if self.lo == 0 and self.lo_open:
                return "a positive number"
            return f"a number {'>' if self.lo_open else '>='} {self.lo:g}"
        return f"a number in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}]"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        above = value > self.lo if self.lo_open else value >= self.lo
        return above and value <= self.hi  # both False for NaN


@dataclass(frozen=True)
class Bool(Kind):
    py_type = bool

    def allowed(self) -> str:
        return "true or false"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def toml(self, value: Any) -> str:
        return "true" if value else "false"

    def c_range(self) -> tuple[int, int]:
        return 0, 1

    def c_value(self, value: Any) -> int:
        return int(value)


@dataclass(frozen=True, init=False)
class Choice(Kind):
    """One of a few strings; in C, its index in `values` (constants NPU_HW_<FIELD>_<VALUE>)."""

    values: tuple[str, ...]
    py_type = str

    def __init__(self, *values: str) -> None:
        object.__setattr__(self, "values", values)

    def allowed(self) -> str:
        return f"one of {', '.join(self.values)}"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.values

    def toml(self, value: Any) -> str:
        return json.dumps(value)  # a TOML basic string is a JSON string for these values

    def c_range(self) -> tuple[int, int]:
        return 0, len(self.values) - 1

    def c_value(self, value: Any) -> int:
        return self.values.index(value)


@dataclass(frozen=True)
class ToC:
    """The C core receives the field as the int32 member `member` of `npu_hw`.

    `member` is the `HwConfig` attribute read (the field itself by default, or a
    property that converts it, such as `spad_bytes`); `lo`, `hi` are the range
    the C core accepts and checks (the kind's range by default; required for a
    property); `doc` is the member's comment when the field's own doc would
    describe the wrong unit.
    """

    member: str | None = None
    lo: int | None = None
    hi: int | None = None
    doc: str | None = None


@dataclass(frozen=True)
class HwField:
    """The declaration of one field, kept in its dataclass field's metadata."""

    section: str
    kind: Kind
    doc: str
    c: ToC | None = None


@dataclass(frozen=True)
class Declared:
    """A declared field of a config class: its attribute name, default and declaration."""

    name: str
    default: Any
    section: str
    kind: Kind
    doc: str
    c: ToC | None

    @property
    def key(self) -> str:
        """The TOML name, `section.field`: how errors, sweeps and the README name it."""
        return f"{self.section}.{self.name}"


@dataclass(frozen=True)
class CMember:
    """One int32 member of the C struct `npu_hw`."""

    member: str  # the C member, also the HwConfig attribute it is read from
    field: Declared
    lo: int
    hi: int
    doc: str

    def value(self, hw: Any) -> int:
        return self.field.kind.c_value(getattr(hw, self.member))


def hw_field(section: str, default: Any, kind: Kind, doc: str, *, c: ToC | None = None) -> Any:
    """A dataclass field with its declaration; a bad declaration fails at import."""
    _check_declaration(section, default, kind, doc, c)
    return dataclasses.field(default=default, metadata={_KEY: HwField(section, kind, doc, c)})


def _check_declaration(section: str, default: Any, kind: Kind, doc: str, c: ToC | None) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", section):
        raise ValueError(f"hardware section {section!r}: must be a lower-case name")
    why = kind.problem(default)
    if why:
        raise ValueError(f"default {default!r} of a [{section}] field: {why}")
    # the doc is a TOML comment, a C comment and a Markdown table cell: one plain line
    if not doc or any(bad in doc for bad in ("\n", "|", "*/", "/*")):
        raise ValueError(f"doc {doc!r} of a [{section}] field: one non-empty line without | or C comment marks")
    if c is not None and c.doc is not None and any(bad in c.doc for bad in ("\n", "*/", "/*")):
        raise ValueError(f"C doc {c.doc!r}: one line without C comment marks")
    if isinstance(kind, Choice):
        for v in kind.values:  # each value becomes part of a C constant's name
            if not re.fullmatch(r"[a-z][a-z0-9_]*", v):
                raise ValueError(f"choice {v!r} of a [{section}] field: must be a lower-case name")
    if c is not None and kind.c_range() is None:
        raise ValueError(f"a {type(kind).__name__} field of [{section}] cannot go to the C core")


def declared(cls: type) -> tuple[Declared, ...]:
    """The declared fields of a config dataclass, in declaration order."""
    out = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(_KEY)
        if spec is None:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with hw_field")
        if f.type not in (spec.kind.py_type.__name__, spec.kind.py_type):
            raise TypeError(f"{cls.__name__}.{f.name}: annotated {f.type}, but a {type(spec.kind).__name__}"
                            f" field holds {spec.kind.py_type.__name__}")
        out.append(Declared(f.name, f.default, spec.section, spec.kind, spec.doc, spec.c))
    return tuple(out)


def c_members(decls: tuple[Declared, ...]) -> tuple[CMember, ...]:
    """The members of `npu_hw`, in declaration order, with the ranges the C core checks."""
    out = []
    for d in decls:
        if d.c is None:
            continue
        member = d.c.member or d.name
        own = d.kind.c_range()
        assert own is not None  # checked by hw_field
        if member != d.name and (d.c.lo is None or d.c.hi is None):
            raise ValueError(f"{d.key}: the C member {member!r} is derived, so its range must be given")
        lo = own[0] if d.c.lo is None else d.c.lo
        hi = own[1] if d.c.hi is None else d.c.hi
        if not _INT32[0] <= lo <= hi <= _INT32[1]:
            raise ValueError(f"{d.key}: C range [{lo}, {hi}] is not an int32 range")
        out.append(CMember(member, d, lo, hi, d.c.doc or d.doc))
    names = [m.member for m in out]
    if len(set(names)) != len(names):
        raise ValueError(f"two fields give the same npu_hw member: {names}")
    return tuple(out)


# ---- what a config class does with its declarations (HwConfig's methods call these) ------------


def validate(decls: tuple[Declared, ...], obj: Any) -> None:
    """Raise HwConfigError naming the first field of `obj` whose value its kind rejects."""
    for d in decls:
        value = getattr(obj, d.name)
        why = d.kind.problem(value)
        if why:
            raise HwConfigError(f"{d.key} = {value!r}: {why}")


def render_toml(decls: tuple[Declared, ...], obj: Any) -> str:
    """Every field by section (in declaration order), each with its doc as a trailing comment."""
    out: list[str] = []
    for section in dict.fromkeys(d.section for d in decls):
        lines = [(f"{d.name} = {d.kind.toml(getattr(obj, d.name))}", d.doc) for d in decls if d.section == section]
        width = max(len(text) for text, _ in lines)
        out += [f"[{section}]", *(f"{text:<{width}}  # {doc}" for text, doc in lines), ""]
    return "\n".join(out)


def flat_from_toml(decls: tuple[Declared, ...], doc: dict[str, Any], source: str) -> dict[str, Any]:
    """{field: value} of a parsed TOML document; a key that is no declared `section.field`
    (an unknown name, or a known one in another section) is an error naming it."""
    by_name = {d.name: d for d in decls}
    flat: dict[str, Any] = {}
    for section, table in doc.items():
        if not isinstance(table, dict):
            raise HwConfigError(f"{source}: top-level key {section!r} must be a [section]")
        for name, value in table.items():
            d = by_name.get(name)
            if d is None or d.section != section:
                raise HwConfigError(f"{source}: unknown hardware field {section}.{name}")
            flat[name] = value
    return flat
