"""Host fallback end to end: ops the NPU cannot run execute on the host between NPU segments.

Each model is compiled, written as prog.s and read back, simulated (C core per
segment, host ops in between), and compared bit for bit with the numpy integer
reference, which runs the host ops with the same code (`npuc/host.py`): the graph
output, and every host op's inputs as the NPU leaves them in DRAM (a Softmax's
int8 output saturates and would hide an error in its logits).
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from npuc.cli import main
from npuc.compiler import compile_model
from npuc.hw import load_hw
from npuc.isa.asm import read_program, write_program
from npuc.quant.metrics import sqnr_db
from npuc.reference import run_quantized
from npuc.sim.driver import quantize, run_program, write_trace

from .models import make_model
from .npu_tensors import assert_host_inputs_equal, host_inputs

TINY = load_hw("tiny")
RNG = np.random.default_rng(0)


def _model(nodes, inits, x_shape, y_name="y", y_type=TensorProto.FLOAT) -> onnx.ModelProto:
    return make_model(nodes, inits, x_shape, y_name, y_type=y_type)


def _w(*shape: int) -> np.ndarray:
    return (RNG.normal(size=shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)


def softmax_model() -> onnx.ModelProto:
    """Conv -> Relu -> Flatten -> Gemm on the NPU, Softmax on the host (the graph output)."""
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1] * 4, name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "G", "C"], ["g"], transB=1, name="fc"),
             helper.make_node("Softmax", ["g"], ["y"], axis=1, name="sm")]
    inits = {"W": _w(6, 3, 3, 3), "B": np.full(6, 0.1, np.float32), "G": 3 * _w(10, 6 * 8 * 8),
             "C": np.linspace(-0.5, 0.5, 10).astype(np.float32)}
    return _model(nodes, inits, (1, 3, 8, 8))


def lrn_model() -> onnx.ModelProto:
    """Conv -> LRN -> Conv: the host op sits between two NPU segments, on NHWC feature maps."""
    nodes = [helper.make_node("Conv", ["x", "W1"], ["c1"], pads=[1] * 4, name="conv1"),
             helper.make_node("LRN", ["c1"], ["l"], size=5, alpha=0.05, beta=0.75, bias=1.0, name="lrn"),
             helper.make_node("Conv", ["l", "W2"], ["y"], pads=[1] * 4, name="conv2")]
    return _model(nodes, {"W1": _w(8, 3, 3, 3), "W2": _w(5, 8, 3, 3)}, (1, 3, 9, 7))


def residual_model() -> onnx.ModelProto:
    """A two-input elementwise Max (inputs of different scales) and an LRN on the host; the
    Relu after the Max has nothing to fuse into, so it becomes a table lookup (Lut) on the NPU
    between the two host ops."""
    nodes = [helper.make_node("Conv", ["x", "W1"], ["c1"], pads=[1] * 4, name="conv1"),
             helper.make_node("LRN", ["c1"], ["c2"], size=3, name="lrn"),
             helper.make_node("Max", ["c2", "c1"], ["s"], name="max"),
             helper.make_node("Relu", ["s"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "W2"], ["y"], name="conv2")]
    return _model(nodes, {"W1": _w(4, 3, 3, 3), "W2": _w(6, 4, 1, 1)}, (1, 3, 6, 6))


def argmax_model() -> onnx.ModelProto:
    """An int64 output: ArgMax over the logits of an NPU Gemm."""
    nodes = [helper.make_node("Gemm", ["x", "G"], ["g"], transB=1, name="fc"),
             helper.make_node("ArgMax", ["g"], ["y"], axis=1, keepdims=1, name="am")]
    return _model(nodes, {"G": _w(7, 12)}, (1, 12), y_type=TensorProto.INT64)


def _calib(shape, n=24, seed=1):
    r = np.random.default_rng(seed)
    return [{"x": r.normal(size=shape[1:]).astype(np.float32)} for _ in range(n)]


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"x": x[b:b + 1]})[0] for b in range(len(x))])


def _compile_and_run(tmp_path: Path, model: onnx.ModelProto, shape, hw=TINY, n=3):
    """Compile, write and re-read prog.s, simulate n samples; also the reference's int8 outputs. Every
    host op's inputs in DRAM equal the reference's."""
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    c = compile_model(path, hw, calib=_calib(shape))
    write_program(c.program, tmp_path / "m.s")
    prog = read_program(tmp_path / "m.s")
    assert prog.hosts == c.program.hosts and prog.insns == c.program.insns
    x = np.random.default_rng(7).normal(size=(n, *shape[1:])).astype(np.float32)
    run = run_program(prog, {"x": x}, trace=True)
    (t_in,) = prog.inputs()
    ref = run_quantized(c.ir, {c.ir.inputs[0]: quantize(x, t_in)}, intermediates=True)
    compared = assert_host_inputs_equal(prog, c.ir, host_inputs(prog, {"x": x}), ref, min_distinct=5)
    assert compared == sum(len(h.inputs()) for h in prog.hosts) > 0
    out = c.ir.outputs[0]
    sim = run.raw[c.ir.node(out)["value"]]
    return c, prog, run, x, sim, ref[out].reshape(sim.shape)


def test_softmax_on_the_host_is_bit_exact_and_close_to_fp32(tmp_path):
    model = softmax_model()
    c, prog, run, x, sim, ref = _compile_and_run(tmp_path, model, (1, 3, 8, 8))
    assert [str(f) for f in c.fallbacks] == ["node 'sm' (Softmax, opset 13) runs on the host: no NPU lowering"]
    (h,) = prog.hosts
    assert (h.op, h.at) == ("Softmax", len(prog.insns))  # after the last NPU instruction
    np.testing.assert_array_equal(sim, ref)
    fp32 = _ort(model, x)
    y = run.outputs["y"]
    assert np.abs(y - fp32).max() < 0.03  # Softmax output quantized with a 2^-8 or finer step
    assert sqnr_db(fp32, y) > 25
    assert run.hosts[0].runs == len(x) and run.hosts[0].cycle == run.stats[0].cycles


@pytest.mark.parametrize("mode", ["symmetric", "asymmetric"])
def test_lrn_between_npu_segments_is_bit_exact(tmp_path, mode):
    model = lrn_model()
    _, prog, run, x, sim, ref = _compile_and_run(tmp_path, model, (1, 3, 9, 7), TINY.replace(act_mode=mode))
    (h,) = prog.hosts
    assert h.op == "LRN" and 0 < h.at < len(prog.insns)
    assert [t.layout for t in h.tensors] == ["nhwc", "nhwc"]  # the driver converts NCHW <-> NHWC
    np.testing.assert_array_equal(sim, ref)
    assert sqnr_db(_ort(model, x), run.outputs["y"]) > 20
    # the host op ran where the first segment ended; cycles keep counting in the second
    first_end = int(run.insn_end[:h.at].max())
    assert run.hosts[0].cycle == first_end == int(run.insn_start[h.at:].min())
    assert run.stats[0].cycles == int(run.insn_end.max())


def test_two_input_op_and_lrn_fall_back_the_standalone_relu_is_a_lut(tmp_path):
    c, prog, _, _, sim, ref = _compile_and_run(tmp_path, residual_model(), (1, 3, 6, 6))
    reasons = {f.node: f.reason for f in c.fallbacks}
    assert reasons["lrn"] == "no NPU lowering"
    assert reasons["max"] == "no NPU lowering"
    assert "relu" not in reasons and c.ir.op("relu") == "Lut"
    two = next(h for h in prog.hosts if h.name == "max")
    a, b = two.inputs()
    assert (a.name, b.name) == ("c2", "c1") and a.addr != b.addr
    np.testing.assert_array_equal(sim, ref)


def test_int64_output(tmp_path):
    _, prog, run, _, sim, ref = _compile_and_run(tmp_path, argmax_model(), (1, 12), n=5)
    (t,) = prog.outputs()
    assert t.dtype == "int64" and run.raw["y"].dtype == np.int64
    np.testing.assert_array_equal(sim, ref)
    assert run.outputs["y"].shape == (5, 1) and run.outputs["y"].dtype == np.int64  # raw, not dequantized


def test_tokens_never_cross_a_host_point(tmp_path):
    """Within each segment every token signalled is waited for, and the other way round."""
    path = tmp_path / "m.onnx"
    onnx.save(residual_model(), path)
    prog = compile_model(path, TINY, calib=_calib((1, 3, 6, 6), n=4)).program
    cuts = [0, *(h.at for h in prog.hosts), len(prog.insns)]
    assert len(prog.hosts) == 2
    for a, b in pairwise(cuts):
        for bit in range(16):
            signals = sum(i.signal >> bit & 1 for i in prog.insns[a:b])
            waits = sum(i.wait >> bit & 1 for i in prog.insns[a:b])
            assert signals == waits, (a, b, bit)


def test_trace_has_a_host_track(tmp_path):
    _, prog, run, *_ = _compile_and_run(tmp_path, lrn_model(), (1, 3, 9, 7), n=1)
    write_trace(prog, run, tmp_path / "t.json")
    events = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    tracks = {e["args"]["name"]: e["tid"] for e in events if e["ph"] == "M"}
    host = [e for e in events if e["ph"] == "X" and e["tid"] == tracks["host"]]
    assert [e["name"] for e in host] == ["LRN (host)"] and host[0]["args"]["node"] == "lrn"


def test_cli_reports_fallback_and_no_fallback_is_an_error(tmp_path, capsys):
    path = tmp_path / "m.onnx"
    onnx.save(softmax_model(), path)
    assert main(["compile", str(path), "-o", str(tmp_path / "m.s"), "--hw", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "fallback: node 'sm' (Softmax, opset 13) runs on the host: no NPU lowering" in out
    assert main(["sim", str(tmp_path / "m.s")]) == 0
    assert "host: 1 op run on the host" in capsys.readouterr().out
    for cmd in ("compile", "run"):
        assert main([cmd, str(path), "--hw", "tiny", "--no-fallback"]) == 1
        err = capsys.readouterr().err.strip()
        assert err == f"npuc: error: {path}: node 'sm': unsupported op 'Softmax' (domain ai.onnx, opset 13)"
