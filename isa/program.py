"""An NPU program in memory: what the assembler produces and the backend builds.

`prog.s` is this object as text (`isa/asm.py` parses and prints it); the
binary instruction stream is `encode(program.insns)` (`isa/encoding.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .table import BY_MNEMONIC


@dataclass(frozen=True)
class Insn:
    """One instruction. `fields` follow the table order of `op`."""

    op: str
    fields: tuple[int, ...]
    wait: int = 0
    signal: int = 0
    layer: int = 0
    # source line in prog.s, 0 when built in memory; where an instruction came
    # from is not part of what it is, so it takes no part in == and hash
    line: int = field(default=0, compare=False)

    def get(self, name: str) -> int:
        return self.fields[BY_MNEMONIC[self.op].field_names().index(name)]

    def as_dict(self) -> dict[str, int]:
        return dict(zip(BY_MNEMONIC[self.op].field_names(), self.fields))


def make_insn(op: str, *, wait: int = 0, signal: int = 0, layer: int = 0, **values: int) -> Insn:
    """Build an instruction by field name; omitted fields are 0."""
    spec = BY_MNEMONIC[op]
    names = spec.field_names()
    unknown = set(values) - set(names)
    if unknown:
        raise KeyError(f"{op}: unknown field(s) {sorted(unknown)}")
    return Insn(op, tuple(int(values.get(n, 0)) for n in names), wait, signal, layer)


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output in DRAM: int8, laid out `layout` (e.g. nhwc)."""

    name: str  # the ONNX value name
    role: str  # "input" | "output"
    addr: int  # DRAM byte address
    shape: tuple[int, ...]  # logical shape in ONNX order (NCHW for images)
    layout: str  # how it is laid out in DRAM: "nhwc" or "flat"
    scale: float  # real = (q - zp) * scale
    zp: int

    @property
    def nbytes(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass
class Program:
    hw: dict[str, Any]  # flat hardware config (npuc.hw.HwConfig.to_flat())
    dram_size: int
    tensors: list[TensorInfo] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)  # layer id -> name
    data: list[tuple[int, bytes]] = field(default_factory=list)  # DRAM init segments
    insns: list[Insn] = field(default_factory=list)

    def inputs(self) -> list[TensorInfo]:
        return [t for t in self.tensors if t.role == "input"]

    def outputs(self) -> list[TensorInfo]:
        return [t for t in self.tensors if t.role == "output"]
