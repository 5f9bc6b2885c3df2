"""Activation scales finer than a power of two, folded into Conv/Gemm weights (`--fold-act-scales MODE`).

Under pow2 rules every requantization must be a shift: s_in·s_w / s_out = 2^-k. Nothing demands that
each of the three scales be a power of two, only their ratio; the weight scale s_w is free (the int8
codes are computed offline). So a tensor whose every requantization has a weight scale next to it —
produced by an Input or a Conv/Gemm, read only by Conv/Gemm — may take any real scale, and the weights
absorb the non-power-of-two part. The modes (`FOLD_MODES`):

* ``io`` — the model's input and output (the host quantizes and dequantizes them with any scale; the
  NPU-side arithmetic is unchanged): such a tensor is marked ``free_scale``; calibration ranges it
  under the float rule, `quantize.core.absorbed_weights` gives the Conv/Gemm next to it weights of scale
  (s_out / s_in)·2^-k, the requantization stays a shift (mul = 1).
* ``all`` — the same for every tensor the graph allows, internal ones too.
* ``pow2`` — per-channel exponents: channel c of a Conv/Gemm's output gets its own exponent e + k_c.
  In float terms the pass multiplies the producer's channel c (weights and bias) by 2^k_c and the
  consumers' input column c by 2^-k_c: powers of two, so the float model computes the same numbers
  bit for bit, and the ordinary per-tensor quantization of the folded tensor *is* the per-channel
  quantization of the original. The producer's per-channel pow2 weight codes do not change (its
  `vrq` shifts k_c less); the consumer's weights lose precision in the columns it divides.
* ``fill`` — as pow2 with real factors: every channel fills the tensor's grid.
* ``io+pow2`` — both.

Every mode leaves an ordinary quantized model: quantize, legalize, the simulator, the integer reference
and the export see nothing special (the QDQ form with real interface scales: see the README).

Pre (pow2/fill): prepared float IR (activations fused), calibration `Statistics` of that IR, the
samples. Post: the same float function; for every foldable producer P (see `fold_sites`) its output
channels are scaled by f_c >= 1 and its consumers' columns by 1/f_c; P's node holds ``fold_scale``,
the array f. The statistics still describe the unfolded tensors: `quantize_ir` ranges the folded IR
with them (each folded tensor keeps its unfolded range, which every scaled channel fits by
construction).

Where pow2/fill fold: P is a Conv or Gemm with per-channel weights (a per-tensor weight scale would
grow with the scaled rows), its fused activation none or ReLU (positive-homogeneous: ReLU6's 6
would have to scale per channel), its output reaching only Conv/Gemm consumers through a chain
of MaxPool / Flatten / Reshape (each channel-wise and homogeneous), no graph output on the way,
no Add/Concat/pool or other consumer that needs one scale (`why_not` says which). A depthwise
(grouped) consumer takes the factor into its own output channel's weights, which per-channel pow2
weights absorb exactly.

Choice of f_c: the largest factor (<= 2^`max_shift`) such that channel c's calibrated range (the
calibrator of the compile, per channel), times f_c, still fits the tensor's int8 grid (same zero
point for every channel — the hardware pads with one; a channel never seen non-zero keeps 1); then,
per channel, f_c / 2^j wherever the consumer's weight rounding (which grows f_c times in real units
in column c) costs more than the activation rounding saves — both estimated from the calibration
statistics (`_tradeoff`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..hw import HwConfig
from ..ir import IR, ActQ
from ..quant.calib_data import stack
from ..quant.calibrators import make_calibrator
from ..quant.scales import SCALE_RULES, quantize_weights
from ..reference import run_float
from .calibrate import Statistics

LAYERS = ("Conv", "Gemm")
BETWEEN = ("MaxPool", "Flatten", "Reshape")
FOLD_MODES = ("off", "io", "all", "pow2", "fill", "io+pow2")  # CompileOptions.fold_act_scales
MAX_SHIFT = 8  # beyond 2^8 a channel is (nearly) dead: its consumer column would round to nothing


@dataclass(frozen=True)
class FoldSite:
    """A producer whose output channels may get their own exponents, and where the factor goes."""

    producer: str
    tensor: str  # the tensor the consumers read (the producer, or the end of its MaxPool/Flatten chain)
    consumers: tuple[str, ...]
    channels: int


def _homogeneous(act: tuple[str, float, float] | None) -> bool:
    return act is None or (act[1] == 0.0 and math.isinf(act[2]) and act[2] > 0)


def why_not(ir: IR, name: str, hw: HwConfig) -> str | None:
    """Why producer `name`'s output cannot get per-channel exponents, or None when it can."""
    node = ir.node(name)
    if node["op"] not in LAYERS:
        return f"op {node['op']} is not a Conv or Gemm"
    if hw.weight_granularity != "per_channel":
        return "per-tensor weights: the producer's weight scale would grow with its scaled channels"
    if not _homogeneous(node["attrs"].get("act")):
        return f"fused activation {node['attrs']['act'][0]} is not ReLU (its bound would differ per channel)"
    cur = name
    while True:
        if cur in ir.outputs:
            return f"{cur!r} is a graph output (its scale is the model's interface)"
        succs = ir.succs(cur)
        if len(succs) == 1 and ir.op(succs[0]) in BETWEEN:
            cur = succs[0]
            if not _homogeneous(ir.node(cur)["attrs"].get("act")):
                return f"{cur!r} has a fused {ir.node(cur)['attrs']['act'][0]} (its bound would differ per channel)"
            continue
        break
    if not succs:
        return "no consumer"
    cout = ir.node(name)["consts"]["W"].shape[0]
    for s in succs:
        op = ir.op(s)
        if op not in LAYERS:
            return f"consumer {s!r} ({op}) needs one scale for the whole tensor"
        if ir.preds(s) != [cur]:
            return f"consumer {s!r} has other inputs"
        k = ir.node(s)["consts"]["W"].shape[1] * (int(ir.node(s)["attrs"].get("group", 1)) if op == "Conv" else 1)
        if k % cout or (op == "Conv" and k != cout):
            return f"consumer {s!r} reads {k} input columns for {cout} channels"
        shape, first = ir.node(cur)["shape"], ir.node(name)["shape"]
        # column c·per .. c·per + per - 1 of a Gemm must be channel c: (N, C) or (N, C, H, W) flattened
        if op == "Gemm" and (len(shape) != 2 or shape[0] != first[0]):
            return f"consumer {s!r}: its input {tuple(shape)} is not the batch-first flattened tensor"
        if op == "Conv" and (len(shape) != 4 or shape[:2] != first[:2]):
            return f"consumer {s!r}: its input {tuple(shape)} is not the producer's channels"
    return None


