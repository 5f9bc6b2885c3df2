"""The golden programs: small models whose assembly and cycle statistics are pinned.

A change to the compiler that alters code generation shows up as a diff in
`tests/golden/*.s` / `*.stats.json`; regenerate them on purpose with

    python tests/golden/cases.py

and review the diff like code. Together the cases use every instruction of
`isa/table.py` (test_golden.py checks it): tiny_cnn the conv path (ld, lda,
st, gemm, vaddv, vrq, vmax), se_block the vector unit (vadd, vlut, vmul,
vsum), dw_block the depthwise engine (dwc) on an output-stationary array.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).parent


def _model(nodes: list, inits: dict[str, np.ndarray], name: str, x_shape: list[int], y_shape: list[int],
           opset: int, rng: np.random.Generator) -> tuple[onnx.ModelProto, list[dict[str, np.ndarray]]]:
    """The graph x -> nodes -> y with `inits`, and 8 calibration samples drawn from `rng`."""
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
                              [numpy_helper.from_array(a, n) for n, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    calib = [{"x": rng.normal(size=tuple(x_shape[1:])).astype(np.float32)} for _ in range(8)]
    return model, calib


def tiny_cnn():
    """conv3x3+relu -> maxpool -> flatten -> gemm: the conv path's instructions, a few hundred lines."""
    rng = np.random.default_rng(7)
    w1 = (rng.normal(size=(6, 3, 3, 3)) / 5).astype(np.float32)
    b1 = rng.normal(scale=0.1, size=6).astype(np.float32)
    w2 = (rng.normal(size=(5, 6 * 3 * 3)) / 7).astype(np.float32)
    b2 = rng.normal(scale=0.1, size=5).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], transB=1, name="fc"),
    ]
    return _model(nodes, {"w1": w1, "b1": b1, "w2": w2, "b2": b2}, "tiny_cnn", [1, 3, 6, 6], [1, 5], 13, rng)


def se_block():
    """A residual block with a squeeze-excite gate, the vector unit's ops:
    conv3x3+relu -> conv3x3 -> Add (residual, vadd) -> HardSwish (vlut) -> SE: GlobalAveragePool
    (vsum) -> conv1x1+relu -> conv1x1 -> Sigmoid (vlut) -> Mul by channel (vmul, row broadcast) ->
    GlobalAveragePool -> flatten -> gemm."""
    rng = np.random.default_rng(11)

    def w(*shape: int) -> np.ndarray:
        return (rng.normal(size=shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    inits = {"w1": w(8, 3, 3, 3), "b1": w(8) * 0.1, "w2": w(8, 8, 3, 3), "b2": w(8) * 0.1,
             "wr": w(4, 8, 1, 1), "br": w(4) * 0.1, "we": w(8, 4, 1, 1), "be": w(8) * 0.1,
             "wf": w(5, 8), "bf": w(5) * 0.1}
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1] * 4, name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], kernel_shape=[3, 3], pads=[1] * 4, name="conv2"),
        helper.make_node("Add", ["r1", "c2"], ["s"], name="residual"),
        helper.make_node("HardSwish", ["s"], ["h"], name="hswish"),
        helper.make_node("GlobalAveragePool", ["h"], ["g"], name="squeeze"),
        helper.make_node("Conv", ["g", "wr", "br"], ["e1"], name="reduce"),
        helper.make_node("Relu", ["e1"], ["e2"], name="relu2"),
        helper.make_node("Conv", ["e2", "we", "be"], ["e3"], name="expand"),
        helper.make_node("Sigmoid", ["e3"], ["gate"], name="gate"),
        helper.make_node("Mul", ["h", "gate"], ["m"], name="excite"),
        helper.make_node("GlobalAveragePool", ["m"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1, name="fc"),
    ]
    return _model(nodes, inits, "se_block", [1, 3, 6, 6], [1, 5], 14, rng)


def dw_block():
    """An inverted residual's convs: conv1x1+relu6 (expand) -> depthwise 3x3 stride 2 + relu6 ->
    conv1x1 (project) -> flatten -> gemm."""
    rng = np.random.default_rng(13)

    def w(*shape: int) -> np.ndarray:
        return (rng.normal(size=shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    inits = {"we": w(12, 3, 1, 1), "be": w(12) * 0.1, "wd": w(12, 1, 3, 3), "bd": w(12) * 0.1,
             "wp": w(6, 12, 1, 1), "bp": w(6) * 0.1, "wf": w(5, 6 * 4 * 4), "bf": w(5) * 0.1,
             "lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}
    nodes = [
        helper.make_node("Conv", ["x", "we", "be"], ["e"], name="expand"),
        helper.make_node("Clip", ["e", "lo", "hi"], ["e6"], name="relu6a"),
        helper.make_node("Conv", ["e6", "wd", "bd"], ["d"], kernel_shape=[3, 3], pads=[1] * 4, strides=[2, 2],
                         group=12, name="dw"),
        helper.make_node("Clip", ["d", "lo", "hi"], ["d6"], name="relu6b"),
        helper.make_node("Conv", ["d6", "wp", "bp"], ["p"], name="project"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1, name="fc"),
    ]
    return _model(nodes, inits, "dw_block", [1, 3, 8, 8], [1, 5], 13, rng)


# name -> (model, preset, hardware fields changed from the preset)
CASES = {"tiny_cnn-tiny": (tiny_cnn, "tiny", {}), "tiny_cnn-default": (tiny_cnn, "default", {}),
         "se_block-default": (se_block, "default", {}),
         "dw_block-os-dw16x9": (dw_block, "default", {"dataflow": "os", "lanes": 16, "taps": 9})}


def build(name: str, tmp: Path) -> tuple[str, str]:
    """(assembly text, stats JSON) of one case, compiled and simulated on a seeded input."""
    import onnx

    from npuc.compiler import compile_model
    from npuc.hw import load_hw
    from npuc.isa.asm import format_program
    from npuc.sim.driver import random_inputs, run_program

    make, preset, changes = CASES[name]
    model, calib = make()
    path = tmp / f"{name}.onnx"
    onnx.save(model, path)
    prog = compile_model(path, load_hw(preset).replace(**changes), calib=calib).program
    stats = run_program(prog, random_inputs(prog, seed=0)).stats[0]
    return format_program(prog), json.dumps(dataclasses.asdict(stats), indent=1, sort_keys=True) + "\n"


def main() -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        for name in CASES:
            asm, stats = build(name, Path(d))
            (HERE / f"{name}.s").write_text(asm)
            (HERE / f"{name}.stats.json").write_text(stats)
            print(f"wrote tests/golden/{name}.s and .stats.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
