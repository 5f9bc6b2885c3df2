"""Tile planning: every buffer of every plan fits its SRAM, for layers of any size."""

import pytest

from npuc.backend.conv import ConvGeom, plan_conv
from npuc.backend.emit import BackendError
from npuc.hw import load_hw

GEOMS = [
    ConvGeom(cin=3, h=32, w=32, cout=16, oh=32, ow=32, kh=3, kw=3, pt=1, pl=1),
    ConvGeom(cin=64, h=56, w=56, cout=64, oh=56, ow=56, kh=3, kw=3, pt=1, pl=1),
    ConvGeom(cin=512, h=7, w=7, cout=512, oh=7, ow=7, kh=3, kw=3, pt=1, pl=1),
    ConvGeom(cin=2560, h=1, w=1, cout=100, oh=1, ow=1),
    ConvGeom(cin=3, h=224, w=224, cout=64, oh=112, ow=112, kh=7, kw=7, sh=2, sw=2, pt=3, pl=3),
]


@pytest.mark.parametrize("preset", ["default", "tiny", "npu32"])
@pytest.mark.parametrize("g", GEOMS, ids=lambda g: f"{g.cin}x{g.h}x{g.w}-{g.cout}-k{g.kh}")
def test_plan_fits(preset, g):
    hw = load_hw(preset)
    p = plan_conv(g, hw, "t")
    nt = min(hw.cols, g.cout)
    ih, iw = g.box(p.th, p.tw)
    assert 1 <= p.th <= g.oh and 1 <= p.tw <= g.ow and 1 <= p.kc <= g.cin
    assert 2 * ih * iw * p.kc + 2 * p.th * p.tw * nt + 2 * g.kh * g.kw * p.kc * nt <= hw.spad_bytes
    assert p.th * p.tw * nt + 6 * nt <= hw.acc_words


def test_whole_rows_preferred_when_they_fit():
    hw = load_hw("default")
    p = plan_conv(GEOMS[0], hw, "t")
    assert p.tw == 32 and p.th > 1 and p.kc == 3


def test_impossible_layer_is_a_clear_error():
    hw = load_hw("tiny").replace(spad_kib=1)
    g = ConvGeom(cin=64, h=8, w=8, cout=8, oh=8, ow=8, kh=11, kw=11, pt=5, pl=5)
    with pytest.raises(BackendError, match="no tiling fits"):
        plan_conv(g, hw, "node 'big' (Conv)")
