"""Every option of the compile family does something, and the commands of the family take the same
options (`npuc/cli/options.py` builds the request once)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from npuc.cli import build_parser
from npuc.cli.options import compile_request
from npuc.hw import load_hw
from npuc.quant import CALIBRATORS

FAMILY = ("compile", "run", "export-qdq", "analyze")


def _subparser(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def _options(command: str) -> set[str]:
    return {s for a in _subparser(command)._actions for s in a.option_strings}


def test_the_compile_family_shares_its_options():
    shared = _options("compile") - {"-o", "--output"}
    for command in FAMILY[1:]:
        assert shared <= _options(command), f"{command} lacks {sorted(shared - _options(command))}"


@pytest.fixture
def arrays(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 3), np.float32))
    np.save(tmp_path / "y.npy", np.arange(4))
    return tmp_path


def _request(argv):
    return compile_request(build_parser().parse_args(argv))


# each flag with a value, and where it must land
FLAGS = [
    (["--hw", "tiny"], lambda r: r.hw == load_hw("tiny")),
    (["--calib", "c.npy"], lambda r: r.options.calib == "c.npy"),
    (["--calib-method", "mse"], lambda r: r.options.calib_method == "mse"),
    (["--calib-samples", "7"], lambda r: r.options.calib_samples == 7),
    (["--calib-batch", "3"], lambda r: r.options.calib_batch == 3),
    (["--rules", "tflite"], lambda r: (r.hw.rounding, r.hw.zero_point) == ("half_away", "any")),
    (["--per-tensor"], lambda r: r.hw.weight_granularity == "per_tensor"),
    (["--act-mode", "symmetric"], lambda r: r.hw.act_mode == "symmetric"),
    (["--rounding", "truncate"], lambda r: r.hw.rounding == "truncate"),
    (["--scale-rule", "fixed_point"], lambda r: r.hw.scale_rule == "fixed_point"),
    (["--input-shape", "x:1,3,8,8"], lambda r: dict(r.options.input_shapes) == {"x": (1, 3, 8, 8)}),
    (["--no-fallback"], lambda r: r.options.allow_fallback is False),
    (["--verify"], lambda r: r.options.verify is True),
    (["--dump-ir", "d"], lambda r: str(r.options.dump_ir) == "d"),
    (["--float-layers", "a, b"], lambda r: r.options.float_layers == ("a", "b")),
    (["--int4-layers", "a, b"], lambda r: r.options.int4_layers == ("a", "b")),
    (["--npu-widths", "int4,int8"], lambda r: r.widths == ("int4", "int8")),
    (["--sqnr-target", "30"], lambda r: r.budget is not None and r.budget.sqnr_db == 30.0),
    (["--equalize"], lambda r: r.options.equalize is True),
    (["--bias-correction"], lambda r: r.options.bias_correction is True),
    (["--learn-rounding"], lambda r: r.options.learn_rounding is True),
    (["--fold-act-scales"], lambda r: r.options.fold_act_scales == "io"),
    (["--fold-act-scales", "io+pow2"], lambda r: r.options.fold_act_scales == "io+pow2"),
]


@pytest.mark.parametrize("command", FAMILY)
@pytest.mark.parametrize("flag,landed", FLAGS, ids=[f[0][0] for f in FLAGS])
def test_each_flag_reaches_the_request(command, flag, landed):
    default = _request([command, "m.onnx"])
    asked = _request([command, "m.onnx", *flag])
    assert landed(asked) and not landed(default), f"{command} {' '.join(flag)} changed nothing"


def test_data_labels_and_accuracy_budget(arrays):
    r = _request(["compile", "m.onnx", "--keep-accuracy", "0.5", "--data", str(arrays / "x.npy"),
                  "--labels", str(arrays / "y.npy")])
    assert r.budget.keep_accuracy_pp == 0.5 and r.data.x.shape == (4, 3) and r.data.labels.tolist() == [0, 1, 2, 3]


def test_every_flag_of_the_family_is_covered():
    """A new option must be added to FLAGS (or to the commands' own options) with what it changes."""
    covered = {f[0][0] for f in FLAGS} | {"--keep-accuracy", "--data", "--labels", "-h", "--help"}
    own = {"-o", "--output", "--input", "--stats", "--form", "--int8-outputs", "--max-samples"}
    for command in FAMILY:
        assert _options(command) - covered - own == set(), command


def test_calibration_methods_come_from_the_registry():
    action = next(a for a in _subparser("compile")._actions if "--calib-method" in a.option_strings)
    assert tuple(action.choices) == tuple(CALIBRATORS)
