"""Layout ops end to end: Concat (zero-copy and copied inputs), Split/Slice, channel shuffle, aliases,
Resize nearest and Pad. Each model: the float reference equals onnxruntime, the C simulator equals
the numpy integer reference bit for bit on the default and tiny presets, and nothing runs on the host."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from npuc.compiler import compile_model
from npuc.frontend import load_onnx
from npuc.hw import load_hw
from npuc.reference import run_float
from npuc.sim.driver import run_program

from .bitexact import assert_sim_equals_reference
from .models import make_model

PRESETS = ["default", "tiny"]


def _w(rng, cout, cin, k=1):
    return (rng.normal(size=(cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)


def _conv(name, x, y, cin, cout, rng, inits, k=1, relu=False, scale=1.0):
    inits[f"{name}.W"] = _w(rng, cout, cin, k) * scale
    inits[f"{name}.B"] = rng.normal(scale=0.1, size=cout).astype(np.float32)
    out = f"{y}.pre" if relu else y
    nodes = [helper.make_node("Conv", [x, f"{name}.W", f"{name}.B"], [out], kernel_shape=[k, k],
                              pads=[k // 2] * 4, name=name)]
    if relu:
        nodes.append(helper.make_node("Relu", [out], [y]))
    return nodes


def _ort_check(model: onnx.ModelProto, x: np.ndarray) -> None:
    ir = load_onnx(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    wants = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"x": x})))
    got = run_float(ir, {ir.inputs[0]: x})
    for out in ir.outputs:
        want = wants[ir.node(out)["value"]]
        np.testing.assert_allclose(got[out].reshape(want.shape), want, rtol=1e-4,
                                   atol=1e-4 * float(np.abs(want).max()))


def check(tmp_path, model: onnx.ModelProto, x_shape, hw_name: str, n: int = 2, seed: int = 0,
          npu_ops: tuple[str, ...] = ()):
    """Compile for `hw_name`; C simulator == integer reference; float reference == ORT; no Host node."""
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    rng = np.random.default_rng(seed)
    calib = [{"x": rng.normal(size=x_shape[1:]).astype(np.float32)} for _ in range(6)]
    hw = load_hw(hw_name.split("-")[0])
    if hw_name.endswith("-asym"):
        hw = hw.replace(act_mode="asymmetric")
    if hw_name.endswith("-fp"):  # float scales: a Requant is a 31-bit multiplier
        hw = hw.replace(scale_rule="fixed_point", act_mode="asymmetric")
    c = compile_model(path, hw, calib=calib, allow_fallback=False, verify=True)
    assert not c.fallbacks
    ops = {c.ir.op(m) for m in c.ir.g.nodes}
    assert "Host" not in ops
    for op in npu_ops:
        assert op in ops, (op, ops)
    x = rng.normal(size=(n, *x_shape[1:])).astype(np.float32)
    run = run_program(c.program, {"x": x})
    assert_sim_equals_reference(c, run, x)
    _ort_check(model, x[:1])
    return c, run


# -- Concat --------------------------------------------------------------------------

def _inception(cin=8, h=10, w=9, seed=0, pool_branch=True):
    """x -> [conv1x1, conv1x1 -> conv3x3, maxpool3x3 -> conv1x1 (or maxpool straight)] -> Concat -> conv1x1."""
    rng = np.random.default_rng(seed)
    inits: dict[str, np.ndarray] = {}
    nodes = []
    nodes += _conv("b1", "x", "y1", cin, 4, rng, inits, relu=True)
    nodes += _conv("b2a", "x", "t2", cin, 5, rng, inits, relu=True)
    nodes += _conv("b2b", "t2", "y2", 5, 6, rng, inits, k=3, relu=True, scale=3.0)
    nodes.append(helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
    c_total = 4 + 6
    if pool_branch:
        nodes += _conv("b3", "p", "y3", cin, 3, rng, inits, relu=True)
        c_total += 3
    else:
        nodes.append(helper.make_node("Identity", ["p"], ["y3"]))
        c_total += cin
    nodes.append(helper.make_node("Concat", ["y1", "y2", "y3"], ["cat"], axis=1))
    nodes += _conv("head", "cat", "y", c_total, 7, rng, inits)
    return make_model(nodes, inits, (1, cin, h, w)), (1, cin, h, w)


@pytest.mark.parametrize("hw_name", PRESETS)
def test_inception_block_concat_is_zero_copy(tmp_path, hw_name):
    model, shape = _inception()
    c, _ = check(tmp_path, model, shape, hw_name, npu_ops=("Concat",))
    cat = next(n for n in c.ir.g.nodes if c.ir.op(n) == "Concat")
    assert cat not in c.program.layers  # every input was written in place: the concat emits nothing
    assert "Requant" not in {c.ir.op(n) for n in c.ir.g.nodes}


@pytest.mark.parametrize("hw_name", [*PRESETS, "tiny-asym", "tiny-fp"])
def test_concat_of_an_inherited_scale_gets_a_requant(tmp_path, hw_name):
    """The MaxPool branch keeps x's scale: a Requant rescales it, written in place into the concat."""
    model, shape = _inception(pool_branch=False)
    c, _ = check(tmp_path, model, shape, hw_name, npu_ops=("Concat", "Requant"))
    cat = next(n for n in c.ir.g.nodes if c.ir.op(n) == "Concat")
    q = c.ir.node(cat)["act_q"]
    assert all(c.ir.node(p)["act_q"] == q for p in c.ir.preds(cat))


