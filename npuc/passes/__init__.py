"""The compiler's passes above the backend, and the pipelines that order them.

Each pass is a function ``IR -> IR`` (it copies, never mutates its argument)
in a module of its own, whose docstring states its pre- and postconditions.
`verify(ir, stage)` checks the invariants at each stage boundary.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..hw import HwConfig
from ..ir import IR
from ..ir_dump import write_ir
from .calibrate import Statistics, apply_statistics, calibrate, collect_statistics
from .cleanup import cleanup
from .errors import PassError
from .fold_batchnorm import fold_batchnorm
from .fuse_activation import fuse_activation
from .fuse_lut import fuse_lut
from .legalize import legalize
from .quantize import quantize
from .unify_concat import unify_concat
from .verify import STAGES, verify


class Watch:
    """What happens between passes: `--verify` checks the stage invariants, `--dump-ir DIR`
    writes the IR after every pass as `DIR/NN-pass.txt`."""

    def __init__(self, check: bool = False, dump_dir: str | Path | None = None) -> None:
        self.check = check
        self.dump_dir = Path(dump_dir) if dump_dir is not None else None
        self.steps = 0
        if self.dump_dir is not None:
            self.dump_dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, step: str, ir: IR, stage: str | None = None, hw: HwConfig | None = None) -> IR:
        if self.check and stage is not None:
            verify(ir, stage, hw)
        if self.dump_dir is not None:
            write_ir(ir, self.dump_dir / f"{self.steps:02d}-{step}.txt")
        self.steps += 1
        return ir


def prepare(ir: IR, check: bool = False, watch: Watch | None = None, fallback: bool = True) -> IR:
    """Float graph clean-up: the graph whose tensors the NPU will hold.

    With `fallback`, a BN or activation that cannot be folded or fused runs on the host (a `Host` node)."""
    watch = watch or Watch(check)
    ir = watch("frontend", ir, "frontend")
    ir = cleanup(ir)  # a zero Pad into the Conv / AveragePool after it: the `ld` pads for free
    ir = watch("cleanup", ir)
    # SiLU / HardSwish patterns into one Lut first, before fold_batchnorm folds their "+ 3" or "/ 6" away
    ir = fuse_lut(ir)
    ir = watch("fuse_lut", ir)
    # BN into conv weights first: a fused activation must follow the BN, not precede it
    ir = fold_batchnorm(ir, fallback)
    ir = watch("fold_batchnorm", ir)
    ir = fuse_activation(ir, fallback)  # then Relu/Clip into the conv: after this, no standalone elementwise op
    return watch("fuse_activation", ir, "prepared")


def quantize_ir(ir: IR, hw: HwConfig, samples: Iterable[dict[str, np.ndarray]], method: str = "minmax",
                check: bool = False, watch: Watch | None = None, batch_size: int = 16,
                progress: bool = False, statistics: Statistics | None = None) -> IR:
    """Prepared IR (see `prepare`) -> quantized, legalized IR ready for the backend.

    Ranges must be measured on the fused graph the NPU runs, so the input is
    the output of `prepare`. `check` verifies every stage. `statistics` (`collect_statistics` of the
    same IR, samples and method) skips the float runs over the samples: a sweep collects them once."""
    watch = watch or Watch(check)
    # the float reference over the samples: a range for every tensor
    if statistics is None:
        statistics = collect_statistics(ir, samples, method, batch_size, progress)
    elif statistics.method != method:
        raise PassError(f"statistics were collected for {statistics.method!r}, not {method!r}")
    ir = apply_statistics(ir, statistics, hw)
    ir = watch("calibrate", ir, "calibrated")
    ir = unify_concat(ir)  # a Concat's inputs share its range, so one act_q: the concatenation is a copy
    ir = watch("unify_concat", ir, "calibrated")
    ir = quantize(ir, hw)  # scales from ranges, int8 weights, int32 bias with zp_in folded, raw shifts
    ir = watch("quantize", ir)
    ir = legalize(ir, hw)  # shifts into vrq's [0, 62], multipliers and bias into int32
    return watch("legalize", ir, "quantized", hw)


__all__ = [
    "STAGES", "PassError", "Statistics", "Watch", "apply_statistics", "calibrate", "cleanup", "collect_statistics",
    "fold_batchnorm", "fuse_activation", "fuse_lut", "legalize", "prepare", "quantize", "quantize_ir", "verify",
]
