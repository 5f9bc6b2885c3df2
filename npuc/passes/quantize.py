"""Choose every tensor's int8 quantization and every compute op's integer parameters.

Pre: calibrated IR (every node has ``range``), activations fused.
Post: every node has ``act_q`` (`ActQ`); every Conv, Gemm and
GlobalAveragePool has ``qop`` (`QOp`) with int8 weights, int32 bias (the
input zero point folded in) and a requantization (mul, shift) that may still
lie outside the hardware's range — `legalize` fixes that.

Per op (one function each, in `QUANTIZERS`):

* Input, Host (an op run in float on the host; its output is quantized to
  int8 for the NPU): act_q from its calibrated range; a Host node's integer
  output (ArgMax) is not quantized and gets no act_q.
* Conv / Gemm: act_q from the calibrated output range (which already
  includes the fused activation); weights symmetric per output channel (or
  per tensor); bias = rint(B / (s_in·s_w)) − zp_in·ΣWq, so the hardware
  must pad with zp_in (recorded as ``qop.extra["pad_value"]``); requant
  ratio m = s_in·s_w / s_out — for pow2 exactly 2^-(e_in + e_w − e_out),
  giving mul = 1, shift = e_in + e_w − e_out; saturation bounds = int8 ∩ the
  fused activation's bounds quantized.
* GlobalAveragePool: acc = Σ_HW q, bias = −HW·zp_in, m = s_in / (HW·s_out):
  an exact shift when HW·s_out/s_in is a power of two, else a 31-bit
  reciprocal multiplier (`fixed_point_multiplier`, relative error < 2^-31),
  rounded by the requantizer's rounding mode — the average is rounded once,
  at the end. Against an exact division the result differs only where the
  exact quotient is a rounding tie (HW even, not a power of two), by 1 LSB.
* Add / Sub (two tensors; `vadd`): t = (a − za)·ma + (b − zb)·mb formed
  exactly, then one rounding shift sh, zp_out and the clamp (fused activation
  bounds, as for Conv). pow2: e_f = max(e_a, e_b) (the finer scale),
  ma = 2^(e_f − e_a), mb = ±2^(e_f − e_b) (− for Sub), sh = e_f − e_out — a
  negative sh becomes a left shift of both multipliers in `legalize`; exact,
  rounded once, as the architecture's residual-Add rule says. Other rules:
  the larger of the ratios r = s_in / s_out gets a 31-bit multiplier
  (`fixed_point_multiplier`), which fixes sh; the other is rint(r·2^sh).
  The QOp holds mul = [ma, mb] (signed), shift = [sh], bias = [0], and the
  input zero points in ``extra["zp_in"] = (za, zb)``.
* MaxPool, Flatten, Reshape: the input's act_q (exact on int8).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..hw import HwConfig
from ..ir import IR, ActQ, QOp
from ..quant.scales import QMAX, QMIN, SCALE_RULES, ScaleRule, fixed_point_multiplier, quantize_weights
from .errors import PassError

BIAS_LIMIT = float(1 << 30)  # |bias| stays below 2^30: headroom for the zp fold and the sum
INT32_MAX = (1 << 31) - 1
SHIFT_MAX = 62  # the hardware's largest right shift (vrq, vadd)

Quantizer = Callable[[IR, str, HwConfig, ScaleRule], None]
QUANTIZERS: dict[str, Quantizer] = {}


def quantizer(*ops: str) -> Callable[[Quantizer], Quantizer]:
    def register(fn: Quantizer) -> Quantizer:
        for op in ops:
            QUANTIZERS[op] = fn
        return fn

    return register


def quantize(ir: IR, hw: HwConfig) -> IR:
    ir = ir.copy()
    rule = SCALE_RULES[hw.scale_rule]
    for name in ir.topo():
        fn = QUANTIZERS.get(ir.op(name))
        if fn is None:
            raise PassError(f"node {name!r} (op {ir.op(name)}): cannot be quantized")
        if "range" not in ir.node(name) and ir.node(name)["dtype"] == "float32":
            raise PassError(f"node {name!r} (op {ir.op(name)}): not calibrated (no range)")
        fn(ir, name, hw, rule)
    return ir


def _in_q(ir: IR, name: str) -> ActQ:
    return ir.node(ir.preds(name)[0])["act_q"]


def _out_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> ActQ:
    lo, hi = ir.node(name)["range"]
    return rule.act(lo, hi, hw.act_mode)


def clamp_bounds(act: tuple[str, float, float] | None, q: ActQ) -> tuple[int, int]:
    """int8 range ∩ the fused activation's float bounds, quantized (relu: lo = zp)."""
    if act is None:
        return QMIN, QMAX
    _, a, b = act

    def level(x: float) -> int:
        if math.isinf(x):
            return QMIN if x < 0 else QMAX
        return int(min(max(np.rint(x / q.scale) + q.zp, QMIN), QMAX))

    lo, hi = level(a), level(b)
    return lo, max(lo, hi)