def _concat_model(n_inputs, c=(3, 5, 2, 4), h=6, w=7, scales=(1.0, 4.0, 0.25, 2.0), seed=0):
    rng = np.random.default_rng(seed)
    inits: dict[str, np.ndarray] = {}
    nodes, outs = [], []
    for i in range(n_inputs):
        nodes += _conv(f"c{i}", "x", f"y{i}", 3, c[i], rng, inits, k=3, scale=scales[i])
        outs.append(f"y{i}")
    nodes.append(helper.make_node("Concat", outs, ["y"], axis=1))
    return make_model(nodes, inits, (1, 3, h, w)), (1, 3, h, w)


@pytest.mark.parametrize("n_inputs", [2, 3, 4])
@pytest.mark.parametrize("hw_name", PRESETS)
def test_concat_inputs_of_different_scales(tmp_path, n_inputs, hw_name):
    """Branch ranges differ 16x: the unify pass gives all the concat's range; the output is a graph output."""
    model, shape = _concat_model(n_inputs)
    c, _ = check(tmp_path, model, shape, hw_name, npu_ops=("Concat",))
    assert "Requant" not in {c.ir.op(n) for n in c.ir.g.nodes}


@pytest.mark.parametrize("hw_name", PRESETS)
def test_nested_concat_and_an_input_used_elsewhere(tmp_path, hw_name):
    """cat2 = Concat(cat1, d) with cat1 = Concat(a, b) also read by a conv; b also feeds an Add (a view)."""
    rng = np.random.default_rng(3)
    inits: dict[str, np.ndarray] = {}
    nodes = []
    nodes += _conv("a", "x", "a", 4, 3, rng, inits, k=3)
    nodes += _conv("b", "x", "b", 4, 4, rng, inits, relu=True)
    nodes.append(helper.make_node("Concat", ["a", "b"], ["cat1"], axis=1))
    nodes += _conv("d", "cat1", "d", 7, 5, rng, inits, k=3)
    nodes += _conv("e", "x", "e", 4, 4, rng, inits)
    nodes.append(helper.make_node("Add", ["b", "e"], ["be"]))
    nodes.append(helper.make_node("Concat", ["cat1", "d", "be"], ["cat2"], axis=1))
    nodes += _conv("head", "cat2", "y", 16, 6, rng, inits)
    c, _ = check(tmp_path, make_model(nodes, inits, (1, 4, 8, 6)), (1, 4, 8, 6), hw_name, npu_ops=("Concat",))
    from npuc.backend.placement import plan_concats
    placed = plan_concats(c.ir)
    cats = {c.ir.node(n)["value"]: n for n in c.ir.g.nodes if c.ir.op(n) == "Concat"}
    assert placed[cats["cat1"]][0] == cats["cat2"]  # the inner concat lives inside the outer one
    assert not any(c.ir.node(n)["value"] in ("cat1", "cat2") for n in c.program.layers)


