"""The integer reference against a slow, obviously-correct per-element reimplementation.

The slow model uses Python ints and `fractions.Fraction` for the rounding, so
it shares nothing with `npuc.isa.arith` or the vectorized reference.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from npuc.ir import IR, AccQ, ActQ, MatQ
from npuc.reference import run_quantized

ROUNDINGS = ["half_even", "half_up", "truncate", "half_away"]


def slow_requant(acc: int, mul: int, shift: int, zp: int, lo: int, hi: int, rounding: str) -> int:
    acc = (acc + (1 << 31)) % (1 << 32) - (1 << 31)  # int32 wrap
    x = Fraction(acc * mul, 1 << shift)
    if rounding == "half_even":
        r = round(x)  # Fraction rounds half to even
    elif rounding == "half_up":
        r = math.floor(x + Fraction(1, 2))
    elif rounding == "half_away":
        r = math.floor(abs(x) + Fraction(1, 2)) * (1 if x >= 0 else -1)
    else:
        r = math.floor(x)
    return min(max(r + zp, lo), hi)


def slow_conv(x, wq, bias, attrs, out_hw, zp_in, q: AccQ):
    n, cin, h, w = x.shape
    cout, _, kh, kw = wq.shape
    (sh, sw), (dh, dw), (pt, pl, _, _) = attrs["strides"], attrs["dilations"], attrs["pads"]
    out = np.zeros((n, cout, *out_hw), np.int8)
    for b in range(n):
        for o in range(cout):
            for oy in range(out_hw[0]):
                for ox in range(out_hw[1]):
                    acc = int(bias[o])
                    for c in range(cin):
                        for i in range(kh):
                            for j in range(kw):
                                y, xx = oy * sh + i * dh - pt, ox * sw + j * dw - pl
                                v = int(x[b, c, y, xx]) if 0 <= y < h and 0 <= xx < w else zp_in
                                acc += v * int(wq[o, c, i, j])
                    out[b, o, oy, ox] = slow_requant(acc, int(q.mul[o]), int(q.shift[o]), q.zp_out, q.lo, q.hi,
                                                     q.rounding)
    return out


def qop_strategy(cout: int):
    return st.fixed_dictionaries({
        "mul": st.lists(st.integers(0, (1 << 31) - 1) | st.sampled_from([1, 2, 1 << 30]), min_size=cout,
                        max_size=cout),
        "shift": st.lists(st.integers(0, 62) | st.integers(0, 12), min_size=cout, max_size=cout),
        "bias": st.lists(st.integers(-(1 << 31), (1 << 31) - 1) | st.integers(-5000, 5000), min_size=cout,
                         max_size=cout),
        "zp_out": st.integers(-64, 63).map(lambda z: 2 * z),
        "bounds": st.tuples(st.integers(-128, 127), st.integers(-128, 127)).map(sorted),
        "rounding": st.sampled_from(ROUNDINGS),
    })


def make_qop(p: dict, weight: np.ndarray | None, zp_in: int = 0) -> AccQ:
    """A `MatQ` with weights, an `AccQ` (GlobalAveragePool) without."""
    common = dict(mul=np.array(p["mul"], np.int32), shift=np.array(p["shift"], np.int32),
                  bias=np.array(p["bias"], np.int32), zp_out=p["zp_out"], lo=p["bounds"][0], hi=p["bounds"][1],
                  rounding=p["rounding"], zp_in=zp_in, rescale=np.ones(len(p["mul"])))
    if weight is None:
        return AccQ(**common)
    return MatQ(**common, weight=weight, w_scale=np.ones(weight.shape[0]))


def one_node_ir(op: str, in_shape, out_shape, attrs, zp_in: int, zp_out: int, qop: AccQ | None,
                w_shape=None) -> IR:
    ir = IR()
    ir.add("x", "Input", shape=in_shape)
    ir.inputs = ["x"]
    consts = {} if w_shape is None else {"W": np.zeros(w_shape, np.float32), "B": np.zeros(w_shape[0], np.float32)}
    ir.add("y", op, ["x"], attrs=attrs, consts=consts, shape=out_shape)
    ir.outputs = ["y"]
    ir.node("x")["act_q"] = ActQ(scale=1.0, zp=zp_in)
    ir.node("y")["act_q"] = ActQ(scale=1.0, zp=zp_out)
    if qop is not None:
        ir.node("y")["qop"] = qop
    return ir


@st.composite
def conv_cases(draw):
    cin, cout = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(max(1, (kh - 1) * dh + 1 - pads[0] - pads[2]), 7))
    w = draw(st.integers(max(1, (kw - 1) * dw + 1 - pads[1] - pads[3]), 7))
    oh = (h + pads[0] + pads[2] - (kh - 1) * dh - 1) // sh + 1
    ow = (w + pads[1] + pads[3] - (kw - 1) * dw - 1) // sw + 1
    n = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (n, cin, h, w), dtype=np.int8)
    wq = rng.integers(-127, 128, (cout, cin, kh, kw), dtype=np.int8)
    zp_in = draw(st.sampled_from([0, -128, 2 * draw(st.integers(-64, 63))]))
    attrs = {"kernel": (kh, kw), "strides": (sh, sw), "dilations": (dh, dw), "pads": pads, "group": 1}
    return x, wq, attrs, (oh, ow), zp_in, draw(qop_strategy(cout))


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_conv_matches_slow_model(case):
    x, wq, attrs, out_hw, zp_in, p = case
    q = make_qop(p, wq, zp_in)
    ir = one_node_ir("Conv", (1, *x.shape[1:]), (1, wq.shape[0], *out_hw), attrs, zp_in, q.zp_out, q, wq.shape)
    got = run_quantized(ir, {"x": x})["y"]
    np.testing.assert_array_equal(got, slow_conv(x, wq, q.bias, attrs, out_hw, zp_in, q))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 20), st.integers(1, 5), st.integers(0, 2**32 - 1), st.data())
def test_gemm_matches_slow_model(n, k, cout, seed, data):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (n, k), dtype=np.int8)
    wq = rng.integers(-127, 128, (cout, k), dtype=np.int8)
    q = make_qop(data.draw(qop_strategy(cout)), wq)
    ir = one_node_ir("Gemm", (1, k), (1, cout), {}, 0, q.zp_out, q, wq.shape)
    got = run_quantized(ir, {"x": x})["y"]
    want = [[slow_requant(int(q.bias[o]) + sum(int(x[b, i]) * int(wq[o, i]) for i in range(k)), int(q.mul[o]),
                          int(q.shift[o]), q.zp_out, q.lo, q.hi, q.rounding) for o in range(cout)] for b in range(n)]
    np.testing.assert_array_equal(got, np.array(want, np.int8))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**32 - 1), st.data())
def test_global_average_pool_matches_slow_model(c, h, w, seed, data):
    x = np.random.default_rng(seed).integers(-128, 128, (1, c, h, w), dtype=np.int8)
    q = make_qop(data.draw(qop_strategy(c)), None)
    ir = one_node_ir("GlobalAveragePool", (1, c, h, w), (1, c, 1, 1), {}, 0, q.zp_out, q)
    got = run_quantized(ir, {"x": x})["y"]
    want = [slow_requant(int(q.bias[ch]) + int(x[0, ch].astype(int).sum()), int(q.mul[ch]), int(q.shift[ch]),
                         q.zp_out, q.lo, q.hi, q.rounding) for ch in range(c)]
    np.testing.assert_array_equal(got.ravel(), np.array(want, np.int8))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(0, 2**32 - 1),
       st.data())
def test_maxpool_matches_slow_model(kh, kw, s, d, seed, data):
    pads = tuple(data.draw(st.integers(0, min(k - 1, 1))) for k in (kh, kw, kh, kw))
    h, w = data.draw(st.integers((kh - 1) * d + 1, 7)), data.draw(st.integers((kw - 1) * d + 1, 7))
    oh = (h + pads[0] + pads[2] - (kh - 1) * d - 1) // s + 1
    ow = (w + pads[1] + pads[3] - (kw - 1) * d - 1) // s + 1
    x = np.random.default_rng(seed).integers(-128, 128, (1, 2, h, w), dtype=np.int8)
    attrs = {"kernel": (kh, kw), "strides": (s, s), "dilations": (d, d), "pads": pads}
    ir = one_node_ir("MaxPool", (1, 2, h, w), (1, 2, oh, ow), attrs, 0, 0, None)
    got = run_quantized(ir, {"x": x})["y"]
    want = np.full((1, 2, oh, ow), -128, np.int8)
    for c in range(2):
        for oy in range(oh):
            for ox in range(ow):
                for i in range(kh):
                    for j in range(kw):
                        y, xx = oy * s + i * d - pads[0], ox * s + j * d - pads[1]
                        if 0 <= y < h and 0 <= xx < w:
                            want[0, c, oy, ox] = max(want[0, c, oy, ox], x[0, c, y, xx])
    np.testing.assert_array_equal(got, want)
