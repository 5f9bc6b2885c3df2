"""What every lowering shares: the lowering registry and the code generator's `Context`.

Lowering modules (`codegen`, `layout`, `vector`, `conv_ops`) import this module
and register into `LOWERINGS`; `codegen.generate` imports them all. Nothing
here imports a lowering module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..hw import HwConfig
from ..ir import IR
from ..isa.program import HostOp, TensorInfo
from .emit import BackendError, Buf, Emitter, channel_view
from .placement import VIEW_READERS, copy_view, plan_concats, plan_fused_adds, plan_onchip
from .schedule import DEFAULT, Schedule

Lowering = Callable[["Context", str], Buf]
LOWERINGS: dict[str, Lowering] = {}


def lowering(op: str) -> Callable[[Lowering], Lowering]:
    def register(fn: Lowering) -> Lowering:
        LOWERINGS[op] = fn
        return fn
    return register


class Context:
    def __init__(self, ir: IR, hw: HwConfig, schedule: Schedule = DEFAULT) -> None:
        self.ir, self.hw = ir, hw
        self.em = Emitter(hw, schedule)
        self.bufs: dict[str, Buf] = {}
        self.tensors: list[TensorInfo] = []
        self.hosts: list[HostOp] = []
        # zero-copy concatenation (`placement.py`): tensors written straight into a Concat's output
        self.placement: dict[str, tuple[str, int]] = plan_concats(ir)
        # Conv -> the Add it feeds, applied to the conv's output tiles on chip (`plan_fused_adds`)
        self.fused: dict[str, str] = plan_fused_adds(ir, self.placement) if schedule.fuse_adds else {}
        # Conv -> the Conv alone reading it: candidates to keep the tensor in the scratchpad
        self.onchip: dict[str, str] = plan_onchip(ir, self.placement, self.fused) if schedule.keep_on_chip else {}
        self.resident: dict[str, Any] = {}  # consumer Conv -> the `conv.Resident` it reads
        self.concat_bufs: dict[str, Buf] = {}
        self.dense_copies: dict[str, Buf] = {}

    def what(self, name: str) -> str:
        return f"node {name!r} ({self.ir.op(name)})"

    def input_buf(self, name: str, slot: int = 0) -> Buf:
        """Input `slot` of node `name`: a view as it is when the node's lowering reads views, else dense."""
        src = self.ir.preds(name)[slot]
        if self.ir.op(name) in VIEW_READERS:
            return self.bufs[src]
        return self.dense(src)

    def new_buf(self, name: str) -> Buf:
        """The output of node `name`: its slot in a Concat's output when planned there, else new."""
        return self.placed(name) or self.dense_buf_for(name)

    def dense_buf_for(self, name: str) -> Buf:
        shape = self.ir.node(name)["shape"]
        c, h, w = chw(shape, self.what(name))
        return Buf(self.em.alloc_dram(c * h * w), c, h, w)


    def placed(self, name: str) -> Buf | None:
        """The view node `name` must write (its slot in a Concat's output), or None."""
        if name not in self.placement:
            return None
        concat, c0 = self.placement[name]
        return channel_view(self.concat_buf(concat), c0, self.ir.node(name)["shape"][1])

    def concat_buf(self, name: str) -> Buf:
        """A Concat's output, allocated on first use: its first placed input is lowered before it."""
        if name not in self.concat_bufs:
            self.concat_bufs[name] = self.placed(name) or self.dense_buf_for(name)
        return self.concat_bufs[name]

    def dense(self, name: str) -> Buf:
        """Node `name`'s tensor as a dense NHWC Buf: itself, or a copy of its view (made once)."""
        x = self.bufs[name]
        if x.dense:
            return x
        if name not in self.dense_copies:
            y = self.dense_buf_for(name)
            self.em.begin_layer(f"{name}.dense")
            copy_view(self.em, x, y, self.what(name))
            self.dense_copies[name] = y
        return self.dense_copies[name]


def chw(shape: tuple[int, ...], what: str) -> tuple[int, int, int]:
    """The (C, H, W) of a batch-1 tensor's NHWC bytes: (1, C, *S) lies channels last as (C, 1, |S|). A
    tensor whose axis 0 is not the batch ((L, 1, E): only host ops read it) is flat, (K, 1, 1)."""
    if shape and shape[0] != 1:
        return int(np.prod(shape)), 1, 1
    if len(shape) == 4 and shape[0] == 1:
        return shape[1], shape[2], shape[3]
    if len(shape) == 2 and shape[0] == 1:
        return shape[1], 1, 1
    if len(shape) >= 3 and shape[0] == 1:
        return shape[1], 1, int(np.prod(shape[2:]))
    if len(shape) == 1:  # a rank-1 tensor (a host op's, or an input of one): flat
        return shape[0], 1, 1
    raise BackendError(f"{what}: tensor shape {shape} is not (1, C, H, W), (1, C, ...) or (1, K)")
