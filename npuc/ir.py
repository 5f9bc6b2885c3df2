"""The one IR: a networkx DiGraph of ops, wrapped in a small typed class.

Nodes are ops, keyed by a unique name (the ONNX node name, or its first
output's name). Each node's data:

* ``op``     — the op type, ONNX spelling ("Conv", "Gemm", "Relu", ...),
  "Input" for a graph input, or "Host" for an ONNX op the NPU cannot run,
  executed in float on the host (``attrs``: ``onnx_op``, ``opset``,
  ``reason``, ``model`` — the serialized single-node ONNX model, see
  `npuc/host.py`);
* ``attrs``  — dict of attributes, normalized by the frontend (see
  `npuc/frontend/`); fused activations live in ``attrs["act"]``;
* ``consts`` — dict of numpy constants owned by this node (``W``, ``B``, ...);
* ``shape``  — the output tensor's shape in ONNX order (NCHW for images);
* ``dtype``  — "float32" (quantized to int8 by the quantize pass), or
  "int64" / "int32" / "bool" for a Host node's integer or boolean output
  (ArgMax, a comparison), which stays raw;
* ``value``  — the ONNX value name of the output (for graph outputs);
* ``act_q``  — after quantization: `ActQ` of the output tensor;
* ``qop``    — after quantization: the integer op parameters, a `QParams` record of the
  op's kind (`MatQ`, `AccQ`, `PoolQ`, `AddQ`, `MulQ`, `LutQ`).

Edges are data dependencies ``producer -> consumer`` carrying ``slot``, the
consumer's input index.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from .isa.arith import dequantize_linear, quantize_linear


class IRError(ValueError):
    """The IR violates an invariant; the message names the node."""


@dataclass(frozen=True)
class ActQ:
    """Quantization of an activation tensor: real = (q - zp) * scale.

    ``exp`` is set when the scale is a power of two: scale = 2**-exp.
    """

    scale: float
    zp: int = 0
    exp: int | None = None
    bits: int = 8

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """real -> integer codes (ONNX QuantizeLinear, `npuc.isa.arith.quantize_linear`)."""
        return quantize_linear(x, self.scale, self.zp, self.qmin, self.qmax)

    def code(self, value: float) -> int:
        """The integer code of one real value (a pad value, an activation bound), as `quantize`."""
        return int(self.quantize(np.float32(value)))

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """integer codes -> real float32 (ONNX DequantizeLinear)."""
        return dequantize_linear(q, self.scale, self.zp)


@dataclass(frozen=True)
class QParams:
    """The integer parameters of a quantized op (a node's ``qop``): one frozen record per kind.

    Every kind ends in the same output stage: the rounding shift (``rounding``:
    half_even, half_up or truncate), + ``zp_out``, clamp to [``lo``, ``hi``] (the
    int8 range ∩ a fused activation's bounds). All arithmetic as in `npuc.isa.arith`;
    `npuc.ops.OPS` says which kind each IR op holds.
    """

    zp_out: int
    lo: int
    hi: int
    rounding: str


@dataclass(frozen=True)
class AccQ(QParams):
    """An int32 accumulator requantized per output column by `vrq` (GlobalAveragePool; base of MatQ):
    out[c] = clamp(round_shift((acc[c] + bias[c])·mul[c], shift[c]) + zp_out, lo, hi).

    ``mul``, ``shift``, ``bias`` are int64 after `quantize` and int32 after `legalize` (shift in
    [0, 62], 0 <= mul < 2^31); ``zp_in`` is the input's zero point (folded into ``bias``: the
    hardware pads with it); ``rescale`` is the real ratio each (mul, shift) approximates.
    """

    mul: np.ndarray
    shift: np.ndarray
    bias: np.ndarray
    zp_in: int
    rescale: np.ndarray


@dataclass(frozen=True)
class MatQ(AccQ):
    """Conv, Gemm, ConvTranspose on the systolic array: int8 weights (the layout of ``consts["W"]``),
    their scale per output channel ``w_scale`` (pow2: 2^-e_w, ``e_w`` set). ``acc_bits`` is the
    accumulator adder's width (quant.acc_bits): below 32 the sum + bias saturates to it instead of
    wrapping mod 2^32 (isa/ISA.md, gemm). ``weight_bits`` is the layer's weight width on the array:
    8, or 4 (``weight`` then holds values in [-7, 7]; the program packs them two per byte, gemm
    ``w4``), chosen per layer (`CompileOptions.int4_layers`, the NPU mixed-precision plan)."""

    weight: np.ndarray
    w_scale: np.ndarray
    e_w: np.ndarray | None = None
    acc_bits: int = 32
    weight_bits: int = 8


@dataclass(frozen=True)
class PoolQ(QParams):
    """AveragePool: acc = Σ_window (q − zp_in) (padding holds zp_in; ``bias`` = [−kh·kw·zp_in]), then
    `vrq` with the (mul[k], shift[k]) of the pixel's divisor ``counts[k]`` (ratio ``rescale[k]``)."""

    mul: np.ndarray
    shift: np.ndarray
    bias: np.ndarray
    zp_in: int
    counts: tuple[int, ...]
    rescale: tuple[float, ...]


@dataclass(frozen=True)
class AddQ(QParams):
    """One `vadd` (Add, Sub, Requant): out = clamp(round_shift((a − za)·ma + (b − zb)·mb, sh) + zp_out,
    lo, hi), the sum formed exactly and rounded once. Requant: one input, mb = zb = 0."""

    ma: int
    mb: int
    sh: int
    za: int
    zb: int
    rescale: tuple[float, float]


@dataclass(frozen=True)
class MulQ(QParams):
    """One `vmul` (Mul): out = clamp(round_shift((a − za)·(b − zb)·mul, sh) + zp_out, lo, hi)."""

    mul: int
    sh: int
    za: int
    zb: int
    rescale: float


@dataclass(frozen=True)
class LutQ(QParams):
    """One `vlut` (Lut): out = table[c][x + 128], int8 ``table`` (256,) shared or (C, 256) per channel;
    ``zp_in`` is the input zero point the table was built for (its clamp already applied)."""

    table: np.ndarray
    zp_in: int


class IR:
    """A dataflow graph plus its ordered graph inputs and outputs."""

    def __init__(self, name: str = "model", opset: int = 13) -> None:
        self.g: nx.DiGraph = nx.DiGraph()
        self.name = name
        self.opset = opset
        self.inputs: list[str] = []
        self.outputs: list[str] = []

    # -- building -----------------------------------------------------------
    def add(
        self,
        name: str,
        op: str,
        inputs: list[str] = (),  # type: ignore[assignment]
        *,
        attrs: dict[str, Any] | None = None,
        consts: dict[str, np.ndarray] | None = None,
        shape: tuple[int, ...] = (),
        value: str | None = None,
    ) -> str:
        if name in self.g:
            raise IRError(f"duplicate node name {name!r}")
        self.g.add_node(
            name,
            op=op,
            attrs=dict(attrs or {}),
            consts=dict(consts or {}),
            shape=tuple(int(d) for d in shape),
            dtype="float32",
            value=value or name,
        )
        for slot, src in enumerate(inputs):
            if src not in self.g:
                raise IRError(f"node {name!r}: input {src!r} is not in the graph")
            self.g.add_edge(src, name, slot=slot)
        return name

    # -- reading ------------------------------------------------------------
    def node(self, name: str) -> dict[str, Any]:
        return self.g.nodes[name]

    def op(self, name: str) -> str:
        return self.g.nodes[name]["op"]

    def preds(self, name: str) -> list[str]:
        """Producers of `name`'s inputs, in slot order."""
        edges = sorted(self.g.in_edges(name, data="slot"), key=lambda e: e[2])
        return [src for src, _, _ in edges]

    def succs(self, name: str) -> list[str]:
        return list(self.g.successors(name))

    def topo(self) -> list[str]:
        """Nodes in a deterministic topological order."""
        return list(nx.lexicographical_topological_sort(self.g, key=self._order_key))

    def _order_key(self, name: str) -> tuple[int, str]:
        return (self.g.nodes[name].get("order", 0), name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.topo())

    def __len__(self) -> int:
        return self.g.number_of_nodes()

    # -- rewriting ----------------------------------------------------------
    def remove_passthrough(self, name: str) -> None:
        """Delete a one-input node, wiring its consumers to its producer."""
        (src,) = self.preds(name)
        for _, dst, slot in list(self.g.out_edges(name, data="slot")):
            self.g.add_edge(src, dst, slot=slot)
        if name in self.outputs:
            # the surviving node now carries the graph output's ONNX name
            self.g.nodes[src]["value"] = self.g.nodes[name]["value"]
            self.outputs = [src if o == name else o for o in self.outputs]
        self.g.remove_node(name)

    def copy(self) -> IR:
        other = IR(self.name, self.opset)
        other.g = self.g.copy()
        for n in other.g.nodes:
            d = other.g.nodes[n]
            d["attrs"] = dict(d["attrs"])
            d["consts"] = dict(d["consts"])
        other.inputs = list(self.inputs)
        other.outputs = list(self.outputs)
        return other
