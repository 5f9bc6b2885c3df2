"""Run a whole program: place inputs in DRAM, run the C core, read outputs, report.

The program is compiled for batch 1; a batched input runs the program once per
sample (each run is independent and deterministic, so the cycles of a batch
are the per-sample cycles added up). A batch is the samples stacked along
axis 0: an input of shape (n0, ...) takes (B·n0, ...) for B samples (n0 = 1
but for inputs whose batch is another axis, MultiheadAttention's (L, 1, E)).

DRAM layouts: "nhwc" is channels last (axis 1 moved to the end: NHWC for a
(1, C, H, W) map, (L, C) for a (1, C, L) sequence); "flat" is ONNX order.

Before anything runs, the program's outputs must be written: every byte of
every output tensor is stored by some `st` (or comes from a host op or the
initial data; `isa/coverage.py`, exact because a program is straight-line).
An output left (partly) unwritten fails the run naming the tensor: a
truncated program or a compiler bug, never zeros that look like a result.
An input the program never reads is a warning (`RunResult.warnings`).

Host fallback: the program's host points (`hosts`) cut the instruction
stream into segments. Each segment is one run of the C core on the same
DRAM image (the NPU drains at a host point, and no token crosses one);
between two segments the host op reads its inputs from DRAM, dequantizes
them, runs in float (`npuc/host.py`, the same code as the numpy reference;
imported only for a program with host ops, as it loads onnx) and writes its
quantized output back. A host op costs no NPU cycles; its wall-clock time is
reported on its own. Cycles, counters and the per-instruction times of the
segments add up as if one program had run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..hw import HwConfig
from ..isa.coverage import covered, element_index, touches
from ..isa.image import ProgramImage
from ..isa.program import DTYPE_BYTES, HostOp, Program
from ..isa.stats import UNITS
from ..isa.stats import ZERO as ZERO_STATS
from ..isa.table import WORDS_PER_INSN
from .core import SimError, SimResult, SimStats, replay_words, run_words
from .inputs import InputError, check_inputs, dequantize, quantize, random_inputs, read, to_dram
from .layers import LayerStats, layer_count, layer_stats
from .layers import write_trace as _write_trace

if TYPE_CHECKING:
    from .. import host

__all__ = ["DEFAULT_MAX_WORK", "UNITS", "HostStats", "InputError", "LayerStats", "RunResult", "check_inputs",
           "check_outputs_written", "dequantize", "image_of", "initial_dram", "layer_stats", "quantize",
           "random_inputs", "run_program", "write_trace"]


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
    warnings: list[str] = field(default_factory=list)  # e.g. an input the program never reads


def image_of(prog: Program | ProgramImage) -> ProgramImage:
    """The binary form the driver runs (a Program is encoded; an image, e.g. from the cache, is as is)."""
    return prog if isinstance(prog, ProgramImage) else ProgramImage.from_program(prog)


def initial_dram(prog: Program | ProgramImage) -> np.ndarray:
    image = image_of(prog)
    dram = np.zeros(image.dram_size, dtype=np.uint8)
    for addr, payload in image.data:
        dram[addr:addr + len(payload)] = np.frombuffer(payload, dtype=np.uint8)
    return dram


def check_outputs_written(prog: Program | ProgramImage, program_name: str = "<program>") -> list[str]:
    """Raise SimError naming the first output tensor some byte of which the program never writes;
    return a warning for each input tensor it never reads."""
    image = image_of(prog)
    for t in image.outputs():
        missing = ~covered(image, t.addr, t.addr + t.nbytes, writes=True)
        if missing.any():
            first = int(np.flatnonzero(missing)[0])
            idx = element_index(t.shape, t.layout, first // DTYPE_BYTES[t.dtype])
            how = "never" if missing.all() else "partly"
            raise SimError(-1, f"{program_name}: output {t.name!r} is {how} written: {int(missing.sum())} of its "
                               f"{t.nbytes} bytes are stored by no instruction (the first at index {idx}); "
                               "the program is incomplete (truncated?) or miscompiled")
    return [f"{program_name}: input {t.name!r} is never read by the program"
            for t in image.inputs() if t.nbytes and not touches(image, t.addr, t.addr + t.nbytes, writes=False)]


# elements the C core may process in one run before it stops the program (npuc sim --max-work):
# VGG-19 needs about 2^34.2 MACs, so real models stay far below; a runaway hand-written
# program (zero strides, 2^31 extents) ends with an error after some seconds instead of never
DEFAULT_MAX_WORK = 1 << 37


def run_program(prog: Program | ProgramImage, inputs: dict[str, np.ndarray] | None = None, *,
                quantized: bool = False, trace: bool = False, source: str = "input",
                program_name: str = "<program>", max_work: int | None = DEFAULT_MAX_WORK,
                threads: int | None = None) -> RunResult:
    """Simulate `prog` on float inputs (or int8 ones with `quantized=True`), batch first.

    The first sample runs in full; the others run the data path alone in its order, on up to
    `threads` threads (default: the CPUs), with its cycles (`sim/api.py`). `trace` is kept for
    callers: the per-instruction times of the first sample are always returned.

    `prog` is a Program or, without encoding it again, its ProgramImage (`isa.load.load_program`).
    Raises SimError for an output the program never writes (before running) or a fault while
    running, InputError for inputs that do not fit, HostError for a bad host op."""
    from .api import Simulator  # the class behind it (api imports this module)

    sim = Simulator(prog, name=program_name, threads=threads, max_work=max_work)
    return sim.run(inputs, quantized=quantized, source=source)


def host_kernels(prog: Program | ProgramImage, program_name: str = "<program>") -> list[host.Kernel]:
    """Each host op's runnable model, checked against its tensors in the program. Imports
    `npuc.host` (and with it onnx) only when the program has host ops."""
    image = image_of(prog)
    if not image.hosts:
        return []
    from .. import host

    n = image.n_insns
    ats = [h.at for h in image.hosts]
    if ats != sorted(ats) or any(not 0 <= a <= n for a in ats):
        raise host.HostError(f"{program_name}: host points {ats} are not in order within the {n} instructions")
    out = []
    for hid, h in enumerate(image.hosts):
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
    from .. import host

    arrays = []
    for t in h.inputs():
        q = read(dram, t)
        arrays.append(host.dequantize(q, t.scale, t.zp) if t.dtype == "int8" else q)
    y = k.run(arrays)
    (t,) = h.outputs()
    if t.dtype == "int8":
        y = host.quantize(y, t.scale, t.zp, f"host op '{h.name}' ({h.op})")
    payload = to_dram(y.reshape(t.shape), t)
    dram[t.addr:t.addr + payload.size] = payload


def _run_segments(image: ProgramImage, kernels: list[host.Kernel], dram: np.ndarray, hw: HwConfig, trace: bool,
                  hosts: list[HostStats], program_name: str, max_work: int | None = None,
                  orders: list[np.ndarray] | None = None) -> SimResult:
    """One sample: the C core on each segment between host points, the host ops in between.

    Returns the result of the whole: counters summed, per-instruction times
    offset by the cycles of the segments before (the NPU restarts at 0).
    `orders`, when given, receives each segment's order of execution (what
    `_replay_segments` runs other samples in)."""
    n = image.n_insns
    words = image.words
    cuts = [0, *(h.at for h in image.hosts), n]
    cycles = 0
    total = ZERO_STATS
    start = np.zeros(n, dtype=np.uint64) if trace else None
    end = np.zeros(n, dtype=np.uint64) if trace else None
    n_layers = layer_count(image) if trace else 0
    per_layer = [ZERO_STATS] * n_layers
    sat = np.zeros(n, dtype=np.uint64) if trace else None
    for seg, (a, b) in enumerate(pairwise(cuts)):
        if seg > 0:  # the host op at cut `a`
            h, st = image.hosts[seg - 1], hosts[seg - 1]
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
                            max_work=max_work, n_layers=n_layers, order=orders is not None)
        except SimError as e:
            raise _located(e, image, program_name, a) from None
        dram = res.dram
        if orders is not None and res.order is not None:
            orders.append(res.order)
        if start is not None and end is not None and res.insn_start is not None and res.insn_end is not None:
            start[a:b] = res.insn_start + np.uint64(cycles)
            end[a:b] = res.insn_end + np.uint64(cycles)
        if sat is not None and res.insn_sat is not None:
            sat[a:b] = res.insn_sat
        cycles += res.stats.cycles
        total = total + res.stats  # a host point is a full barrier: cycles add
        if res.layers is not None:
            per_layer = [x + y for x, y in zip(per_layer, res.layers)]
    return SimResult(total, dram, start, end, layers=per_layer if trace else None, insn_sat=sat)


def _replay_segments(image: ProgramImage, kernels: list[host.Kernel], dram: np.ndarray, hw: HwConfig,
                     orders: list[np.ndarray], hosts: list[HostStats] | None, program_name: str,
                     max_work: int | None = None) -> SimStats:
    """One more sample, in place on `dram`: each segment's data path in the order a timed run of
    the program took (`orders`, one per non-empty segment), the host ops in between (their wall
    time added to `hosts` unless None). Returns the data counters summed (no cycles)."""
    n = image.n_insns
    cuts = [0, *(h.at for h in image.hosts), n]
    total = ZERO_STATS
    runs = iter(orders)
    for seg, (a, b) in enumerate(pairwise(cuts)):
        if seg > 0:
            t0 = time.perf_counter()
            _run_host(image.hosts[seg - 1], kernels[seg - 1], dram)
            if hosts is not None:
                hosts[seg - 1].wall_ms += 1e3 * (time.perf_counter() - t0)
                hosts[seg - 1].runs += 1
        if a == b:
            continue
        try:
            total = total + replay_words(image.words[a * WORDS_PER_INSN:b * WORDS_PER_INSN], next(runs), dram, hw,
                                         max_work=max_work)
        except SimError as e:
            raise _located(e, image, program_name, a) from None
    return total


def _located(e: SimError, image: ProgramImage, program_name: str, offset: int = 0) -> SimError:
    """Name the assembly line of the failing instruction, when the program came from text.

    `offset` is the index of the segment's first instruction: the C core counts from its segment."""
    index = e.insn + offset if e.insn >= 0 else e.insn
    message = str(e)
    if e.insn >= 0 and message.startswith(f"insn {e.insn}:"):
        message = f"insn {index}:" + message[len(f"insn {e.insn}:"):]
    line = int(image.lines[index]) if 0 <= index < image.n_insns else 0
    where = f"{program_name}:{line}: " if line else f"{program_name}: "
    return SimError(index, where + message)


def write_trace(prog: Program | ProgramImage, result: RunResult, path: Path) -> None:
    """A Chrome / Perfetto trace of `result` (`sim/layers.py`)."""
    if result.insn_start is None or result.insn_end is None:
        raise ValueError("the run recorded no trace")
    _write_trace(image_of(prog), result.insn_start, result.insn_end, result.hosts, path)

