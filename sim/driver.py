"""Run a whole program: place inputs in DRAM, run the C core, read outputs, report.

The program is compiled for batch 1; a batched input runs the program once per
sample (each run is independent and deterministic, so the cycles of a batch
are the per-sample cycles added up).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..fsutil import atomic_write_text
from ..hw import HwConfig
from ..isa.encoding import encode
from ..isa.program import Program, TensorInfo
from ..isa.table import BY_MNEMONIC, Unit
from .core import SimError, SimStats, run_words

UNITS = tuple(u.name.lower() for u in Unit)


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
class RunResult:
    outputs: dict[str, np.ndarray]  # dequantized float32, keyed by ONNX output name
    raw: dict[str, np.ndarray]  # the int8 values, same keys
    stats: list[SimStats]  # one per sample
    layers: list[LayerStats] = field(default_factory=list)  # of the first sample
    insn_start: np.ndarray | None = None
    insn_end: np.ndarray | None = None


def quantize(x: np.ndarray, t: TensorInfo) -> np.ndarray:
    """float -> int8 as QuantizeLinear does: round half to even, then saturate."""
    q = np.rint(np.asarray(x, dtype=np.float64) / t.scale) + t.zp
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, t: TensorInfo) -> np.ndarray:
    return ((q.astype(np.float32) - np.float32(t.zp)) * np.float32(t.scale)).astype(np.float32)


def _to_dram(q: np.ndarray, t: TensorInfo) -> bytes:
    """One sample (no batch axis) in the program's DRAM layout."""
    if t.layout == "nhwc":
        q = q.transpose(1, 2, 0)
    return np.ascontiguousarray(q).tobytes()


def _from_dram(raw: np.ndarray, t: TensorInfo) -> np.ndarray:
    shape = t.shape[1:]
    if t.layout == "nhwc":
        c, h, w = shape
        return raw.reshape(h, w, c).transpose(2, 0, 1)
    return raw.reshape(shape)


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
        if x.ndim != len(t.shape) or tuple(x.shape[1:]) != tuple(t.shape[1:]):
            raise InputError(f"{source}: input {t.name!r} has shape {x.shape}, expected (N,) + {t.shape[1:]}")
        if batch is not None and x.shape[0] != batch:
            raise InputError(f"{source}: inputs disagree on the batch size")
        batch = x.shape[0]
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


def run_program(prog: Program, inputs: dict[str, np.ndarray] | None = None, *, quantized: bool = False,
                trace: bool = False, source: str = "input", program_name: str = "<program>") -> RunResult:
    """Simulate `prog` on float inputs (or int8 ones with `quantized=True`), batch first."""
    inputs = random_inputs(prog) if inputs is None else inputs
    batch = check_inputs(prog, inputs, source)
    hw = HwConfig.from_flat(prog.hw)
    words = encode(prog.insns)
    base = initial_dram(prog)
    raw: dict[str, list[np.ndarray]] = {t.name: [] for t in prog.outputs()}
    stats: list[SimStats] = []
    first = None
    for b in range(batch):
        dram = base.copy()
        for t in prog.inputs():
            x = np.asarray(inputs[t.name])[b]
            q = x.astype(np.int8) if quantized else quantize(x, t)
            payload = np.frombuffer(_to_dram(q, t), dtype=np.uint8)
            dram[t.addr:t.addr + payload.size] = payload
        try:
            res = run_words(words, dram, hw, trace=trace or b == 0)
        except SimError as e:
            raise _located(e, prog, program_name) from None
        stats.append(res.stats)
        if b == 0:
            first = res
        for t in prog.outputs():
            bytes_ = res.dram[t.addr:t.addr + t.nbytes].view(np.int8)
            raw[t.name].append(_from_dram(bytes_, t))
    raw_arrays = {k: np.stack(v) for k, v in raw.items()}
    outs = {t.name: dequantize(raw_arrays[t.name], t) for t in prog.outputs()}
    assert first is not None
    layers = layer_stats(prog, first.insn_start, first.insn_end)
    return RunResult(outs, raw_arrays, stats, layers, first.insn_start, first.insn_end)


def _located(e: SimError, prog: Program, program_name: str) -> SimError:
    """Name the assembly line of the failing instruction, when the program came from text."""
    line = prog.insns[e.insn].line if 0 <= e.insn < len(prog.insns) else 0
    where = f"{program_name}:{line}: " if line else f"{program_name}: "
    return SimError(e.insn, where + str(e))


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
    out = [LayerStats(name, 0, {u: 0 for u in UNITS}, 0, 0, 0) for name in prog.layers]
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
    """A Chrome / Perfetto trace: one track per unit, one slice per instruction."""
    if result.insn_start is None or result.insn_end is None:
        raise ValueError("the run recorded no trace")
    mhz = float(prog.hw.get("clock_mhz", 1000.0))
    events: list[dict] = [
        {"name": "thread_name", "ph": "M", "pid": 0, "tid": int(u), "args": {"name": u.name.lower()}}
        for u in Unit
    ]
    for i, insn in enumerate(prog.insns):
        s, e = int(result.insn_start[i]), int(result.insn_end[i])
        events.append({
            "name": insn.op, "ph": "X", "pid": 0, "tid": int(BY_MNEMONIC[insn.op].unit),
            "ts": s / mhz, "dur": (e - s) / mhz,
            "args": {"insn": i, "layer": prog.layers[insn.layer] if prog.layers else "", "cycles": e - s},
        })
    atomic_write_text(path, json.dumps({"traceEvents": events, "displayTimeUnit": "ns"}))
