"""Run a whole program: place inputs in DRAM, run the C core, read outputs, report.

The program is compiled for batch 1; a batched input runs the program once per
sample (each run is independent and deterministic, so the cycles of a batch
are the per-sample cycles added up). A batch is the samples stacked along
axis 0: an input of shape (n0, ...) takes (B·n0, ...) for B samples (n0 = 1
but for inputs whose batch is another axis, MultiheadAttention's (L, 1, E)).

DRAM layouts: "nhwc" is channels last (axis 1 moved to the end: NHWC for a
(1, C, H, W) map, (L, C) for a (1, C, L) sequence); "flat" is ONNX order.

Host fallback: the program's host points (`Program.hosts`) cut the
instruction stream into segments. Each segment is one run of the C core on
the same DRAM image (the NPU drains at a host point, and no token crosses
one); between two segments the host op reads its inputs from DRAM,
dequantizes them, runs in float (`npuc/host.py`, the same code as the numpy
reference) and writes its quantized output back. A host op costs no NPU
cycles; its wall-clock time is reported on its own. Cycles, counters and the
per-instruction times of the segments add up as if one program had run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

from .. import host
from ..fsutil import atomic_write_text
from ..hw import HwConfig
from ..isa.arith import dequantize_linear, quantize_linear
from ..isa.encoding import encode
from ..isa.program import HostOp, Program, TensorInfo
from ..isa.table import BY_MNEMONIC, WORDS_PER_INSN, Unit
from ..isa.stats import UNITS
from ..isa.stats import ZERO as ZERO_STATS
from .core import SimError, SimResult, SimStats, run_words



class InputError(ValueError):
    """An input array does not match the program's tensor table."""


@dataclass
class LayerStats:
    name: str
    cycles: int  # from the layer's first start to its last end
    busy: dict[str, int]
    macs: int
    dram_bytes: int
    insns: int


@dataclass
class HostStats:
    """One host op of the program: where it ran and what it cost the host."""

    name: str
    op: str  # the ONNX op type
    cycle: int  # the NPU cycle it ran at (first sample): the end of the segment before it
    wall_ms: float  # host wall-clock time, summed over the samples
    runs: int  # samples


@dataclass
class RunResult:
    outputs: dict[str, np.ndarray]  # dequantized float32 (an int64 output: its raw values), by ONNX name
    raw: dict[str, np.ndarray]  # the int8 values (a host op's raw int64 / float32 ones), same keys
    stats: list[SimStats]  # one per sample
    layers: list[LayerStats] = field(default_factory=list)  # of the first sample
    insn_start: np.ndarray | None = None
    insn_end: np.ndarray | None = None
    hosts: list[HostStats] = field(default_factory=list)  # per host op, in program order


def quantize(x: np.ndarray, t: TensorInfo) -> np.ndarray:
    """float -> int8 as QuantizeLinear (`npuc.isa.arith.quantize_linear`)."""
    return quantize_linear(x, t.scale, t.zp)


def dequantize(q: np.ndarray, t: TensorInfo) -> np.ndarray:
    """int8 -> float32 as DequantizeLinear (`npuc.isa.arith.dequantize_linear`)."""
    return dequantize_linear(q, t.scale, t.zp)


def _to_dram(q: np.ndarray, t: TensorInfo) -> bytes:
    """One sample (shape `t.shape`) in the program's DRAM layout."""
    q = q.reshape(t.shape)
    if t.layout == "nhwc":
        q = np.moveaxis(q, 1, -1)
    return np.ascontiguousarray(q, dtype=_NP_DTYPE[t.dtype]).tobytes()


_NP_DTYPE = {"int8": np.dtype(np.int8), "int64": np.dtype("<i8"), "float32": np.dtype("<f4"), "int32": np.dtype("<i4"),
             "bool": np.dtype(np.bool_)}


def _read(dram: np.ndarray, t: TensorInfo) -> np.ndarray:
    """One sample of tensor `t` from DRAM, in ONNX order (shape `t.shape`)."""
    return _from_dram(dram[t.addr:t.addr + t.nbytes].view(_NP_DTYPE[t.dtype]), t)


