"""Choose every tensor's int8 quantization and every compute op's integer parameters.

Pre: calibrated IR (every node has ``range``), activations fused.
Post: every float node has ``act_q`` (`ActQ`); every op that computes has
``qop``, the `QParams` record of its kind (`npuc.ir`: `MatQ` for Conv/Gemm/
ConvTranspose, `AccQ` for GlobalAveragePool, `PoolQ`, `AddQ`, `MulQ`, `LutQ`),
whose requantization (multipliers, shifts) may still lie outside the
hardware's range — `legalize` fixes that.

Per op (one function each, in `QUANTIZERS`):

* Input, Host (an op run in float on the host; its output is quantized to
  int8 for the NPU): act_q from its calibrated range; a Host node's integer
  output (ArgMax) is not quantized and gets no act_q.
* Conv / Gemm: act_q from the calibrated output range (which already
  includes the fused activation); weights symmetric per output channel (or
  per tensor); bias = rint(B / (s_in·s_w)) − zp_in·ΣWq, so the hardware
  must pad with zp_in (``MatQ.zp_in``); requant
  ratio m = s_in·s_w / s_out — for pow2 exactly 2^-(e_in + e_w − e_out),
  giving mul = 1, shift = e_in + e_w − e_out; saturation bounds = int8 ∩ the
  fused activation's bounds quantized. A tensor marked ``free_scale``
  (`fold_act_scales`) has a real scale under pow2: the weights then take
  s_w = (s_out / s_in)·2^-k (`core.absorbed_weights`), so the ratio is
  still exactly 2^-k, mul = 1, shift = k.
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
  An `AddQ` holds ma, mb (signed), sh and the input zero points za, zb.
* MaxPool, Flatten, Reshape: the input's act_q (exact on int8).
"""

from __future__ import annotations

from ...hw import HwConfig
from ...ir import IR
from ...quant.scales import SCALE_RULES
from ..errors import PassError
from . import conv, core, layout, vector  # noqa: F401  (each registers its quantizers)
from .common import QUANTIZERS, clamp_bounds


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


__all__ = ["QUANTIZERS", "clamp_bounds", "quantize"]
