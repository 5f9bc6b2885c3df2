"""An NPU program in memory: what the assembler produces and the backend builds.

`prog.s` is this object as text (`isa/asm.py` parses and prints it); the
binary instruction stream is `encode(program.insns)` (`isa/encoding.py`).
Host ops (`Program.hosts`) are not instructions: they are points in the
stream where the NPU drains and the host runs an ONNX op on DRAM tensors
(the simulator driver splits the stream there).
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


DTYPE_BYTES = {"int8": 1, "int64": 8, "float32": 4, "int32": 4, "bool": 1}  # element types of tensors in DRAM


@dataclass(frozen=True)
class TensorInfo:
    """A tensor in DRAM (a model input or output, or a host op's): laid out `layout` (e.g. nhwc).

    int8 tensors are quantized reals; an int64 tensor (a host ArgMax's
    output) holds raw little-endian integers and a float32 one (a host op's
    float output: a Concat at dequantization) raw floats; their scale and zp
    are unused.
    """

    name: str  # the ONNX value name
    role: str  # "input" | "output"
    addr: int  # DRAM byte address
    shape: tuple[int, ...]  # logical shape in ONNX order (NCHW for images)
    layout: str  # how it is laid out in DRAM: "nhwc" (channels last: (1, C, *S) as (*S, C)) or "flat" (ONNX order)
    scale: float  # real = (q - zp) * scale
    zp: int
    dtype: str = "int8"  # a key of DTYPE_BYTES

    @property
    def nbytes(self) -> int:
        n = DTYPE_BYTES[self.dtype]
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class HostOp:
    """An ONNX op the host runs in float between NPU instructions (host fallback).

    It runs once `insns[:at]` have all completed and before `insns[at]`
    starts: a full barrier, so no dependency token crosses it. It reads its
    input tensors from DRAM (dequantizing int8 ones), runs `model`, and writes
    its output tensor (quantized) back; `npuc/host.py` defines the arithmetic.
    """

    name: str  # the model's node name
    op: str  # the ONNX op type, for reports (the model holds the node itself)
    at: int  # index of the first instruction after it
    tensors: tuple[TensorInfo, ...]  # role "input", in the model's input order, then "output"
    model: bytes  # the serialized single-node ONNX model

    @property
    def n_insns(self) -> int:
        return len(self.insns)

    def inputs(self) -> list[TensorInfo]:
        return [t for t in self.tensors if t.role == "input"]

    def outputs(self) -> list[TensorInfo]:
        return [t for t in self.tensors if t.role == "output"]


@dataclass(frozen=True)
class LayerWork:
    """What a layer of the model asks of the hardware, by its ONNX op's own definition (not by what
    the compiler issues): the useful MACs (a Conv: N*Cout*OH*OW*(Cin/group)*kh*kw) and the bytes its
    roofline bound counts (input + output + weights, each once). Only Conv, ConvTranspose and Gemm
    layers have one; the report's roofline bound of such a layer is
    max(macs / (rows * cols), bytes / dram_bw)."""

    macs: int
    bytes: int


@dataclass
class Program:
    hw: dict[str, Any]  # flat hardware config (npuc.hw.HwConfig.to_flat())
    dram_size: int
    tensors: list[TensorInfo] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)  # layer id -> name
    data: list[tuple[int, bytes]] = field(default_factory=list)  # DRAM init segments
    insns: list[Insn] = field(default_factory=list)
    hosts: list[HostOp] = field(default_factory=list)  # in execution order (`at` non-decreasing)
    work: dict[int, LayerWork] = field(default_factory=dict)  # layer id -> its work, for layers with a bound
    # the hardware fields the program states (its .hw line), None: all of `hw`; the others took
    # their defaults. The content hash covers the stated ones only, so a field added to npuc later
    # (with a default) does not make an older program's hash wrong.
    hw_keys: tuple[str, ...] | None = field(default=None, compare=False)

    def inputs(self) -> list[TensorInfo]:
        return [t for t in self.tensors if t.role == "input"]

    def outputs(self) -> list[TensorInfo]:
        return [t for t in self.tensors if t.role == "output"]
