"""How long the array takes for a gemm (ISA.md, gemm, Cycles): one function for both ISA models' rule.

A gemm is one fold of the array: two of its three dimensions (M rows, k
reduction, n columns) are laid across the R x C PEs and the third streams
through in time. Which is which is the array's dataflow (`array.dataflow`):

| dataflow | stays in the PEs | rows x cols hold | streams | preload |
|---|---|---|---|---|
| ws | the k x n weight tile | k <= R, n <= C | the M input rows | R |
| os | the M x n outputs | M <= R, n <= C | the k reduction steps | 0 |
| is | the k x M input tile | k <= R, M <= C | the n weight columns | R |

A fold is three phases: the stationary tile is preloaded, the streamed
dimension goes through, and the last results drain out of the skewed array
(`R + C - 2`); `fold_phases` gives their lengths, so the serial costs are
SCALE-Sim's: ws `2R + C + M - 2`, os `R + C + k - 2`, is `2R + C + n - 2`.
`gemm_cycles` applies the chain rule, the same for every dataflow:

* a gemm that starts a chain pays all three: `preload + stream + drain`;
* a gemm that continues a chain had its stationary tile shifted in while the
  previous gemm streamed, and its operands follow the previous gemm's through
  the array: it costs `stream + max(0, preload - previous stream)`. The
  chain's one drain is already counted by its first gemm, so each gemm of a
  chain ends exactly when its last result leaves the array.

A gemm continues a chain when `fold_overlap` is true, the compute unit's
previous instruction was a gemm (instructions of other units may come
between), and every token it waits for was available when that gemm started
(`ready <= previous start`: its operands were in the scratchpad when the
preload had to begin). The C core (`csrc/exec.c`, `gemm_cycles`) follows the
same lines. `isa/pe_array.py` simulates the PEs cycle by cycle and tests check
that it takes exactly these cycles.
"""

from __future__ import annotations

from dataclasses import dataclass

from npuc.hw import HwConfig


@dataclass
class ArrayState:
    """The array between instructions of the compute unit."""

    last_gemm: bool = False  # the compute unit's previous instruction was a gemm
    start: int = 0  # that gemm's start cycle
    stream: int = 0  # its streamed length (the cycles a next preload can hide behind)


def tile_limits(hw: HwConfig, w4: bool = False) -> tuple[int | None, int | None, int | None]:
    """(M, k, n) limits of one gemm on this array (None: no limit but the field's range). With int4
    weights (w4) a PE holds int4_pack of them, so where n is limited (ws, os) it may be int4_pack
    times the cols; the is dataflow streams n, which stays unlimited."""
    cols_n = hw.cols * (hw.int4_pack if w4 else 1)
    if hw.dataflow == "os":
        return hw.rows, None, cols_n
    if hw.dataflow == "is":
        return hw.cols, hw.rows, None
    return None, hw.rows, cols_n


def tile_violation(hw: HwConfig, m: int, k: int, n: int,
                   w4: bool = False) -> tuple[str, int, int, str] | None:
    """None when a gemm of M rows, reduction k and n columns fits the array, else the first limit
    it breaks: (field, value, limit, "rows" or "cols"); the field of M = m0*m1 is named "m0*m1".
    The C core's `check_gemm_tile` checks in the same order."""
    lm, lk, ln = tile_limits(hw, w4)
    checks = (("k", k, lk, "rows"), ("n", n, ln, "cols"),
              ("m0*m1", m, lm, "rows" if hw.dataflow == "os" else "cols"))
    for name, v, lim, what in checks:
        if lim is not None and v > lim:
            return name, v, lim, what
    return None


def tile_problem(hw: HwConfig, m: int, k: int, n: int, w4: bool = False) -> str | None:
    """`tile_violation` as the simulators' error text, or None."""
    bad = tile_violation(hw, m, k, n, w4)
    return None if bad is None else f"gemm {bad[0]} = {bad[1]} exceeds the array's {bad[2]} {bad[3]}"


def fold_phases(hw: HwConfig, m: int, k: int, n: int, a16: bool = False) -> tuple[int, int, int]:
    """(preload, stream, drain) cycles of one fold of an M x k x n gemm in the array's dataflow.
    With int16 input rows (a16) the streamed dimension goes through act16_passes times, whatever
    it is (ws M, os k, is n): the PEs multiply 8-bit operands and take act16_passes passes."""
    drain = hw.rows + hw.cols - 2
    passes = hw.act16_passes if a16 else 1
    if hw.dataflow == "os":
        return 0, k * passes, drain
    return hw.rows, (n if hw.dataflow == "is" else m) * passes, drain


def gemm_cycles(hw: HwConfig, array: ArrayState, m: int, k: int, n: int, start: int,
                ready: int, a16: bool = False) -> tuple[int, bool]:
    """The cost of an M x k x n gemm starting at `start` whose tokens were available at `ready`,
    and whether it continues a chain; `array` becomes the state after it."""
    preload, stream, drain = fold_phases(hw, m, k, n, a16)
    chained = hw.fold_overlap and array.last_gemm and ready <= array.start
    cost = stream + max(0, preload - array.stream) if chained else preload + stream + drain
    array.last_gemm, array.start, array.stream = True, start, stream
    return cost, chained


def gemm_cols(hw: HwConfig, w4: bool) -> int:
    """The weight columns the PE columns hold (ISA.md, gemm): the array's cols, or int4_pack * cols
    with int4 weights (a PE holds int4_pack of them and multiplies them in one cycle). It is the n
    limit of the ws and os dataflows (`tile_limits`)."""
    return hw.cols * (hw.int4_pack if w4 else 1)
