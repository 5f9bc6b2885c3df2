"""Load a program once, run it on many inputs, in process: for loops, sweeps and notebooks.

    import npuc.sim
    sim = npuc.sim.load("prog.s")                 # the binary cache when intact (isa/load.py)
    res = sim.run({"x": x})                       # x: float32, batch first (B samples stacked on axis 0)
    res.outputs["logits"], res.stats[0].cycles    # as `npuc sim` computes them
    res = sim.run(xs)                             # one array: the program's only input

The first sample a Simulator runs is simulated in full (units, tokens,
cycles, per-layer statistics); it records the order its instructions ran
in. Every later sample, in that call or any later one, runs the data path
alone in that order (`npu_replay`): what an instruction computes does not
depend on when it runs, and cycles do not depend on the data, so each
sample's outputs are those of a full run and its statistics are the first
sample's (the data counters of every replay are checked against them).
Samples after the first run on `threads` threads (the C core releases the
GIL and keeps no global state); a program with host ops runs one sample at a
time. Each thread reuses one DRAM image, so a batch holds `threads` images,
not one per sample.
"""

from __future__ import annotations

import os
import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..hw import HwConfig
from ..isa.image import ProgramImage
from ..isa.program import Program
from .core import SimError, SimStats
from .driver import (
    DEFAULT_MAX_WORK,
    HostStats,
    LayerStats,
    RunResult,
    _replay_segments,
    _run_segments,
    check_inputs,
    check_outputs_written,
    dequantize,
    host_kernels,
    image_of,
    initial_dram,
    layer_stats,
    quantize,
    random_inputs,
    read,
    to_dram,
)

__all__ = ["Simulator", "load"]

# the counters a replay computes (everything but times): they must equal the timed run's
_DATA_COUNTERS = ("insns", "macs", "dram_rd", "dram_wr", "spad_rd", "spad_wr", "acc_rd", "acc_wr", "vec_ops")


@dataclass(frozen=True)
class _Timed:
    """What the first, fully simulated sample leaves for every later one."""

    orders: list[np.ndarray]  # each segment's order of execution
    stats: SimStats
    insn_start: np.ndarray | None
    insn_end: np.ndarray | None
    host_cycles: list[int]  # the NPU cycle each host op ran at: the cycles of the segments before it
    layers: list[LayerStats]  # per-layer statistics (of the timed sample: the same for every sample)


