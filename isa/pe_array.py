"""The systolic array PE by PE, cycle by cycle: what `isa/timing.py`'s fold phases claim, built.

`run_array(rows, cols, dataflow, overlap, gemms)` runs a chain of gemms
(each an M x k int8 A and a k x n int8 W that fit the array's tile limits)
through an R x C array of processing elements whose every register is
updated once per cycle from the registers' values of the cycle before, and
returns each gemm's product and the cycle its last result left the array.
It is slow (numpy over the PEs, a Python loop over cycles) and meant for
small arrays and small gemms: tests check that its values are A @ W and that
its cycles are exactly `timing.gemm_cycles`'s (gemm after gemm, every
gemm's tokens ready), in every dataflow, with overlap on and off.

Weight- and input-stationary arrays are the same machine: a stationary R x C
tile `S` and a stream of rows `X` (T rows of R values) entering at the left
edge, row r of the array `r` cycles late (the skew); each PE multiplies the
value passing right by its stationary value and adds it to the partial sum
passing down; the sum of column c for stream row i leaves the bottom of the
array. ws: `S` = W (k x n), `X` = A (T = M); is: `S` = A^T (k x M), `X` =
W^T (T = n), which yields (A W)^T. Per PE:

* `T` — the preload's transit register: a column's stationary values are
  shifted in from the top, the bottom row's first, one row per cycle
  (column c starting c cycles late, like the data); after R shifts every
  row holds its value and the column latches them into
* `L` — the next tile, in one cycle;
* `W` — the stationary value in use: a PE copies `L` into `W` when the first
  stream row of a gemm reaches it (a flag travels with the data), so two
  gemms' values meet in the array without mixing;
* `X` — the stream value passing right (with its gemm, row and first flag);
* `P` — the partial sum passing down.

The controller starts a gemm's preload and stream: the first gemm of a chain
preloads at its start and streams R cycles later; with overlap, the next
gemm's preload begins when the previous gemm's stream begins (the transit
registers are free: the previous preload has latched) and its stream follows
the previous stream's last row, once its preload has latched; without
overlap, a gemm starts when the previous one's last result has left.

Output-stationary: each PE (i, j) owns output (i, j) of an M x n block. A's
row i enters row i of the array from the left and W's column j enters
column j from the top, step kk of the reduction at cycle `stream + kk + i`
resp. `+ j`, so PE (i, j) sees the pair (A[i, kk], W[kk, j]) at
`stream + kk + i + j`; it multiplies and accumulates into `ACC` (restarting
at a gemm's first step, a flag travelling with the operands) and, at the
last step, its result is done (read out through the accumulator port, the
drain SCALE-Sim does not charge either). With overlap, the next gemm's
operands enter right behind the previous ones (`stream + k`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ArrayRun:
    outputs: list[np.ndarray]  # each gemm's M x n int64 product
    ends: list[int]  # the cycle after each gemm's last result left the array
    cycles_simulated: int


def _check(rows: int, cols: int, dataflow: str, gemms: list[tuple[np.ndarray, np.ndarray]]) -> None:
    for a, w in gemms:
        m, k = a.shape
        n = w.shape[1]
        assert w.shape[0] == k
        limits = {"ws": (None, rows, cols), "os": (rows, None, cols), "is": (cols, rows, None)}[dataflow]
        for v, lim in zip((m, k, n), limits):
            assert lim is None or v <= lim, f"{dataflow}: gemm {m}x{k}x{n} does not fit a {rows}x{cols} array"
        assert m >= 1 and k >= 1 and n >= 1


def run_array(rows: int, cols: int, dataflow: str, overlap: bool,
              gemms: list[tuple[np.ndarray, np.ndarray]]) -> ArrayRun:
    """Run `gemms` (A, W) back to back through the PEs; see the module doc."""
    _check(rows, cols, dataflow, gemms)
    if dataflow == "os":
        return _run_os(rows, cols, overlap, gemms)
    if dataflow == "ws":
        tiles = [(w, a) for a, w in gemms]
    else:
        tiles = [(a.T, w.T) for a, w in gemms]
    res = _run_stationary(rows, cols, overlap, tiles)
    if dataflow == "is":
        res.outputs = [y.T for y in res.outputs]
    return res


def _run_stationary(rows: int, cols: int, overlap: bool, tiles: list[tuple[np.ndarray, np.ndarray]]) -> ArrayRun:
    """ws / is: stationary tiles S (k x c') and streams X (T x k); outputs X @ S."""
    R, C, G = rows, cols, len(tiles)
    stat = []  # S padded to R x C: a tile smaller than the array still passes through every PE
    for s, _ in tiles:
        p = np.zeros((R, C), dtype=np.int64)
        p[:s.shape[0], :s.shape[1]] = s
        stat.append(p)
    outs = [np.zeros((x.shape[0], s.shape[1]), dtype=np.int64) for s, x in tiles]
    seen = [np.zeros((x.shape[0], C), dtype=bool) for _, x in tiles]
    T = np.zeros((R, C), np.int64)
    L = np.zeros((R, C), np.int64)
    W = np.zeros((R, C), np.int64)
    xv, xok, xfirst, xg, xi = (np.zeros((R, C), np.int64), np.zeros((R, C), bool), np.zeros((R, C), bool),
                               np.zeros((R, C), np.int64), np.zeros((R, C), np.int64))
    P, pok, pg, pi = np.zeros((R, C), np.int64), np.zeros((R, C), bool), np.zeros((R, C), np.int64), \
        np.zeros((R, C), np.int64)
    preload = [0] * G  # the cycle gemm g's preload begins (column 0)
    stream = [0] * G  # the cycle its first stream row enters row 0
    ends: list[int | None] = [None] * G
    left = [x.shape[0] * C for _, x in tiles]  # outputs (padded columns included) still to leave
    g_next = 0  # the next gemm the controller has not started
    rr = np.arange(R)[:, None]
    t = 0
    while any(e is None for e in ends):
        # the controller: start gemm g_next's preload when its rule allows
        if g_next < G:
            if g_next == 0:
                can, at = True, 0
            elif overlap:
                can, at = t >= stream[g_next - 1], stream[g_next - 1]
            else:
                can, at = ends[g_next - 1] is not None, ends[g_next - 1] or 0
            if can:
                preload[g_next] = at
                stream[g_next] = at + R
                if overlap and g_next > 0:
                    stream[g_next] = max(stream[g_next], stream[g_next - 1] + tiles[g_next - 1][1].shape[0])
                g_next += 1
        # the left edge: stream row i of gemm g reaches array row r at stream[g] + i + r
        ev, eok, efirst, eg, ei = (np.zeros(R, np.int64), np.zeros(R, bool), np.zeros(R, bool),
                                   np.zeros(R, np.int64), np.zeros(R, np.int64))
        for g in range(g_next):
            x = tiles[g][1]
            for r in range(R):
                i = t - stream[g] - r
                if 0 <= i < x.shape[0]:
                    assert not eok[r], "two stream rows at one edge register"
                    ev[r] = x[i, r] if r < x.shape[1] else 0
                    eok[r], efirst[r], eg[r], ei[r] = True, i == 0, g, i
        in_v = np.concatenate([ev[:, None], xv[:, :-1]], axis=1)
        in_ok = np.concatenate([eok[:, None], xok[:, :-1]], axis=1)
        in_first = np.concatenate([efirst[:, None], xfirst[:, :-1]], axis=1)
        in_g = np.concatenate([eg[:, None], xg[:, :-1]], axis=1)
        in_i = np.concatenate([ei[:, None], xi[:, :-1]], axis=1)
        p_in = np.concatenate([np.zeros((1, C), np.int64), P[:-1]], axis=0)
        p_ok = np.concatenate([np.zeros((1, C), bool), pok[:-1]], axis=0)
        # the partial sum from above belongs to the same stream row as the value from the left
        assert not (p_ok & in_ok & ((np.concatenate([np.zeros((1, C), np.int64), pg[:-1]]) != in_g) |
                                    (np.concatenate([np.zeros((1, C), np.int64), pi[:-1]]) != in_i))).any()
        assert (p_ok == (in_ok & (rr > 0))).all(), "a partial sum without its stream value"
        w_use = np.where(in_first, L, W)
        nW = np.where(in_ok, w_use, W)
        nP = np.where(in_ok, np.where(rr > 0, p_in, 0) + in_v * w_use, 0)
        # the preload: column c shifts during [preload + c, preload + c + R) and latches at its end
        nT, nL = T.copy(), L.copy()
        for g in range(g_next):
            for c in range(C):
                j = t - preload[g] - c
                if 0 <= j < R:
                    nT[1:, c] = T[:-1, c]
                    nT[0, c] = stat[g][R - 1 - j, c]
                    if j == R - 1:
                        nL[:, c] = nT[:, c]
        # results leaving the bottom row at the end of this cycle
        for c in np.flatnonzero(in_ok[R - 1]):
            g, i = int(in_g[R - 1, c]), int(in_i[R - 1, c])
            if c < outs[g].shape[1]:
                outs[g][i, c] = nP[R - 1, c]
            assert not seen[g][i, c]
            seen[g][i, c] = True
            left[g] -= 1
            if left[g] == 0:
                ends[g] = t + 1
        T, L, W = nT, nL, nW
        xv, xok, xfirst, xg, xi = in_v, in_ok, in_first, in_g, in_i
        P, pok, pg, pi = nP, in_ok.copy(), in_g, in_i
        t += 1
        assert t < 10_000_000
    return ArrayRun(outs, [int(e) for e in ends if e is not None], t)


def _run_os(rows: int, cols: int, overlap: bool, gemms: list[tuple[np.ndarray, np.ndarray]]) -> ArrayRun:
    """os: PE (i, j) accumulates output (i, j); A enters from the left, W from the top."""
    R, C, G = rows, cols, len(gemms)
    outs = [np.zeros((a.shape[0], w.shape[1]), dtype=np.int64) for a, w in gemms]
    av, aok, afirst, alast, ag = (np.zeros((R, C), np.int64), np.zeros((R, C), bool), np.zeros((R, C), bool),
                                  np.zeros((R, C), bool), np.zeros((R, C), np.int64))
    bv, bok, bg = np.zeros((R, C), np.int64), np.zeros((R, C), bool), np.zeros((R, C), np.int64)
    acc = np.zeros((R, C), np.int64)
    stream = [0] * G
    ends: list[int | None] = [None] * G
    left = [R * C] * G  # PEs (padded ones included) still to finish each gemm
    g_next = 0
    t = 0
    while any(e is None for e in ends):
        if g_next < G:
            if g_next == 0:
                can, at = True, 0
            elif overlap:
                at = stream[g_next - 1] + gemms[g_next - 1][0].shape[1]
                can = t >= at
            else:
                can, at = ends[g_next - 1] is not None, ends[g_next - 1] or 0
            if can:
                stream[g_next] = at
                g_next += 1
        # edges: step kk of gemm g reaches row i's left edge at stream + kk + i, column j's top at + j
        ea, eaok, efirst, elast, eag = (np.zeros(R, np.int64), np.zeros(R, bool), np.zeros(R, bool),
                                        np.zeros(R, bool), np.zeros(R, np.int64))
        eb, ebok, ebg = np.zeros(C, np.int64), np.zeros(C, bool), np.zeros(C, np.int64)
        for g in range(g_next):
            a, w = gemms[g]
            k = a.shape[1]
            for i in range(R):
                kk = t - stream[g] - i
                if 0 <= kk < k:
                    assert not eaok[i]
                    ea[i] = a[i, kk] if i < a.shape[0] else 0
                    eaok[i], efirst[i], elast[i], eag[i] = True, kk == 0, kk == k - 1, g
            for j in range(C):
                kk = t - stream[g] - j
                if 0 <= kk < k:
                    assert not ebok[j]
                    eb[j] = w[kk, j] if j < w.shape[1] else 0
                    ebok[j], ebg[j] = True, g
        in_a = np.concatenate([ea[:, None], av[:, :-1]], axis=1)
        in_aok = np.concatenate([eaok[:, None], aok[:, :-1]], axis=1)
        in_first = np.concatenate([efirst[:, None], afirst[:, :-1]], axis=1)
        in_last = np.concatenate([elast[:, None], alast[:, :-1]], axis=1)
        in_ag = np.concatenate([eag[:, None], ag[:, :-1]], axis=1)
        in_b = np.concatenate([eb[None, :], bv[:-1]], axis=0)
        in_bok = np.concatenate([ebok[None, :], bok[:-1]], axis=0)
        in_bg = np.concatenate([ebg[None, :], bg[:-1]], axis=0)
        assert (in_aok == in_bok).all() and not (in_aok & (in_ag != in_bg)).any(), "operands out of step"
        n_acc = np.where(in_aok, np.where(in_first, 0, acc) + in_a * in_b, acc)
        for i, j in zip(*np.nonzero(in_aok & in_last)):
            g = int(in_ag[i, j])
            if i < outs[g].shape[0] and j < outs[g].shape[1]:
                outs[g][i, j] = n_acc[i, j]
            left[g] -= 1
            if left[g] == 0:
                ends[g] = t + 1
        acc = n_acc
        av, aok, afirst, alast, ag = in_a, in_aok, in_first, in_last, in_ag
        bv, bok, bg = in_b, in_bok, in_bg
        t += 1
        assert t < 10_000_000
    return ArrayRun(outs, [int(e) for e in ends if e is not None], t)
