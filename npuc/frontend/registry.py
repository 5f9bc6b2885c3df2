"""The op-handler registry and the context one handler sees.

A handler is a plain function named exactly like the ONNX op type it
translates, decorated with `@handler`. It reads its node through a `NodeCtx`
(attributes, constant inputs, shapes) and writes IR nodes through it, so a
handler never touches the ONNX graph walk or the IR bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..ir import IR


class FrontendError(ValueError):
    """The model cannot be translated; a one-line message naming the file, node, op and opset."""


class UnsupportedOp(FrontendError):
    """A valid node the NPU cannot run as it stands (grouped conv, a run-time weight, ...).

    Unlike a plain FrontendError (a malformed model), this one lets the
    loader fall back to running the node on the host; `reason` is the message
    without the node prefix.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


Handler = Callable[["NodeCtx"], None]
HANDLERS: dict[str, Handler] = {}


def handler(op_type: str) -> Callable[[Handler], Handler]:
    """Register `fn` as the translation of ONNX op `op_type` (default domain)."""

    def register(fn: Handler) -> Handler:
        if op_type in HANDLERS:
            raise RuntimeError(f"two handlers for ONNX op {op_type!r}")
        HANDLERS[op_type] = fn
        return fn

    return register


class Graph:
    """What the loader knows while walking the ONNX graph in order.

    `producer` maps an ONNX value name to the IR node computing it;
    `consts` maps a value name to its numpy value (initializers and Constant
    outputs); `shapes` are the static shapes from shape inference;
    `used_values` are the values some node or a graph output reads;
    `dtypes` the inferred ONNX element types; `allow_fallback` whether a node
    the NPU cannot run may run on the host instead.
    """

    def __init__(
        self, ir: IR, source: str, opset: int, shapes: dict[str, tuple[int, ...]], used_values: set[str],
        dtypes: dict[str, int] | None = None, allow_fallback: bool = False,
    ) -> None:
        self.ir = ir
        self.source = source
        self.opset = opset
        self.shapes = shapes
        self.used_values = used_values
        self.dtypes = dtypes or {}
        self.allow_fallback = allow_fallback
        self.producer: dict[str, str] = {}
        self.lifted: dict[str, str] = {}  # a 3-D value -> the 4-D IR node it is an alias of (`lift.py`)
        self.consts: dict[str, np.ndarray] = {}
        self.order = 0

    def unique_name(self, base: str) -> str:
        name, k = base, 1
        while name in self.ir.g:
            name, k = f"{base}_{k}", k + 1
        return name


