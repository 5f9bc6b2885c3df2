"""Mixed precision, host-float variant: the search (`npuc/tools/mixed_precision.py`) and the pass that
applies its choice (`npuc/passes/host_float.py`).

The fixture is the digits CNN with a dead channel (`npuc.examples.dead_channel_digits`): int8 conv2 loses
almost everything (output SQNR ~0 dB per tensor, ~1.5 dB per channel). With an SQNR budget the planner
must find conv2 and move it to host float; the compiled program, simulated (host op run by the
driver), must then meet the budget, and still equal the integer reference bit for bit.
"""

from __future__ import annotations

import functools

import numpy as np
import onnx
import pytest

from npuc.cli import main
from npuc.compiler import compile_model
from npuc.examples import dead_channel_digits, digits
from npuc.hw import HwConfig
from npuc.passes import PassError
from npuc.quant.metrics import sqnr_db
from npuc.reference import quantize_input, run_float, run_quantized
from npuc.sim.driver import run_program
from npuc.tools.mixed_precision import Budget, compile_mixed

TARGET_DB = 30.0


@functools.cache
def _data():
    calib, test = digits("calib"), digits("test")
    return [{"x": s} for s in calib.x[:64]], test.x[:200], test.y[:200]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("mp") / "dead.onnx"
    onnx.save(dead_channel_digits(), path)
    return str(path)


def _sim_sqnr(c, x):
    run = run_program(c.program, {"x": x})
    ref = run_float(c.float_ir, {"x": x})[c.float_ir.outputs[0]]
    q = run_quantized(c.ir, {"x": quantize_input(x, c.ir.node("x")["act_q"])})[c.ir.outputs[0]]
    np.testing.assert_array_equal(run.raw["logits"], q.reshape(run.raw["logits"].shape))
    return sqnr_db(ref, run.outputs["logits"]), run


@pytest.mark.parametrize("gran,act", [("per_tensor", "symmetric"), ("per_channel", "asymmetric")])
def test_sqnr_budget_is_met_in_the_simulator(model_path, gran, act):
    calib, x, _ = _data()
    hw = HwConfig(weight_granularity=gran, act_mode=act)
    plain = compile_model(model_path, hw, calib=calib)
    before, _ = _sim_sqnr(plain, x)
    assert before < 10  # int8 alone is far from the budget
    c, plan = compile_mixed(model_path, hw, Budget(sqnr_db=TARGET_DB), calib=calib, data=x, verify=True)
    assert [ch.layer for ch in plan.choices] == ["conv2"] and plan.met
    assert [fb.node for fb in c.fallbacks] == ["conv2", "conv2.act"]
    after, run = _sim_sqnr(c, x)
    assert after >= TARGET_DB
    assert abs(after - plan.sqnr_db) < 1e-6  # the planner's measurement is the simulator's
    assert [h.op for h in run.hosts] == ["Conv", "Relu"]
    ch = plan.choices[0]
    assert ch.npu_cycles_delta < 0 and ch.host_macs == 32 * 16 * 9 * 8 * 8


def test_keep_accuracy_budget(model_path):
    calib, x, y = _data()
    c, plan = compile_mixed(model_path, HwConfig(weight_granularity="per_tensor", act_mode="symmetric"),
                            Budget(keep_accuracy_pp=0.5), calib=calib, data=x, labels=y)
    assert plan.met and plan.accuracy_fp32 - plan.accuracy <= 0.005
    out = run_program(c.program, {"x": x}).outputs["logits"]
    assert np.mean(out.argmax(1) == y) == pytest.approx(plan.accuracy)


def test_manual_override_and_no_budget_leaves_the_rest_on_the_npu(model_path):
    calib, x, _ = _data()
    c, plan = compile_mixed(model_path, HwConfig(), calib=calib, float_layers=["logits"])
    assert [ch.layer for ch in plan.choices] == ["logits"] and plan.choices[0].why == "manual"
    plain = compile_model(model_path, HwConfig(), calib=calib, float_layers=["logits"])  # the pass alone
    assert [c.ir.op(n) for n in c.ir.topo()] == [plain.ir.op(n) for n in plain.ir.topo()]
    assert [c.ir.node(n)["attrs"]["onnx_op"] for n in c.ir.topo() if c.ir.op(n) == "Host"] == ["Gemm"]
    _sim_sqnr(c, x[:8])


def test_unknown_or_unplaceable_layer_is_a_one_line_error(model_path, capsys):
    calib, _, _ = _data()
    with pytest.raises(PassError, match="no layer named 'conv9'"):
        compile_model(model_path, HwConfig(), calib=calib, float_layers=["conv9"])
    with pytest.raises(PassError, match="'pool' is a MaxPool"):
        compile_model(model_path, HwConfig(), calib=calib, float_layers=["pool"])
    assert main(["compile", model_path, "--float-layers", "conv2,nope", "-o", "/dev/null"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'nope'" in err


def test_cli_compile_reports_each_choice(model_path, tmp_path, capsys):
    calib, x, _ = _data()
    np.save(tmp_path / "calib.npy", np.stack([s["x"] for s in calib]))
    np.save(tmp_path / "x.npy", x[:50])
    rc = main(["compile", model_path, "--calib", str(tmp_path / "calib.npy"), "--per-tensor", "--sqnr-target", "30",
               "--data", str(tmp_path / "x.npy"), "-o", str(tmp_path / "p.s")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "conv2 (Conv) -> host float" in out and "budget met" in out and "NPU cycles -" in out
