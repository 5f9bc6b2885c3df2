"""The malformed-model catalogue: every bad model or calibration set ends in exit 1 and one line naming it.

Each case builds a broken input, runs `npuc compile` (in-process through
`cli.main`, so the exit code is main's return value and stderr is captured)
and checks: exit code 1, exactly one line on stderr of the form
`npuc: error: ...` naming the problem, no traceback, and no output file.
Two cases also run as a separate process to check the real exit status and
that `--debug` shows the traceback instead.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from npuc.cli import main
from npuc.examples import SMALL_CNN as MODEL
from npuc.examples import SMALL_CNN_SAMPLES as SAMPLES

W = np.ones((4, 3, 3, 3), np.float32)


def make_model(nodes, inputs, outputs, inits=None, opset=13, elem_type=TensorProto.FLOAT) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "m",
        [helper.make_tensor_value_info(n, elem_type, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def conv_model(x_shape=(1, 3, 8, 8), w=W, **kw) -> onnx.ModelProto:
    return make_model([helper.make_node("Conv", ["x", "W"], ["y"], name="conv")], {"x": list(x_shape)}, ["y"],
                      {"W": w}, **kw)


def compile_fails(tmp_path: Path, capsys, model: onnx.ModelProto | bytes | Path, *extra: str) -> str:
    """Run `npuc compile` on `model`; check exit 1, one `npuc: error:` line, no output. Return the line."""
    if isinstance(model, Path):
        path = model
    else:
        path = tmp_path / "model.onnx"
        path.write_bytes(model if isinstance(model, bytes) else model.SerializeToString())
    out = tmp_path / "out.s"
    capsys.readouterr()
    rc = main(["compile", str(path), "-o", str(out), *extra])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 1, err
    assert len(lines) == 1 and lines[0].startswith("npuc: error: "), err
    assert "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".out.s.*"))
    return lines[0]


def expect(line: str, *parts: str) -> None:
    for part in parts:
        assert part in line, f"{part!r} not in {line!r}"


# ---- the file ---------------------------------------------------------------------------------

GOOD = MODEL.read_bytes()
CUTS = sorted({1, 2, 10, 100, 1000, 4096, len(GOOD) // 3, len(GOOD) // 2, len(GOOD) - 1000, len(GOOD) - 64,
               len(GOOD) - 1} | set(np.random.default_rng(5).integers(1, len(GOOD), 6).tolist()))


@pytest.mark.parametrize("cut", CUTS)
def test_truncated_model(tmp_path, capsys, cut):
    line = compile_fails(tmp_path, capsys, GOOD[:cut])
    expect(line, "model.onnx: not a readable ONNX model")


def test_empty_file(tmp_path, capsys):
    expect(compile_fails(tmp_path, capsys, b""), "model.onnx: not a readable ONNX model (it has no graph")


@pytest.mark.parametrize("content", [b"this is a text file\n", b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
                                     SAMPLES.read_bytes()[:4096]], ids=["text", "png", "npy"])
def test_not_an_onnx_file(tmp_path, capsys, content):
    expect(compile_fails(tmp_path, capsys, content), "model.onnx: not a readable ONNX model")


def test_directory_instead_of_a_model(tmp_path, capsys):
    (tmp_path / "dir.onnx").mkdir()
    expect(compile_fails(tmp_path, capsys, tmp_path / "dir.onnx"), "dir.onnx: is a directory")


def test_missing_model_file(tmp_path, capsys):
    expect(compile_fails(tmp_path, capsys, tmp_path / "nope.onnx"), "nope.onnx: no such file")


# ---- ops and domains ----------------------------------------------------------------------------

def test_unknown_op(tmp_path, capsys):
    """An op ONNX itself does not define: neither the NPU nor the host fallback can run it."""
    m = make_model([helper.make_node("NotAnOp", ["x"], ["y"], name="mystery")], {"x": [1, 10]}, ["y"])
    expect(compile_fails(tmp_path, capsys, m), "node 'mystery'", "NotAnOp", "opset 13")


def test_unknown_domain(tmp_path, capsys):
    m = make_model([helper.make_node("Foo", ["x"], ["y"], name="f", domain="com.acme")], {"x": [1, 10]}, ["y"])
    m.opset_import.append(helper.make_opsetid("com.acme", 3))
    expect(compile_fails(tmp_path, capsys, m), "node 'f'", "unsupported op 'Foo'", "domain com.acme, opset 3")


def test_unknown_domain_without_opset_import(tmp_path, capsys):
    m = make_model([helper.make_node("Foo", ["x"], ["y"], name="f", domain="com.acme")], {"x": [1, 10]}, ["y"])
    expect(compile_fails(tmp_path, capsys, m), "shape inference failed", "com.acme")


@pytest.mark.parametrize("opset", [0, 99])
def test_unsupported_opset(tmp_path, capsys, opset):
    expect(compile_fails(tmp_path, capsys, conv_model(opset=opset)), f"opset {opset} is not supported")


# ---- graph structure ----------------------------------------------------------------------------

def test_missing_initializer(tmp_path, capsys):
    m = make_model([helper.make_node("Conv", ["x", "W"], ["y"], name="conv")], {"x": [1, 3, 8, 8]}, ["y"])
    expect(compile_fails(tmp_path, capsys, m), "node 'conv' (op Conv) reads 'W'", "missing initializer")


def test_missing_intermediate_value(tmp_path, capsys):
    m = make_model([helper.make_node("Relu", ["nowhere"], ["y"], name="r")], {"x": [1, 4]}, ["y"])
    expect(compile_fails(tmp_path, capsys, m), "node 'r' (op Relu) reads 'nowhere'")


def test_graph_output_nothing_produces(tmp_path, capsys):
    m = conv_model()
    m.graph.output.append(helper.make_tensor_value_info("ghost", TensorProto.FLOAT, None))
    expect(compile_fails(tmp_path, capsys, m), "graph output 'ghost' is not produced by any node")


def test_cyclic_graph(tmp_path, capsys):
    m = make_model([helper.make_node("Add", ["x", "z"], ["y"], name="add"),
                    helper.make_node("Relu", ["y"], ["z"], name="relu")], {"x": [1, 4]}, ["y"])
    expect(compile_fails(tmp_path, capsys, m), "the graph has a cycle: 'add' -> 'relu' -> 'add'")


def test_self_loop(tmp_path, capsys):
    m = make_model([helper.make_node("Relu", ["y"], ["y"], name="r")], {"x": [1, 4]}, ["y"])
    expect(compile_fails(tmp_path, capsys, m), "the graph has a cycle: 'r' -> 'r'")


def test_nodes_out_of_topological_order(tmp_path, capsys):
    m = make_model([helper.make_node("Conv", ["h", "W"], ["y"], name="second"),
                    helper.make_node("Relu", ["x"], ["h"], name="first")], {"x": [1, 3, 8, 8]}, ["y"], {"W": W})
    expect(compile_fails(tmp_path, capsys, m), "node 'second' reads 'h' before node 'first' produces it",
           "topological order")


# ---- shapes ---------------------------------------------------------------------------------------

def test_conv_channels_mismatch(tmp_path, capsys):
    expect(compile_fails(tmp_path, capsys, conv_model(x_shape=(1, 5, 8, 8))),
           "node 'conv' (op Conv, opset 13)", "weight shape (4, 3, 3, 3)", "5 channels")


def test_broadcast_mismatch(tmp_path, capsys):
    m = make_model([helper.make_node("Add", ["x", "b"], ["y"], name="add")], {"x": [1, 5, 8, 8]}, ["y"],
                   {"b": np.ones((1, 4, 8, 8), np.float32)})
    expect(compile_fails(tmp_path, capsys, m), "shape inference failed", "node name: add", "Incompatible dimensions")


def test_gemm_inner_dimension_mismatch(tmp_path, capsys):
    m = make_model([helper.make_node("Gemm", ["x", "B"], ["y"], name="fc")], {"x": [1, 8]}, ["y"],
                   {"B": np.ones((9, 4), np.float32)})
    expect(compile_fails(tmp_path, capsys, m), "shape inference failed", "fc")


def test_dynamic_dims_without_input_shape(tmp_path, capsys):
    m = conv_model(x_shape=("N", 3, "H", "W"))
    expect(compile_fails(tmp_path, capsys, m), "input 'x' has a dynamic dimension 2 ('H')",
           "pass --input-shape x:1,3,H,W")


def test_dynamic_dims_with_input_shape_compile(tmp_path, capsys):
    path = tmp_path / "dyn.onnx"
    onnx.save(conv_model(x_shape=("N", 3, "H", "W")), str(path))
    assert main(["compile", str(path), "-o", str(tmp_path / "dyn.s"), "--input-shape", "x:1,3,8,8"]) == 0
    assert (tmp_path / "dyn.s").exists()


def test_input_shape_that_contradicts_the_model(tmp_path, capsys):
    line = compile_fails(tmp_path, capsys, conv_model(x_shape=(1, 3, "H", 8)), "--input-shape", "x:1,3,8,9")
    expect(line, "--input-shape x:1,3,8,9 does not match")


def test_non_float_input(tmp_path, capsys):
    m = make_model([helper.make_node("Relu", ["x"], ["y"], name="r")], {"x": [1, 4]}, ["y"],
                   elem_type=TensorProto.INT8)
    expect(compile_fails(tmp_path, capsys, m), "input 'x' has type INT8; only float32 inputs")


# ---- zero-sized tensors ---------------------------------------------------------------------------

def test_zero_sized_input(tmp_path, capsys):
    expect(compile_fails(tmp_path, capsys, conv_model(x_shape=(1, 0, 8, 8))),
           "input 'x' has a zero-sized dimension 1")


def test_zero_sized_input_shape_option(tmp_path, capsys):
    line = compile_fails(tmp_path, capsys, conv_model(x_shape=(1, 3, "H", "W")), "--input-shape", "x:1,3,0,8")
    expect(line, "--input-shape x:1,3,0,8 does not match")


def test_zero_sized_weight(tmp_path, capsys):
    m = conv_model(w=np.ones((0, 3, 3, 3), np.float32))
    expect(compile_fails(tmp_path, capsys, m), "initializer 'W' is empty: shape (0, 3, 3, 3)")


# ---- weights ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weight(tmp_path, capsys, bad):
    w = W.copy()
    w[2, 1, 0, 2] = bad
    expect(compile_fails(tmp_path, capsys, conv_model(w=w)), f"initializer 'W' holds {bad}", "(2, 1, 0, 2)",
           "must be finite")


def test_non_finite_constant_node(tmp_path, capsys):
    w = W.copy()
    w[0, 0, 0, 0] = np.nan
    const = helper.make_node("Constant", [], ["W"], name="wconst", value=numpy_helper.from_array(w))
    m = make_model([const, helper.make_node("Conv", ["x", "W"], ["y"], name="conv")], {"x": [1, 3, 8, 8]}, ["y"])
    expect(compile_fails(tmp_path, capsys, m), "node 'wconst' (op Constant) value holds nan")


def test_corrupt_initializer_data(tmp_path, capsys):
    m = conv_model()
    m.graph.initializer[0].raw_data = m.graph.initializer[0].raw_data[:-4]
    expect(compile_fails(tmp_path, capsys, m), "initializer 'W' is corrupt")


def test_missing_external_data(tmp_path, capsys):
    m = conv_model()
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value="weights.bin")
    expect(compile_fails(tmp_path, capsys, m), "model.onnx:", "weights.bin")


# ---- huge dimensions: refused against the memory limit ---------------------------------------------

def test_huge_input(tmp_path, capsys):
    line = compile_fails(tmp_path, capsys, conv_model(x_shape=(1, 3, 100000, 100000)))
    expect(line, "input 'x' of shape (1, 3, 100000, 100000) needs 112 GiB", "memory limit of 4 GiB",
           "--max-memory")


def test_huge_intermediate(tmp_path, capsys):
    """A small input whose conv output is big: the inferred intermediate is refused, naming its node."""
    w = np.ones((4096, 3, 1, 1), np.float32)
    line = compile_fails(tmp_path, capsys, conv_model(x_shape=(1, 3, 1024, 1024), w=w))
    expect(line, "value 'y' (output of node 'conv') of shape (1, 4096, 1024, 1024) needs 16 GiB", "memory limit")


def test_activations_too_big_to_calibrate(tmp_path, capsys):
    """Each tensor fits, but calibration keeps them all even for one sample: refused, naming the largest."""
    w = np.ones((8192, 3, 1, 1), np.float32)
    line = compile_fails(tmp_path, capsys, conv_model(x_shape=(1, 3, 256, 256), w=w))
    expect(line, "calibrating", "largest 'y' of shape (1, 8192, 256, 256)", "one sample at a time",
           "memory limit of 4 GiB")


def test_huge_initializer_claim(tmp_path, capsys):
    """Dims that claim 2^40 elements are refused before any decoding."""
    m = conv_model()
    t = m.graph.initializer[0]
    del t.dims[:]
    t.dims.extend([1 << 20, 1 << 20, 1, 1])
    expect(compile_fails(tmp_path, capsys, m), "initializer 'W' of shape (1048576, 1048576, 1, 1) needs 4 TiB")


def test_memory_limit_is_configurable(tmp_path, capsys, monkeypatch):
    m = conv_model(x_shape=(1, 3, 64, 64))
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    capsys.readouterr()
    assert main(["--max-memory", "64K", "compile", str(path), "-o", str(tmp_path / "a.s")]) == 1
    expect(capsys.readouterr().err, "memory limit of 64 KiB")
    monkeypatch.setenv("NPUC_MAX_MEMORY", "100K")
    assert main(["compile", str(path), "-o", str(tmp_path / "a.s")]) == 1
    expect(capsys.readouterr().err, "memory limit of 100 KiB")
    assert main(["--max-memory", "1G", "compile", str(path), "-o", str(tmp_path / "a.s")]) == 0  # option wins


# ---- calibration data -------------------------------------------------------------------------------

def calib_fails(tmp_path, capsys, data: np.ndarray | None = None, path: Path | None = None) -> str:
    if path is None:
        path = tmp_path / "calib.npy"
        np.save(path, data)
    return compile_fails(tmp_path, capsys, MODEL, "--calib", str(path))


@pytest.mark.parametrize("shape", [(4, 3, 16, 16), (3, 32, 32), (4, 32, 32, 3), ()])
def test_calibration_of_the_wrong_shape(tmp_path, capsys, shape):
    expect(calib_fails(tmp_path, capsys, np.zeros(shape, np.float32)), f"array of shape {shape}",
           "expected (n, 3, 32, 32)")


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.bool_, np.complex64])
def test_calibration_of_the_wrong_dtype(tmp_path, capsys, dtype):
    line = calib_fails(tmp_path, capsys, np.zeros((4, 3, 32, 32), dtype))
    expect(line, f"dtype {np.dtype(dtype)}", "expected floating-point samples")


def test_calibration_of_pickled_objects(tmp_path, capsys):
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    expect(calib_fails(tmp_path, capsys, path=path), "obj.npy: not a readable .npy array")


def test_calibration_truncated(tmp_path, capsys):
    path = tmp_path / "cut.npy"
    path.write_bytes(SAMPLES.read_bytes()[:5000])
    expect(calib_fails(tmp_path, capsys, path=path), "cut.npy: not a readable .npy array")


def test_calibration_with_nan(tmp_path, capsys):
    data = np.load(SAMPLES)[:4].copy()
    data[1, 2, 3, 4] = np.nan
    expect(calib_fails(tmp_path, capsys, data), "contains NaN or infinity")


def test_calibration_with_absurd_values_is_one_line(tmp_path, capsys):
    """Values that overflow float32 inside the model: numpy's warnings stay hidden, one error remains."""
    expect(calib_fails(tmp_path, capsys, np.full((4, 3, 32, 32), 3e38, np.float32)), "non-finite")


