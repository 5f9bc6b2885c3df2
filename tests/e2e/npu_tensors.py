"""What the NPU hands to the host: each host op's input tensors, read from DRAM where the host reads them.

A graph that ends in a host op hides the NPU's errors behind it: a Softmax over 1000 logits
quantized to int8 saturates (ResNet-50: 999 of 1000 outputs are -128), so a wrong logit rarely
changes the graph output. Comparing the host op's inputs — the last NPU tensors — bit for bit
with the numpy integer reference sees every NPU error that reaches them.

Only the program's public form is used: for host op i, the program cut before it (its
instructions before the host point, the host ops before it) declares the op's input tensors as
its outputs, and `run_program` runs it as it runs any program (segments, host ops, DRAM reads).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from npuc.ir import IR
from npuc.isa.program import Program
from npuc.sim.driver import run_program


def host_inputs(prog: Program, inputs: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """{host op name: {input tensor name: its values (int8 or int64, ONNX order, batch first)}} as
    the C simulator leaves them in DRAM when the host op starts, for the float `inputs` (batch first)."""
    out = {}
    for i, h in enumerate(prog.hosts):
        seen = [dataclasses.replace(t, role="output") for t in h.inputs()]
        cut = dataclasses.replace(prog, insns=prog.insns[:h.at], hosts=prog.hosts[:i],
                                  tensors=[*prog.inputs(), *seen])
        out[h.name] = run_program(cut, inputs).raw
    return out


def assert_host_inputs_equal(prog: Program, ir: IR, inputs: dict[str, np.ndarray],
                             ref: dict[str, np.ndarray], min_distinct: int = 16) -> int:
    """Every host op's inputs in the simulator's DRAM == `ref` (`run_quantized(..., intermediates=True)`
    on the same inputs, by IR node) bit for bit; each compared tensor holds at least `min_distinct`
    distinct values, so the comparison can fail. Returns the number of tensors compared."""
    compared = 0
    for name, got in host_inputs(prog, inputs).items():
        (h,) = [h for h in prog.hosts if h.name == name]
        preds = ir.preds(name)  # the host op's inputs, in its model's input order (the backend's order)
        assert len(preds) == len(h.inputs()), name
        for t, p in zip(h.inputs(), preds):
            sim = got[t.name]
            want = np.asarray(ref[p]).reshape(sim.shape)
            assert len(np.unique(sim)) >= min_distinct, f"{name} input {t.name}: too few values to compare"
            np.testing.assert_array_equal(sim, want, err_msg=f"host op {name!r} input {t.name!r} (node {p!r})")
            compared += 1
    return compared