@pytest.mark.parametrize("hw_name", PRESETS)
def test_graph_input_into_concat_is_copied(tmp_path, hw_name):
    rng = np.random.default_rng(4)
    inits: dict[str, np.ndarray] = {}
    nodes = _conv("a", "x", "a", 5, 6, rng, inits, k=3)
    nodes.append(helper.make_node("Concat", ["x", "a"], ["cat"], axis=1))
    nodes += _conv("head", "cat", "y", 11, 4, rng, inits)
    c, _ = check(tmp_path, make_model(nodes, inits, (1, 5, 7, 7)), (1, 5, 7, 7), hw_name, npu_ops=("Concat",))
    cat = next(n for n in c.ir.g.nodes if c.ir.op(n) == "Concat")
    assert cat in c.program.layers  # x is copied into its slice


@pytest.mark.parametrize("hw_name", PRESETS)
def test_concat_of_2d_tensors(tmp_path, hw_name):
    rng = np.random.default_rng(5)
    inits = {"W1": (rng.normal(size=(6, 12)) / 3).astype(np.float32),
             "W2": (rng.normal(size=(9, 12)) / 3).astype(np.float32),
             "W3": (rng.normal(size=(4, 15)) / 3).astype(np.float32)}
    nodes = [helper.make_node("Gemm", ["x", "W1"], ["a"], transB=1),
             helper.make_node("Gemm", ["x", "W2"], ["b"], transB=1),
             helper.make_node("Concat", ["a", "b"], ["cat"], axis=1),
             helper.make_node("Gemm", ["cat", "W3"], ["y"], transB=1)]
    check(tmp_path, make_model(nodes, inits, (1, 12)), (1, 12), hw_name, npu_ops=("Concat",))


def test_zero_copy_saves_dram_traffic(tmp_path):
    """The same block with its concat forced to copy: measure what placement saves."""
    import npuc.backend.context as ctx_mod
    from npuc.backend import generate

    model, shape = _inception(cin=16, h=16, w=16)
    c, run = check(tmp_path, model, shape, "default", n=1)
    plan = ctx_mod.plan_concats
    try:
        ctx_mod.plan_concats = lambda ir: {}
        copied = generate(c.ir, load_hw("default"))
    finally:
        ctx_mod.plan_concats = plan
    run_copy = run_program(copied, {"x": np.zeros(shape, np.float32)})
    def traffic(r):
        return r.stats[0].dram_rd + r.stats[0].dram_wr

    saved = traffic(run_copy) - traffic(run)
    print(f"\nzero-copy concat: {run.stats[0].cycles} cycles, {traffic(run)} DRAM bytes; copied: "
          f"{run_copy.stats[0].cycles} cycles, {traffic(run_copy)} DRAM bytes")
    assert saved == 2 * 16 * 16 * 13  # the concat's 13 channels read once and written once more
    assert run.stats[0].cycles < run_copy.stats[0].cycles


# -- Split / Slice ------------------------------------------------------------------

def _split_model(form: str, seed=0):
    rng = np.random.default_rng(seed)
    inits: dict[str, np.ndarray] = {}
    nodes = _conv("a", "x", "a", 3, 10, rng, inits, k=3)
    opset = 13
    if form == "attr":
        opset = 11
        nodes.append(helper.make_node("Split", ["a"], ["s0", "s1", "s2"], axis=1, split=[3, 3, 4]))
    elif form == "input":
        inits["sizes"] = np.array([2, 5, 3], np.int64)
        nodes.append(helper.make_node("Split", ["a", "sizes"], ["s0", "s1", "s2"], axis=1))
    elif form == "num_outputs":
        opset = 18
        nodes.append(helper.make_node("Split", ["a"], ["s0", "s1", "s2"], axis=1, num_outputs=3))
    elif form == "slice":
        for i, (s, e) in enumerate([(0, 4), (4, 7), (7, 100)]):
            inits[f"st{i}"], inits[f"en{i}"] = np.array([s], np.int64), np.array([e], np.int64)
            inits[f"ax{i}"] = np.array([1], np.int64)
            nodes.append(helper.make_node("Slice", ["a", f"st{i}", f"en{i}", f"ax{i}"], [f"s{i}"]))
    # each part goes to an op reading it as a strided view: conv, maxpool, add
    nodes += _conv("c0", "s0", "y0", None or {"attr": 3, "input": 2, "num_outputs": 4, "slice": 4}[form], 4, rng,
                   inits, k=3)
    nodes.append(helper.make_node("MaxPool", ["s1"], ["y1"], kernel_shape=[2, 2]))
    n2 = {"attr": 4, "input": 3, "num_outputs": 2, "slice": 3}[form]
    nodes += _conv("c2", "x", "z2", 3, n2, rng, inits)
    nodes.append(helper.make_node("Add", ["s2", "z2"], ["y2"]))
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 6])],
                              [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, None) for i in range(3)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model, (1, 3, 8, 6)