def test_empty_calibration_npy(tmp_path, capsys):
    expect(calib_fails(tmp_path, capsys, np.zeros((0, 3, 32, 32), np.float32)), "calib.npy: holds no samples")


def test_empty_calibration_directory(tmp_path, capsys):
    (tmp_path / "calib").mkdir()
    expect(calib_fails(tmp_path, capsys, path=tmp_path / "calib"), "directory has no .npy files")


def test_empty_calibration_npz(tmp_path, capsys):
    np.savez(tmp_path / "c.npz")
    expect(calib_fails(tmp_path, capsys, path=tmp_path / "c.npz"), "c.npz: no array for input 'x' (has: nothing)")


def test_calibration_npz_with_no_samples(tmp_path, capsys):
    np.savez(tmp_path / "c.npz", x=np.zeros((0, 3, 32, 32), np.float32))
    expect(calib_fails(tmp_path, capsys, path=tmp_path / "c.npz"), "c.npz: holds no samples")


def test_calibration_directory_with_a_bad_file(tmp_path, capsys):
    d = tmp_path / "calib"
    d.mkdir()
    np.save(d / "a.npy", np.zeros((3, 32, 32), np.float32))
    np.save(d / "b.npy", np.zeros((3, 16, 16), np.float32))
    expect(calib_fails(tmp_path, capsys, path=d), "b.npy: array of shape (3, 16, 16)")


