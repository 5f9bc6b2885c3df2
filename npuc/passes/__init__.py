"""The compiler's passes above the backend, and the pipelines that order them.

Each pass is a function ``IR -> IR`` (it copies, never mutates its argument)
in a module of its own, whose docstring states its pre- and postconditions.
`verify(ir, stage)` checks the invariants at each stage boundary.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..hw import HwConfig
from ..ir import IR
from .calibrate import calibrate
from .errors import PassError
from .fold_batchnorm import fold_batchnorm
from .fuse_activation import fuse_activation
from .legalize import legalize
from .quantize import quantize
from .verify import STAGES, verify


def prepare(ir: IR, check: bool = False) -> IR:
    """Float graph clean-up: the graph whose tensors the NPU will hold."""
    if check:
        verify(ir, "frontend")
    ir = fold_batchnorm(ir)  # BN into conv weights first: a fused activation must follow the BN, not precede it
    ir = fuse_activation(ir)  # then Relu/Clip into the conv: after this, no standalone elementwise op
    if check:
        verify(ir, "prepared")
    return ir


def quantize_ir(ir: IR, hw: HwConfig, samples: Iterable[dict[str, np.ndarray]], method: str = "minmax",
                check: bool = False) -> IR:
    """Frontend IR -> quantized, legalized IR ready for the backend. `check` verifies every stage."""
    ir = prepare(ir, check)  # ranges must be measured on the fused graph the NPU runs
    ir = calibrate(ir, samples, method, hw)  # float reference over the samples: a range for every tensor
    if check:
        verify(ir, "calibrated")
    ir = quantize(ir, hw)  # scales from ranges, int8 weights, int32 bias with zp_in folded, raw shifts
    ir = legalize(ir, hw)  # shifts into vrq's [0, 62], multipliers and bias into int32
    if check:
        verify(ir, "quantized", hw)
    return ir


__all__ = [
    "STAGES", "PassError", "calibrate", "fold_batchnorm", "fuse_activation", "legalize", "prepare",
    "quantize", "quantize_ir", "verify",
]