class Simulator:
    """A compiled program ready to run: checked, its host ops loaded, its initial DRAM built, once.

    `threads` (default: the machine's CPUs) bounds the samples run at once;
    `max_work` is `npuc sim --max-work` (None: no limit)."""

    def __init__(self, prog: Program | ProgramImage, *, name: str = "<program>", threads: int | None = None,
                 max_work: int | None = DEFAULT_MAX_WORK) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.image = image_of(prog)
        self.name = name
        self.hw = HwConfig.from_flat(self.image.hw)
        self.threads = threads or os.cpu_count() or 1
        self.max_work = max_work
        self.warnings = check_outputs_written(self.image, name)
        self._kernels = host_kernels(self.image, name)
        self._base = initial_dram(self.image)
        self._timed: _Timed | None = None

    def random_inputs(self, seed: int = 0) -> dict[str, np.ndarray]:
        """One sample of random float inputs (what `npuc sim` runs without --input)."""
        return random_inputs(self.image, seed=seed)

    def run(self, inputs: dict[str, np.ndarray] | np.ndarray | None = None, *, quantized: bool = False,
            source: str = "input") -> RunResult:
        """Run every sample of `inputs` (float, or int8 with `quantized=True`; batch first; one array for a
        program with one input; None: one random sample). The result's per-instruction times and layers are
        the first sample's (for `write_trace`). Raises InputError for inputs that do not fit, SimError for a
        fault, HostError for a bad host op."""
        feeds = self._feeds(inputs)
        batch = check_inputs(self.image, feeds, source, quantized)
        hosts = [HostStats(h.name, h.op, 0, 0.0, 0) for h in self.image.hosts]
        raw: list[dict[str, np.ndarray]] = [{} for _ in range(batch)]
        rest = range(batch)
        if self._timed is None:  # the first sample ever: simulated in full, its order kept
            orders: list[np.ndarray] = []
            res = _run_segments(self.image, self._kernels, self._sample_dram(feeds, 0, quantized), self.hw, True,
                                hosts, self.name, self.max_work, orders)
            self._timed = _Timed(orders, res.stats, res.insn_start, res.insn_end, [st.cycle for st in hosts],
                                 layer_stats(self.image, res.insn_start, res.insn_end, res.layers))
            raw[0] = self._read(res.dram)
            rest = range(1, batch)
        timed = self._timed
        workers = 1 if self.image.hosts else max(1, min(self.threads, len(rest)))  # host kernels: one thread
        pool: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()
        for _ in range(workers):
            pool.put(np.empty_like(self._base))

        def one(b: int) -> dict[str, np.ndarray]:
            buf = pool.get()  # one DRAM image per thread, reused: no new pages per sample
            try:
                self._sample_dram(feeds, b, quantized, buf)
                return self._replay(buf, hosts)
            finally:
                pool.put(buf)

        if workers == 1:
            for b in rest:
                raw[b] = one(b)
        else:
            with ThreadPoolExecutor(max_workers=workers) as ex:
                for b, out in zip(rest, ex.map(one, rest)):
                    raw[b] = out
        for st, cycle in zip(hosts, timed.host_cycles):
            st.cycle = cycle
        raw_arrays = {t.name: np.concatenate([r[t.name] for r in raw]) for t in self.image.outputs()}
        outs = {t.name: dequantize(raw_arrays[t.name], t) if t.dtype == "int8" else raw_arrays[t.name]
                for t in self.image.outputs()}
        return RunResult(outs, raw_arrays, [timed.stats] * batch, list(timed.layers), timed.insn_start,
                         timed.insn_end, hosts, list(self.warnings))

    def _feeds(self, inputs: dict[str, np.ndarray] | np.ndarray | None) -> dict[str, np.ndarray]:
        if inputs is None:
            return self.random_inputs()
        if isinstance(inputs, dict):
            return inputs
        names = [t.name for t in self.image.inputs()]
        if len(names) != 1:
            raise ValueError(f"{self.name}: the program has inputs {names}: give a dict of them")
        return {names[0]: inputs}

    def _sample_dram(self, feeds: dict[str, np.ndarray], b: int, quantized: bool,
                     out: np.ndarray | None = None) -> np.ndarray:
        """The DRAM image of sample b (in `out` when given): the program's initial data with the sample's
        inputs in place."""
        dram = self._base.copy() if out is None else out
        if out is not None:
            np.copyto(out, self._base)
        for t in self.image.inputs():
            x = np.asarray(feeds[t.name])[b * t.shape[0]:(b + 1) * t.shape[0]]
            q = x.astype(np.int8) if quantized else quantize(x, t)
            payload = to_dram(q, t)
            dram[t.addr:t.addr + payload.size] = payload
        return dram

    def _read(self, dram: np.ndarray) -> dict[str, np.ndarray]:
        """The outputs of one sample, copied out of `dram` (a thread's buffer is reused)."""
        return {t.name: read(dram, t).copy() for t in self.image.outputs()}

    def _replay(self, dram: np.ndarray, hosts: list[HostStats] | None) -> dict[str, np.ndarray]:
        """One more sample's data path, in place on `dram`; its data counters checked."""
        assert self._timed is not None
        got = _replay_segments(self.image, self._kernels, dram, self.hw, self._timed.orders, hosts, self.name,
                               self.max_work)
        want = self._timed.stats
        bad = [c for c in _DATA_COUNTERS if getattr(got, c) != getattr(want, c)]
        if bad:  # the C core broke its own promise: a bug, never the user's
            raise SimError(-1, f"{self.name}: replaying a sample counted other {', '.join(bad)} than its timed run")
        return self._read(dram)


def load(path: str | os.PathLike[str], *, cache: bool = True, threads: int | None = None,
         max_work: int | None = DEFAULT_MAX_WORK) -> Simulator:
    """The program at `path` (prog.s; its binary cache when intact), ready to run many inputs."""
    from ..isa.load import load_program

    return Simulator(load_program(path, cache=cache), name=str(Path(path)), threads=threads, max_work=max_work)