@pytest.mark.parametrize("form", ["attr", "input", "num_outputs", "slice"])
@pytest.mark.parametrize("hw_name", PRESETS)
def test_split_and_slice_are_views(tmp_path, form, hw_name):
    model, shape = _split_model(form)
    c, _ = check(tmp_path, model, shape, hw_name, npu_ops=("ChannelSlice",))
    slices = [n for n in c.ir.g.nodes if c.ir.op(n) == "ChannelSlice"]
    assert len(slices) == 3 and not any(s in c.program.layers for s in slices)


# -- channel shuffle, aliases -------------------------------------------------------------

@pytest.mark.parametrize("groups,c", [(2, 8), (3, 12), (4, 40)])
@pytest.mark.parametrize("hw_name", [*PRESETS, "tiny-asym"])
def test_channel_shuffle_bit_exact(tmp_path, groups, c, hw_name):
    rng = np.random.default_rng(groups)
    inits: dict[str, np.ndarray] = {"s5": np.array([1, groups, c // groups, 5, 6], np.int64),
                                    "s4": np.array([1, c, 5, 6], np.int64)}
    nodes = _conv("a", "x", "a", 3, c, rng, inits, k=3)
    nodes += [helper.make_node("Reshape", ["a", "s5"], ["r5"]),
              helper.make_node("Transpose", ["r5"], ["t5"], perm=[0, 2, 1, 3, 4]),
              helper.make_node("Reshape", ["t5", "s4"], ["sh"])]
    nodes += _conv("b", "sh", "y", c, 5, rng, inits)
    c_, _ = check(tmp_path, make_model(nodes, inits, (1, 3, 5, 6)), (1, 3, 5, 6), hw_name,
                  npu_ops=("ChannelShuffle",))
    assert not any(c_.ir.op(n) in ("Reshape", "Transpose") for n in c_.ir.g.nodes)


def test_incomplete_shuffle_stays_on_the_host(tmp_path):
    inits = {"s5": np.array([1, 2, 3, 4, 4], np.int64)}
    nodes = [helper.make_node("Reshape", ["x", "s5"], ["r5"]),
             helper.make_node("Transpose", ["r5"], ["y"], perm=[0, 2, 1, 3, 4])]
    ir = load_onnx(make_model(nodes, inits, (1, 6, 4, 4)))
    assert [ir.op(n) for n in ir.topo()] == ["Input", "Host", "Host"]


@pytest.mark.parametrize("hw_name", PRESETS)
def test_squeeze_unsqueeze_transpose_alias(tmp_path, hw_name):
    """GAP (1,C,1,1) -> Squeeze -> (1,C) -> Gemm -> Unsqueeze (1,N,1,1) -> Transpose (1,1,1,N) -> Flatten."""
    rng = np.random.default_rng(6)
    inits = {"W": (rng.normal(size=(7, 6)) / 3).astype(np.float32), "ax": np.array([2, 3], np.int64)}
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"]),
             helper.make_node("Squeeze", ["g", "ax"], ["s"]),
             helper.make_node("Gemm", ["s", "W"], ["m"], transB=1),
             helper.make_node("Unsqueeze", ["m", "ax"], ["u"]),
             helper.make_node("Transpose", ["u"], ["t"], perm=[0, 2, 3, 1]),
             helper.make_node("Flatten", ["t"], ["y"])]
    c, _ = check(tmp_path, make_model(nodes, inits, (1, 6, 5, 5)), (1, 6, 5, 5), hw_name)
    assert {c.ir.op(n) for n in c.ir.g.nodes} == {"Input", "GlobalAveragePool", "Gemm", "Reshape", "Flatten"}


def test_transpose_that_moves_data_runs_on_the_host():
    nodes = [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])]
    ir = load_onnx(make_model(nodes, {}, (1, 3, 4, 5)))
    assert [ir.op(n) for n in ir.topo()] == ["Input", "Host"]


