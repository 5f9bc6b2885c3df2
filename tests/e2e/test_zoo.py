"""The nine ONNX model zoo CNNs that ship with the onnx package (opset 9 Caffe2 exports, 224x224),
through the whole flow.

The zoo's "light" models make every weight with ConstantOfShape (one value, 0.02, for all): every
channel of a layer would be the same, which hides any channel-order bug, and every logit equal. So
each ConstantOfShape weight becomes a seeded random initializer of a sane scale (He for conv and
fc weights, BN statistics around 1) first; the graph is otherwise the zoo's.

Per model, one compile (module-scoped fixture: load, prepare, calibrate on one random sample,
quantize, generate for the default preset), then:

* float: the prepared float IR run by `npuc.reference.run_float` equals onnxruntime fp32 on the
  original model: max|a - b| <= 1e-4 · max|b| for every graph output and for the logits;
* host: the ops left on the host are exactly the expected ones (LRN and Softmax only);
* bit exact: the C simulator's outputs equal `run_quantized`'s bit for bit, on a second sample, and
  so do the last NPU tensors, the ones each host op reads from DRAM (the logits before Softmax, the
  feature maps before LRN): the graph output alone proves little, as a quantized Softmax over 1000
  logits saturates (ResNet-50: 999 of 1000 outputs are -128) and hides most errors of the logits.

Each step's time is printed (pytest -s) with the cycles and the SQNR of the NPU's answer against
onnxruntime fp32.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from npuc import limits
from npuc.backend import generate
from npuc.frontend import load_onnx
from npuc.hw import load_hw
from npuc.ir import IR
from npuc.isa.program import Program
from npuc.passes import prepare, quantize_ir
from npuc.reference import dequantize as dequantize_act
from npuc.reference import run_float, run_quantized
from npuc.sim.driver import quantize

from .npu_tensors import assert_host_inputs_equal, run_with_host_inputs

ZOO = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
# the ops each model leaves on the host (LRN: a cross-channel normalization; Softmax: the last op)
HOST_OPS = {
    "bvlc_alexnet": {"LRN", "Softmax"},
    "densenet121": set(),  # ends in a 1x1 conv after the global pool: no Softmax
    "inception_v1": {"LRN", "Softmax"},
    "inception_v2": {"Softmax"},
    "resnet50": {"Softmax"},
    "shufflenet": {"Softmax"},
    "squeezenet": {"Softmax"},
    "vgg19": {"Softmax"},
    "zfnet512": {"LRN", "Softmax"},
}
REL_TOL = 1e-4


def randomized(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """`model` with each ConstantOfShape of a constant shape replaced by a random initializer:
    conv/fc weights He-scaled (N(0, 2/fan_in)), BN scale and variance and a Mul's scale in [0.5, 1.5],
    everything else (biases, BN means, an Add's shift) N(0, 0.1)."""
    rng = np.random.default_rng(seed)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    consumers: dict[str, tuple[onnx.NodeProto, int]] = {}
    for n in model.graph.node:
        for i, v in enumerate(n.input):
            consumers.setdefault(v, (n, i))
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    for n in model.graph.node:
        if n.op_type != "ConstantOfShape" or n.input[0] not in inits:
            out.graph.node.append(n)
            continue
        shape = tuple(int(d) for d in inits[n.input[0]])
        user, slot = consumers[n.output[0]]
        if user.op_type == "Unsqueeze":  # Caffe2's Scale layer: Unsqueeze -> Mul / Add
            user, slot = consumers[user.output[0]]
        if user.op_type in ("Conv", "Gemm") and slot == 1:
            v = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / np.prod(shape[1:])))
        elif (user.op_type == "BatchNormalization" and slot in (1, 4)) or user.op_type == "Mul":
            v = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            v = rng.normal(scale=0.1, size=shape).astype(np.float32)
        out.graph.initializer.append(numpy_helper.from_array(v, n.output[0]))
    out.ir_version = max(out.ir_version, 4)  # initializers need not be graph inputs
    return out


@dataclass
class Zoo:
    name: str
    model: onnx.ModelProto
    input: str
    x: np.ndarray  # the test sample (batch 1)
    float_ir: IR
    ir: IR
    program: Program
    ort: dict[str, np.ndarray]  # onnxruntime fp32 on `x`: graph outputs and logits
    times: dict[str, float] = field(default_factory=dict)


REPORT: dict[str, dict] = {}


# The three largest (VGG-19, 20 GMAC and 1.6 M instructions; ZFNet-512; AlexNet) take three of the
# suite's four minutes, mostly the float reference of their big fc layers, and add no op the others
# lack: `pytest` runs the other six; `python bench/zoo.py` (NPUC_FULL_ZOO=1) runs all nine
HEAVY = {"vgg19", "zfnet512", "bvlc_alexnet"}
FULL = os.environ.get("NPUC_FULL_ZOO") == "1"
PARAMS = [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in sorted(HOST_OPS)
          if FULL or n not in HEAVY]


