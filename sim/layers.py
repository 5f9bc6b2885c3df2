"""Per-layer statistics and the Chrome trace of a run, computed from the encoded instructions.

Both read the opcode, layer and fields straight from the instruction words
(whole numpy columns): a ResNet-18 program has 55,000 instructions, and an
object per instruction cost more than the simulation it reports on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..fsutil import atomic_write_text
from ..isa.image import ProgramImage
from ..isa.stats import UNITS
from ..isa.table import BY_MNEMONIC, BY_OPCODE, HEADER_WORDS, Unit


@dataclass
class LayerStats:
    name: str
    cycles: int  # from the layer's first start to its last end
    busy: dict[str, int]
    macs: int
    dram_bytes: int
    insns: int


_UNIT_OF = np.zeros(256, dtype=np.int64)
_NAME_OF = [""] * 256
for _spec in BY_OPCODE.values():
    _UNIT_OF[_spec.opcode] = int(_spec.unit)
    _NAME_OF[_spec.opcode] = _spec.mnemonic

# what each layer's MACs and DRAM bytes sum: per mnemonic, the fields whose product counts
_MAC_FIELDS = {"gemm": ("m0", "m1", "k", "n")}
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


def layer_stats(image: ProgramImage, start: np.ndarray | None, end: np.ndarray | None) -> list[LayerStats]:
    """Per-layer cycles, per-unit busy cycles, MACs and DRAM traffic."""
    n = image.n_insns
    if start is None or end is None or n == 0:
        return []
    rows = image.rows
    opcodes = (rows[:, 0] & 0xFF).astype(np.int64)
    layer = (rows[:, 0] >> 16).astype(np.int64)
    # a hand-written program may have no .layer table: its instructions are all in layer 0
    names = list(image.layers) or ["layer0"]
    names += [f"layer{i}" for i in range(len(names), 1 + int(layer.max()))]
    nl = len(names)
    s = np.asarray(start, dtype=np.int64)
    e = np.asarray(end, dtype=np.int64)
    busy = np.zeros((nl, len(UNITS)), dtype=np.int64)
    np.add.at(busy, (layer, _UNIT_OF[opcodes]), e - s)
    first = np.full(nl, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, layer, s)
    last = np.zeros(nl, dtype=np.int64)
    np.maximum.at(last, layer, e)
    count = np.bincount(layer, minlength=nl)
    cycles = last - np.where(count > 0, first, 0)
    macs = _per_layer_products(rows, opcodes, layer, nl, _MAC_FIELDS, {})
    dram = _per_layer_products(rows, opcodes, layer, nl, _DRAM_FIELDS, _DRAM_SCALE)
    return [LayerStats(names[i], int(cycles[i]), dict(zip(UNITS, (int(b) for b in busy[i]))), macs[i], dram[i],
                       int(count[i])) for i in range(nl)]


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