# -- Resize -----------------------------------------------------------------------------

def _resize_model(scales, ctm, nearest, opset=13, sizes=None, cin=3):
    rng = np.random.default_rng(7)
    inits: dict[str, np.ndarray] = {}
    nodes = _conv("a", "x", "a", cin, 5, rng, inits, k=3)
    ins = ["a", ""]
    if sizes is not None:
        inits["sizes"] = np.array(sizes, np.int64)
        ins += ["", "sizes"]
    else:
        inits["scales"] = np.array([1, 1, *scales], np.float32)
        ins += ["scales"]
    nodes.append(helper.make_node("Resize", ins, ["r"], mode="nearest", coordinate_transformation_mode=ctm,
                                  nearest_mode=nearest))
    nodes += _conv("b", "r", "y", 5, 4, rng, inits, k=3)
    return make_model(nodes, inits, (1, cin, 5, 4), opset=opset)


@pytest.mark.parametrize("scales,ctm,nearest", [
    ((2, 2), "asymmetric", "floor"),
    ((3, 2), "asymmetric", "floor"),
    ((2, 2), "half_pixel", "round_prefer_ceil"),
    ((2, 2), "asymmetric", "round_prefer_floor"),
    ((3, 3), "pytorch_half_pixel", "round_prefer_floor"),
    ((2, 3), "tf_half_pixel_for_nn", "floor"),
])
@pytest.mark.parametrize("hw_name", PRESETS)
def test_resize_nearest_integer_scales(tmp_path, scales, ctm, nearest, hw_name):
    check(tmp_path, _resize_model(scales, ctm, nearest), (1, 3, 5, 4), hw_name, npu_ops=("Resize",))


def test_resize_with_sizes_input(tmp_path):
    model = _resize_model(None, "asymmetric", "floor", sizes=[1, 5, 10, 12])
    check(tmp_path, model, (1, 3, 5, 4), "tiny", npu_ops=("Resize",))


@pytest.mark.parametrize("scales,ctm,nearest", [
    ((3, 3), "asymmetric", "round_prefer_floor"),  # 2/3 rounds up: not a replication
    ((2, 2), "half_pixel", "floor"),
    ((2, 2), "align_corners", "floor"),
])
def test_resize_that_is_not_replication_runs_on_the_host(scales, ctm, nearest):
    ir = load_onnx(_resize_model(scales, ctm, nearest))
    assert "Host" in {ir.op(n) for n in ir.g.nodes} and "Resize" not in {ir.op(n) for n in ir.g.nodes}


# -- Pad --------------------------------------------------------------------------------

@pytest.mark.parametrize("pads,value", [((1, 1, 1, 1), 0.0), ((0, 2, 3, 1), 0.5), ((2, 0, 0, 0), -1.0)])
@pytest.mark.parametrize("hw_name", [*PRESETS, "tiny-asym"])
def test_pad_constant(tmp_path, pads, value, hw_name):
    rng = np.random.default_rng(8)
    inits: dict[str, np.ndarray] = {}
    nodes = _conv("a", "x", "a", 3, 6, rng, inits, k=3)
    pt, pl, pb, pr = pads
    inits["pads"] = np.array([0, 0, pt, pl, 0, 0, pb, pr], np.int64)
    inits["v"] = np.array(value, np.float32)
    nodes.append(helper.make_node("Pad", ["a", "pads", "v"], ["p"], mode="constant"))
    nodes.append(helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[2, 2]))
    check(tmp_path, make_model(nodes, inits, (1, 3, 9, 7)), (1, 3, 9, 7), hw_name, npu_ops=("Pad",))


# -- Pad edge / reflect -------------------------------------------------------------------

