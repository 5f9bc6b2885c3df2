"""The compiler's own tables and multipliers against the ONNX float definition of their op.

The QDQ and integer exports (test_qdq_ops.py) carry the compiler's Lut tables, AveragePool
reciprocals and Requant multipliers into the exported model, so ONNX Runtime agreeing with the
simulator checks the arithmetic, not those numbers: a table built for the wrong input scale, or
a pool dividing by the wrong count, passes there. Here the simulator's int8 output, dequantized
with the program's output scale s_out and zero point, is compared with onnxruntime fp32 running
the original float op (an independent definition: the ONNX operator, not npuc's).

The inputs are exact quantization levels of the input scale s_in (x = (q - zp_in)·s_in for
int8 codes q), so quantizing the input adds no error and the bounds below hold element by
element, with y the float op's output clipped to the representable output range
[(-128 - zp_out)·s_out, (127 - zp_out)·s_out], and eps = 2^-10·s_out for float32 rounding in
onnxruntime:

* Lut: |sim - y| <= s_out / 2 + eps. The table entry of code q is the function at exactly
  x(q), rounded once to the output grid (for an input off the grid, add the function's change
  over half an input step: max|f'|·s_in/2; every code is fed here, so the whole table is
  checked).
* AveragePool: the window sum is exact and divided once by the count (ONNX's count, with or
  without the padding): |sim - y| <= s_out / 2 + eps when rounding to nearest (half_even,
  half_up), < s_out + eps when truncating; the 31-bit reciprocal multiplier of a count that is
  not a power of two is off by at most 2^-30 relative, inside eps.
* Requant (a Concat input whose inherited scale differs from the Concat's): the value itself,
  rounded once to the output grid: the same bounds as AveragePool.

Each under the three rule sets of test_qdq_ops.py (pow2 half_even; fixed-point scales, half_up;
pow2 truncate, symmetric).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from npuc.compiler import Compiled, compile_model
from npuc.hw import HwConfig, load_hw
from npuc.isa.program import TensorInfo
from npuc.sim.driver import dequantize, run_program

from .models import make_model
from .test_ops_vector import SILU

HW = load_hw("default")
CONFIGS = {
    "pow2-half_even": HW,
    "fixed_point-half_up": HW.replace(scale_rule="fixed_point", rounding="half_up"),
    "pow2-truncate-sym": HW.replace(rounding="truncate", act_mode="symmetric"),
}


def _compile(model: onnx.ModelProto, hw: HwConfig, want_op: str, seed: int = 0) -> Compiled:
    (x,) = model.graph.input
    shape = tuple(d.dim_value for d in x.type.tensor_type.shape.dim)
    rng = np.random.default_rng(seed)
    calib = [{"x": (2 * rng.normal(size=shape[1:])).astype(np.float32)} for _ in range(8)]
    c = compile_model(model, hw, calib=calib, allow_fallback=False)
    ops = {c.ir.op(n) for n in c.ir.g.nodes}
    assert want_op in ops and "Host" not in ops, ops
    return c


def _levels(t: TensorInfo, q: np.ndarray) -> np.ndarray:
    """The reals of int8 codes q on tensor t's grid."""
    return ((q.astype(np.float64) - t.zp) * t.scale).astype(np.float32)


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """onnxruntime fp32 on the original model, one sample at a time (batch 1 models)."""
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])


def _check(c: Compiled, model: onnx.ModelProto, x: np.ndarray, half_steps: float,
           out: slice = slice(None)) -> float:
    """sim (dequantized) vs onnxruntime fp32 on x, within half_steps · s_out / 2 + eps, on channels
    `out` of the output; returns the largest error in output steps."""
    (t_out,) = c.program.outputs()
    sim = dequantize(run_program(c.program, {"x": x}).raw[t_out.name], t_out).astype(np.float64)[:, out]
    y = _ort(model, x).astype(np.float64)[:, out]
    y = np.clip(y, (-128 - t_out.zp) * t_out.scale, (127 - t_out.zp) * t_out.scale)
    err = np.abs(sim - y) / t_out.scale
    assert len(np.unique(sim)) > 16  # outputs spread over the grid: a comparison that can fail
    worst = np.unravel_index(np.argmax(err), err.shape)
    assert err.max() <= half_steps / 2 + 2**-10, (
        f"{err.max():.3f} output steps at {worst}: sim {sim[worst]}, onnx {y[worst]}, s_out {t_out.scale}")
    return float(err.max())


