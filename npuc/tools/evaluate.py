"""Compare a simulated run with the fp32 model and with the numpy integer reference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..compiler import Compiled
from ..quant.metrics import sqnr_db
from ..reference import run_float, run_quantized
from ..sim.driver import RunResult, quantize


@dataclass
class OutputCheck:
    name: str
    sqnr_db: float
    mismatches: int  # int8 elements where the simulator differs from the numpy reference
    elements: int
    top1_agreement: float | None  # for (N, classes) outputs


def float_outputs(model: str | Path, compiled: Compiled, inputs: dict[str, np.ndarray]) -> tuple[dict, str]:
    """fp32 outputs of the original model: onnxruntime when installed, else npuc's float reference."""
    try:
        import onnxruntime as ort
    except ImportError:
        ref = run_float(compiled.float_ir, inputs)
        return {compiled.float_ir.node(n)["value"]: ref[n] for n in compiled.float_ir.outputs}, "npuc fp32 reference"
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    ir = compiled.float_ir
    # rows of axis 0 per ONNX Runtime run: one sample (n0 rows when the input's axis 0 is not the batch), or
    # the model's fixed batch N (npuc compiled it as batch 1), the last run padded with the last sample
    n0 = {ir.node(n)["value"]: ir.node(n)["shape"][0] for n in ir.inputs}
    fixed = {i.name: i.shape[0] if i.shape and isinstance(i.shape[0], int) else 0 for i in sess.get_inputs()}
    step = {k: fixed.get(k, 0) if fixed.get(k, 0) > n0.get(k, 1) else n0.get(k, 1) for k in inputs}
    first = next(iter(inputs))
    runs = -(-inputs[first].shape[0] // step[first])
    per = []
    for r in range(runs):
        feeds = {}
        for k, v in inputs.items():
            chunk = v[r * step[k]:(r + 1) * step[k]]
            if len(chunk) < step[k]:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], step[k] - len(chunk), axis=0)])
            feeds[k] = chunk.astype(np.float32)
        per.append(sess.run(None, feeds))
    samples = inputs[first].shape[0] // n0.get(first, 1)
    out = {}
    for i, n in enumerate(names):
        y = np.concatenate([p[i] for p in per])
        out[n] = y[:samples * (y.shape[0] // (runs * step[first] // n0.get(first, 1)))]
    return out, "onnxruntime fp32"


def check_run(model: str | Path, compiled: Compiled, inputs: dict[str, np.ndarray],
              run: RunResult) -> tuple[list[OutputCheck], str]:
    fp32, oracle = float_outputs(model, compiled, inputs)
    prog = compiled.program
    feeds_q = {t.name: quantize(inputs[t.name], t) for t in prog.inputs()}
    ir = compiled.ir
    by_input_value = {ir.node(n)["value"]: n for n in ir.inputs}
    ref_q = run_quantized(ir, {by_input_value[k]: v for k, v in feeds_q.items()})
    checks = []
    for name in ir.outputs:
        value = ir.node(name)["value"]
        sim_q = run.raw[value]
        ref = ref_q[name].reshape(sim_q.shape)
        top1 = None
        if sim_q.ndim == 2 and sim_q.shape[1] > 1:
            top1 = float(np.mean(np.argmax(run.outputs[value], 1) == np.argmax(fp32[value].reshape(sim_q.shape), 1)))
        checks.append(OutputCheck(value, sqnr_db(fp32[value].reshape(sim_q.shape), run.outputs[value]),
                                  int(np.count_nonzero(sim_q != ref)), int(sim_q.size), top1))
    return checks, oracle


def compare_with_float(model: str | Path, compiled: Compiled, inputs: dict[str, np.ndarray],
                       run: RunResult) -> str:
    checks, oracle = check_run(model, compiled, inputs, run)
    lines = []
    for c in checks:
        exact = "bit-exact" if c.mismatches == 0 else f"{c.mismatches}/{c.elements} elements DIFFER"
        line = f"output {c.name}: SQNR {c.sqnr_db:.2f} dB vs {oracle}; simulator vs numpy int8 reference: {exact}"
        if c.top1_agreement is not None:
            line += f"; top-1 agreement {100 * c.top1_agreement:.1f}%"
        lines.append(line)
    return "\n".join(lines)