def _pad_model(pads, mode, x_shape, conv_first=True, seed=9):
    rng = np.random.default_rng(seed)
    inits: dict[str, np.ndarray] = {}
    nodes = _conv("a", "x", "a", x_shape[1], x_shape[1], rng, inits, k=3) if conv_first else []
    pt, pl, pb, pr = pads
    inits["pads"] = np.array([0, 0, pt, pl, 0, 0, pb, pr], np.int64)
    nodes.append(helper.make_node("Pad", ["a" if conv_first else "x", "pads"], ["y"], mode=mode))
    return make_model(nodes, inits, x_shape)


@pytest.mark.parametrize("mode,pads,x_shape", [
    ("edge", (1, 1, 1, 1), (1, 3, 5, 4)),
    ("edge", (3, 0, 2, 5), (1, 4, 2, 1)),  # pads wider than the map: the one pixel repeated
    ("edge", (0, 2, 1, 0), (1, 64, 3, 70)),  # a padded row exceeds tiny's copy budget: column boxes
    ("reflect", (1, 2, 2, 1), (1, 3, 5, 4)),
    ("reflect", (2, 3, 1, 3), (1, 64, 3, 70)),
])
@pytest.mark.parametrize("hw_name", [*PRESETS, "tiny-asym"])
def test_pad_edge_and_reflect(tmp_path, mode, pads, x_shape, hw_name):
    c, _ = check(tmp_path, _pad_model(pads, mode, x_shape, conv_first=x_shape[1] < 10), x_shape, hw_name,
                 npu_ops=("EdgePad",))
    assert "Pad" not in {c.ir.op(n) for n in c.ir.g.nodes}


def test_pad_edge_is_not_merged_into_a_conv(tmp_path):
    """Zero constant Pads merge into the Conv after them (cleanup); an edge Pad must not."""
    rng = np.random.default_rng(10)
    inits = {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)}
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], mode="edge")]
    nodes += _conv("b", "p", "y", 3, 4, rng, inits, k=3)
    nodes[-1].ClearField("attribute")
    nodes[-1].attribute.extend([helper.make_attribute("kernel_shape", [3, 3])])
    check(tmp_path, make_model(nodes, inits, (1, 3, 6, 5)), (1, 3, 6, 5), "tiny", npu_ops=("EdgePad",))


def test_reflect_pad_past_the_map_runs_on_the_host():
    ir = load_onnx(_pad_model((0, 0, 0, 4), "reflect", (1, 2, 3, 4), conv_first=False))
    assert [ir.op(n) for n in ir.topo()] == ["Input", "Host"]


# -- Resize linear (bilinear) ----------------------------------------------------------------

def _bilinear_model(x_shape, ctm="half_pixel", scales=(2, 2), form="scales", conv=True, opset=13):
    """[conv ->] Resize linear [-> conv]: the resize reads a conv's scale, or the graph input's."""
    rng = np.random.default_rng(11)
    inits: dict[str, np.ndarray] = {}
    c = x_shape[1]
    nodes = _conv("a", "x", "a", c, c, rng, inits, k=3) if conv else []
    src = "a" if conv else "x"
    if form == "upsample":  # opset 9: converted to a Resize with asymmetric coordinates by the loader
        inits["scales"] = np.array([1, 1, *scales], np.float32)
        nodes.append(helper.make_node("Upsample", [src, "scales"], ["r"], mode="linear"))
    elif form == "sizes":
        inits["sizes"] = np.array([x_shape[0], c, x_shape[2] * scales[0], x_shape[3] * scales[1]], np.int64)
        nodes.append(helper.make_node("Resize", [src, "", "", "sizes"], ["r"], mode="linear",
                                      coordinate_transformation_mode=ctm))
    else:
        inits["scales"] = np.array([1, 1, *scales], np.float32)
        nodes.append(helper.make_node("Resize", [src, "", "scales"], ["r"], mode="linear",
                                      coordinate_transformation_mode=ctm))
    if conv:
        nodes += _conv("b", "r", "y", c, 4, rng, inits, k=3)
    else:
        nodes.append(helper.make_node("Identity", ["r"], ["y"]))
    return make_model(nodes, inits, x_shape, opset=opset)