def fold_sites(ir: IR, hw: HwConfig) -> list[FoldSite]:
    """Every producer whose output channels can get their own exponents (`why_not` is None)."""
    sites = []
    for name in ir.topo():
        if ir.op(name) not in LAYERS or why_not(ir, name, hw) is not None:
            continue
        cur = name
        while len(ir.succs(cur)) == 1 and ir.op(ir.succs(cur)[0]) in BETWEEN:
            cur = ir.succs(cur)[0]
        sites.append(FoldSite(name, cur, tuple(sorted(ir.succs(cur))), int(ir.node(name)["consts"]["W"].shape[0])))
    return sites


def channel_ranges(ir: IR, sites: Sequence[FoldSite], samples: Sequence[dict[str, np.ndarray]], method: str,
                   hw: HwConfig, batch_size: int = 16) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per producer: (lo, hi, mean square) per output channel, with `method`'s calibrator per channel."""
    rule = SCALE_RULES[hw.scale_rule]

    def act_rule(lo: float, hi: float) -> ActQ:
        return rule.act(lo, hi, hw.act_mode, hw.zero_point)

    cals = {s.producer: [make_calibrator(method, act_rule) for _ in range(s.channels)] for s in sites}
    power = {s.producer: np.zeros(s.channels) for s in sites}
    count = dict.fromkeys(power, 0)  # values seen per channel
    for i in range(0, len(samples), batch_size):
        chunk = samples[i:i + batch_size]
        feeds = {n: stack(tuple(ir.node(n)["shape"]), [np.asarray(s[n], np.float32) for s in chunk])
                 for n in ir.inputs}
        out = run_float(ir, feeds, intermediates=True)
        for s in sites:
            y = np.moveaxis(np.asarray(out[s.producer], dtype=np.float64), 1, 0).reshape(s.channels, -1)
            for c in range(s.channels):
                cals[s.producer][c].observe(y[c])
            power[s.producer] += np.sum(y * y, axis=1)
            count[s.producer] += y.shape[1]
    result = {}
    for s in sites:
        ranges = np.array([c.range() for c in cals[s.producer]], dtype=np.float64).reshape(-1, 2)
        result[s.producer] = (ranges[:, 0], ranges[:, 1], power[s.producer] / max(count[s.producer], 1))
    return result


