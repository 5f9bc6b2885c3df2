"""The meaning of prog.s: directives, their order and values, instructions against the table.

`Assembler` consumes the line items of `isa/asm_syntax.py` in order and
builds a Program, checking each item as it comes; every mnemonic, field and
range comes from `isa/table.py`, so a new instruction needs no change here.
Every error is an `AsmError` at the offending token. The rules are ISA.md,
"Assembly text format".
"""

from __future__ import annotations

import difflib
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain, pairwise
from pathlib import Path
from typing import Any

import numpy as np

from npuc.hw import BY_NAME, Bool, HwConfig, HwConfigError

from .asm_print import FORMAT_VERSION
from .asm_syntax import Item, SyntaxFault, Value, Word, parse_canonical_insn, parse_line_fast, parse_line_lark
from .image import ProgramImage, canonical_segments, content_digest
from .program import DTYPE_BYTES, HostOp, Insn, LayerWork, Program, TensorInfo
from .table import BY_MNEMONIC, MAX_LAYERS, NUM_TOKENS, InsnSpec
from .timing import tile_violation

MAX_DRAM = 1 << 31  # instruction addresses are int32
_HW_FIELDS = tuple(HwConfig().to_flat())
_TENSOR_KEYS = ("name", "role", "addr", "shape", "layout", "scale", "zp")
_TENSOR_OPTIONAL = {"dtype": "int8"}  # optional keys and their defaults
_ROLES = ("input", "output")
_LAYER_KEYS = ("macs", "bytes")  # a layer's work (LayerWork): both or neither
_LAYOUTS = ("nhwc", "flat")


class AsmError(ValueError):
    """A prog.s error at `path:line:column` (1-based); `message` is the sentence alone."""

    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        super().__init__(f"{path}:{line}:{column}: {message}")
        self.path = path
        self.line = line
        self.column = column
        self.message = message


class _NeedPositions(Exception):
    """A fast-path item (no token columns) failed a check: re-parse its line with lark."""


@dataclass(frozen=True)
class _FieldTable:
    """One mnemonic's fields as the checker uses them."""

    spec: InsnSpec
    index: dict[str, int]
    lo: tuple[int, ...]
    hi: tuple[int, ...]

    @classmethod
    def of(cls, spec: InsnSpec) -> _FieldTable:
        return cls(spec, {f.name: i for i, f in enumerate(spec.fields)},
                   tuple(f.lo for f in spec.fields), tuple(f.hi for f in spec.fields))


_FIELD_TABLES = {m: _FieldTable.of(s) for m, s in BY_MNEMONIC.items()}


def _directive(item: Item) -> str:
    """How a directive item is spelled in prog.s."""
    return {"version": ".npuc", "scope": "@layer", "host_at": "@host"}.get(item.kind, "." + item.kind)


@dataclass(frozen=True)
class Contents:
    """A `.contents` line: the instruction count, data byte count and content hash it declares."""

    insns: int
    data_bytes: int
    sha256: str
    line: int
    cols: tuple[int, ...]  # of the three values


