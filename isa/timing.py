"""How long the array takes for a gemm (ISA.md, gemm, Cycles): one function for both ISA models' rule.

A fold is three phases: the weight tile is preloaded, the M input rows stream
through, and the last results drain out of the skewed array. `fold_phases`
gives their lengths for the array's dataflow (weight-stationary: `R`, `M`,
`R + C - 2`, SCALE-Sim's fold); `gemm_cycles` applies the chain rule:

* a gemm that starts a chain pays all three: `preload + stream + drain`;
* a gemm that continues a chain had its weights shifted in while the previous
  gemm streamed, and its rows follow the previous gemm's rows through the
  array: it costs `stream + max(0, preload - previous stream)` (the preload
  hides behind at most the previous gemm's streamed rows). The chain's one
  drain is already counted by its first gemm, so each gemm of a chain ends
  exactly when its last result leaves the array.

A gemm continues a chain when `fold_overlap` is true, the compute unit's
previous instruction was a gemm (instructions of other units may come
between), and every token it waits for was available when that gemm started
(`ready <= previous start`: its operands were in the scratchpad when the
preload had to begin). The C core (`csrc/exec.c`, `gemm_cycles`) follows the
same lines; a dataflow other than weight-stationary changes `fold_phases` only.
"""

from __future__ import annotations

from dataclasses import dataclass

from npuc.hw import HwConfig


@dataclass
class ArrayState:
    """The array between instructions of the compute unit."""

    last_gemm: bool = False  # the compute unit's previous instruction was a gemm
    start: int = 0  # that gemm's start cycle
    stream: int = 0  # its streamed rows (the cycles a next preload can hide behind)


def fold_phases(hw: HwConfig, m: int) -> tuple[int, int, int]:
    """(preload, stream, drain) cycles of one fold of M rows on the weight-stationary array."""
    return hw.rows, m, hw.rows + hw.cols - 2


def gemm_cycles(hw: HwConfig, array: ArrayState, m: int, start: int, ready: int) -> tuple[int, bool]:
    """The cost of a gemm of M rows starting at `start` whose tokens were available at `ready`,
    and whether it continues a chain; `array` becomes the state after it."""
    preload, stream, drain = fold_phases(hw, m)
    chained = hw.fold_overlap and array.last_gemm and ready <= array.start
    cost = stream + max(0, preload - array.stream) if chained else preload + stream + drain
    array.last_gemm, array.start, array.stream = True, start, stream
    return cost, chained


def gemm_stream(hw: HwConfig, m: int, a16: bool) -> int:
    """The cycles a gemm's M input rows stream (ISA.md, gemm): M, or act16_passes * M for int16 rows."""
    return m * (hw.act16_passes if a16 else 1)


def gemm_cols(hw: HwConfig, w4: bool) -> int:
    """The output columns one gemm may have (ISA.md, gemm): the array's cols, or int4_pack * cols
    with int4 weights (a PE holds int4_pack of them and multiplies them in one cycle)."""
    return hw.cols * (hw.int4_pack if w4 else 1)
