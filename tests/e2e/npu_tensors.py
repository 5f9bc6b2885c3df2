"""What the NPU hands to the host: each host op's input tensors, read from DRAM where the host reads them.

A graph that ends in a host op hides the NPU's errors behind it: a Softmax over 1000 logits
quantized to int8 saturates (ResNet-50: 999 of 1000 outputs are -128), so a wrong logit rarely
changes the graph output. Comparing the host op's inputs — the last NPU tensors — bit for bit
with the numpy integer reference sees every NPU error that reaches them.

Only the program's public form is used: the program cut before host op i (its instructions
before the host point, the host ops before it) declares the op's input tensors as its outputs,
and `run_program` runs it as it runs any program (segments, host ops, DRAM reads). A host op at
the very end of the program (a Softmax after the last instruction) needs no second run: nothing
but its own output is written after it, so when that output does not overlap its inputs, the
whole program, declaring them as outputs too, reads them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from npuc.ir import IR
from npuc.isa.program import HostOp, Program, TensorInfo
from npuc.sim.driver import RunResult, run_program

Seen = dict[str, dict[str, np.ndarray]]  # host op name -> input tensor name -> values (batch first)


def _as_outputs(h: HostOp) -> list[TensorInfo]:
    return [dataclasses.replace(t, role="output") for t in h.inputs()]


def _overlap(a: TensorInfo, b: TensorInfo) -> bool:
    return a.addr < b.addr + b.nbytes and b.addr < a.addr + a.nbytes


def _read_at_the_end(prog: Program) -> HostOp | None:
    """The last host op, when the whole program's final DRAM still holds its inputs."""
    if not prog.hosts or prog.hosts[-1].at != len(prog.insns):
        return None
    h = prog.hosts[-1]
    names = {t.name for t in prog.tensors}
    if any(t.name in names or _overlap(t, o) for t in h.inputs() for o in h.outputs()):
        return None
    return h


def host_inputs(prog: Program, inputs: dict[str, np.ndarray], skip: HostOp | None = None) -> Seen:
    """{host op name: {input tensor name: its values (int8 or int64, ONNX order, batch first)}} as
    the C simulator leaves them in DRAM when the host op starts, for the float `inputs` (batch
    first); each from a run of the program cut before the op (but `skip`)."""
    out = {}
    for i, h in enumerate(prog.hosts):
        if h is skip:
            continue
        cut = dataclasses.replace(prog, insns=prog.insns[:h.at], hosts=prog.hosts[:i],
                                  tensors=[*prog.inputs(), *_as_outputs(h)])
        out[h.name] = run_program(cut, inputs).raw
    return out


def run_with_host_inputs(prog: Program, inputs: dict[str, np.ndarray]) -> tuple[RunResult, Seen]:
    """`run_program(prog, inputs)` and `host_inputs(prog, inputs)`, the last host op's inputs read in
    the same run when it ends the program."""
    last = _read_at_the_end(prog)
    extra = _as_outputs(last) if last is not None else []
    run = run_program(dataclasses.replace(prog, tensors=[*prog.tensors, *extra]), inputs)
    seen = host_inputs(prog, inputs, skip=last)
    if last is not None:
        seen[last.name] = {t.name: run.raw[t.name] for t in extra}
    return run, seen


def assert_host_inputs_equal(prog: Program, ir: IR, seen: Seen, ref: dict[str, np.ndarray],
                             min_distinct: int = 16) -> int:
    """Every host op's inputs `seen` in the simulator's DRAM == `ref` (`run_quantized(...,
    intermediates=True)` on the same inputs, by IR node) bit for bit; each compared tensor holds at
    least `min_distinct` distinct values, so the comparison can fail. Returns the number of tensors
    compared."""
    assert set(seen) == {h.name for h in prog.hosts}
    compared = 0
    for h in prog.hosts:
        preds = ir.preds(h.name)  # the host op's inputs, in its model's input order (the backend's order)
        assert len(preds) == len(h.inputs()), h.name
        for t, p in zip(h.inputs(), preds):
            sim = seen[h.name][t.name]
            want = np.asarray(ref[p]).reshape(sim.shape)
            assert len(np.unique(sim)) >= min_distinct, f"{h.name} input {t.name}: too few values to compare"
            where = f"host op {h.name!r} input {t.name!r} (node {p!r})"
            np.testing.assert_array_equal(sim, want, err_msg=where)
            compared += 1
    return compared