def fit_factors(q: ActQ, lo: np.ndarray, hi: np.ndarray, mode: str = "fill",
                max_shift: int = MAX_SHIFT) -> np.ndarray:
    """Per channel, the largest factor f in [1, 2^max_shift] with the channel's range [lo, hi] times f
    still on `q`'s grid (lo·f/s + zp >= qmin, hi·f/s + zp <= qmax): any real f (`mode` "fill": the
    channel fills the grid) or the largest power of two (`mode` "pow2")."""
    top, bottom = (q.qmax - q.zp) * q.scale, (q.qmin - q.zp) * q.scale  # the grid's real ends (bottom <= 0)
    limit = 2.0 ** max_shift
    up = np.where(hi > 0, top / np.where(hi > 0, hi, 1.0), limit)
    down = np.where(lo < 0, bottom / np.where(lo < 0, lo, -1.0), limit)
    f = np.clip(np.minimum(up, down), 1.0, limit)
    f[(hi <= 0) & (lo >= 0)] = 1.0  # never seen non-zero: nothing tells how far it may be scaled
    if mode == "pow2":
        f = 2.0 ** np.floor(np.log2(f) + 1e-12)
    elif mode != "fill":
        raise ValueError(f"fold mode {mode!r}: must be 'fill' or 'pow2'")
    return f


def _columns(w: np.ndarray, op: str, group: int, channels: int) -> np.ndarray:
    """A view of consumer weights `w` as (Cout, channels, rest): input channel c's columns at [:, c].
    A grouped conv's channel c belongs to group c // (channels / group): only that group's rows read it
    (other rows get zeros in the returned copy)."""
    cout = w.shape[0]
    if op == "Gemm":
        return w.reshape(cout, channels, -1)
    if group == 1:
        return w.reshape(cout, channels, -1)
    per_in, per_out = channels // group, cout // group
    full = np.zeros((cout, channels) + w.shape[2:], dtype=w.dtype)
    for g in range(group):
        full[g * per_out:(g + 1) * per_out, g * per_in:(g + 1) * per_in] = w[g * per_out:(g + 1) * per_out]
    return full.reshape(cout, channels, -1)


def _scale_columns(w: np.ndarray, op: str, group: int, factor: np.ndarray) -> np.ndarray:
    """Consumer weights with input channel c's columns multiplied by factor[c]."""
    cout = w.shape[0]
    channels = len(factor)
    if op == "Gemm":
        return (w.reshape(cout, channels, -1) * factor[None, :, None]).reshape(w.shape)
    per_in, per_out = channels // group, cout // group
    out = w.copy()
    for g in range(group):
        f = factor[g * per_in:(g + 1) * per_in]
        out[g * per_out:(g + 1) * per_out] *= f.reshape((1, per_in) + (1,) * (w.ndim - 2))
    return out


def _weight_noise(w: np.ndarray, factor: np.ndarray, op: str, group: int, rule_name: str) -> np.ndarray:
    """Per input channel c: Σ_rows Σ_taps (rounding error of the folded weight, in unfolded units)²."""
    folded = _scale_columns(w, op, group, 1.0 / factor)
    wq, s, _ = quantize_weights(folded, SCALE_RULES[rule_name], True)
    err = (wq.astype(np.float64) * s.reshape((-1,) + (1,) * (w.ndim - 1)) - folded)
    cols = _columns(err, op, group, len(factor)) * factor[None, :, None]
    return np.sum(cols * cols, axis=(0, 2))