def _from_dram(raw: np.ndarray, t: TensorInfo) -> np.ndarray:
    if t.layout == "nhwc":
        return np.moveaxis(raw.reshape(t.shape[0], *t.shape[2:], t.shape[1]), -1, 1)
    return raw.reshape(t.shape)


def initial_dram(prog: Program) -> np.ndarray:
    dram = np.zeros(prog.dram_size, dtype=np.uint8)
    for addr, payload in prog.data:
        dram[addr:addr + len(payload)] = np.frombuffer(payload, dtype=np.uint8)
    return dram


def check_inputs(prog: Program, inputs: dict[str, np.ndarray], source: str = "input") -> int:
    """Validate names and shapes; return the batch size."""
    batch = None
    for t in prog.inputs():
        if t.name not in inputs:
            raise InputError(f"{source}: missing input {t.name!r} (expected shape {t.shape})")
        x = np.asarray(inputs[t.name])
        n0 = t.shape[0]
        if x.ndim != len(t.shape) or tuple(x.shape[1:]) != tuple(t.shape[1:]) or x.shape[0] % n0 or not x.shape[0]:
            want = f"(N,) + {t.shape[1:]}" if n0 == 1 else f"(N·{n0},) + {t.shape[1:]} (N samples of {t.shape})"
            raise InputError(f"{source}: input {t.name!r} has shape {x.shape}, expected {want}")
        if batch is not None and x.shape[0] // n0 != batch:
            raise InputError(f"{source}: inputs disagree on the batch size")
        batch = x.shape[0] // n0
    extra = set(inputs) - {t.name for t in prog.inputs()}
    if extra:
        raise InputError(f"{source}: unknown input {sorted(extra)[0]!r}")
    return batch or 1


def random_inputs(prog: Program, seed: int = 0) -> dict[str, np.ndarray]:
    """A seeded random input per tensor, spread over its quantized range."""
    rng = np.random.default_rng(seed)
    out = {}
    for t in prog.inputs():
        q = rng.integers(-128, 128, size=t.shape)
        out[t.name] = ((q - t.zp) * t.scale).astype(np.float32)
    return out


# elements the C core may process in one run before it stops the program (npuc sim --max-work):
# VGG-19 needs about 2^34.2 MACs, so real models stay far below; a runaway hand-written
# program (zero strides, 2^31 extents) ends with an error after some seconds instead of never
DEFAULT_MAX_WORK = 1 << 37


def run_program(prog: Program, inputs: dict[str, np.ndarray] | None = None, *, quantized: bool = False,
                trace: bool = False, source: str = "input", program_name: str = "<program>",
                max_work: int | None = DEFAULT_MAX_WORK) -> RunResult:
    """Simulate `prog` on float inputs (or int8 ones with `quantized=True`), batch first."""
    inputs = random_inputs(prog) if inputs is None else inputs
    batch = check_inputs(prog, inputs, source)
    hw = HwConfig.from_flat(prog.hw)
    words = encode(prog.insns)
    kernels = host_kernels(prog, program_name)
    base = initial_dram(prog)
    raw: dict[str, list[np.ndarray]] = {t.name: [] for t in prog.outputs()}
    stats: list[SimStats] = []
    hosts = [HostStats(h.name, h.op, 0, 0.0, 0) for h in prog.hosts]
    first = None
    for b in range(batch):
        dram = base.copy()
        for t in prog.inputs():
            x = np.asarray(inputs[t.name])[b * t.shape[0]:(b + 1) * t.shape[0]]
            q = x.astype(np.int8) if quantized else quantize(x, t)
            payload = np.frombuffer(_to_dram(q, t), dtype=np.uint8)
            dram[t.addr:t.addr + payload.size] = payload
        res = _run_segments(prog, words, kernels, dram, hw, trace or b == 0, hosts, program_name, max_work)
        stats.append(res.stats)
        if b == 0:
            first = res
        for t in prog.outputs():
            raw[t.name].append(_read(res.dram, t))
    raw_arrays = {k: np.concatenate(v) for k, v in raw.items()}
    outs = {t.name: dequantize(raw_arrays[t.name], t) if t.dtype == "int8" else raw_arrays[t.name]
            for t in prog.outputs()}
    assert first is not None
    layers = layer_stats(prog, first.insn_start, first.insn_end)
    return RunResult(outs, raw_arrays, stats, layers, first.insn_start, first.insn_end, hosts)


