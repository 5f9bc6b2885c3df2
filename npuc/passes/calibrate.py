"""Record every tensor's real range by running the float reference over calibration samples.

Pre: prepared IR (BN folded, activations fused — ranges must be those of the
tensors the NPU will hold). Post: every float node, inputs included, has
``range = (lo, hi)`` with lo <= hi, finite (an integer tensor, a host
ArgMax's, is not quantized and gets none), and ``power``, its mean square over
the samples (what a quantization step costs it: `unify_concat`). Host nodes
run in float here, so their outputs are calibrated like any tensor.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass
from itertools import islice

import numpy as np
from tqdm import tqdm

from .. import limits
from ..hw import HwConfig
from ..ir import IR
from ..quant.calib_data import sample_shape, stack
from ..quant.calibrators import Calibrator, make_calibrator
from ..quant.scales import SCALE_RULES
from ..reference import run_float
from .errors import PassError

Sample = dict[str, np.ndarray]


@dataclass(frozen=True)
class Statistics:
    """What one calibration run observed: a calibrator per float tensor (by node name), for `method`.

    Collecting is the expensive half (the float reference over every sample); turning statistics
    into ranges under a hardware's scale rule is cheap, so a sweep collects once per model,
    samples and method, and ranges once per rule (`apply_statistics`)."""

    method: str
    calibrators: dict[str, Calibrator]
    samples: int
    power: dict[str, float]  # each tensor's mean square over the samples (what a quantization step costs it)


def collect_statistics(ir: IR, samples: Iterable[Sample], method: str = "minmax", batch_size: int = 16,
                       progress: bool = False) -> Statistics:
    """Run the float reference over `samples` (dicts input name -> one sample, without the batch
    axis) and observe every float tensor (all of them in one pass over the samples)."""
    cals: dict[str, Calibrator] = {n: make_calibrator(method) for n in ir.g.nodes
                                   if ir.node(n)["dtype"] == "float32"}
    # run_float keeps every intermediate of a batch, in float64
    per_sample = limits.REFERENCE_BYTES * sum(limits.elements(ir.node(n)["shape"][1:]) for n in ir.g.nodes)
    batch_size = limits.batch_that_fits(per_sample, batch_size)
    seen = 0
    total = -(-len(samples) // batch_size) if isinstance(samples, Sized) else None
    bar = tqdm(_batches(ir, samples, batch_size), total=total, desc="calibrating", unit="batch",
               disable=None if progress else True, leave=False)
    power: dict[str, list[float]] = {n: [0.0, 0.0] for n in cals}  # Σx², count: the signal power
    for batch in bar:
        for name, value in run_float(ir, batch, intermediates=True).items():
            if name in cals:
                cals[name].observe(value)
                v = np.asarray(value).astype(np.float64, order="C").reshape(-1)  # one copy, any layout
                power[name][0] += float(v @ v)  # Σx² as one dot product: no temporary of the squares
                power[name][1] += v.size
        seen += len(next(iter(batch.values())))
    if not seen:
        raise PassError("calibration got no samples")
    return Statistics(method, cals, seen, {n: s / max(c, 1.0) for n, (s, c) in power.items()})


def apply_statistics(ir: IR, stats: Statistics, hw: HwConfig | None = None) -> IR:
    """A copy of `ir` with every float tensor's ``range`` from `stats`, chosen under `hw`'s scale rule
    (error-minimizing methods, mse, choose among the scales the rule allows)."""
    ir = ir.copy()
    act_rule = free_rule = None
    if hw is not None:
        act_rule = functools.partial(SCALE_RULES[hw.scale_rule].act, mode=hw.act_mode, zero_point=hw.zero_point)
        # a tensor whose scale the weights absorb (`fold_act_scales`) may take any real scale
        free_rule = functools.partial(SCALE_RULES["float"].act, mode=hw.act_mode, zero_point=hw.zero_point)
    for name in ir.g.nodes:
        if ir.node(name)["dtype"] != "float32":
            continue
        if name not in stats.calibrators:
            raise PassError(f"node {name!r} (op {ir.op(name)}): the calibration statistics have no entry for it")
        rule = free_rule if ir.node(name).get("free_scale") else act_rule
        lo, hi = stats.calibrators[name].with_rule(rule).range()
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise PassError(f"node {name!r} (op {ir.op(name)}): calibration saw non-finite values")
        ir.node(name)["range"] = (float(lo), float(hi))
        ir.node(name)["power"] = stats.power[name]  # mean square: `unify_concat` weighs a shared scale by it
    return ir


def calibrate(ir: IR, samples: Iterable[Sample], method: str = "minmax", hw: HwConfig | None = None,
              batch_size: int = 16, progress: bool = False) -> IR:
    """`collect_statistics` then `apply_statistics`: every float tensor gets its range.

    `hw` tells error-minimizing methods (mse) which scales the hardware's rules allow, so they
    choose among those. `progress` shows a progress bar on a terminal."""
    return apply_statistics(ir, collect_statistics(ir, samples, method, batch_size, progress), hw)


def _batches(ir: IR, samples: Iterable[Sample], size: int) -> Iterator[Sample]:
    """Stack up to `size` samples along a new leading batch axis."""
    it = iter(samples)
    while chunk := list(islice(it, size)):
        yield {name: _stack(ir, name, chunk) for name in ir.inputs}


def _stack(ir: IR, name: str, chunk: list[Sample]) -> np.ndarray:
    want = sample_shape(tuple(ir.node(name)["shape"]))
    arrays = []
    for sample in chunk:
        if name not in sample:
            raise PassError(f"a calibration sample has no value for input {name!r}")
        a = np.asarray(sample[name], dtype=np.float32)
        if a.shape != want:
            raise PassError(f"calibration sample for input {name!r} has shape {a.shape}, expected {want}")
        arrays.append(a)
    return stack(tuple(ir.node(name)["shape"]), arrays)
