"""Per-layer statistics and the Chrome trace of a run, computed from the encoded instructions.

Both read the opcode, layer and fields straight from the instruction words
(whole numpy columns): a ResNet-18 program has 55,000 instructions, and an
object per instruction cost more than the simulation it reports on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..fsutil import atomic_write_text
from ..hw import HwConfig
from ..isa.image import ProgramImage
from ..isa.stats import UNITS, RunStats
from ..isa.table import BY_MNEMONIC, BY_OPCODE, HEADER_WORDS, Unit


@dataclass
class LayerStats:
    """One layer of a run (the first sample). `cycles` is the layer's share of the run: how far its
    instructions moved the run's completion frontier (layers taken in program order), so the layers'
    cycles add up to the run's; `span` is from its first start to its last end, which overlaps its
    neighbours' where their instructions run in parallel. Stalls are the ISA's counters per layer:
    token and DRAM-channel waits per unit, and the gemm cycles that stream no row (`gemm_fill`)."""

    name: str
    cycles: int
    busy: dict[str, int]
    macs: int  # issued to the array (M*k*n of its gemms, zero weight blocks included) and the dwc engine
    dram_bytes: int
    insns: int
    span: int = 0
    useful_macs: int = 0  # the model's (the program's layer table, LayerWork); 0: no roofline bound
    bound_bytes: int = 0  # input + output + weight bytes, each once
    token_stall: dict[str, int] = field(default_factory=lambda: dict.fromkeys(UNITS, 0))
    dram_stall: dict[str, int] = field(default_factory=lambda: dict.fromkeys(UNITS, 0))
    gemm_fill: int = 0
    events: RunStats | None = None  # the layer's share of the run's counters (the C core's count)

    @property
    def acc_sat(self) -> int:
        """gemm outputs of the layer that left the acc_bits range (ISA.md, gemm): saturated, or wrapped
        at 32 bits; the C core's per-layer count (0 without `events`)."""
        return self.events.acc_sat if self.events is not None else 0

    def utilization(self, hw: HwConfig) -> float:
        """Useful MACs over what the array could do in the layer's cycles."""
        return self.useful_macs / (self.cycles * hw.rows * hw.cols) if self.cycles else 0.0

    def bound(self, hw: HwConfig) -> float | None:
        """The roofline bound in cycles, max(useful MACs / (R*C), bytes / DRAM bandwidth); None for a
        layer with no useful MACs (not a Conv, ConvTranspose or Gemm)."""
        if not self.useful_macs:
            return None
        return max(self.useful_macs / (hw.rows * hw.cols), self.bound_bytes / hw.dram_bw)


_UNIT_OF = np.zeros(256, dtype=np.int64)
_NAME_OF = [""] * 256
for _spec in BY_OPCODE.values():
    _UNIT_OF[_spec.opcode] = int(_spec.unit)
    _NAME_OF[_spec.opcode] = _spec.mnemonic

# what each layer's MACs and DRAM bytes sum: per mnemonic, the fields whose product counts
_MAC_FIELDS = {"gemm": ("m0", "m1", "k", "n"), "dwc": ("m0", "m1", "kh", "kw", "c")}
_DRAM_FIELDS = {"ld": ("n0", "n1", "n2"), "st": ("n0", "n1", "n2"), "lda": ("n0", "n1")}
_DRAM_SCALE = {"lda": 4}  # bytes per element: lda moves int32 words


def _per_layer_products(rows: np.ndarray, opcodes: np.ndarray, layer: np.ndarray, n_layers: int,
                        fields: dict[str, tuple[str, ...]], scale: dict[str, int]) -> list[int]:
    """Per layer, the sum over its instructions of the product of `fields[op]` (times `scale[op]`).

    Exact: int64 where no product can overflow it, Python integers otherwise (a hand-written
    program may hold 2^31-element boxes)."""
    out = [0] * n_layers
    for op, names in fields.items():
        spec = BY_MNEMONIC[op]
        sel = np.flatnonzero(opcodes == spec.opcode)
        if not sel.size:
            continue
        cols = [rows[sel, HEADER_WORDS + spec.field_names().index(n)].view(np.int32).astype(np.int64)
                for n in names]
        k = scale.get(op, 1)
        estimate = np.prod([c.astype(np.float64) for c in cols], axis=0) * k
        if np.all(np.abs(estimate) < 2.0**62):
            prod = np.prod(cols, axis=0) * k
            sums = np.zeros(n_layers, dtype=np.int64)
            np.add.at(sums, layer[sel], prod)
            for i, v in enumerate(sums.tolist()):
                out[i] += v
        else:
            for lyr, *vals in zip(layer[sel].tolist(), *(c.tolist() for c in cols)):
                out[lyr] += k * int(np.prod(vals, dtype=object))
    return out