def host_kernels(prog: Program, program_name: str = "<program>") -> list[host.Kernel]:
    """Each host op's runnable model, checked against its tensors in the program."""
    ats = [h.at for h in prog.hosts]
    if ats != sorted(ats) or any(not 0 <= a <= len(prog.insns) for a in ats):
        raise host.HostError(f"{program_name}: host points {ats} are not in order within the "
                             f"{len(prog.insns)} instructions")
    out = []
    for hid, h in enumerate(prog.hosts):
        where = f"{program_name}: host op {hid} ('{h.name}', {h.op})"
        try:
            k = host.kernel(h.model)
        except host.HostError as e:
            raise host.HostError(f"{where}: {e}") from None
        if k.op != h.op:
            raise host.HostError(f"{where}: its model holds a {k.op} node")
        ins, outs = h.inputs(), h.outputs()
        if len(ins) != len(k.inputs) or len(outs) != 1:
            raise host.HostError(f"{where}: {len(ins)} inputs and {len(outs)} outputs in the program, "
                                 f"{len(k.inputs)} and 1 in its model")
        for t, spec in zip([*ins, *outs], [*k.inputs, k.output]):
            want = ("int8", "float32") if spec.dtype == "float32" else (spec.dtype,)  # floats travel quantized
            if t.dtype not in want or int(np.prod(t.shape)) != int(np.prod(spec.shape)):
                raise host.HostError(f"{where}: tensor {t.name!r} is {t.dtype} {t.shape}, its model wants "
                                     f"{spec.dtype} {spec.shape}")
        out.append(k)
    return out


def _run_host(h: HostOp, k: host.Kernel, dram: np.ndarray) -> None:
    """One host op on the DRAM image: read and dequantize, run in float, quantize and write back."""
    arrays = []
    for t in h.inputs():
        q = _read(dram, t)
        arrays.append(host.dequantize(q, t.scale, t.zp) if t.dtype == "int8" else q)
    y = k.run(arrays)
    (t,) = h.outputs()
    if t.dtype == "int8":
        y = host.quantize(y, t.scale, t.zp, f"host op '{h.name}' ({h.op})")
    payload = np.frombuffer(_to_dram(y.reshape(t.shape), t), dtype=np.uint8)
    dram[t.addr:t.addr + payload.size] = payload


def _run_segments(prog: Program, words: np.ndarray, kernels: list[host.Kernel], dram: np.ndarray,
                  hw: HwConfig, trace: bool, hosts: list[HostStats], program_name: str,
                   max_work: int | None = None) -> SimResult:
    """One sample: the C core on each segment between host points, the host ops in between.

    Returns the result of the whole: counters summed, per-instruction times
    offset by the cycles of the segments before (the NPU restarts at 0)."""
    n = len(prog.insns)
    cuts = [0, *(h.at for h in prog.hosts), n]
    cycles = 0
    total = ZERO_STATS
    start = np.zeros(n, dtype=np.uint64) if trace else None
    end = np.zeros(n, dtype=np.uint64) if trace else None
    for seg, (a, b) in enumerate(pairwise(cuts)):
        if seg > 0:  # the host op at cut `a`
            h, st = prog.hosts[seg - 1], hosts[seg - 1]
            t0 = time.perf_counter()
            _run_host(h, kernels[seg - 1], dram)
            st.wall_ms += 1e3 * (time.perf_counter() - t0)
            st.runs += 1
            if st.runs == 1:
                st.cycle = cycles
        if a == b:
            continue
        try:
            res = run_words(words[a * WORDS_PER_INSN:b * WORDS_PER_INSN], dram, hw, trace=trace,
                            max_work=max_work)
        except SimError as e:
            raise _located(e, prog, program_name, a) from None
        dram = res.dram
        if start is not None and end is not None and res.insn_start is not None and res.insn_end is not None:
            start[a:b] = res.insn_start + np.uint64(cycles)
            end[a:b] = res.insn_end + np.uint64(cycles)
        cycles += res.stats.cycles
        total = total + res.stats  # a host point is a full barrier: cycles add
    return SimResult(total, dram, start, end)


