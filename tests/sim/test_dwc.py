"""dwc, the depthwise engine's instruction: the C core against a numpy depthwise convolution with
the vrq requantization and against the emulator, its cycles (ISA.md: 3 + M * ceil(c / lanes) *
ceil(kh*kw / taps)), and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from npuc.isa.arith import Rounding, requantize, wrap_int32
from npuc.isa.emulator import EmuError, emulate
from npuc.isa.program import make_insn
from npuc.sim.core import SimError

from .conftest import HW, run_on

DW = HW.replace(lanes=4, taps=4)


def _dw_ref(img: np.ndarray, wt: np.ndarray, stride: int) -> np.ndarray:
    """(H, W, C) int8 image, valid padding, (kh, kw, C) weights -> (OH, OW, C) int64."""
    kh, kw, c = wt.shape
    oh, ow = (img.shape[0] - kh) // stride + 1, (img.shape[1] - kw) // stride + 1
    out = np.zeros((oh, ow, c), np.int64)
    for u in range(kh):
        for v in range(kw):
            out += img[u:u + stride * oh:stride, v:v + stride * ow:stride].astype(np.int64) * wt[u, v]
    return out


@pytest.mark.parametrize("c,k,stride,rnd", [(5, 3, 1, 0), (8, 3, 2, 1), (3, 1, 1, 2), (9, 2, 1, 3)])
def test_dwc_is_a_requantized_depthwise_convolution(rng, c, k, stride, rnd):
    h = w = 6
    spad = rng.integers(-128, 128, DW.spad_bytes, dtype=np.int8)
    img = spad[:h * w * c].reshape(h, w, c)
    wt = spad[2000:2000 + k * k * c].reshape(k, k, c)
    bias = rng.integers(-1000, 1000, c)
    mul = rng.integers(1 << 20, 1 << 30, c)
    sh = rng.integers(20, 40, c)
    acc = np.zeros(DW.acc_words, np.int32)
    acc[900:900 + 3 * c] = np.concatenate([bias, mul, sh])
    sums = _dw_ref(img, wt, stride) + bias
    oh, ow = sums.shape[:2]
    ref = requantize(wrap_int32(sums), mul, sh, -3, -100, 110, Rounding(rnd))
    f = dict(dst=3000, a=0, w=2000, m0=ow, m1=oh, c=c, kh=k, kw=k, as0=stride * c, as1=stride * w * c, ts0=c,
             ts1=w * c, ds=c, par=900, zp=-3, lo=-100, hi=110, rnd=rnd)
    r = run_on([make_insn("dwc", **f)], spad=spad, acc=acc, hw=DW)
    np.testing.assert_array_equal(r.spad[3000:3000 + oh * ow * c].reshape(oh, ow, c), ref)
    want = 3 + oh * ow * -(-c // DW.lanes) * -(-(k * k) // DW.taps)
    assert r.stats.busy[1] == want and r.stats.macs == oh * ow * k * k * c
    e = emulate([make_insn("dwc", **f)], np.zeros(16, np.uint8), DW, spad=spad, acc=acc)
    np.testing.assert_array_equal(e.spad, r.spad)
    assert e.stats.cycles == e.stats.busy[1] == want and e.stats.macs == r.stats.macs


def test_dwc_in_place_reads_what_it_wrote(rng):
    """dst over the input: element by element, each output written before the next reads."""
    spad = rng.integers(-128, 128, DW.spad_bytes, dtype=np.int8)
    acc = np.zeros(DW.acc_words, np.int32)
    acc[:12] = [1, 2, 3, 4, 1 << 28, 1 << 28, 1 << 28, 1 << 28, 25, 26, 27, 28]
    f = dict(dst=0, a=0, w=500, m0=5, m1=1, c=4, kh=2, kw=1, as0=4, as1=0, ts0=0, ts1=4, ds=4, par=0, zp=0,
             lo=-128, hi=127, rnd=0)
    r = run_on([make_insn("dwc", **f)], spad=spad, acc=acc, hw=DW)
    e = emulate([make_insn("dwc", **f)], np.zeros(16, np.uint8), DW, spad=spad, acc=acc)
    np.testing.assert_array_equal(e.spad, r.spad)


def test_dwc_errors():
    f = dict(dst=0, a=0, w=100, m0=1, m1=1, c=1, kh=1, kw=1, as0=0, as1=0, ts0=0, ts1=0, ds=0, par=0, zp=0,
             lo=0, hi=5, rnd=0)
    with pytest.raises(SimError, match="no depthwise engine"):
        run_on([make_insn("dwc", **f)], hw=HW)
    with pytest.raises(SimError, match=r"dwc: lo = 6 > hi = 5"):
        run_on([make_insn("dwc", **{**f, "lo": 6})], hw=DW)
    acc = np.zeros(DW.acc_words, np.int32)
    acc[2] = 63
    with pytest.raises(SimError, match=r"dwc par: shift 63 at channel 0 outside \[0, 62\]"):
        run_on([make_insn("dwc", **f)], acc=acc, hw=DW)
    with pytest.raises(EmuError, match=r"dwc par: shift 63 at channel 0"):
        emulate([make_insn("dwc", **f)], np.zeros(16, np.uint8), DW, acc=acc)