@dataclass
class _Host:
    """A host op while its header lines come in; `at` is set by its `@host` line in the body."""

    name: str
    op: str
    line: int
    tensors: list[TensorInfo] = field(default_factory=list)
    names: dict[str, int] = field(default_factory=dict)  # tensor name -> line
    pieces: list[bytes] = field(default_factory=list)  # the model, in order
    at: int | None = None


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Assembler:
    """Consumes line items in order and builds the Program, checking each as it comes.

    Every handler checks everything before it changes any state, so a
    fast-path item that fails can be re-run from its lark parse to get the
    error's column.
    """

    def __init__(self, path: str, base_dir: Path, lines: list[str]) -> None:
        self.path = path
        self.base_dir = base_dir
        self.lines = lines
        self.deferred: list[int] = []  # indices of instructions whose ranges are still unchecked
        self.version_line = 0
        self.hw: dict[str, Any] | None = None
        self.hw_keys: tuple[str, ...] | None = None
        self.hw_line = 0
        self.hwcfg: HwConfig | None = None
        self.rows = self.cols = self.int4_pack = 0
        self.dram_size: int | None = None
        self.dram_line = 0
        self.tensors: list[TensorInfo] = []
        self.tensor_lines: dict[str, int] = {}
        self.layers: list[str] = []
        self.work: dict[int, LayerWork] = {}
        self.segments: list[tuple[int, bytes, int, int]] = []  # addr, bytes, line, col
        self.sidecar: bytes | None = None
        self.sidecar_name = ""
        self.sidecar_sha256 = ""
        self.sidecar_line = 0
        self.sidecar_index: dict[tuple[int, int], int] = {}  # (addr, len) of a .segment line -> offset
        self.contents: Contents | None = None
        self.body_line = 0  # line of the first @layer / instruction
        self.layer = 0
        self.insns: list[Insn] = []
        self.hosts: list[_Host] = []
        self._handlers: dict[str, Callable[[Item], None]] = {
            "version": self.on_version, "contents": self.on_contents, "hw": self.on_hw, "dram": self.on_dram,
            "tensor": self.on_tensor, "layer": self.on_layer, "data": self.on_data,
            "weights": self.on_weights, "segment": self.on_segment, "host": self.on_host,
            "host_tensor": self.on_host_tensor, "host_model": self.on_host_model,
            "host_segment": self.on_host_segment, "scope": self.on_scope, "host_at": self.on_host_at,
            "insn": self.on_insn,
        }

    # ---- errors ----

    def error(self, line: int, col: int, message: str) -> AsmError:
        return AsmError(self.path, line, col, message)

    def fail(self, item: Item, message: str, *, arg: int | None = None, key: int | None = None,
             value: int | None = None, elem: int = 0) -> AsmError:
        """An error at a token of `item`: positional `arg`, the `key` or `value` of a key=value."""
        if item.pos is None:
            raise _NeedPositions()
        col = item.col
        if arg is not None:
            col = item.pos.args[arg]
        elif key is not None:
            col = item.pos.keys[key]
        elif value is not None:
            cols = item.pos.values[value]
            col = cols[min(elem, len(cols) - 1)]
        return self.error(item.line, col, message)

    # ---- the driver ----

    def feed_line(self, lineno: int) -> None:
        """Parse line `lineno` (fast path, else lark) and check its item."""
        line = self.lines[lineno - 1]
        try:
            if self.body_line:
                canon = parse_canonical_insn(line)
                if canon is not None and canon[2] is not None and canon[3] is not None:
                    try:
                        return self.add_canonical(lineno, *canon)  # type: ignore[arg-type]
                    except _NeedPositions:
                        pass  # the checks below find the error and its column
            item = parse_line_fast(line, lineno)
            if item is False:
                item = parse_line_lark(line, lineno)
            if item is None:
                return
            assert isinstance(item, Item)
            try:
                self.feed(item)
            except _NeedPositions:
                positioned = parse_line_lark(line, lineno)
                assert positioned is not None
                self.feed(positioned)
                raise AssertionError(f"line {lineno}: the fast path and lark disagree") from None
        except SyntaxFault as e:
            raise self.error(lineno, e.col, e.message) from None

    def feed(self, item: Item) -> None:
        if not self.version_line and item.kind != "version":
            raise self.fail(item, f"expected '.npuc {FORMAT_VERSION}' before anything else")
        if item.kind in ("insn", "scope", "host_at"):
            if not self.body_line:
                self._start_body(item)
        elif self.body_line:
            raise self.fail(item, f"{_directive(item)} after the first instruction (line {self.body_line}): "
                                  "header directives come first")
        self._handlers[item.kind](item)

    def _start_body(self, item: Item) -> None:
        if self.hw is None:
            raise self.fail(item, "missing .hw (the hardware config) before the first instruction")
        if self.dram_size is None:
            raise self.fail(item, "missing .dram (the DRAM size) before the first instruction")
        self.body_line = item.line

    def finish(self, last_line: int) -> Program:
        where = max(1, last_line)
        if not self.version_line:
            raise self.error(where, 1, f"empty program: expected '.npuc {FORMAT_VERSION}'")
        if self.hw is None:
            raise self.error(where, 1, "missing .hw (the hardware config)")
        if self.dram_size is None:
            raise self.error(where, 1, "missing .dram (the DRAM size)")
        hosts = []
        for hid, h in enumerate(self.hosts):
            missing = ("no role=output .host_tensor" if not any(t.role == "output" for t in h.tensors) else
                       "no model (.host_model or .host_segment)" if not h.pieces else
                       f"no '@host {hid}' line in the body" if h.at is None else "")
            if missing:
                raise self.error(h.line, 1, f"host op {hid} ({h.name!r}) has {missing}")
            assert h.at is not None
            ordered = [t for t in h.tensors if t.role == "input"] + [t for t in h.tensors if t.role == "output"]
            hosts.append(HostOp(h.name, h.op, h.at, tuple(ordered), b"".join(h.pieces)))
        return Program(hw=self.hw, hw_keys=self.hw_keys, dram_size=self.dram_size, tensors=self.tensors,
                       layers=self.layers,
                       data=self._merged_segments(), insns=self.insns, hosts=hosts, work=self.work)

    def check_contents(self, image: ProgramImage) -> None:
        """The program holds what its `.contents` line declares (ISA.md, "Program integrity").

        Counts first, for the most telling message (a cut file has fewer instructions), then
        the content hash, which catches any other change: a value edited, a line swapped."""
        c = self.contents
        if c is None:
            return  # a hand-written program: the simulator's checks still apply
        ends = f"the file ends at line {len(self.lines)}"
        found = image.n_insns
        if found != c.insns:
            what = f"truncated: .contents declares {c.insns} instructions, found {found} ({ends})" \
                if found < c.insns else \
                f"damaged: .contents declares {c.insns} instructions, found {found} (a line repeated?)"
            raise self.error(c.line, c.cols[0], what)
        found = image.data_bytes()
        if found != c.data_bytes:
            what = f"truncated: .contents declares {c.data_bytes} data bytes, found {found} ({ends})" \
                if found < c.data_bytes else \
                f"damaged: .contents declares {c.data_bytes} data bytes, found {found} (a line repeated?)"
            raise self.error(c.line, c.cols[1], what)
        actual = content_digest(image)
        if actual != c.sha256:
            raise self.error(c.line, c.cols[2], f"damaged: the program's content hash is {actual[:16]}..., "
                                                f".contents declares {c.sha256[:16]}... (a line was changed; "
                                                "after a deliberate hand edit, delete the .contents line)")

    def _merged_segments(self) -> list[tuple[int, bytes]]:
        by_addr = sorted(self.segments, key=lambda s: (s[0], s[2]))
        for prev, cur in pairwise(by_addr):
            if cur[0] < prev[0] + len(prev[1]):
                later, earlier = (cur, prev) if cur[2] >= prev[2] else (prev, cur)
                raise self.error(later[2], later[3],
                                 f"data segment [0x{later[0]:x}, 0x{later[0] + len(later[1]):x}) overlaps "
                                 f"the segment of line {earlier[2]}")
        return canonical_segments([(a, b) for a, b, _, _ in by_addr])

    def _once(self, item: Item, seen_line: int) -> None:
        if seen_line:
            raise self.fail(item, f"duplicate {_directive(item)} (first on line {seen_line})")

    def _need_dram(self, item: Item) -> int:
        if self.dram_size is None:
            raise self.fail(item, f".{item.kind} needs the DRAM size: put .dram before it")
        return self.dram_size

    def _inside_dram(self, item: Item, what: str, addr: int, size: int, **at: int) -> None:
        """Check [addr, addr + size) against the DRAM size; `at` says which token to blame (see fail)."""
        dram = self._need_dram(item)
        if addr < 0 or addr + size > dram:
            raise self.fail(item, f"{what} [0x{addr:x}, 0x{addr + size:x}) outside DRAM of {dram} bytes", **at)

    # ---- header directives ----

    def on_version(self, item: Item) -> None:
        self._once(item, self.version_line)
        (version,) = item.args
        if version != FORMAT_VERSION:
            raise self.fail(item, f"unsupported format version {version} (this assembler reads "
                                  f"{FORMAT_VERSION})", arg=0)
        self.version_line = item.line

    def on_contents(self, item: Item) -> None:
        """What the program declares it holds; checked against what it holds once all is read."""
        self._once(item, self.contents.line if self.contents else 0)
        insns, nbytes, digest = item.args
        for i, (what, v) in enumerate((("instruction count", insns), ("data byte count", nbytes))):
            if v < 0:
                raise self.fail(item, f".contents: {what} {v} is negative", arg=i)
        if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
            shown = digest if len(digest) <= 16 else digest[:16] + "..."
            raise self.fail(item, f".contents: sha256 must be 64 lowercase hex digits, got {len(digest)} "
                                  f"characters ({shown})", arg=2)
        assert item.pos is not None  # .contents always goes through lark
        self.contents = Contents(insns, nbytes, digest, item.line, tuple(item.pos.args))

    def _kv_dict(self, item: Item, allowed: tuple[str, ...], what: str,
                 required: bool = True) -> dict[str, tuple[int, Value]]:
        """key -> (operand index, value); unknown, repeated and (if `required`) missing keys are errors."""
        out: dict[str, tuple[int, Value]] = {}
        for i, (key, val) in enumerate(item.kvs):
            if key not in allowed:
                raise self.fail(item, f"unknown {what} key {key!r}{_suggest(key, allowed)}", key=i)
            if key in out:
                raise self.fail(item, f"{what} key {key!r} given twice", key=i)
            out[key] = (i, val)
        for key in allowed if required else ():
            if key not in out:
                raise self.fail(item, f"missing {what} key {key!r}")
        return out

    def on_hw(self, item: Item) -> None:
        """The hardware config: fields it leaves out take the default preset's values."""
        self._once(item, self.hw_line)
        kv = self._kv_dict(item, _HW_FIELDS, ".hw", required=False)
        hw: dict[str, Any] = {}
        for key, (i, val) in kv.items():
            if isinstance(val, Word) and val in ("true", "false") and isinstance(BY_NAME[key].kind, Bool):
                val = val == "true"
            elif isinstance(val, Word):
                raise self.fail(item, f".hw {key}: strings are quoted: {key}=\"{val}\"", value=i)
            if isinstance(val, tuple):
                raise self.fail(item, f".hw {key}: expected one value, not a list", value=i)
            try:
                HwConfig.from_flat({key: val}, source=".hw")
            except HwConfigError as e:
                raise self.fail(item, str(e), value=i) from None
            hw[key] = val
        self.hwcfg = HwConfig.from_flat(hw)
        self.rows, self.cols = self.hwcfg.rows, self.hwcfg.cols
        self.int4_pack = self.hwcfg.int4_pack
        self.hw = self.hwcfg.to_flat()
        self.hw_keys = tuple(sorted(hw))
        self.hw_line = item.line

    def on_dram(self, item: Item) -> None:
        self._once(item, self.dram_line)
        (size,) = item.args
        if not 1 <= size <= MAX_DRAM:
            raise self.fail(item, f"DRAM size {size} outside [1, {MAX_DRAM}]", arg=0)
        self.dram_size = size
        self.dram_line = item.line

    def on_tensor(self, item: Item) -> None:
        t = self._tensor(item, ".tensor", self.tensor_lines)
        self.tensors.append(t)
        self.tensor_lines[t.name] = item.line

    def _tensor(self, item: Item, what: str, declared: dict[str, int]) -> TensorInfo:
        """The TensorInfo of a `.tensor` or `.host_tensor` line; `declared` holds the names taken."""
        kv = self._kv_dict(item, _TENSOR_KEYS + tuple(_TENSOR_OPTIONAL), what, required=False)
        for key in _TENSOR_KEYS:
            if key not in kv:
                raise self.fail(item, f"missing {what} key {key!r}")

        def get(key: str, kinds: tuple[type, ...], expect: str) -> Any:
            i, v = kv[key]
            if not isinstance(v, kinds) or isinstance(v, bool):
                raise self.fail(item, f"{what} {key}: expected {expect}", value=i)
            return v

        name = get("name", (str,), "a quoted string")
        if isinstance(name, Word):
            raise self.fail(item, f"{what} name: strings are quoted: name=\"{name}\"", value=kv["name"][0])
        if name in declared:
            raise self.fail(item, f"tensor {name!r} already declared on line {declared[name]}",
                            value=kv["name"][0])
        role = get("role", (Word,), " or ".join(_ROLES))
        if role not in _ROLES:
            raise self.fail(item, f"{what} role: {role!r} is not one of {', '.join(_ROLES)}", value=kv["role"][0])
        layout = get("layout", (Word,), " or ".join(_LAYOUTS))
        if layout not in _LAYOUTS:
            raise self.fail(item, f"{what} layout: {layout!r} is not one of {', '.join(_LAYOUTS)}",
                            value=kv["layout"][0])
        dtype = get("dtype", (Word,), " or ".join(DTYPE_BYTES)) if "dtype" in kv else _TENSOR_OPTIONAL["dtype"]
        if dtype not in DTYPE_BYTES:
            raise self.fail(item, f"{what} dtype: {dtype!r} is not one of {', '.join(DTYPE_BYTES)}",
                            value=kv["dtype"][0])
        addr = get("addr", (int,), "an integer")
        shape_v = get("shape", (int, tuple), "integers, e.g. shape=1,3,32,32")
        shape = (shape_v,) if isinstance(shape_v, int) else shape_v
        for j, d in enumerate(shape):
            if d < 0:
                raise self.fail(item, f"{what} shape: dimension {d} is negative", value=kv["shape"][0], elem=j)
        if not shape:  # a run's tensor: (1, ...) for a batch-1 program, (L, 1, E) when the batch is axis 1
            raise self.fail(item, f"{what} shape: a scalar; a tensor needs an axis to stack samples on",
                            value=kv["shape"][0])
        if layout == "nhwc" and (len(shape) < 3 or shape[0] != 1):
            raise self.fail(item, f"{what} shape: layout nhwc (channels last) needs a shape (1, C, ...) of rank >= 3",
                            value=kv["shape"][0])
        scale = float(get("scale", (float, int), "a number"))
        if not (math.isfinite(scale) and scale > 0):
            raise self.fail(item, f"{what} scale: {scale!r} must be positive and finite", value=kv["scale"][0])
        zp = get("zp", (int,), "an integer")
        if not -128 <= zp <= 127:
            raise self.fail(item, f"{what} zp: {zp} outside the int8 range [-128, 127]", value=kv["zp"][0])
        t = TensorInfo(name, str(role), addr, tuple(shape), str(layout), scale, zp, str(dtype))
        self._inside_dram(item, f"tensor {name!r}", addr, t.nbytes, value=kv["addr"][0])
        return t

    def on_layer(self, item: Item) -> None:
        lid, name = item.args
        if lid != len(self.layers):
            raise self.fail(item, f"layer id {lid} out of order: the table is dense, expected "
                                  f"{len(self.layers)}", arg=0)
        if lid >= MAX_LAYERS:
            raise self.fail(item, f"layer id {lid} outside [0, {MAX_LAYERS - 1}]", arg=0)
        self.layers.append(name)
        if item.kvs:
            kv = self._kv_dict(item, _LAYER_KEYS, ".layer")
            values = []
            for key in _LAYER_KEYS:
                i, v = kv[key]
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise self.fail(item, f".layer {key}: expected a non-negative integer", value=i)
                values.append(v)
            self.work[lid] = LayerWork(*values)

    def on_data(self, item: Item) -> None:
        addr, blob = item.args
        self._inside_dram(item, "data segment", addr, len(blob), arg=0)
        self.segments.append((addr, blob, item.line, item.pos.args[0] if item.pos else item.col))

    def on_weights(self, item: Item) -> None:
        self._once(item, self.sidecar_line)
        name, digest = item.args
        file = self.base_dir / name
        try:
            blob = file.read_bytes()
        except FileNotFoundError:
            raise self.fail(item, f"weights sidecar {name!r} not found (looked for {file})", arg=0) from None
        except OSError as e:
            raise self.fail(item, f"weights sidecar {name!r} unreadable: {e.strerror}", arg=0) from None
        actual = hashlib.sha256(blob).hexdigest()
        if actual != digest.lower():
            raise self.fail(item, f"weights sidecar {name!r} does not match: sha256 is {actual}", arg=1)
        self.sidecar = blob
        self.sidecar_name = name
        self.sidecar_sha256 = actual
        self.sidecar_line = item.line

    def on_segment(self, item: Item) -> None:
        if self.sidecar is None:
            raise self.fail(item, ".segment needs a .weights sidecar before it")
        addr, offset, size = item.args
        if size <= 0:
            raise self.fail(item, f"segment length {size} must be positive", arg=2)
        if offset < 0 or offset + size > len(self.sidecar):
            raise self.fail(item, f"segment [{offset}, {offset + size}) outside the sidecar's "
                                  f"{len(self.sidecar)} bytes", arg=1)
        self._inside_dram(item, "data segment", addr, size, arg=0)
        self.segments.append((addr, self.sidecar[offset:offset + size], item.line, item.pos.args[0]
                              if item.pos else item.col))
        self.sidecar_index[(addr, size)] = offset

    # ---- host ops ----

    def _host(self, item: Item) -> _Host:
        """The host op named by the item's first operand, which must be declared."""
        hid = item.args[0]
        if not 0 <= hid < len(self.hosts):
            have = f"ids 0..{len(self.hosts) - 1}" if self.hosts else "no host ops"
            raise self.fail(item, f"undeclared host op {hid} (the .host lines declare {have})", arg=0)
        return self.hosts[hid]

    def on_host(self, item: Item) -> None:
        hid, name, op = item.args
        if hid != len(self.hosts):
            raise self.fail(item, f"host op id {hid} out of order: ids are dense, expected {len(self.hosts)}",
                            arg=0)
        if not op:
            raise self.fail(item, "the host op's ONNX op type is empty", arg=2)
        self.hosts.append(_Host(name, op, item.line))

    def on_host_tensor(self, item: Item) -> None:
        h = self._host(item)
        t = self._tensor(item, ".host_tensor", h.names)
        h.tensors.append(t)
        h.names[t.name] = item.line

    def on_host_model(self, item: Item) -> None:
        h = self._host(item)
        h.pieces.append(item.args[1])

    def on_host_segment(self, item: Item) -> None:
        if self.sidecar is None:
            raise self.fail(item, ".host_segment needs a .weights sidecar before it")
        h = self._host(item)
        _, offset, size = item.args
        if size <= 0:
            raise self.fail(item, f"segment length {size} must be positive", arg=2)
        if offset < 0 or offset + size > len(self.sidecar):
            raise self.fail(item, f"segment [{offset}, {offset + size}) outside the sidecar's "
                                  f"{len(self.sidecar)} bytes", arg=1)
        h.pieces.append(self.sidecar[offset:offset + size])

    def on_host_at(self, item: Item) -> None:
        """The host op runs here: after every instruction above, before every one below."""
        h = self._host(item)
        hid = item.args[0]
        expected = next((i for i, x in enumerate(self.hosts) if x.at is None), None)
        if h.at is not None:
            raise self.fail(item, f"host op {hid} already placed (an earlier '@host {hid}')", arg=0)
        if hid != expected:
            raise self.fail(item, f"'@host {hid}' out of order: host ops run in id order, {expected} comes "
                                  "first", arg=0)
        h.at = len(self.insns)

    # ---- the body ----

    def on_scope(self, item: Item) -> None:
        (lid,) = item.args
        if not 0 <= lid < len(self.layers):
            have = f"ids 0..{len(self.layers) - 1}" if self.layers else "no layers"
            raise self.fail(item, f"undeclared layer {lid} (the .layer table has {have})", arg=0)
        self.layer = lid

    def on_insn(self, item: Item) -> None:
        table = _FIELD_TABLES.get(item.head)
        if table is None:
            raise self.fail(item, f"unknown mnemonic {item.head!r}{_suggest(item.head, BY_MNEMONIC)}")
        values: list[int | None] = [None] * len(table.lo)
        masks = {"wait": 0, "signal": 0}
        seen_tokens: set[str] = set()
        for i, (key, val) in enumerate(item.kvs):
            f = table.index.get(key)
            if f is None:
                if key not in masks:
                    raise self.fail(item, f"{item.head}: unknown field {key!r}"
                                          f"{_suggest(key, list(table.index) + list(masks))}", key=i)
                if key in seen_tokens:
                    raise self.fail(item, f"{item.head}: {key} given twice", key=i)
                seen_tokens.add(key)
                masks[key] = self._token_mask(item, i, key, val)
                continue
            if values[f] is not None:
                raise self.fail(item, f"{item.head}: field {key!r} given twice", key=i)
            if type(val) is not int:
                raise self.fail(item, f"{item.head} {key}: expected an integer", value=i)
            if not table.lo[f] <= val <= table.hi[f]:
                raise self.fail(item, f"{item.head} {key}={val} outside [{table.lo[f]}, {table.hi[f]}]", value=i)
            values[f] = val
        for f, v in enumerate(values):
            if v is None and table.spec.fields[f].default is not None:
                values[f] = table.spec.fields[f].default  # a field added later: older programs leave it out
            elif v is None:
                raise self.fail(item, f"{item.head}: missing field {table.spec.fields[f].name!r}")
        fields: tuple[int, ...] = tuple(values)  # type: ignore[arg-type]
        self._check_static(item, table, fields)
        self.insns.append(Insn(item.head, fields, masks["wait"], masks["signal"], self.layer, item.line))

    def add_canonical(self, lineno: int, head: str, fields: tuple[int, ...], wait: int, signal: int) -> None:
        """An instruction in canonical form, from the fastest path (after the first instruction).

        Its range checks are batched (`check_deferred`, numpy per mnemonic):
        per-value Python checks were a third of the parse time of big programs.
        """
        if head == "gemm":
            ix = _FIELD_TABLES[head].index
            assert self.hwcfg is not None
            if tile_violation(self.hwcfg, fields[ix["m0"]] * fields[ix["m1"]], fields[ix["k"]], fields[ix["n"]],
                              bool(fields[ix["w4"]])):
                raise _NeedPositions()
        self.deferred.append(len(self.insns))
        self.insns.append(Insn(head, fields, wait, signal, self.layer, lineno))

    def check_deferred(self) -> None:
        """Range-check the fast-path instructions; report the first bad one from its lark parse."""
        pending, self.deferred = self.deferred, []
        by_op: dict[str, list[int]] = {}
        for i in pending:
            by_op.setdefault(self.insns[i].op, []).append(i)
        first_bad: int | None = None
        for op, idx in by_op.items():
            table = _FIELD_TABLES[op]
            nf = len(table.lo)
            vals = np.fromiter(chain.from_iterable(self.insns[i].fields for i in idx), dtype=np.int64,
                               count=len(idx) * nf).reshape(len(idx), nf)
            bad = np.flatnonzero(((vals < table.lo) | (vals > table.hi)).any(axis=1))
            if bad.size and (first_bad is None or idx[bad[0]] < first_bad):
                first_bad = idx[bad[0]]
        if first_bad is not None:
            lineno = self.insns[first_bad].line
            item = parse_line_lark(self.lines[lineno - 1], lineno)
            assert item is not None
            self.layer = self.insns[first_bad].layer
            self.on_insn(item)
            raise AssertionError(f"line {lineno}: the batched range check and the assembler disagree")

    def _token_mask(self, item: Item, i: int, key: str, val: Value) -> int:
        toks = (val,) if type(val) is int else val
        if not isinstance(toks, tuple):
            raise self.fail(item, f"{item.head} {key}: expected token ids, e.g. {key}=0,3", value=i)
        mask = 0
        for j, t in enumerate(toks):
            if not 0 <= t < NUM_TOKENS:
                raise self.fail(item, f"{item.head} {key}: token {t} outside [0, {NUM_TOKENS - 1}]",
                                value=i, elem=j)
            if mask >> t & 1:
                raise self.fail(item, f"{item.head} {key}: token {t} repeated", value=i, elem=j)
            mask |= 1 << t
        return mask

    def _check_static(self, item: Item, table: _FieldTable, fields: tuple[int, ...]) -> None:
        """Checks that need the hardware config: a gemm tile must fit the array."""
        if item.head != "gemm":
            return
        assert self.hwcfg is not None
        ix = table.index
        bad = tile_violation(self.hwcfg, fields[ix["m0"]] * fields[ix["m1"]], fields[ix["k"]], fields[ix["n"]],
                             bool(fields[ix["w4"]]))
        if bad:  # reported at the field it names (m0 for M = m0*m1)
            name, v, limit, what = bad
            i = next(j for j, (k, _) in enumerate(item.kvs) if k == name.split("*")[0])
            raise self.fail(item, f"gemm {name}={v} exceeds the array's {limit} {what}", value=i)