def _located(e: SimError, prog: Program, program_name: str, offset: int = 0) -> SimError:
    """Name the assembly line of the failing instruction, when the program came from text.

    `offset` is the index of the segment's first instruction: the C core counts from its segment."""
    index = e.insn + offset if e.insn >= 0 else e.insn
    message = str(e)
    if e.insn >= 0 and message.startswith(f"insn {e.insn}:"):
        message = f"insn {index}:" + message[len(f"insn {e.insn}:"):]
    line = prog.insns[index].line if 0 <= index < len(prog.insns) else 0
    where = f"{program_name}:{line}: " if line else f"{program_name}: "
    return SimError(index, where + message)


def _dram_bytes(op: str, f: dict[str, int]) -> int:
    if op in ("ld", "st"):
        return f["n0"] * f["n1"] * f["n2"]
    if op == "lda":
        return 4 * f["n0"] * f["n1"]
    return 0


def layer_stats(prog: Program, start: np.ndarray | None, end: np.ndarray | None) -> list[LayerStats]:
    """Per-layer cycles, per-unit busy cycles, MACs and DRAM traffic."""
    if start is None or end is None or not prog.insns:
        return []
    # a hand-written program may have no .layer table: its instructions are all in layer 0
    names = prog.layers or ["layer0"]
    names = names + [f"layer{i}" for i in range(len(names), 1 + max(i.layer for i in prog.insns))]
    out = [LayerStats(name, 0, {u: 0 for u in UNITS}, 0, 0, 0) for name in names]
    first = [None] * len(out)
    last = [0] * len(out)
    for i, insn in enumerate(prog.insns):
        ls = out[insn.layer]
        s, e = int(start[i]), int(end[i])
        first[insn.layer] = s if first[insn.layer] is None else min(first[insn.layer], s)
        last[insn.layer] = max(last[insn.layer], e)
        ls.busy[UNITS[BY_MNEMONIC[insn.op].unit]] += e - s
        f = insn.as_dict()
        if insn.op == "gemm":
            ls.macs += f["m0"] * f["m1"] * f["k"] * f["n"]
        ls.dram_bytes += _dram_bytes(insn.op, f)
        ls.insns += 1
    for ls, s, e in zip(out, first, last):
        ls.cycles = e - (s or 0)
    return out


def write_trace(prog: Program, result: RunResult, path: Path) -> None:
    """A Chrome / Perfetto trace: one track per unit, one slice per instruction, and a `host` track
    with one zero-length slice per host op (it costs no NPU cycles; its wall-clock time is an arg)."""
    if result.insn_start is None or result.insn_end is None:
        raise ValueError("the run recorded no trace")
    mhz = float(prog.hw.get("clock_mhz", 1000.0))
    host_tid = len(Unit)
    events: list[dict] = [
        {"name": "thread_name", "ph": "M", "pid": 0, "tid": int(u), "args": {"name": u.name.lower()}}
        for u in Unit
    ]
    if result.hosts:
        events.append({"name": "thread_name", "ph": "M", "pid": 0, "tid": host_tid, "args": {"name": "host"}})
    for hs in result.hosts:
        events.append({"name": f"{hs.op} (host)", "ph": "X", "pid": 0, "tid": host_tid, "ts": hs.cycle / mhz,
                       "dur": 0, "args": {"node": hs.name, "wall_ms": round(hs.wall_ms / max(hs.runs, 1), 3)}})
    for i, insn in enumerate(prog.insns):
        s, e = int(result.insn_start[i]), int(result.insn_end[i])
        events.append({
            "name": insn.op, "ph": "X", "pid": 0, "tid": int(BY_MNEMONIC[insn.op].unit),
            "ts": s / mhz, "dur": (e - s) / mhz,
            "args": {"insn": i, "layer": prog.layers[insn.layer] if prog.layers else "", "cycles": e - s},
        })
    atomic_write_text(path, json.dumps({"traceEvents": events, "displayTimeUnit": "ns"}))
