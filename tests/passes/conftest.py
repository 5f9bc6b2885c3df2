"""The example CNNs (built by examples/make_cnn.py) and small helpers for the pass tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from npuc.frontend import load_onnx
from npuc.ir import IR

REPO = Path(__file__).resolve().parents[2]


def _load_make_cnn() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_cnn", REPO / "examples" / "make_cnn.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def make_cnn() -> ModuleType:
    return _load_make_cnn()


@pytest.fixture(scope="session")
def small_cnn(make_cnn) -> onnx.ModelProto:
    return make_cnn.make_small_cnn()


@pytest.fixture(scope="session")
def gap_cnn(make_cnn) -> onnx.ModelProto:
    return make_cnn.make_gap_cnn()


@pytest.fixture(scope="session")
def images(make_cnn) -> np.ndarray:
    """Held-out inputs (a seed the calibration set does not use)."""
    return make_cnn.smooth_images(16, seed=99)


def tiny_model(nodes: list, x_shape: list, inits: dict, outputs: tuple[str, ...] = ("y",)) -> IR:
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return load_onnx(model)


@pytest.fixture
def tiny():
    return tiny_model
