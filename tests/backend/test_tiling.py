"""Tile planning: every buffer of every plan fits its SRAM, for layers of any size; grouped convolutions,
transposed-conv phases and AveragePool requantization runs."""

import numpy as np
import pytest

from npuc.backend.conv import ConvGeom, _gemm_rows, _structure, choose_plan, expand_groups, plan_conv, tile_inputs
from npuc.backend.conv_ops import _runs, phase_taps
from npuc.backend.conv_plan import block_gemms
from npuc.backend.emit import BackendError, Emitter
from npuc.hw import load_hw

GEOMS = [
    ConvGeom(cin=3, h=32, w=32, cout=16, oh=32, ow=32, kh=3, kw=3, pt=1, pl=1),
    ConvGeom(cin=64, h=56, w=56, cout=64, oh=56, ow=56, kh=3, kw=3, pt=1, pl=1),
    ConvGeom(cin=512, h=7, w=7, cout=512, oh=7, ow=7, kh=3, kw=3, pt=1, pl=1),
    ConvGeom(cin=2560, h=1, w=1, cout=100, oh=1, ow=1),
    ConvGeom(cin=3, h=224, w=224, cout=64, oh=112, ow=112, kh=7, kw=7, sh=2, sw=2, pt=3, pl=3),
]


@pytest.mark.parametrize("preset", ["default", "tiny", "npu32"])
@pytest.mark.parametrize("half", [False, True])
@pytest.mark.parametrize("g", GEOMS, ids=lambda g: f"{g.cin}x{g.h}x{g.w}-{g.cout}-k{g.kh}")
def test_plan_fits(preset, half, g):
    hw = load_hw(preset)
    spad, acc = (hw.spad_bytes // 2, hw.acc_words // 2) if half else (hw.spad_bytes, hw.acc_words)
    p = plan_conv(g, hw, "t", spad=spad, acc=acc)
    if p is None:
        assert half and preset == "tiny"  # only tiny's halves are too small for some layers
        return
    nt = min(hw.cols, g.cout)
    _, blocks = _structure(g, hw, p.kc)
    wbytes = (blocks if p.weights_resident else min(blocks, 2)) * g.kh * g.kw * p.kc * nt
    assert 1 <= p.th <= g.oh and 1 <= p.tw <= g.ow and 1 <= p.kc <= g.cin
    assert 2 * g.in_bytes(p.th, p.tw, p.kc, p.packed) + 2 * p.th * p.tw * nt + wbytes <= spad
    assert p.th * p.tw * nt + 6 * nt <= acc


def test_whole_rows_preferred_when_they_fit():
    hw = load_hw("default")
    p = plan_conv(GEOMS[0], hw, "t")
    assert p.tw == 32 and p.th > 1 and p.kc == 3


@pytest.mark.parametrize("preset", ["default", "npu32"])
def test_small_channel_counts_pack_the_taps(preset):
    """The 7x7x3 stem: ceil(147/R) folds per pixel and cout tile instead of 49 * ceil(3/R)."""
    hw = load_hw(preset)
    stem = GEOMS[4]
    p = plan_conv(stem, hw, "t")
    assert p.packed and p.kc == 3
    assert block_gemms(stem, hw, p.kc, True)[0] == [(0, -(-147 // hw.rows))]
    assert not plan_conv(GEOMS[1], hw, "t").packed  # 64 channels fill the rows tap by tap


def test_streamed_weights_come_in_blocks_that_keep_the_chain():
    """A fully connected layer with streamed weights: one block per cout tile (all of K), not one
    per fold, whose load would break the array's chain at every gemm."""
    hw = load_hw("npu32")
    p = plan_conv(ConvGeom(cin=512, h=1, w=1, cout=1000, oh=1, ow=1), hw, "t", spad=hw.spad_bytes // 2)
    assert p.kc == 512


def test_impossible_layer_is_a_clear_error():
    hw = load_hw("tiny").replace(spad_kib=1)
    g = ConvGeom(cin=64, h=8, w=8, cout=8, oh=8, ow=8, kh=11, kw=11, pt=5, pl=5)
    assert plan_conv(g, hw, "t") is None
    with pytest.raises(BackendError, match="node 'big' \\(Conv\\): no tiling fits"):
        choose_plan(Emitter(hw), g, "node 'big' (Conv)")


# -- grouped convolutions ----------------------------------------------------------------

GROUPED = [
    ConvGeom(cin=32, h=28, w=28, cout=32, oh=28, ow=28, kh=3, kw=3, pt=1, pl=1, group=32),  # depthwise
    ConvGeom(cin=512, h=14, w=14, cout=512, oh=14, ow=14, kh=3, kw=3, pt=1, pl=1, group=512),
    ConvGeom(cin=24, h=56, w=56, cout=144, oh=56, ow=56, kh=3, kw=3, pt=1, pl=1, group=24),  # multiplier 6
    ConvGeom(cin=128, h=28, w=28, cout=128, oh=28, ow=28, kh=3, kw=3, pt=1, pl=1, group=32),  # ResNeXt
    ConvGeom(cin=240, h=28, w=28, cout=240, oh=28, ow=28, group=3),  # ShuffleNet 1x1
]


@pytest.mark.parametrize("preset", ["default", "tiny", "npu32"])
@pytest.mark.parametrize("g", GROUPED, ids=lambda g: f"{g.cin}-{g.cout}-g{g.group}-k{g.kh}")
def test_grouped_plan_fits(preset, g):
    hw = load_hw(preset)
    p = plan_conv(g, hw, "t")
    nt = min(hw.cols, g.cout)
    ih, iw = g.box(p.th, p.tw)
    _, blocks = _structure(g, hw, p.kc)
    wbytes = blocks * g.kh * g.kw * p.kc * nt if p.weights_resident else 2 * g.kh * g.kw * p.kc * nt
    assert 1 <= p.th <= g.oh and 1 <= p.tw <= g.ow and 1 <= p.kc <= g.cin
    assert 2 * ih * iw * p.kc + 2 * p.th * p.tw * nt + wbytes <= hw.spad_bytes
    assert p.th * p.tw * nt + 6 * nt <= hw.acc_words


@pytest.mark.parametrize("preset,kc", [("default", 16), ("tiny", 8), ("npu32", 32)])
def test_depthwise_chunks_align_with_the_cout_tiles(preset, kc):
    """C channels on an R x C array: chunk = tile width, so one k = R gemm per tap and cout tile."""
    hw = load_hw(preset)
    g = GROUPED[0]
    p = plan_conv(g, hw, "t")
    assert p.kc == kc
    gemms, blocks = _structure(g, hw, p.kc)
    n_ct = -(-g.cout // hw.cols)
    assert (gemms, blocks) == (9 * n_ct, n_ct)


def test_grouped_structure_counts_only_nonzero_blocks():
    hw = load_hw("default")  # 16 x 16
    g = GROUPED[3]  # 32 groups of 4 -> 4: a 16-wide cout tile reads 16 input channels
    assert tile_inputs(g, 16, 16) == (16, 32)
    assert _structure(g, hw, 16) == (9 * 8, 8)
    assert _structure(g, hw, 128) == (9 * 8, 8)  # one chunk: each tile's rows still one gemm
    assert _structure(g, hw, 8) == (9 * 16, 16)  # chunks of 8: two half-height gemms per tap


def test_expand_groups_is_block_diagonal():
    wq = np.arange(1, 6 * 2 * 1 * 1 + 1, dtype=np.int8).reshape(6, 2, 1, 1)  # 3 groups, 2 in, 2 out
    dense = expand_groups(wq, 3)
    assert dense.shape == (6, 6, 1, 1)
    mask = np.kron(np.eye(3, dtype=bool), np.ones((2, 2), dtype=bool))
    assert np.all(dense[~mask] == 0)
    np.testing.assert_array_equal(dense[2:4, 2:4], wq[2:4])
    assert expand_groups(wq, 1) is wq


def test_gemm_rows_skip_zero_slices_and_narrow_k():
    blk = np.zeros((1, 2, 20, 4), dtype=np.int8)  # kh, kw, kc, nt
    blk[0, 0, 3, 1] = 1
    blk[0, 0, 5, 2] = -1
    blk[0, 1, 17, 0] = 2
    assert _gemm_rows(blk, 8) == [(0, 0, 3, 6), (0, 1, 17, 18)]


# -- ConvTranspose phases and AveragePool runs --------------------------------------------------

@pytest.mark.parametrize("s,k,d,pad", [(2, 3, 1, 1), (3, 3, 1, 0), (2, 3, 2, 1), (4, 3, 1, 0), (2, 4, 1, 1)])
def test_phase_taps_cover_every_tap_once(s, k, d, pad):
    """Every (output index, tap) pair of the transposed conv appears in exactly one phase's conv."""
    n_in, n_out = 6, 8
    want = {(o, t, i) for i in range(n_in) for t in range(k) for o in [i * s - pad + t * d] if 0 <= o < n_out}
    got = set()
    for r in range(s):
        taps, dil, top = phase_taps(r, pad, k, s, d)
        for t_out in range(-(-(n_out - r) // s)):
            for u, t in enumerate(taps):
                i = t_out - top + u * dil
                if 0 <= i < n_in:
                    got.add((s * t_out + r, t, i))
    assert got == want


def test_avgpool_runs_paint_every_pixel_with_its_count():
    which = np.array([[0, 1, 1, 1, 0], [2, 3, 3, 3, 2], [2, 3, 3, 3, 2], [2, 3, 3, 3, 2], [0, 1, 1, 1, 0]])
    painted = np.full(which.size, -1)
    for p0, m, ps, k in _runs(which):
        painted[p0:p0 + m * ps:ps] = k
    np.testing.assert_array_equal(painted.reshape(which.shape), which)
    assert len(_runs(which)) <= 9
    assert _runs(np.zeros((4, 6), dtype=int)) == [(0, 24, 1, 0)]