@pytest.fixture(scope="module", params=PARAMS)
def zoo(request) -> Zoo:
    name = request.param
    times: dict[str, float] = {}
    t = time.perf_counter()

    def step(what: str) -> None:
        nonlocal t
        now = time.perf_counter()
        times[what] = round(now - t, 2)
        t = now

    model = randomized(onnx.load(str(ZOO / f"light_{name}.onnx")))
    inits = {i.name for i in model.graph.initializer}
    (inp,) = [i.name for i in model.graph.input if i.name not in inits]
    rng = np.random.default_rng(1)
    calib = [{inp: rng.standard_normal((3, 224, 224), dtype=np.float32)}]
    x = rng.standard_normal((1, 3, 224, 224), dtype=np.float32)
    step("randomize")
    # under the default 4 GiB limit, as a user runs it (calibration shrinks its batch to fit)
    with limits.memory_limit(limits.DEFAULT_MAX_MEMORY):
        ir = load_onnx(model)
        step("load")
        float_ir = prepare(ir)
        step("prepare")
        hw = load_hw("default")
        qir = quantize_ir(float_ir, hw, calib)
        step("calibrate+quantize")
        program = generate(qir, hw)
        step("codegen")
    # onnxruntime on the original model, with the logits (a Softmax's input, whose saturation could
    # hide an error in the output) as extra outputs
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.graph.output.extend(onnx.ValueInfoProto(name=n.input[0]) for n in m.graph.node if n.op_type == "Softmax")
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {inp: x})))
    step("onnxruntime")
    z = Zoo(name, model, inp, x, float_ir, qir, program, want, times)
    REPORT[name] = {"times": times}
    yield z
    print(f"\n{name}: {REPORT[name]}")


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b| / max|b|: the error relative to the tensor's largest magnitude."""
    return float(np.abs(a.astype(np.float64) - b).max() / max(float(np.abs(b).max()), 1e-30))


def test_float_ir_equals_onnxruntime(zoo: Zoo):
    t = time.perf_counter()
    got = run_float(zoo.float_ir, {zoo.input: zoo.x}, intermediates=True)
    zoo.times["run_float"] = round(time.perf_counter() - t, 2)
    by_value = {zoo.float_ir.node(n)["value"]: n for n in got}
    errors = {}
    for value, b in zoo.ort.items():
        # a node with a fused activation carries its pre-activation name: not comparable
        if value in by_value and "act" not in zoo.float_ir.node(by_value[value])["attrs"]:
            errors[value] = _rel(got[by_value[value]].reshape(b.shape), b)
    REPORT[zoo.name]["float_rel_err"] = float(f"{max(errors.values()):.3g}")
    assert set(errors) >= {o.name for o in zoo.model.graph.output}
    assert max(errors.values()) <= REL_TOL, errors


def test_only_expected_ops_on_the_host(zoo: Zoo):
    host = {zoo.ir.node(n)["attrs"]["onnx_op"] for n in zoo.ir.g.nodes if zoo.ir.op(n) == "Host"}
    REPORT[zoo.name]["host"] = sorted(host)
    assert host == HOST_OPS[zoo.name]


def test_simulator_equals_integer_reference(zoo: Zoo):
    t = time.perf_counter()
    run, seen = run_with_host_inputs(zoo.program, {zoo.input: zoo.x})  # and what the host ops read
    t1 = time.perf_counter()
    (t_in,) = zoo.program.inputs()
    ref = run_quantized(zoo.ir, {zoo.input: quantize(zoo.x, t_in)}, intermediates=True)
    t2 = time.perf_counter()
    zoo.times.update(sim=round(t1 - t, 2), run_quantized=round(t2 - t1, 2))
    REPORT[zoo.name]["cycles"] = int(run.stats[0].cycles)
    for out in zoo.ir.outputs:
        sim = run.raw[zoo.ir.node(out)["value"]]
        np.testing.assert_array_equal(sim, ref[out].reshape(sim.shape), err_msg=out)
    # what the NPU hands to the host ops, read from DRAM at each host point
    compared = assert_host_inputs_equal(zoo.program, zoo.ir, seen, ref)
    assert compared == sum(len(h.inputs()) for h in zoo.program.hosts)
    assert (compared > 0) == bool(HOST_OPS[zoo.name])
    # how far the int8 logits are from fp32 (reported, not asserted: the weights are random; the
    # softmax output itself is often saturated)
    by_value = {zoo.ir.node(n)["value"]: n for n in zoo.ir.g.nodes}
    sqnr = {}
    for value, want in zoo.ort.items():
        node = by_value.get(value)
        if node is not None and "act_q" in zoo.ir.node(node) and "act" not in zoo.ir.node(node)["attrs"]:
            got = dequantize_act(ref[node], zoo.ir.node(node)["act_q"]).reshape(want.shape)
            err = np.sum((got.astype(np.float64) - want) ** 2)
            sqnr[value] = round(float(10 * np.log10(np.sum(want.astype(np.float64) ** 2) / max(err, 1e-30))), 1)
    REPORT[zoo.name]["sqnr_db"] = sqnr