def _resize_plan(c):
    ops = [c.ir.op(n) for n in c.ir.topo()]
    assert "Resize" not in ops
    (ct,) = [n for n in c.ir.g.nodes if c.ir.op(n) == "ConvTranspose"]
    return c.ir.node(ct)


@pytest.mark.parametrize("x_shape,ctm,conv", [
    ((1, 3, 5, 4), "half_pixel", True),
    ((1, 3, 5, 4), "pytorch_half_pixel", False),
    ((1, 4, 1, 6), "pytorch_half_pixel", True),  # one row: every output row is that row
    ((1, 2, 7, 1), "half_pixel", False),  # one column
    ((1, 1, 1, 1), "half_pixel", False),
    ((1, 5, 9, 7), "half_pixel", True),  # odd sizes
    ((1, 20, 6, 6), "pytorch_half_pixel", True),  # more channels than tiny's array columns
])
@pytest.mark.parametrize("hw_name", PRESETS)
def test_resize_bilinear_x2(tmp_path, x_shape, ctm, conv, hw_name):
    c, _ = check(tmp_path, _bilinear_model(x_shape, ctm, conv=conv), x_shape, hw_name,
                 npu_ops=("EdgePad", "ConvTranspose"))
    node = _resize_plan(c)
    assert node["attrs"]["strides"] == (2, 2) and node["attrs"]["pads"] == (3, 3, 3, 3)
    # pow2 weight scale 2^-7: 1/16, 3/16, 9/16 are 8, 24, 72 exactly
    np.testing.assert_array_equal(np.unique(node["qop"].weight), [8, 24, 72])
    assert np.all(node["qop"].w_scale == 2.0 ** -7)


@pytest.mark.parametrize("form,ctm,scales,opset", [
    ("sizes", "half_pixel", (2, 2), 13),
    ("scales", "asymmetric", (2, 2), 13),
    # the converter's Resize-11 gets Upsample-9's asymmetric coordinates from the loader
    ("upsample", "asymmetric", (2, 2), 9),
    ("scales", "half_pixel", (4, 2), 13),
    ("scales", "pytorch_half_pixel", (1, 2), 13),  # one axis kept: no padding along it
    ("scales", "half_pixel_symmetric", (3, 3), 19),
])
def test_resize_linear_other_forms(tmp_path, form, ctm, scales, opset):
    model = _bilinear_model((1, 3, 5, 4), ctm, scales, form=form, opset=opset)
    c, _ = check(tmp_path, model, (1, 3, 5, 4), "tiny", npu_ops=("ConvTranspose",))
    assert _resize_plan(c)["attrs"]["strides"] == scales


@pytest.mark.parametrize("ctm,scales", [("align_corners", (2, 2)), ("tf_crop_and_resize", (2, 2))])
def test_resize_linear_that_is_no_fixed_kernel_runs_on_the_host(ctm, scales):
    ir = load_onnx(_bilinear_model((1, 3, 5, 4), ctm, scales, conv=False))
    assert "Host" in {ir.op(n) for n in ir.g.nodes} and "ConvTranspose" not in {ir.op(n) for n in ir.g.nodes}


def test_resize_bilinear_cost_and_accuracy(tmp_path):
    """1x16x16x16 bilinear x2 on the default preset: cycles, and the quantized output's SQNR against
    onnxruntime's fp32 Resize on random data (printed; bounded below so a regression shows)."""
    shape = (1, 16, 16, 16)
    model = _bilinear_model(shape, conv=False)
    c, run = check(tmp_path, model, shape, "default", n=1)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(12).normal(size=(4, *shape[1:])).astype(np.float32)
    got = run_program(c.program, {"x": x}).outputs["y"]
    want = np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])
    sqnr = 10 * np.log10((want ** 2).sum() / ((got - want) ** 2).sum())
    layers = {s.name: s.cycles for s in run.layers}
    print(f"\nbilinear x2 1x16x16x16: {run.stats[0].cycles} cycles ({layers}), SQNR vs ORT fp32 {sqnr:.1f} dB")
    assert sqnr > 30


# -- 3-D tensors: YOLO's concatenation of anchors over scales -------------------------------------

