"""Honest accounting: useful MACs from the layer table, utilization, roofline bounds, stalls by cause,
and the report as text, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from npuc.compiler import compile_model
from npuc.hw import load_hw
from npuc.sim.driver import run_program
from npuc.tools.cost import energy
from npuc.tools.report import Roofline, format_stats

RNG = np.random.default_rng(3)


def _depthwise_then_pointwise(path) -> str:
    """x (1,32,28,28) -> depthwise 3x3 (pad 1) -> relu -> 1x1 conv to 48 channels."""
    inits = {"dw": (RNG.normal(size=(32, 1, 3, 3)) / 3).astype(np.float32),
             "pw": (RNG.normal(size=(48, 32, 1, 1)) / 6).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "dw"], ["d"], group=32, kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                              name="dw"),
             helper.make_node("Relu", ["d"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "pw"], ["y"], kernel_shape=[1, 1], name="pw")]
    graph = helper.make_graph(nodes, "dwpw", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 28, 28])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 48, 28, 28])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return str(path)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    hw = load_hw("default")
    path = _depthwise_then_pointwise(tmp_path_factory.mktemp("m") / "dwpw.onnx")
    calib = [{"x": RNG.normal(size=(32, 28, 28)).astype(np.float32)} for _ in range(2)]
    prog = compile_model(path, hw, calib=calib).program
    return hw, prog, run_program(prog)


def test_the_layer_table_carries_the_onnx_macs_and_bytes(run):
    hw, prog, _ = run
    works = {prog.layers[i]: w for i, w in prog.work.items()}
    assert works["dw"].macs == 32 * 28 * 28 * 1 * 3 * 3  # N*Cout*OH*OW*(Cin/group)*kh*kw
    assert works["dw"].bytes == 32 * 28 * 28 + 32 * 28 * 28 + 32 * 9  # input, output, weights: once each
    assert works["pw"].macs == 48 * 28 * 28 * 32
    assert set(works) == {"dw", "pw"}  # only Conv/Gemm layers have a bound


def test_depthwise_utilization_counts_useful_macs_not_issued(run):
    hw, _, r = run
    dw = next(ls for ls in r.layers if ls.name == "dw")
    assert dw.useful_macs == 32 * 28 * 28 * 9
    assert dw.macs > 8 * dw.useful_macs  # the array multiplies the block-diagonal zeros too
    assert dw.utilization(hw) == dw.useful_macs / (dw.cycles * hw.rows * hw.cols)
    assert dw.utilization(hw) < 0.1 < dw.macs / (dw.cycles * hw.rows * hw.cols)
    total = Roofline.of(r.layers, hw, r.stats[0].cycles)
    assert total.useful_macs == 32 * 28 * 28 * 9 + 48 * 28 * 28 * 32 < r.stats[0].macs
    text = format_stats(r.stats[0], hw, r.layers)
    assert f"useful MACs {total.useful_macs}, utilization {100 * total.utilization(hw):.2f}%" in text
    assert f"issued MACs {r.stats[0].macs}" in text


def test_roofline_bound_per_layer(run):
    hw, _, r = run
    for ls in r.layers:
        if ls.name in ("dw", "pw"):
            assert ls.bound(hw) == max(ls.useful_macs / (hw.rows * hw.cols), ls.bound_bytes / hw.dram_bw)
        else:
            assert ls.bound(hw) is None
    assert Roofline.of(r.layers, hw, 1).bound == sum(ls.bound(hw) or 0 for ls in r.layers)


def test_layer_cycles_and_stalls_add_up_to_the_c_counters(run):
    _, _, r = run
    s = r.stats[0]
    assert sum(ls.cycles for ls in r.layers) == s.cycles
    for i, u in enumerate(("load", "compute", "store")):
        assert sum(ls.token_stall[u] for ls in r.layers) == s.token_stall[i]
        assert sum(ls.dram_stall[u] for ls in r.layers) == s.dram_stall[i]
        assert sum(ls.busy[u] for ls in r.layers) >= s.busy[i]  # a DMA's span includes its latency
    assert sum(ls.gemm_fill for ls in r.layers) == s.gemm_fill
    assert sum(ls.macs for ls in r.layers) == s.macs


def test_csv_and_json_for_tools(run):
    hw, _, r = run
    rows = list(csv.DictReader(io.StringIO(format_stats(r.stats[0], hw, r.layers, fmt="csv"))))
    assert [row["layer"] for row in rows] == [ls.name for ls in r.layers] + ["total"]
    assert int(rows[-1]["cycles"]) == r.stats[0].cycles
    assert all(row["bound"] for row in rows)  # the ReLU is dw's clamp: every layer here is a Conv
    doc = json.loads(format_stats(r.stats[0], hw, r.layers, fmt="json"))
    assert doc["total"]["cycles"] == r.stats[0].cycles and doc["counters"]["macs"] == r.stats[0].macs
    dw = next(layer for layer in doc["layers"] if layer["layer"] == "dw")
    assert dw["useful_macs"] == 32 * 28 * 28 * 9 and dw["cycles_per_bound"] > 1


def test_layer_events_are_the_c_cores_counters_split_by_layer(run):
    """Each layer's counters (the C core's, per instruction's layer) add up to the run's, and agree
    with what the layer table derives from the instruction fields."""
    _, _, r = run
    s = r.stats[0]
    assert all(ls.events is not None for ls in r.layers)
    for name in ("macs", "dram_rd", "dram_wr", "spad_rd", "spad_wr", "acc_rd", "acc_wr", "vec_ops",
                 "gemm_chained", "gemm_fill"):
        assert sum(getattr(ls.events, name) for ls in r.layers) == getattr(s, name), name
    assert sum(ls.events.cycles for ls in r.layers) == s.cycles  # the end's growth, shared out
    for ls in r.layers:
        assert ls.events.macs == ls.macs and ls.events.dram_rd + ls.events.dram_wr == ls.dram_bytes
        assert sum(ls.events.insns) == ls.insns and ls.events.gemm_fill == ls.gemm_fill
    assert {ls.name for ls in r.layers if ls.events.macs} == {"dw", "pw"}


def test_energy_per_layer_adds_up_to_the_total(run):
    hw, _, r = run
    rows = list(csv.DictReader(io.StringIO(format_stats(r.stats[0], hw, r.layers, fmt="csv"))))
    per_layer = [float(row["energy_uj"]) for row in rows[:-1]]
    assert all(e > 0 for e in per_layer)
    assert sum(per_layer) == pytest.approx(float(rows[-1]["energy_uj"]), rel=1e-6)
    text = format_stats(r.stats[0], hw, r.layers)
    assert "energy uJ" in text
    pw = next(ls for ls in r.layers if ls.name == "pw")
    assert f"{energy(pw.events, hw).total_uj:.4f}" in text.splitlines()[-1]
