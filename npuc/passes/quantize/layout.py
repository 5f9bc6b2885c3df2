"""Quantizers of the layout ops (registered into `common.QUANTIZERS`).

* ChannelSlice, ChannelShuffle, Resize (nearest), Pad, EdgePad: the input's act_q —
  they move int8 values, exact.
* Concat: act_q from its calibrated range (after `unify_concat`, the range
  its own-scale inputs share, so they get the same act_q); every input whose
  act_q still differs gets a `Requant` node in front of it, inserted and
  quantized here, so a concatenation is always exact.
* Requant: act_q from its range; qop as a one-input `vadd`: pow2 scales
  ma = 1, sh = e_in - e_out (a negative sh becomes a left shift in
  `legalize`), exact when the output is finer; other rules a 31-bit
  multiplier (`fixed_point_multiplier`). An `AddQ` with mb = zb = 0.
"""

from __future__ import annotations

import math

from ...hw import HwConfig
from ...ir import IR, ActQ, AddQ
from ...quant.scales import QMAX, QMIN, ScaleRule, fixed_point_multiplier
from .common import SHIFT_MAX, in_q, out_q, output_stage, quantizer


@quantizer("ChannelSlice", "ChannelShuffle", "Resize", "Pad", "EdgePad")
def layout_passthrough_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    ir.node(name)["act_q"] = in_q(ir, name)


def requant_qop(qi: ActQ, qo: ActQ, hw: HwConfig) -> AddQ:
    if qi.exp is not None and qo.exp is not None:
        ma, sh = 1, qi.exp - qo.exp
    else:
        ma, sh = fixed_point_multiplier(qi.scale / qo.scale)
        if sh > SHIFT_MAX:
            ma, sh = round(math.ldexp(ma, SHIFT_MAX - sh)), SHIFT_MAX
    return AddQ(**output_stage(qo, QMIN, QMAX, hw), ma=int(ma), mb=0, sh=int(sh), za=qi.zp, zb=0,
                rescale=(qi.scale / qo.scale, 0.0))


@quantizer("Const")
def const_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    ir.node(name)["act_q"] = out_q(ir, name, hw, rule)


@quantizer("Requant")
def requant_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    node = ir.node(name)
    node["act_q"] = out_q(ir, name, hw, rule)
    node["qop"] = requant_qop(in_q(ir, name), node["act_q"], hw)


@quantizer("Concat")
def concat_q(ir: IR, name: str, hw: HwConfig, rule: ScaleRule) -> None:
    node = ir.node(name)
    qo = out_q(ir, name, hw, rule)
    node["act_q"] = qo
    for src, _, slot in sorted(ir.g.in_edges(name, data="slot"), key=lambda e: e[2]):
        qi = ir.node(src)["act_q"]
        if qi == qo:
            continue
        rq = ir.add(f"{name}.requant{slot}", "Requant", [src], shape=ir.node(src)["shape"])
        ir.g.remove_edge(src, name)
        ir.g.add_edge(rq, name, slot=slot)
        d = ir.node(rq)
        d["order"] = ir.node(name).get("order", 0)
        d["range"] = node["range"]
        d["act_q"] = qo
        d["qop"] = requant_qop(qi, qo, hw)
