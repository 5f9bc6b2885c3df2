"""The IR's op set, declared once: each op's inputs, kind and integer parameter record.

Every IR node's ``op`` is a key of `OPS`. The stage checks (`npuc/passes/verify.py`)
derive from it (which ops may exist before and after `prepare`, how many inputs,
which record a quantized node holds, which ops keep their input's quantization),
and `tests/unit/test_op_set.py` checks that every op has each piece it needs — a
float and an integer reference, a quantizer, a lowering, both exports — so an
op added here without one of them fails loudly.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .ir import AccQ, AddQ, LutQ, MatQ, MulQ, PoolQ, QParams


class Kind(Enum):
    """Where an op runs, which decides what it needs."""

    INPUT = "input"  # a graph input: quantized, no computation
    ARRAY = "array"  # the systolic array (gemm)
    POOL = "pool"  # window and global reductions (vmax, vsum, or a gemm with weight 1)
    VECTOR = "vector"  # the vector unit, elementwise (vadd, vmul, vlut)
    LAYOUT = "layout"  # moves int8 values (DMA, or no code at all)
    HOST = "host"  # an ONNX op run in float on the host between NPU segments
    FLOAT = "float"  # exists only before quantization: `prepare` folds or fuses it away


@dataclass(frozen=True)
class OpDef:
    name: str
    inputs: tuple[int, int | None]  # fewest and most inputs (None: any number)
    kind: Kind
    qparams: type[QParams] | None = None  # the record a quantized node holds in ``qop`` (None: no qop)
    keeps_act_q: bool = False  # its output has its input's quantization (it only moves int8 values)
    doc: str = ""

    @property
    def quantized(self) -> bool:
        """The op survives into the quantized IR (and so needs the integer pieces)."""
        return self.kind is not Kind.FLOAT


_DEFS = (
    OpDef("Input", (0, 0), Kind.INPUT, doc="a graph input"),
    OpDef("Conv", (1, 1), Kind.ARRAY, MatQ, doc="2-D convolution (groups, dilation, pads; fused activation)"),
    OpDef("ConvTranspose", (1, 1), Kind.ARRAY, MatQ, doc="2-D transposed convolution"),
    OpDef("Gemm", (1, 1), Kind.ARRAY, MatQ, doc="fully connected layer, y = x·Wᵀ + B"),
    OpDef("ChannelShuffle", (1, 1), Kind.ARRAY, keeps_act_q=True,
          doc="ShuffleNet's channel permutation (a 0/1 permutation matrix on the array)"),
    OpDef("MaxPool", (1, 1), Kind.POOL, keeps_act_q=True, doc="window maximum"),
    OpDef("GlobalMaxPool", (1, 1), Kind.POOL, keeps_act_q=True, doc="maximum over H, W"),
    OpDef("AveragePool", (1, 1), Kind.POOL, PoolQ, doc="window average (per-pixel divisor)"),
    OpDef("GlobalAveragePool", (1, 1), Kind.POOL, AccQ, doc="average over H, W"),
    OpDef("Add", (1, 2), Kind.VECTOR, AddQ,
          doc="sum of two tensors of one shape (before `prepare`: one tensor plus a per-channel constant B)"),
    OpDef("Sub", (2, 2), Kind.VECTOR, AddQ, doc="difference of two tensors of one shape"),
    OpDef("Mul", (1, 2), Kind.VECTOR, MulQ,
          doc="product of two tensors, or with a (1, C, 1, 1) channel broadcast (before `prepare`: by a "
              "per-channel constant S)"),
    OpDef("Lut", (1, 1), Kind.VECTOR, LutQ, doc="any function of one element (`npuc.lut`), as a 256-entry table"),
    OpDef("Requant", (1, 1), Kind.VECTOR, AddQ, doc="rescale to another quantization (inserted before a Concat)"),
    OpDef("Const", (0, 0), Kind.LAYOUT,
          doc="a constant tensor (``consts['value']``, batch 1) quantized at compile time and stored in DRAM: the "
              "operand of an Add/Sub/Mul that is not one value per channel (YOLO's anchor grid)"),
    OpDef("Concat", (1, None), Kind.LAYOUT,
          doc="concatenation of channels (axis 1) or rows (axis 2) (inputs share its quantization)"),
    OpDef("ChannelSlice", (1, 1), Kind.LAYOUT, keeps_act_q=True, doc="channels [start, end)"),
    OpDef("Resize", (1, 1), Kind.LAYOUT, keeps_act_q=True, doc="nearest upsampling by integer scales"),
    OpDef("Pad", (1, 1), Kind.LAYOUT, keeps_act_q=True, doc="constant padding of H, W"),
    OpDef("EdgePad", (1, 1), Kind.LAYOUT, keeps_act_q=True, doc="edge or reflect padding of H, W"),
    OpDef("Flatten", (1, 1), Kind.LAYOUT, keeps_act_q=True, doc="a view of the same bytes as (1, K)"),
    OpDef("Reshape", (1, 1), Kind.LAYOUT, keeps_act_q=True, doc="a view of the same bytes in another shape"),
    OpDef("Host", (0, None), Kind.HOST, doc="an ONNX op the NPU cannot run, in float on the host"),
    OpDef("BatchNormalization", (1, 1), Kind.FLOAT, doc="folded into the conv before it, or a 1x1 depthwise conv"),
    OpDef("Relu", (1, 1), Kind.FLOAT, doc="fused into its producer's clamp"),
    OpDef("Clip", (1, 1), Kind.FLOAT, doc="fused into its producer's clamp"),
)

OPS: dict[str, OpDef] = {d.name: d for d in _DEFS}
assert len(OPS) == len(_DEFS), "an op is declared twice"


def ops_of(*kinds: Kind) -> frozenset[str]:
    """The names of the ops of these kinds."""
    return frozenset(d.name for d in _DEFS if d.kind in kinds)