def _anchor_concat(seed=0):
    """Three scales' maps (1, 6, s, s) -> Reshape (1, 6, s·s) (the same bytes) -> Concat over anchors
    (axis 2 of 3-D: rows of the (1, 6, L, 1) twin) -> Split into 4 + 2 channels -> Sigmoid on the 2 ->
    Concat of the two."""
    rng = np.random.default_rng(seed)
    inits: dict[str, np.ndarray] = {}
    nodes, flat = [], []
    for i, s in enumerate((8, 4, 2)):
        src = "x" if i == 0 else f"p{i - 1}"
        nodes.append(helper.make_node("MaxPool", [src], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2]) if i
                     else helper.make_node("Identity", ["x"], ["p0"]))
        nodes += _conv(f"h{i}", f"p{i}", f"m{i}", 3, 6, rng, inits, k=3, scale=1.0 + i)
        inits[f"s{i}"] = np.array([1, 6, s * s], np.int64)
        nodes.append(helper.make_node("Reshape", [f"m{i}", f"s{i}"], [f"r{i}"]))
        flat.append(f"r{i}")
    inits["split"] = np.array([4, 2], np.int64)
    nodes += [helper.make_node("Concat", flat, ["cat"], axis=2),
              helper.make_node("Split", ["cat", "split"], ["box", "cls"], axis=1),
              helper.make_node("Sigmoid", ["cls"], ["score"]),
              helper.make_node("Concat", ["box", "score"], ["y"], axis=1)]
    return make_model(nodes, inits, (1, 3, 8, 8)), (1, 3, 8, 8)


@pytest.mark.parametrize("hw_name", PRESETS)
def test_concat_of_anchors_over_scales_is_a_row_concat_on_the_npu(tmp_path, hw_name):
    model, shape = _anchor_concat()
    c, _ = check(tmp_path, model, shape, hw_name, npu_ops=("Concat", "ChannelSlice", "Lut"))
    cat = next(n for n in c.ir.g.nodes if c.ir.op(n) == "Concat")
    assert c.ir.node(cat)["attrs"]["axis"] == 2 and c.ir.node(cat)["shape"] == (1, 6, 84, 1)


def _anchor_arithmetic():
    """YOLO's dist2bbox on 3-D tensors: anchors - lt, anchors + rb (a (1, 2, A) constant grid), the
    centre and size, times the strides (a (1, A) constant): Const operands of vadd / vmul."""
    rng = np.random.default_rng(4)
    inits: dict[str, np.ndarray] = {}
    nodes = _conv("d", "x", "m", 3, 4, rng, inits, k=3)
    a = 16
    grid = np.stack(np.meshgrid(np.arange(4) + 0.5, np.arange(4) + 0.5), 0).reshape(1, 2, a).astype(np.float32)
    inits.update(s3=np.array([1, 4, a], np.int64), grid=grid, split=np.array([2, 2], np.int64),
                 half=np.float32(0.5), strides=np.repeat(np.array([8.0, 16.0], np.float32), a // 2)[None])
    nodes += [helper.make_node("Reshape", ["m", "s3"], ["r"]),
              helper.make_node("Split", ["r", "split"], ["lt", "rb"], axis=1),
              helper.make_node("Sub", ["grid", "lt"], ["x1y1"]),
              helper.make_node("Add", ["grid", "rb"], ["x2y2"]),
              helper.make_node("Add", ["x1y1", "x2y2"], ["s"]),
              helper.make_node("Mul", ["s", "half"], ["c_xy"]),
              helper.make_node("Sub", ["x2y2", "x1y1"], ["wh"]),
              helper.make_node("Concat", ["c_xy", "wh"], ["box"], axis=1),
              helper.make_node("Mul", ["box", "strides"], ["y"])]
    return make_model(nodes, inits, (1, 3, 4, 4)), (1, 3, 4, 4)


@pytest.mark.parametrize("hw_name", PRESETS)
def test_anchor_arithmetic_with_constant_tensors_runs_on_the_npu(tmp_path, hw_name):
    model, shape = _anchor_arithmetic()
    c, _ = check(tmp_path, model, shape, hw_name, npu_ops=("Const", "Add", "Sub", "Mul"))
    assert sum(c.ir.op(n) == "Const" for n in c.ir.g.nodes) == 3