def _tradeoff(w_list: list[tuple[np.ndarray, str, int]], q: ActQ, fit: np.ndarray, msq: np.ndarray,
              rule_name: str) -> np.ndarray:
    """Per channel, the factor among fit·2^-j (j = 0, 1, .. while >= 1) minimising the consumers'
    estimated output noise: the activation rounding (step s/f, variance step²/12, times the column's
    weight energy) plus the consumer's weight rounding (its error energy in the column, which grows
    with f in unfolded units, times the channel's mean square). Channels are chosen one at a time (a
    column changes its rows' weight scales, so every candidate is re-measured), largest factor first."""
    f = fit.copy()
    wenergy = sum(np.sum(_columns(w, op, g, len(f)) ** 2, axis=(0, 2)) for w, op, g in w_list)

    def noise(ff: np.ndarray) -> float:
        act = wenergy * (q.scale / ff) ** 2 / 12.0
        wgt = sum(_weight_noise(w, ff, op, g, rule_name) for w, op, g in w_list) * msq
        return float(np.sum(act + wgt))

    best = noise(f)
    for c in np.argsort(-fit, kind="stable"):
        cand = fit[c] / 2.0
        while cand >= 1.0:
            trial = f.copy()
            trial[c] = cand
            n = noise(trial)
            if n < best:
                best, f = n, trial
            cand /= 2.0
    return f


def free_tensors(ir: IR, internal: bool = False) -> list[str]:
    """Tensors whose scale may be any real number under pow2 rules: produced by an Input or a Conv/Gemm
    and read only by Conv/Gemm (ConvTranspose excluded), so every requantization touching them has a
    weight scale to absorb the non-power-of-two part (`quantize.core.absorbed_weights`). Graph inputs
    and outputs only (the host quantizes and dequantizes them with any scale), or also `internal` ones."""
    free = []
    for name in ir.topo():
        node = ir.node(name)
        if node["op"] not in ("Input", *LAYERS) or node["dtype"] != "float32":
            continue
        if not internal and name not in ir.inputs and name not in ir.outputs:
            continue
        if all(ir.op(s) in LAYERS and ir.preds(s) == [name] for s in ir.succs(name)):
            free.append(name)
    return free


def fold_act_scales(ir: IR, hw: HwConfig, stats: Statistics, samples: Sequence[dict[str, np.ndarray]],
                    mode: str = "io", batch_size: int = 16, max_shift: int = MAX_SHIFT,
                    tradeoff: bool = True) -> IR:
    """A copy of `ir` with per-channel scales folded where the graph allows (module docstring)."""
    ir = ir.copy()
    if mode in ("io", "io+pow2", "all"):  # scales the weights absorb: a mark that quantization reads
        for name in free_tensors(ir, internal=mode == "all"):
            ir.node(name)["free_scale"] = True
        if mode != "io+pow2":
            return ir
        mode = "pow2"
    sites = fold_sites(ir, hw)
    if not sites:
        return ir
    rule = SCALE_RULES[hw.scale_rule]
    act_rule = functools.partial(rule.act, mode=hw.act_mode, zero_point=hw.zero_point)
    per_channel = channel_ranges(ir, sites, samples, stats.method, hw, batch_size)
    for s in sites:
        lo, hi = stats.calibrators[s.producer].with_rule(act_rule).range()  # as `apply_statistics` ranges it
        q = act_rule(lo, hi)
        clo, chi, msq = per_channel[s.producer]
        factor = fit_factors(q, np.maximum(clo, lo), np.minimum(chi, hi), mode, max_shift)
        consumers = [(ir.node(c)["consts"]["W"].astype(np.float64), ir.op(c),
                      int(ir.node(c)["attrs"].get("group", 1))) for c in s.consumers]
        if tradeoff and np.any(factor > 1.0):
            factor = _tradeoff(consumers, q, factor, msq, hw.scale_rule)
        p = ir.node(s.producer)
        shape = (-1,) + (1,) * (p["consts"]["W"].ndim - 1)
        p["consts"]["W"] = (p["consts"]["W"] * factor.reshape(shape)).astype(np.float32)
        p["consts"]["B"] = (p["consts"]["B"] * factor).astype(np.float32)
        p["fold_scale"] = factor
        for c, (w, op, group) in zip(s.consumers, consumers):
            ir.node(c)["consts"]["W"] = _scale_columns(w, op, group, 1.0 / factor).astype(np.float32)
    return ir


__all__ = ["FOLD_MODES", "FoldSite", "channel_ranges", "fit_factors", "fold_act_scales", "fold_sites", "why_not"]
