"""quant.acc_bits: the accumulator adder saturates to a narrow width (ISA.md, gemm) and counts it.

A constructed overflow: one input row of -128 against weights of -128 gives every output
k * 16384 = 65536 (k = 4), beyond a 16-bit accumulator. Both ISA models and the per-layer
statistics must agree on where it saturates and how often.
"""

import numpy as np
import pytest

from npuc.isa.emulator import emulate
from npuc.isa.program import make_insn
from npuc.sim.core import run_words

from .conftest import HW, chain, encode, run_on


def _limits(bits):
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _overflow_case(hw):
    spad = np.zeros(hw.spad_bytes, np.int8)
    spad[:4] = -128  # one row of k = 4
    spad[64:64 + 32] = -128  # 4 x 8 weights: each output gets 4 * 16384 = 65536
    acc = np.zeros(hw.acc_words, np.int32)
    return spad, acc


@pytest.mark.parametrize("bits", [16, 20, 24])
def test_a_narrow_accumulator_saturates_and_counts(bits):
    hw = HW.replace(acc_bits=bits)
    spad, acc = _overflow_case(hw)
    lo, hi = _limits(bits)
    # a start value per column: far below, just below the bound, at it, negative beyond it
    acc[:8] = [0, hi - 65536, hi - 65535, lo, lo - 5 if bits < 32 else 0, -65536 - 3, 7, hi]
    body = [make_insn("gemm", dst=0, a=0, w=64, m0=1, m1=1, k=4, n=8, ws=8, acc=1)]
    r = run_on(body, spad=spad, acc=acc, hw=hw)
    exact = acc[:8].astype(np.int64) + 65536
    np.testing.assert_array_equal(r.acc[:8], np.clip(exact, lo, hi))
    want = int(((exact > hi) | (exact < lo)).sum())
    assert want >= 2 and r.stats.acc_sat == want
    assert r.insn_sat is not None and int(r.insn_sat.sum()) == want


def test_a_fresh_sum_saturates_too():
    """acc = 0: the sum alone, 65536 or -65024, saturates to 2^15 - 1 or -2^15."""
    hw = HW.replace(acc_bits=16)
    spad, _ = _overflow_case(hw)
    spad[64:96:8] = 127  # column 0: 4 * (-128 * 127) = -65024
    r = run_on([make_insn("gemm", dst=0, a=0, w=64, m0=1, m1=1, k=4, n=8, ws=8, acc=0)], spad=spad, hw=hw)
    np.testing.assert_array_equal(r.acc[:8], [-(1 << 15)] + [(1 << 15) - 1] * 7)
    assert r.stats.acc_sat == 8


def test_32_bits_wraps_as_before_and_counts_the_wraps():
    hw = HW  # acc_bits = 32, the default: bit-identical to the accumulator before acc_bits existed
    spad, acc = _overflow_case(hw)
    acc[:8] = [2**31 - 1, 2**31 - 65536, -(2**31), -1, 0, 2**31 - 65535, 5, -(2**31) + 3]
    r = run_on([make_insn("gemm", dst=0, a=0, w=64, m0=1, m1=1, k=4, n=8, ws=8, acc=1)], spad=spad, acc=acc, hw=hw)
    exact = acc[:8].astype(np.int64) + 65536
    np.testing.assert_array_equal(r.acc[:8], exact.astype(np.uint32).astype(np.int32))
    assert r.stats.acc_sat == 3  # 2^31 - 1, 2^31 - 65536 and 2^31 - 65535, plus 65536, wrapped


def test_rows_adding_into_one_output_saturate_in_loop_order():
    """ds0 = 0, acc = 1: every row adds into the same outputs, each add saturating, so the result
    is not the saturated total (+65536 twice from 2^15 - 1 - 65536 ... then -65536 back)."""
    hw = HW.replace(acc_bits=16)
    spad = np.zeros(hw.spad_bytes, np.int8)
    spad[0:4] = -128  # row 0: +65536 per output
    spad[4:8] = 127   # row 1: -65024 per output
    spad[64:96] = -128
    acc = np.zeros(hw.acc_words, np.int32)
    words = encode(chain(make_insn("gemm", dst=0, a=0, w=64, m0=2, m1=1, k=4, n=8, as0=4, ws=8, ds0=0, acc=1)))
    dram = np.zeros(64, np.uint8)
    emu = emulate(words, dram, hw, spad=spad, acc=acc)
    sim = run_words(words, dram, hw, memories=True, spad=spad, acc=acc)
    # row 0 saturates at 32767, row 1 then gives 32767 - 65024 = -32257 (the exact total would be 512)
    np.testing.assert_array_equal(sim.acc[:8], np.full(8, 32767 - 65024))
    np.testing.assert_array_equal(emu.acc, sim.acc)
    assert emu.stats == sim.stats and sim.stats.acc_sat == 8
    np.testing.assert_array_equal(emu.insn_sat, sim.insn_sat)


def test_saturations_are_counted_per_layer(tmp_path):
    """A compiled model on a 16-bit accumulator: the per-layer counts add up to the run's, the conv
    saturates (27 products of up to 2^14 each), and the stats table shows the column."""
    from npuc.compiler import compile_model
    from npuc.hw import load_hw
    from npuc.sim.driver import run_program
    from npuc.tools.report import format_stats
    from tests.golden.cases import tiny_cnn

    model, calib = tiny_cnn()
    path = tmp_path / "tiny.onnx"
    path.write_bytes(model.SerializeToString())
    hw = load_hw("default").replace(acc_bits=16)
    prog = compile_model(path, hw, calib=calib).program
    x = {"x": np.full((1, 3, 6, 6), 50.0, np.float32)}  # far outside the calibration range
    res = run_program(prog, x)
    per_layer = {ls.name: ls.acc_sat for ls in res.layers}
    assert res.stats[0].acc_sat > 0
    assert sum(per_layer.values()) == res.stats[0].acc_sat
    assert per_layer["conv"] > 0
    text = format_stats(res.stats[0], hw, res.layers)
    assert f"accumulator: 16 bits, {res.stats[0].acc_sat} gemm outputs saturated" in text


def test_the_width_is_checked():
    from npuc.hw import HwConfig, HwConfigError
    for bad in (15, 33):
        with pytest.raises(HwConfigError, match="acc_bits"):
            HwConfig(acc_bits=bad)