def test_calibration_file_of_unknown_kind(tmp_path, capsys):
    (tmp_path / "calib.txt").write_text("1 2 3")
    expect(calib_fails(tmp_path, capsys, path=tmp_path / "calib.txt"), "must be a .npy, a .npz or a directory")


def test_calibration_set_too_big_for_the_limit(tmp_path, capsys):
    path = tmp_path / "calib.npy"
    np.save(path, np.zeros((64, 3, 32, 32), np.float32))
    capsys.readouterr()
    assert main(["--max-memory", "512K", "compile", str(MODEL), "-o", str(tmp_path / "o.s"),
                 "--calib", str(path)]) == 1
    expect(capsys.readouterr().err, "memory limit of 512 KiB")


# ---- as a separate process --------------------------------------------------------------------------

def _npuc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "npuc.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)


def test_process_exit_code_and_debug_traceback(tmp_path):
    onnx.save(conv_model(x_shape=(1, 0, 8, 8)), str(tmp_path / "m.onnx"))
    r = _npuc("compile", "m.onnx", "-o", "m.s", cwd=tmp_path)
    assert r.returncode == 1 and r.stdout == ""
    expected = "npuc: error: m.onnx: input 'x' has a zero-sized dimension 1 (0); zero-sized tensors are not supported"
    assert r.stderr.strip().splitlines() == [expected]
    r = _npuc("--debug", "compile", "m.onnx", "-o", "m.s", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" in r.stderr and "FrontendError" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
