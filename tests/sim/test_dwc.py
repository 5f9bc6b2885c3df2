"""dwc, the depthwise engine's instruction: the C core against a numpy depthwise convolution and
against the emulator, its cycles (ISA.md: 2 + M * ceil(c / lanes) * ceil(kh*kw / taps)), and the
error on an NPU without the engine."""

from __future__ import annotations

import numpy as np
import pytest

from npuc.isa.emulator import emulate
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


@pytest.mark.parametrize("c,k,stride", [(5, 3, 1), (8, 3, 2), (3, 1, 1), (9, 2, 1)])
def test_dwc_is_a_depthwise_convolution(rng, c, k, stride):
    h = w = 6
    spad = rng.integers(-128, 128, DW.spad_bytes, dtype=np.int8)
    img = spad[:h * w * c].reshape(h, w, c)
    wt = spad[2000:2000 + k * k * c].reshape(k, k, c)
    bias = rng.integers(-1000, 1000, c, dtype=np.int32)
    acc = np.zeros(DW.acc_words, np.int32)
    acc[900:900 + c] = bias
    ref = _dw_ref(img, wt, stride) + bias
    oh, ow = ref.shape[:2]
    f = dict(dst=0, a=0, w=2000, m0=ow, m1=oh, c=c, kh=k, kw=k, as0=stride * c, as1=stride * w * c, ts0=c,
             ts1=w * c, ds0=c, ds1=ow * c, acc=2, bias=900)
    r = run_on([make_insn("dwc", **f)], spad=spad, acc=acc, hw=DW)
    np.testing.assert_array_equal(r.acc[:oh * ow * c].reshape(oh, ow, c), ref)
    want = 2 + oh * ow * -(-c // DW.lanes) * -(-(k * k) // DW.taps)
    assert r.stats.busy[1] == want and r.stats.macs == oh * ow * k * k * c
    e = emulate([make_insn("dwc", **f)], np.zeros(16, np.uint8), DW, spad=spad, acc=acc)
    np.testing.assert_array_equal(e.acc, r.acc)
    assert e.stats.cycles == e.stats.busy[1] == want and e.stats.macs == r.stats.macs


def test_dwc_needs_the_engine(rng):
    f = dict(dst=0, a=0, w=100, m0=1, m1=1, c=1, kh=1, kw=1, as0=0, as1=0, ts0=0, ts1=0, ds0=0, ds1=0, acc=0, bias=0)
    with pytest.raises(SimError, match="no depthwise engine"):
        run_on([make_insn("dwc", **f)], hw=HW)
