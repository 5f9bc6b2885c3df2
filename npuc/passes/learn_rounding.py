"""Learned weight rounding (AdaRound, Nagel et al., ICML 2020): each int8 weight rounded up or down
to minimise the layer's output error on the calibration samples, under the hardware's scale rule.

Pre: quantized, legalized IR (`quantize_ir`); the calibration samples.
Post: every Conv and Gemm (`MatQ`) holds int8 weights each equal to floor(W / s_w) or one above it
(same scales, same requantization), and its bias's input zero-point fold recomputed for them; every
other node is untouched. Deterministic for a seed.

Layer by layer in topological order ("asymmetric reconstruction"): the layer's input is what the
quantized model feeds it (the integer reference, with the layers before it already re-rounded),
its target the float model's pre-activation output on the float input, so each layer also
corrects the error that reaches it. The rounding of each weight is relaxed to h(V) in [0, 1] (a
rectified sigmoid), V is fitted by Adam to the squared output error plus a regulariser that
pushes every h to 0 or 1 (annealed), and the weight rounds up where h >= 1/2. numpy only: the
problem is a small least-squares one per layer, on a subsample of output pixels.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence

import numpy as np

from ..ir import IR, MatQ
from ..reference import run_float, run_quantized
from .errors import PassError

ZETA, GAMMA = 1.1, -0.1  # the rectified sigmoid's stretch (AdaRound's values)
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def learn_rounding(ir: IR, samples: Sequence[dict[str, np.ndarray]], *, iters: int = 300, rows: int = 2048,
                   reg: float = 0.01, lr: float = 0.05, seed: int = 0) -> IR:
    """A copy of `ir` with every Conv/Gemm's weights re-rounded (see the module docstring).

    `rows` output pixels (all of them when fewer) are drawn per layer; `iters` Adam steps."""
    with _one_blas_thread():
        return _learn(ir.copy(), samples, iters, rows, reg, lr, seed)


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """The fits are many small matrix products: BLAS threads only add their wake-up latency (measured
    5x slower on a loaded 2-core machine). threadpoolctl comes with scikit-learn; without it, no limit."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _learn(ir: IR, samples: Sequence[dict[str, np.ndarray]], iters: int, rows: int, reg: float, lr: float,
           seed: int) -> IR:
    if not samples:
        raise PassError("learned rounding needs calibration samples")
    rng = np.random.default_rng(seed)
    x = {n: np.stack([s[n] for s in samples]).astype(np.float32) for n in ir.inputs}
    ref = run_float(ir, x, intermediates=True)
    feeds = {n: ir.node(n)["act_q"].quantize(x[n]) for n in ir.inputs}
    for name in ir.topo():
        node = ir.node(name)
        q = node.get("qop")
        if node["op"] not in ("Conv", "Gemm") or not isinstance(q, MatQ):
            continue
        src = ir.preds(name)[0]
        in_q = ir.node(src)["act_q"]
        x_q = in_q.dequantize(run_quantized(ir, feeds, intermediates=True)[src]).astype(np.float64)
        a_q, a_f = _patches(node, x_q, ref[src].astype(np.float64), rows, rng)
        node["qop"] = _reround(q, node, a_q, a_f, iters, reg, lr, in_q.zp)
    return ir