def _column(rows: np.ndarray, sel: np.ndarray, op: str, name: str) -> np.ndarray:
    spec = BY_MNEMONIC[op]
    return rows[sel, HEADER_WORDS + spec.field_names().index(name)].view(np.int32).astype(np.int64)


def _xfer(rows: np.ndarray, opcodes: np.ndarray, bw: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, transfer cycles) of the DMA instructions (ISA.md, Bursts), exact (Python integers
    where a hand-written program's extents would overflow int64)."""
    idx, cyc = [], []
    for op in ("ld", "st", "lda"):
        sel = np.flatnonzero(opcodes == BY_MNEMONIC[op].opcode)
        if not sel.size:
            continue
        n0, n1 = _column(rows, sel, op, "n0"), _column(rows, sel, op, "n1")
        if op == "lda":
            n1, n2, one = np.ones_like(n0), 4 * n1, np.zeros(sel.size, dtype=bool)
        else:
            n2 = _column(rows, sel, op, "n2")
            one = _column(rows, sel, op, "ss1" if op == "ld" else "ds1") == n2
        if np.all(n0.astype(np.float64) * n1 * n2 < 2.0**62):
            x = np.where(one, n0 * -(-(n1 * n2) // bw), n0 * n1 * -(-n2 // bw))
        else:
            x = np.array([a * -(-(b * c) // bw) if o else a * b * -(-c // bw)
                          for a, b, c, o in zip(n0.tolist(), n1.tolist(), n2.tolist(), one.tolist())], dtype=object)
        idx.append(sel)
        cyc.append(x)
    if not idx:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(idx), np.concatenate(cyc)


def _unit_free_before(units: np.ndarray, free: np.ndarray, seg_start: np.ndarray) -> np.ndarray:
    """Per instruction, when its unit was free before it: the previous instruction of the same unit's
    `free`, or its segment's start (a host point restarts every unit)."""
    out = seg_start.copy()
    for u in range(len(UNITS)):
        sel = np.flatnonzero(units == u)
        if sel.size > 1:
            prev = free[sel[:-1]]
            same = seg_start[sel[1:]] == seg_start[sel[:-1]]
            out[sel[1:]] = np.where(same, np.maximum(prev, seg_start[sel[1:]]), seg_start[sel[1:]])
    return out


def layer_count(image: ProgramImage) -> int:
    """How many layers the run reports: the program's layer table, or more where an instruction
    names a layer past it (a hand-written program may have no table: all its instructions are layer 0)."""
    top = int((image.rows[:, 0] >> 16).max()) + 1 if image.n_insns else 1
    return max(len(image.layers), top, 1)


def layer_stats(image: ProgramImage, start: np.ndarray | None, end: np.ndarray | None,
                events: list[RunStats] | None = None) -> list[LayerStats]:
    """Per-layer cycles (each layer's share, adding up to the run's) and span, busy and stall cycles,
    issued and useful MACs, DRAM traffic and roofline bytes; `events` (the C core's per-layer
    counters, `run_words(n_layers=...)`) become each layer's `events`.

    The stalls are recovered from the instructions' times as ISA.md defines them: a unit is free
    again at its previous instruction's end (a DMA's minus the latency), at its segment's start after
    a host point; starting later is a token stall; a DMA's start to its transfer's start is a DRAM
    stall; a gemm's cycles beyond its streamed length are fill."""
    n = image.n_insns
    if start is None or end is None or n == 0:
        return []
    hw = HwConfig.from_flat(image.hw)
    rows = image.rows
    opcodes = (rows[:, 0] & 0xFF).astype(np.int64)
    layer = (rows[:, 0] >> 16).astype(np.int64)
    units = _UNIT_OF[opcodes]
    # a hand-written program may have no .layer table: its instructions are all in layer 0
    names = list(image.layers) or ["layer0"]
    nl = layer_count(image)
    names += [f"layer{i}" for i in range(len(names), nl)]
    s = np.asarray(start, dtype=np.int64)
    e = np.asarray(end, dtype=np.int64)
    busy = np.zeros((nl, len(UNITS)), dtype=np.int64)
    np.add.at(busy, (layer, units), e - s)
    first = np.full(nl, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, layer, s)
    last = np.zeros(nl, dtype=np.int64)
    np.maximum.at(last, layer, e)
    count = np.bincount(layer, minlength=nl)
    span = last - np.where(count > 0, first, 0)
    cycles = np.maximum(0, last - np.concatenate([[0], np.maximum.accumulate(last)[:-1]]))
    macs = _per_layer_products(rows, opcodes, layer, nl, _MAC_FIELDS, {})
    dram = _per_layer_products(rows, opcodes, layer, nl, _DRAM_FIELDS, _DRAM_SCALE)
    # stalls: the segment each instruction runs in starts when everything before its host point ended
    cuts = sorted({h.at for h in image.hosts if 0 < h.at < n})
    seg_start = np.zeros(n, dtype=np.int64)
    if cuts:
        ends_before = np.maximum.accumulate(e)
        for c in cuts:
            seg_start[c:] = ends_before[c - 1]
    free = np.where(units == int(Unit.COMPUTE), e, e - hw.dram_latency)
    stall = np.maximum(0, s - _unit_free_before(units, free, seg_start))
    token = np.zeros((nl, len(UNITS)), dtype=np.int64)
    np.add.at(token, (layer, units), stall)
    dram_stall = np.zeros((nl, len(UNITS)), dtype=object)
    didx, xfer = _xfer(rows, opcodes, hw.dram_bw)
    for i, x in zip(didx.tolist(), xfer.tolist()):
        dram_stall[layer[i], units[i]] += int(e[i]) - hw.dram_latency - x - int(s[i])
    fill = np.zeros(nl, dtype=np.int64)
    gsel = np.flatnonzero(opcodes == BY_MNEMONIC["gemm"].opcode)
    if gsel.size:
        # the streamed length of the dataflow (isa/timing.py, fold_phases): M, k or n, times
        # act16_passes for int16 input rows
        stream = {"os": _column(rows, gsel, "gemm", "k"), "is": _column(rows, gsel, "gemm", "n")}.get(
            hw.dataflow, _column(rows, gsel, "gemm", "m0") * _column(rows, gsel, "gemm", "m1"))
        stream = stream * np.where(_column(rows, gsel, "gemm", "a16") != 0, hw.act16_passes, 1)
        np.add.at(fill, layer[gsel], e[gsel] - s[gsel] - stream)
    out = [LayerStats(names[i], int(cycles[i]), dict(zip(UNITS, (int(b) for b in busy[i]))), macs[i], dram[i],
                      int(count[i]), int(span[i]), token_stall=dict(zip(UNITS, (int(t) for t in token[i]))),
                      dram_stall=dict(zip(UNITS, (int(d) for d in dram_stall[i]))), gemm_fill=int(fill[i]))
           for i in range(nl)]
    for lid, work in image.work.items():
        if lid < nl:
            out[lid].useful_macs, out[lid].bound_bytes = work.macs, work.bytes
    for ls, ev in zip(out, events or []):
        ls.events = ev
    return out


def write_trace(image: ProgramImage, start: np.ndarray, end: np.ndarray, hosts: list, path: Path) -> None:
    """A Chrome / Perfetto trace: one track per unit, one slice per instruction, and a `host` track
    with one zero-length slice per host op (it costs no NPU cycles; its wall-clock time is an arg).
    `hosts` are the run's HostStats."""
    mhz = float(image.hw.get("clock_mhz", 1000.0))
    host_tid = len(Unit)
    events: list[dict] = [
        {"name": "thread_name", "ph": "M", "pid": 0, "tid": int(u), "args": {"name": u.name.lower()}}
        for u in Unit
    ]
    if hosts:
        events.append({"name": "thread_name", "ph": "M", "pid": 0, "tid": host_tid, "args": {"name": "host"}})
    for hs in hosts:
        events.append({"name": f"{hs.op} (host)", "ph": "X", "pid": 0, "tid": host_tid, "ts": hs.cycle / mhz,
                       "dur": 0, "args": {"node": hs.name, "wall_ms": round(hs.wall_ms / max(hs.runs, 1), 3)}})
    rows = image.rows
    opcodes = (rows[:, 0] & 0xFF).tolist()
    layers = (rows[:, 0] >> 16).tolist()
    for i, (op, lyr, s, e) in enumerate(zip(opcodes, layers, np.asarray(start).tolist(), np.asarray(end).tolist())):
        events.append({
            "name": _NAME_OF[op], "ph": "X", "pid": 0, "tid": int(_UNIT_OF[op]),
            "ts": s / mhz, "dur": (e - s) / mhz,
            "args": {"insn": i, "layer": image.layers[lyr] if image.layers else "", "cycles": e - s},
        })
    atomic_write_text(path, json.dumps({"traceEvents": events, "displayTimeUnit": "ns"}))
