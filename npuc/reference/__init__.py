"""The numpy golden model of every IR op, in float32 and in the NPU's integer arithmetic.

Two registries, one small function per op:

* `FLOAT_OPS` — the float model (fused activations included), used for
  calibration and for the fp32-equivalence check against ONNX Runtime;
* `QUANT_OPS` — the int8 model: int8 x int8 products summed exactly, the
  accumulator (plus bias) wrapped to int32 as the hardware adder does, then
  `npuc.isa.arith.requantize` per output channel. This is the definition the
  C simulator must equal bit for bit.

Every tensor is batched NCHW (or (N, K)); a batch of B samples through an IR
built for batch 1 is B independent runs. Convolutions loop over the kernel
taps with one matmul each (a few taps, big matmuls): integer matmuls run in
float64, exact because every partial sum stays far below 2^53.
"""

from __future__ import annotations

from . import conv, core, layout, vector  # noqa: F401  (each registers its ops)
from .common import FLOAT_OPS, QUANT_OPS, Node, conv_nhwc, float_op, pad_nchw, quant_op, taps
from .run import dequantize, quantize_input, run_float, run_quantized, run_quantized_float

__all__ = [
    "FLOAT_OPS", "QUANT_OPS", "Node", "conv_nhwc", "dequantize", "float_op", "pad_nchw", "quant_op",
    "quantize_input", "run_float", "run_quantized", "run_quantized_float", "taps",
]