def _patches(node: dict, x_q: np.ndarray, x_f: np.ndarray, rows: int,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(rows, K) input patches of the same output pixels from both inputs: im2col of a subsample,
    K in the weight's (Cin/group, kh, kw) order; a Gemm's rows are its samples."""
    if node["op"] == "Gemm":
        a_q, a_f = x_q.reshape(len(x_q), -1), x_f.reshape(len(x_f), -1)
        pick = rng.permutation(len(a_q))[:rows]
        return a_q[pick], a_f[pick]
    a = node["attrs"]
    (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["strides"], a["dilations"]
    pt, pl, pb, pr = a["pads"]
    n, c = x_q.shape[:2]
    oh, ow = node["shape"][2:4]
    total = n * oh * ow
    pick = np.sort(rng.permutation(total)[:rows])
    b, oy, ox = np.unravel_index(pick, (n, oh, ow))
    iy = oy[:, None, None] * sh + np.arange(kh)[None, :, None] * dh  # (R, kh, 1) rows of the padded input
    ix = ox[:, None, None] * sw + np.arange(kw)[None, None, :] * dw  # (R, 1, kw)
    out = []
    for x in (x_q, x_f):  # padding holds the zero point: 0 in real units
        xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        p = xp[b[:, None, None, None], np.arange(c)[None, :, None, None], iy[:, None], ix[:, None]]
        out.append(p.reshape(len(pick), c, kh * kw))  # (R, C, kh*kw)
    group = int(a.get("group", 1))
    if group == 1:
        return out[0].reshape(len(pick), -1), out[1].reshape(len(pick), -1)
    # grouped: stack the groups' patches along the rows, each with its own Cin/group channels
    cg = c // group
    a_q, a_f = (np.stack([o[:, g * cg:(g + 1) * cg].reshape(len(pick), -1) for g in range(group)]) for o in out)
    return a_q, a_f


def _h(v: np.ndarray) -> np.ndarray:
    return np.clip(1.0 / (1.0 + np.exp(-v)) * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def _reround(q: MatQ, node: dict, a_q: np.ndarray, a_f: np.ndarray, iters: int, reg: float, lr: float,
             zp_in: int) -> MatQ:
    w = np.asarray(node["consts"]["W"], dtype=np.float64)
    cout = w.shape[0]
    s = np.asarray(q.w_scale, dtype=np.float64).reshape(cout, 1)
    wf = w.reshape(cout, -1) / s
    base = np.floor(wf)
    group = int(node["attrs"].get("group", 1)) if node["op"] == "Conv" else 1
    # the relaxation starts where plain rounding's fraction is: h(V0) = wf - floor(wf)
    rest = np.clip(wf - base, 1e-4, 1 - 1e-4)
    p = (rest - GAMMA) / (ZETA - GAMMA)
    v = np.log(p / (1.0 - p))
    # the squared error |A·Wtᵀ - T|² is quadratic in Wt: its gradient needs only G = AᵀA and P = TᵀA,
    # formed once (K x K and Cout x K), not the R x K patches at every step
    blocks = []
    per = cout // group
    for g in range(group):
        a, rows_ = (a_q, a_f) if group == 1 else (a_q[g], a_f[g])
        cols = slice(g * per, (g + 1) * per)
        target = rows_ @ w.reshape(cout, -1)[cols].T  # (R, Cout_g): the float pre-activation output
        scale = 2.0 / (target.size * max(float(np.mean(target * target)), 1e-12))
        blocks.append((cols, a.T @ a * scale, target.T @ a * scale))
    m, m2 = np.zeros_like(v), np.zeros_like(v)
    warm = iters // 5
    for t in range(1, iters + 1):
        h = _h(v)
        wt = (base + h) * s  # the relaxed weights, real units
        grad_w = np.empty_like(v)
        for cols, gram, proj in blocks:
            grad_w[cols] = wt[cols] @ gram - proj
        sig = 1.0 / (1.0 + np.exp(-v))
        dh = sig * (1 - sig) * (ZETA - GAMMA) * ((h > 0) & (h < 1))
        grad = grad_w * s * dh
        if t > warm:  # anneal beta 20 -> 2: late in the fit every h is pushed hard to 0 or 1
            beta = 20.0 + (2.0 - 20.0) * (t - warm) / max(iters - warm, 1)
            d = 2 * h - 1
            grad += reg * (-beta * np.abs(d) ** (beta - 1) * np.sign(d) * 2.0) * dh / v.size
        m = 0.9 * m + 0.1 * grad
        m2 = 0.999 * m2 + 0.001 * grad * grad
        v -= lr * (m / (1 - 0.9 ** t)) / (np.sqrt(m2 / (1 - 0.999 ** t)) + 1e-8)
    wmax = (1 << (getattr(q, "weight_bits", 8) - 1)) - 1  # 127, or 7 for an int4 layer
    wq = np.clip(base + (_h(v) >= 0.5), -wmax, wmax).astype(np.int8).reshape(q.weight.shape)
    # the bias holds -zp_in·ΣWq (not for ConvTranspose, which is not re-rounded): refold it
    old = q.weight.reshape(cout, -1).astype(np.int64).sum(axis=1)
    new = wq.reshape(cout, -1).astype(np.int64).sum(axis=1)
    bias = q.bias.astype(np.int64) + zp_in * (old - new)
    if np.any((bias < INT32_MIN) | (bias > INT32_MAX)):
        raise PassError(f"node {node.get('value', '?')!r}: the re-rounded weights' bias does not fit int32")
    return dataclasses.replace(q, weight=wq, bias=bias.astype(q.bias.dtype))