class NodeCtx:
    """One ONNX node as its handler sees it."""

    def __init__(self, graph: Graph, node: onnx.NodeProto, name: str) -> None:
        self.graph = graph
        self.node = node
        self.name = name
        self._attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}

    # -- errors ---------------------------------------------------------------
    @property
    def opset(self) -> int:
        return self.graph.opset

    def error(self, msg: str) -> FrontendError:
        return FrontendError(f"{self.where()}: {msg}")

    def unsupported(self, msg: str) -> UnsupportedOp:
        """The node is valid but the NPU cannot run it: the loader may run it on the host."""
        return UnsupportedOp(f"{self.where()}: {msg}", msg)

    def where(self) -> str:
        return f"{self.graph.source}: node '{self.name}' (op {self.node.op_type}, opset {self.opset})"

    # -- attributes -----------------------------------------------------------
    def attr(self, key: str, default: Any = None) -> Any:
        value = self._attrs.get(key, default)
        if isinstance(value, bytes):
            return value.decode()
        if isinstance(value, onnx.TensorProto):
            return numpy_helper.to_array(value)
        return value

    def has_attr(self, key: str) -> bool:
        return key in self._attrs

    # -- inputs ---------------------------------------------------------------
    def has_input(self, i: int) -> bool:
        """Input `i` is given: named, and not an empty constant (an exporter's spelling of an absent
        optional input, e.g. paddle2onnx's Resize roi)."""
        if i >= len(self.node.input) or not self.node.input[i]:
            return False
        value = self.graph.consts.get(self.node.input[i])
        return value is None or value.size > 0 or value.ndim == 0

    def is_const(self, i: int) -> bool:
        return self.has_input(i) and self.node.input[i] in self.graph.consts

    def const(self, i: int, what: str) -> np.ndarray:
        """The constant value of input `i`; an error if it is computed at run time."""
        if not self.has_input(i):
            raise self.error(f"input {i} ({what}) is missing")
        value = self.graph.consts.get(self.node.input[i])
        if value is None:
            raise self.unsupported(f"input {i} ({what}) must be a constant (initializer or Constant)")
        return value

    def const_or(self, i: int, default: np.ndarray | None) -> np.ndarray | None:
        return self.const(i, "optional") if self.has_input(i) else default

    def data(self, i: int = 0) -> str:
        """The IR node producing run-time input `i`."""
        if not self.has_input(i):
            raise self.error(f"input {i} is missing")
        value = self.node.input[i]
        if value in self.graph.producer:
            return self.graph.producer[value]
        if value in self.graph.consts:
            raise self.unsupported(f"input {i} ({value!r}) is a constant; a computed tensor is expected here")
        raise self.error(f"input {i} ({value!r}) is not produced by any earlier node")

    def in_shape(self, i: int = 0) -> tuple[int, ...]:
        return tuple(self.graph.ir.node(self.data(i))["shape"])

    # -- outputs --------------------------------------------------------------
    def check_unused_outputs(self, keep: int = 1) -> None:
        """Outputs beyond the first `keep` (Dropout's mask, MaxPool's indices) must be unused."""
        for out in self.node.output[keep:]:
            if out and out in self.graph.used_values:
                raise self.unsupported(f"output {out!r} is used, which is not supported")

    def emit(
        self,
        op: str,
        inputs: list[str],
        *,
        shape: tuple[int, ...],
        attrs: dict[str, Any] | None = None,
        consts: dict[str, np.ndarray] | None = None,
        check_inferred: bool = True,
    ) -> str:
        """Add the IR node for this ONNX node's first output, checking `shape` against inference."""
        value = self.node.output[0]
        inferred = self.graph.shapes.get(value)
        shape = tuple(int(d) for d in shape)
        if check_inferred and inferred is not None and inferred != shape:
            raise self.error(f"output shape {shape} disagrees with ONNX shape inference {inferred}")
        g = self.graph
        g.order += 1
        name = g.ir.add(self.name, op, inputs, attrs=attrs, consts=consts, shape=shape, value=value)
        g.ir.node(name)["order"] = g.order
        g.producer[value] = name
        return name

    def emit_output(self, i: int, op: str, inputs: list[str], *, shape: tuple[int, ...],
                    attrs: dict[str, Any] | None = None) -> str:
        """The IR node for output `i` of this ONNX node (output 0 is `emit`'s, named after the node; a
        later one is named after its value)."""
        if i == 0:
            return self.emit(op, inputs, shape=shape, attrs=attrs)
        g, value = self.graph, self.node.output[i]
        shape = tuple(int(d) for d in shape)
        inferred = g.shapes.get(value)
        if inferred is not None and inferred != shape:
            raise self.error(f"output {i} shape {shape} disagrees with ONNX shape inference {inferred}")
        g.order += 1
        name = g.ir.add(g.unique_name(value), op, inputs, attrs=attrs, shape=shape, value=value)
        g.ir.node(name)["order"] = g.order
        g.producer[value] = name
        return name

    def alias(self, src: int = 0) -> None:
        """This node's first output is its input `src` (Identity, inference-mode Dropout)."""
        value, inp = self.node.output[0], self.node.input[src]
        if inp in self.graph.consts:
            self.graph.consts[value] = self.graph.consts[inp]
        else:
            self.graph.producer[value] = self.data(src)

    def set_const(self, value: np.ndarray) -> None:
        self.graph.consts[self.node.output[0]] = value


def ints(value: Any, n: int, default: int, what: str, ctx: NodeCtx) -> tuple[int, ...]:
    """An int-list attribute of length `n` (or its default repeated)."""
    if value is None:
        return (default,) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ctx.error(f"{what} has {len(value)} values, expected {n}")
    return value