def _rounding_half_steps(hw: HwConfig) -> float:
    return 2.0 if hw.rounding == "truncate" else 1.0


# -- Lut: every input code through the table ----------------------------------------------------------

LUT_SHAPE = (1, 8, 16, 16)  # 256 pixels per channel: each channel sees every code once


def _every_code(t: TensorInfo) -> np.ndarray:
    rng = np.random.default_rng(1)
    c, h, w = LUT_SHAPE[1:]
    q = np.stack([rng.permutation(256) - 128 for _ in range(c)]).reshape(1, c, h, w)
    return _levels(t, q)


LUTS = {  # name: (nodes, initializers, opset)
    "sigmoid": ([helper.make_node("Sigmoid", ["x"], ["y"])], {}, 13),
    "tanh": ([helper.make_node("Tanh", ["x"], ["y"])], {}, 13),
    "hardswish": ([helper.make_node("HardSwish", ["x"], ["y"])], {}, 14),
    "hardsigmoid": ([helper.make_node("HardSigmoid", ["x"], ["y"], alpha=0.25, beta=0.4)], {}, 13),
    "silu": (SILU, {}, 13),
    "elu": ([helper.make_node("Elu", ["x"], ["y"], alpha=0.7)], {}, 13),
    "softplus": ([helper.make_node("Softplus", ["x"], ["y"])], {}, 13),
    "gelu": ([helper.make_node("Gelu", ["x"], ["y"])], {}, 20),
    "prelu-per-channel": ([helper.make_node("PRelu", ["x", "s"], ["y"])],
                          {"s": np.linspace(-0.6, 0.9, 8).astype(np.float32).reshape(-1, 1, 1)}, 13),
}


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("fn", list(LUTS))
def test_lut_table_against_the_float_function(fn, config):
    nodes, inits, opset = LUTS[fn]
    model = make_model(nodes, inits, LUT_SHAPE, opset=opset)
    c = _compile(model, CONFIGS[config], "Lut")
    (t_in,) = c.program.inputs()
    _check(c, model, _every_code(t_in), half_steps=1.0)


# -- AveragePool: the count it divides by --------------------------------------------------------------

POOLS = [  # count_include_pad, ceil_mode, kernel, strides, pads
    (0, 1, (3, 3), (2, 2), (1, 1, 1, 1)),  # counts 4, 6, 9 (and 2, 3 at the ceil border)
    (1, 0, (3, 2), (2, 3), (1, 0, 0, 1)),  # always 6
    (0, 0, (2, 2), (2, 2), (0, 0, 0, 0)),  # always 4: a power of two
    (0, 0, (3, 3), (1, 1), (1, 1, 1, 1)),  # 4, 6, 9
]


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("count_include_pad,ceil_mode,k,strides,pads", POOLS)
def test_average_pool_against_the_float_mean(config, count_include_pad, ceil_mode, k, strides, pads):
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=list(k), strides=list(strides),
                            pads=list(pads), ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    shape = (1, 6, 9, 8)
    model = make_model([node], {}, shape, opset=19)
    hw = CONFIGS[config]
    c = _compile(model, hw, "AveragePool")
    (t_in,) = c.program.inputs()
    q = np.random.default_rng(2).integers(-128, 128, (4, *shape[1:]))
    _check(c, model, _levels(t_in, q), half_steps=_rounding_half_steps(hw))


# -- Requant: a Concat input with an inherited scale ---------------------------------------------------

def _requant_model() -> onnx.ModelProto:
    """Concat(Conv(x) with a 4x wider range, MaxPool(x)): MaxPool keeps x's scale, the Concat takes the
    union of the ranges, so the pooled channels go through a Requant to the coarser scale."""
    rng = np.random.default_rng(3)
    w = (4 * rng.normal(size=(5, 4, 1, 1)) / 2).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "W"], ["a"]),
             helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Concat", ["a", "p"], ["y"], axis=1)]
    return make_model(nodes, {"W": w}, (1, 4, 7, 6))


@pytest.mark.parametrize("config", list(CONFIGS))
def test_requant_against_the_value_it_carries(config):
    model = _requant_model()
    hw = CONFIGS[config]
    c = _compile(model, hw, "Requant")
    (t_in,) = c.program.inputs()
    (t_out,) = c.program.outputs()
    assert t_out.scale > t_in.scale  # a real requantization: coarser, so it rounds
    q = np.random.default_rng(4).integers(-128, 128, (4, 4, 7, 6))
    _check(c, model, _levels(t_in, q), half_steps=_rounding_half_steps(hw), out=slice(5, None))
