"""Which reshapes leave an activation's DRAM bytes unchanged (a free alias on the NPU).

An IR tensor of shape (1, C, H, W) lies in DRAM in NHWC order, and so does
any tensor of rank >= 3 with its channel axis (1) last: (1, C, L) as (L, C),
the same bytes as (1, C, 1, L). A (1, K) tensor lies in its own order. A
Reshape reinterprets the NCHW element order, so it is free exactly when
element i sits at the same byte in both layouts. For (1, C, *S) the byte of
element i = c·|S| + p is p·C + c: the identity when C = 1 or |S| = 1, else
determined by (C, |S|) alone.
"""

from __future__ import annotations

from collections.abc import Sequence


def _layout_key(shape: Sequence[int]) -> tuple[int, ...]:
    """() when element i is at byte i; else (C, H·W) which fix the byte order."""
    if len(shape) >= 3:
        c, hw = int(shape[1]), 1
        for d in shape[2:]:
            hw *= int(d)
        return () if c == 1 or hw == 1 else (c, hw)
    return ()


def same_bytes(src: Sequence[int], dst: Sequence[int]) -> bool:
    """True when reshaping a batch-1 tensor `src` to `dst` (any ranks >= 2) moves no byte in DRAM."""
    if len(src) < 2 or len(dst) < 2 or src[0] != 1 or dst[0] != 1:
        return False
    n = 1
    for d in src:
        n *= int(d)
    m = 1
    for d in dst:
        m *= int(d)
    return n == m and _layout_key(src) == _layout_key(dst)