@quantizer("Input")
def input_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    ir.node(name)["act_q"] = _out_q(ir, name, hw, rule)


@quantizer("Host")
def host_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    if ir.node(name)["dtype"] == "float32":
        ir.node(name)["act_q"] = _out_q(ir, name, hw, rule)


@quantizer("MaxPool", "Flatten", "Reshape")
def passthrough_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    ir.node(name)["act_q"] = _in_q(ir, name)


@quantizer("Conv", "Gemm")
def weighted_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    node = ir.node(name)
    w, b = node["consts"]["W"], node["consts"]["B"].astype(np.float64)
    qi, qo = _in_q(ir, name), _out_q(ir, name, hw, rule)
    # the weight scale must also keep rint(B / (s_in·s_w)) inside the bias limit
    wq, s_w, e_w = quantize_weights(w, rule, hw.weight_granularity == "per_channel",
                                    min_scale=np.abs(b) / (qi.scale * BIAS_LIMIT))
    wsum = wq.reshape(wq.shape[0], -1).astype(np.int64).sum(axis=1)
    bias = np.rint(b / (qi.scale * s_w)).astype(np.int64) - qi.zp * wsum
    ratio = qi.scale * s_w / qo.scale
    lo, hi = clamp_bounds(node["attrs"].get("act"), qo)
    extra = {"zp_in": qi.zp, "rescale": ratio, "e_w": e_w}
    if node["op"] == "Conv":
        extra["pad_value"] = qi.zp
    node["act_q"] = qo
    node["qop"] = _qop(rule, ratio, bias, qo, lo, hi, hw, weight=wq, w_scale=s_w, extra=extra)


@quantizer("GlobalAveragePool")
def gap_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    node = ir.node(name)
    _, c, h, w = ir.node(ir.preds(name)[0])["shape"]
    qi, qo = _in_q(ir, name), _out_q(ir, name, hw, rule)
    ratio = np.full(c, qi.scale / (h * w * qo.scale))
    bias = np.full(c, -h * w * qi.zp, dtype=np.int64)
    node["act_q"] = qo
    node["qop"] = _qop(rule, ratio, bias, qo, QMIN, QMAX, hw,
                       extra={"zp_in": qi.zp, "rescale": ratio, "count": h * w})


@quantizer("Add", "Sub")
def add_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    node = ir.node(name)
    qa, qb = (ir.node(p)["act_q"] for p in ir.preds(name))
    qo = _out_q(ir, name, hw, rule)
    sign = -1 if node["op"] == "Sub" else 1
    if qa.exp is not None and qb.exp is not None and qo.exp is not None:
        e_f = max(qa.exp, qb.exp)
        ma, mb, sh = 1 << (e_f - qa.exp), sign << (e_f - qb.exp), e_f - qo.exp
        if max(abs(ma), abs(mb)) << max(-sh, 0) > INT32_MAX:
            raise PassError(f"node {name!r} (op {node['op']}): input scales 2^-{qa.exp}, 2^-{qb.exp} and output "
                            f"scale 2^-{qo.exp} are too far apart for vadd's int32 multipliers")
    else:
        ra, rb = qa.scale / qo.scale, qb.scale / qo.scale
        sh = min(fixed_point_multiplier(max(ra, rb))[1], SHIFT_MAX)
        ma, mb = round(math.ldexp(ra, sh)), sign * round(math.ldexp(rb, sh))
    lo, hi = clamp_bounds(node["attrs"].get("act"), qo)
    node["act_q"] = qo
    node["qop"] = QOp(mul=np.array([ma, mb], dtype=np.int64), shift=np.array([sh], dtype=np.int64),
                      bias=np.zeros(1, dtype=np.int64), zp_out=qo.zp, lo=lo, hi=hi, rounding=hw.rounding,
                      extra={"zp_in": (qa.zp, qb.zp), "rescale": (qa.scale / qo.scale, sign * qb.scale / qo.scale)})


def _qop(rule: ScaleRule, ratio: np.ndarray, bias: np.ndarray, qo: ActQ, lo: int, hi: int, hw: HwConfig,
         **kw: object) -> QOp:
    pairs = [rule.multiplier(float(m)) for m in ratio]
    return QOp(
        mul=np.array([p[0] for p in pairs], dtype=np.int64),
        shift=np.array([p[1] for p in pairs], dtype=np.int64),
        bias=bias.astype(np.int64),
        zp_out=qo.zp,
        lo=lo,
        hi=hi,
        rounding=hw.rounding,
        **kw,  # type: ignore[arg-type]
    )


from . import quantize_layout  # noqa: E402,F401  (registers Concat, Requant and the layout pass-throughs)
from . import quantize_vector  # noqa: E402,F401  (registers Lut and Mul)
from . import quantize_conv  # noqa: E402,F401  (registers AveragePool, GlobalMaxPool, ConvTranspose)
