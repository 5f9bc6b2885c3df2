"""The golden programs: small models whose assembly and cycle statistics are pinned.

A change to the compiler that alters code generation shows up as a diff in
`tests/golden/*.s` / `*.stats.json`; regenerate them on purpose with

    python tests/golden/cases.py

and review the diff like code.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).parent


def tiny_cnn():
    """conv3x3+relu -> maxpool -> flatten -> gemm: every instruction kind, a few hundred lines."""
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
    graph = helper.make_graph(
        nodes, "tiny_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        [numpy_helper.from_array(a, n) for n, a in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    calib = [{"x": rng.normal(size=(3, 6, 6)).astype(np.float32)} for _ in range(8)]
    return model, calib


CASES = {"tiny_cnn-tiny": (tiny_cnn, "tiny"), "tiny_cnn-default": (tiny_cnn, "default")}


def build(name: str, tmp: Path) -> tuple[str, str]:
    """(assembly text, stats JSON) of one case, compiled and simulated on a seeded input."""
    import onnx

    from npuc.compiler import compile_model
    from npuc.hw import load_hw
    from npuc.isa.asm import format_program
    from npuc.sim.driver import random_inputs, run_program

    make, preset = CASES[name]
    model, calib = make()
    path = tmp / f"{name}.onnx"
    onnx.save(model, path)
    prog = compile_model(path, load_hw(preset), calib=calib).program
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
