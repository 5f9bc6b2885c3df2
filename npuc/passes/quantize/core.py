"""Quantizers of the core ops: Input, Host, pass-throughs, Conv/Gemm, GlobalAveragePool, Add/Sub."""

from __future__ import annotations

import math

import numpy as np

from ...hw import HwConfig
from ...ir import IR, AccQ, AddQ, MatQ
from ...quant.scales import ScaleRule, fixed_point_multiplier, pow2_exponent, quantize_weights
from ..errors import PassError
from .common import (
    BIAS_LIMIT,
    INT32_MAX,
    QMAX,
    QMIN,
    SHIFT_MAX,
    clamp_bounds,
    in_q,
    multipliers,
    out_q,
    output_stage,
    quantizer,
)


@quantizer("Input")
def input_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    ir.node(name)["act_q"] = out_q(ir, name, hw, rule)


@quantizer("Host")
def host_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    node = ir.node(name)
    if node["dtype"] == "float32" and not node["attrs"].get("float_out"):  # float_out: stays float (`unify_concat`)
        node["act_q"] = out_q(ir, name, hw, rule)


@quantizer("MaxPool", "Flatten", "Reshape")
def passthrough_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    ir.node(name)["act_q"] = in_q(ir, name)


@quantizer("Conv", "Gemm")
def weighted_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    node = ir.node(name)
    w, b = node["consts"]["W"], node["consts"]["B"].astype(np.float64)
    qi, qo = in_q(ir, name), out_q(ir, name, hw, rule)
    per_channel = hw.weight_granularity == "per_channel"
    # the weight scale must also keep rint(B / (s_in·s_w)) inside the bias limit
    min_scale = np.abs(b) / (qi.scale * BIAS_LIMIT)
    bits = node["attrs"].get("weight_bits", 8)  # 4: an int4 layer of the mixed-precision plan
    if rule.name == "pow2" and (qi.exp is None or qo.exp is None):  # a free interface scale (fold_act_scales)
        wq, s_w, shift = absorbed_weights(w, qo.scale / qi.scale, per_channel, min_scale, bits=bits)
        e_w, mul, ratio = None, np.ones_like(shift), np.ldexp(1.0, -shift)
    else:
        wq, s_w, e_w = quantize_weights(w, rule, per_channel, min_scale=min_scale, bits=bits)
        ratio = qi.scale * s_w / qo.scale
        mul, shift = multipliers(rule, ratio)
    wsum = wq.reshape(wq.shape[0], -1).astype(np.int64).sum(axis=1)
    bias = np.rint(b / (qi.scale * s_w)).astype(np.int64) - qi.zp * wsum
    lo, hi = clamp_bounds(node["attrs"].get("act"), qo)
    node["act_q"] = qo
    node["qop"] = MatQ(**output_stage(qo, lo, hi, hw), mul=mul, shift=shift, bias=bias, zp_in=qi.zp,
                       rescale=np.asarray(ratio, dtype=np.float64), weight=wq, w_scale=s_w, e_w=e_w,
                       acc_bits=hw.acc_bits, weight_bits=bits)


def absorbed_weights(w: np.ndarray, base: float, per_channel: bool,
                     min_scale: np.ndarray, bits: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int8 (or int4, `bits` = 4) weights whose scale s_w = base·2^-k (base = s_out / s_in, both real) makes
    the requantization ratio s_in·s_w / s_out = 2^-k a shift: the weights absorb the tensors'
    non-power-of-two scales. k per channel (one k per tensor when not `per_channel`) is the finest with
    |W| / s_w <= 2^(bits-1) - 1 and the bias limit kept. Returns (wq, s_w, k)."""
    cout = w.shape[0]
    wmax = (1 << (bits - 1)) - 1
    amax = np.abs(w.reshape(cout, -1)).max(axis=1).astype(np.float64) if w.size else np.zeros(cout)
    required = np.maximum(amax / wmax, min_scale)
    if not per_channel:
        required = np.full(cout, required.max(initial=0.0))
    k = np.array([pow2_exponent(r / base) for r in required], dtype=np.int64)
    s_w = base * np.ldexp(1.0, -k)
    shape = (cout,) + (1,) * (w.ndim - 1)
    wq = np.clip(np.rint(w.astype(np.float64) / s_w.reshape(shape)), -wmax, wmax).astype(np.int8)
    return wq, s_w, k


@quantizer("GlobalAveragePool")
def gap_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    node = ir.node(name)
    _, c, h, w = ir.node(ir.preds(name)[0])["shape"]
    qi, qo = in_q(ir, name), out_q(ir, name, hw, rule)
    ratio = np.full(c, qi.scale / (h * w * qo.scale))
    mul, shift = multipliers(rule, ratio)
    node["act_q"] = qo
    node["qop"] = AccQ(**output_stage(qo, QMIN, QMAX, hw), mul=mul, shift=shift,
                       bias=np.full(c, -h * w * qi.zp, dtype=np.int64), zp_in=qi.zp, rescale=ratio)


@quantizer("Add", "Sub")
def add_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    node = ir.node(name)
    qa, qb = (ir.node(p)["act_q"] for p in ir.preds(name))
    qo = out_q(ir, name, hw, rule)
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
    node["qop"] = AddQ(**output_stage(qo, lo, hi, hw), ma=int(ma), mb=int(mb), sh=int(sh), za=qa.zp, zb=qb.zp,
                       rescale=(qa.scale / qo.scale, sign * qb.scale / qo.scale))
