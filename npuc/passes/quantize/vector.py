"""Quantizers of the vector-unit ops Lut and Mul (registered into `common.QUANTIZERS`).

* Lut: act_q from the calibrated output range (the function's own range,
  fused clamp included); the compiler samples the function at the 256 input
  codes: ``tab[q + 128] = clamp(rint(f((q - zp_in)·s_in) / s_out) + zp_out,
  lo, hi)`` (`npuc.lut.build_table`), int8 (256,), or (C, 256) for
  per-channel PReLU: a `LutQ` (a lookup has no requantization). Error against the float function:
  at most half an output step plus the function's change over half an input
  step.
* Mul (two inputs, `vmul`): act_q from the range; the product of the two
  centred inputs has scale s_a·s_b, so the ratio s_a·s_b/s_out becomes
  (mul, sh): an exact shift under pow2 (mul = 1; a negative sh becomes a
  left shift of mul in `legalize`), else a 31-bit fixed-point multiplier
  (`fixed_point_multiplier`, as Conv and add_q do): a `MulQ`; the fused
  activation's bounds are the clamp. Exact with pow2 scales but
  for the one rounding of the shift.
"""

from __future__ import annotations

from ... import lut
from ...hw import HwConfig
from ...ir import IR, LutQ, MulQ
from ...quant.scales import ScaleRule
from ..errors import PassError
from .common import clamp_bounds, in_q, out_q, output_stage, quantizer


@quantizer("Lut")
def lut_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    node = ir.node(name)
    qi, qo = in_q(ir, name), out_q(ir, name, hw, rule)
    lo, hi = clamp_bounds(node["attrs"].get("act"), qo)
    table = lut.build_table(node["attrs"]["fn"], lut.lut_params(node), qi.scale, qi.zp, qo.scale, qo.zp, lo, hi,
                            node["consts"].get("slope"))
    node["act_q"] = qo
    node["qop"] = LutQ(**output_stage(qo, lo, hi, hw), table=table, zp_in=qi.zp)


@quantizer("Mul")
def mul_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    node = ir.node(name)
    preds = ir.preds(name)
    if len(preds) != 2:
        raise PassError(f"node {name!r} (op Mul): a Mul by a constant should have been folded by "
                        "fold_batchnorm before quantization")
    qa, qb = (ir.node(p)["act_q"] for p in preds)
    qo = out_q(ir, name, hw, rule)
    ratio = qa.scale * qb.scale / qo.scale
    mul, sh = rule.multiplier(ratio)
    lo, hi = clamp_bounds(node["attrs"].get("act"), qo)
    node["act_q"] = qo
    node["qop"] = MulQ(**output_stage(qo, lo, hi, hw), mul=int(mul), sh=int(sh), za=qa.zp, zb=qb.zp, rescale=ratio)
