"""Resource limits: what would need more memory than allowed is refused with one clear line.

The limit is `--max-memory SIZE`, else $NPUC_MAX_MEMORY, else 4 GiB
(`npuc/limits.py`). The compiler's checks (model file, initializers,
tensors, calibration working set) are in tests/e2e/test_malformed_models.py;
here: the simulator's (DRAM, SRAM and program size, checked before
anything is allocated) and the C core's own refusal of absurd sizes.
"""

from __future__ import annotations

import inspect
import sys

import numpy as np
import pytest

from npuc import limits
from npuc.cli import main
from npuc.passes.calibrate import calibrate
from npuc.sim._npusim import ffi, lib


@pytest.mark.parametrize("text,value", [("0", 0), ("1000", 1000), ("4G", 4 << 30), ("512M", 512 << 20),
                                        ("1.5GiB", 3 << 29), ("64k", 64 << 10), (" 2 T ", 2 << 40),
                                        ("10MB", 10 << 20)])
def test_parse_size(text, value):
    assert limits.parse_size(text) == value


@pytest.mark.parametrize("text", ["", "G", "-1G", "4X", "1e9", "four"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match="expected bytes or a number"):
        limits.parse_size(text)


def test_limit_precedence(monkeypatch):
    monkeypatch.delenv(limits.ENV, raising=False)
    assert limits.max_memory() == limits.DEFAULT_MAX_MEMORY
    monkeypatch.setenv(limits.ENV, "2G")
    assert limits.max_memory() == 2 << 30
    with limits.memory_limit(1 << 20):
        assert limits.max_memory() == 1 << 20
        with limits.memory_limit(None):
            assert limits.max_memory() == 1 << 20
    assert limits.max_memory() == 2 << 30
    monkeypatch.setenv(limits.ENV, "lots")
    with pytest.raises(limits.ResourceError, match="NPUC_MAX_MEMORY='lots'"):
        limits.max_memory()


def test_zero_means_no_limit():
    with limits.memory_limit(0):
        limits.check("anything", 1 << 60)


def test_calibration_batch_matches_the_pass():
    """The pass's default batch is the one the limits module documents."""
    assert inspect.signature(calibrate).parameters["batch_size"].default == limits.CALIB_BATCH


@pytest.mark.parametrize("limit, per_sample, wanted, batch", [
    (1 << 30, 100 << 20, 16, 10),  # ten samples of 100 MiB fit 1 GiB
    (1 << 30, 2 << 30, 16, 1),  # never below one (the loader refused what one sample cannot do)
    (1 << 30, 1 << 20, 16, 16),  # never above what was asked
    (0, 1 << 40, 16, 16),  # no limit
])
def test_calibration_batch_shrinks_to_the_limit(limit, per_sample, wanted, batch):
    with limits.memory_limit(limit):
        assert limits.batch_that_fits(per_sample, wanted) == batch


def test_a_big_model_calibrates_in_smaller_batches(monkeypatch):
    """A model whose 16-sample working set exceeds the limit still calibrates, one batch at a time."""
    from onnx import helper

    from npuc.frontend import load_onnx
    from tests.e2e.models import make_model

    w = np.ones((64, 3, 1, 1), np.float32)
    model = make_model([helper.make_node("Conv", ["x", "W"], ["y"])], {"W": w}, (1, 3, 32, 32))
    ir = load_onnx(model)
    seen = []
    cal = sys.modules[calibrate.__module__]  # the module, not the function npuc.passes re-exports
    real = cal.run_float
    monkeypatch.setattr(cal, "run_float", lambda ir, batch, **kw: seen.append(len(batch["x"])) or real(ir, batch, **kw))
    per_sample = limits.REFERENCE_BYTES * (3 + 64) * 32 * 32
    samples = [{"x": np.zeros((3, 32, 32), np.float32)} for _ in range(8)]
    with limits.memory_limit(3 * per_sample):
        calibrate(ir, samples, batch_size=16)
    assert seen == [3, 3, 2]


def _program(tmp_path, dram: int, hw: str = "rows=4 cols=4 spad_kib=1 acc_kib=1") -> str:
    path = tmp_path / "p.s"
    path.write_text(f".npuc 1\n.hw {hw}\n.dram {dram}\n.layer 0 \"l\"\n"
                    "st dst=0 src=0 n0=1 n1=1 n2=1 ds0=0 ds1=0 ss0=0 ss1=0\n")
    return str(path)


def _sim(capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(list(args))
    return rc, capsys.readouterr().err


def test_sim_refuses_absurd_dram(tmp_path, capsys):
    rc, err = _sim(capsys, "sim", _program(tmp_path, 1 << 31))
    assert rc == 1 and len(err.splitlines()) == 1
    assert "p.s: simulating DRAM of 2147483648 bytes" in err and "needs 8 GiB" in err
    assert "memory limit of 4 GiB" in err and "--max-memory" in err


def test_sim_dram_limit_is_configurable(tmp_path, capsys, monkeypatch):
    path = _program(tmp_path, 16 << 20)
    rc, err = _sim(capsys, "--max-memory", "32M", "sim", path)
    assert rc == 1 and "needs 64 MiB" in err and "memory limit of 32 MiB" in err
    monkeypatch.setenv("NPUC_MAX_MEMORY", "48M")
    rc, err = _sim(capsys, "sim", path)
    assert rc == 1 and "memory limit of 48 MiB" in err
    rc, err = _sim(capsys, "--max-memory", "128M", "sim", path)
    assert rc == 0, err


def test_sim_refuses_huge_sram(tmp_path, capsys):
    path = _program(tmp_path, 64, hw="rows=4 cols=4 spad_kib=1048576 acc_kib=1048576")
    rc, err = _sim(capsys, "--max-memory", "1G", "sim", path)
    assert rc == 1 and "SPAD of 1073741824 bytes, ACC of 268435456 words" in err and "needs 2 GiB" in err


def test_sim_refuses_a_program_too_big_to_parse(tmp_path, capsys):
    path = tmp_path / "big.s"
    path.write_text(".npuc 1\n.hw rows=4\n.dram 64\n" + "; padding\n" * 20000)
    rc, err = _sim(capsys, "--max-memory", "1M", "sim", str(path))
    assert rc == 1 and "big.s: reading a program of 2000" in err and "memory limit of 1 MiB" in err


def test_compile_refuses_huge_sram(tmp_path, capsys):
    """The backend tracks every SRAM page: 1 GiB SRAMs would need 3 GiB to compile for."""
    from npuc.examples import SMALL_CNN as MODEL

    (tmp_path / "hw.toml").write_text("[memory]\nspad_kib = 1048576\nacc_kib = 1048576\n")
    for cmd in ("compile", "run"):
        rc, err = _sim(capsys, "--max-memory", "2G", cmd, str(MODEL), "--hw", str(tmp_path / "hw.toml"))
        assert rc == 1 and len(err.splitlines()) == 1, err
        assert "compiling for SPAD of 1073741824 bytes and ACC of 268435456 words" in err
        assert "needs 3 GiB" in err and "memory limit of 2 GiB" in err


# ---- the C core refuses absurd sizes itself -------------------------------------------------------

def _core_error(**hw_fields) -> str:
    hw = {"rows": 4, "cols": 4, "spad_bytes": 1024, "acc_words": 256, "dram_bw": 4, "dram_latency": 1,
          "vec_lanes": 4, "vec_latency": 1, "acc_bits": 32, "int4_pack": 2, "act16_passes": 2,
          **hw_fields}
    err = ffi.new("char[]", 256)
    err_insn = ffi.new("int64_t *")
    words = ffi.new("uint32_t[]", 1)
    dram = ffi.new("uint8_t[]", 16)
    rc = lib.npu_run(ffi.new("npu_hw *", hw), words, 0, dram, 16, ffi.NULL, ffi.NULL, err_insn, err, 256)
    assert rc == 1 and err_insn[0] == -1
    return ffi.string(err).decode()


@pytest.mark.parametrize("field,value,limit", [
    ("spad_bytes", (1 << 30) + 1, "[1, 1073741824]"), ("acc_words", (1 << 28) + 1, "[1, 268435456]"),
    ("spad_bytes", -1, "[1, 1073741824]"), ("acc_words", 0, "[1, 268435456]"), ("rows", 1025, "[1, 1024]"),
    ("cols", 0, "[1, 1024]"), ("dram_bw", (1 << 16) + 1, "[1, 65536]"), ("vec_lanes", 1 << 30, "[1, 4096]"),
    ("dram_latency", -5, "[0, 1048576]"), ("vec_latency", 2**31 - 1, "[0, 4096]"),
])
def test_core_refuses_absurd_hardware(field, value, limit):
    assert _core_error(**{field: value}) == f"hw {field} = {value}: must be in {limit}"


def test_core_work_limit_stops_runaway_programs():
    """A zero-stride box of 2^31 elements fits any memory; the work limit ends it."""
    from npuc.hw import HwConfig
    from npuc.isa.encoding import encode
    from npuc.isa.program import make_insn
    from npuc.sim.core import SimError, run_words

    hw = HwConfig(rows=4, cols=4, spad_kib=1, acc_kib=1)
    words = encode([make_insn("vmax", m=2**31 - 1, n=1)])
    with pytest.raises(SimError, match="insn 0: vmax: work limit of 1000000 elements exceeded"):
        run_words(words, np.zeros(16, np.uint8), hw, max_work=1_000_000)
