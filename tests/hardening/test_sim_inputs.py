"""What `npuc sim` accepts as input (issue 16, acceptance 3): NaN and infinity are errors naming
the file, input and index; integers are taken where float32 holds them exactly; out-of-range
values saturate as QuantizeLinear does; anything not a number is an error."""

from __future__ import annotations

import numpy as np
import pytest

from npuc.cli import main
from npuc.isa.asm import parse_program
from npuc.sim.driver import InputError, run_program

PROGRAM = """\
.npuc 1
.hw rows=4 cols=4 spad_kib=1 acc_kib=1 dram_bw=4 dram_latency=10 vec_lanes=4
.dram 256
.tensor name="x" role=input addr=0x0 shape=1,2,2,4 layout=flat scale=0.5 zp=-3
.tensor name="y" role=output addr=0x40 shape=1,2,2,4 layout=flat scale=0.5 zp=-3
ld dst=0 src=0 n0=1 n1=1 n2=16 ss0=0 ss1=0 ds0=0 ds1=0 pt=0 pb=0 pl=0 pr=0 fill=0 signal=0
st dst=64 src=0 n0=1 n1=1 n2=16 ds0=0 ds1=0 ss0=0 ss1=0 wait=0
"""


@pytest.fixture
def prog():
    return parse_program(PROGRAM)


def run(prog, x, **kw):
    return run_program(prog, {"x": x}, source="in.npy", **kw)


@pytest.mark.parametrize("value, word", [(np.nan, "NaN"), (np.inf, "+inf"), (-np.inf, "-inf")])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_non_finite_values_are_errors_naming_file_input_and_index(prog, value, word, dtype):
    x = np.zeros((3, 2, 2, 4), dtype=dtype)
    x[2, 1, 0, 3] = value
    x[2, 1, 1, 0] = value
    with pytest.raises(InputError) as e:
        run(prog, x)
    assert str(e.value) == f"in.npy: input 'x' holds {word} at index (2, 1, 0, 3) (of 2 non-finite values)"


def test_uint8_images_are_their_values(prog):
    x = np.arange(16, dtype=np.uint8).reshape(1, 2, 2, 4) * 3
    got = run(prog, x)
    want = run(prog, x.astype(np.float32))
    assert np.array_equal(got.raw["y"], want.raw["y"])
    assert got.raw["y"].reshape(-1)[:3].tolist() == [-3, 3, 9]  # 0, 3, 6 at scale 0.5, zp -3


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint32, np.uint64])
def test_integers_float32_holds_exactly_are_accepted(prog, dtype):
    info = np.iinfo(dtype)
    x = np.zeros((1, 2, 2, 4), dtype=dtype)
    x.flat[0] = max(info.min, -(1 << 24))
    x.flat[1] = min(info.max, 1 << 24)
    y = run(prog, x).raw["y"].reshape(-1)
    assert y[1] == 127 and y[0] == (-128 if info.min < 0 else -3)  # saturated, as QuantizeLinear


@pytest.mark.parametrize("value", [(1 << 24) + 1, -(1 << 24) - 1, 1 << 62])
def test_integers_float32_cannot_hold_are_errors(prog, value):
    x = np.zeros((1, 2, 2, 4), dtype=np.int64)
    x[0, 1, 1, 2] = value
    with pytest.raises(InputError) as e:
        run(prog, x)
    assert str(e.value) == (f"in.npy: input 'x' holds {value} at index (0, 1, 1, 2), which float32 cannot "
                            "hold exactly (integer inputs must lie in [-2^24, 2^24])")


def test_finite_values_beyond_the_range_saturate(prog):
    x = np.zeros((1, 2, 2, 4))
    x.flat[:4] = [1e300, -1e300, 3.4e38, 1e6]  # float64 beyond float32 too
    assert run(prog, x).raw["y"].reshape(-1)[:4].tolist() == [127, -128, 127, 127]


@pytest.mark.parametrize("x", [np.zeros((1, 2, 2, 4), dtype=bool), np.zeros((1, 2, 2, 4), dtype=complex),
                               np.full((1, 2, 2, 4), "a")])
def test_values_that_are_not_numbers_are_errors(prog, x):
    with pytest.raises(InputError, match=rf"in.npy: input 'x' has dtype {x.dtype}: expected float or integer"):
        run(prog, x)


def test_int8_inputs_must_be_int8(prog):
    x = np.zeros((1, 2, 2, 4), dtype=np.int16)
    assert run(prog, x, quantized=True).raw["y"].reshape(-1)[0] == 0
    x[0, 0, 0, 1] = 200  # astype(int8) would wrap it to -56
    with pytest.raises(InputError, match=r"holds 200 at index \(0, 0, 0, 1\), outside the int8 range"):
        run(prog, x, quantized=True)
    with pytest.raises(InputError, match="int8 values must be integers"):
        run(prog, np.full((1, 2, 2, 4), 0.5), quantized=True)


def test_the_command_line_names_the_file(prog, tmp_path, capsys):
    (tmp_path / "p.s").write_text(PROGRAM)
    x = np.zeros((1, 2, 2, 4), np.float32)
    x[0, 0, 1, 1] = np.nan
    np.save(tmp_path / "x.npy", x)
    capsys.readouterr()
    assert main(["sim", str(tmp_path / "p.s"), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "o.npz")]) == 1
    err = capsys.readouterr().err
    assert err == (f"npuc: error: {tmp_path / 'x.npy'}: input 'x' holds NaN at index (0, 0, 1, 1) "
                   "(of 1 non-finite values)\n")
    assert not (tmp_path / "o.npz").exists()
