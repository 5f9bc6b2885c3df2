"""The Python side of the C simulator core: one call runs one program on one DRAM image.

    res = run_words(words, dram, hw)          # words: uint32 (isa/encoding.py), dram: uint8
    res.stats.cycles, res.dram, res.insn_start, res.insn_end
    replay_words(words, res.order, other_dram, hw)   # the data path alone, in the order of a timed run

Malformed programs and run-time faults raise `SimError` naming the
instruction; the C core never touches memory outside its buffers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..hw import HwConfig
from ..isa.stats import RunStats
from ..isa.table import WORDS_PER_INSN
from ._npusim import ffi, lib

_ERR_LEN = 1024


class SimError(RuntimeError):
    """The simulator rejected the program or trapped while running it.

    `insn` is the index of the instruction at fault (-1 when none is), and
    the message starts with `insn <index>: ` in that case.
    """

    def __init__(self, insn: int, message: str) -> None:
        super().__init__(message)
        self.insn = insn
        self.message = message


SimStats = RunStats  # the C core's counters: the same type as the emulator's


@dataclass(frozen=True)
class SimResult:
    stats: SimStats
    dram: np.ndarray  # uint8, the final DRAM
    insn_start: np.ndarray | None  # uint64 start cycle per instruction, when traced
    insn_end: np.ndarray | None  # uint64 end cycle per instruction (completion for a DMA)
    spad: np.ndarray | None = None  # int8, the final scratchpad, with memories=True
    acc: np.ndarray | None = None  # int32, the final accumulator, with memories=True
    layers: list[SimStats] | None = None  # each layer's share of the counters, with n_layers > 0
    order: np.ndarray | None = None  # uint32 instruction indices in the order they ran, with order=True
    insn_sat: np.ndarray | None = None  # uint64 gemm outputs saturated per instruction, when traced


def hw_struct(hw: HwConfig) -> Any:
    """The C core's `npu_hw *` for `hw` (its members are declared with the fields, npuc/hw)."""
    return ffi.new("npu_hw *", hw.c_values())


def _stats(c: Any) -> SimStats:  # c: the cffi "npu_stats *", whose members are RunStats' counters
    return SimStats.from_counters(lambda name: getattr(c, name))


def run_words(words: np.ndarray, dram: np.ndarray, hw: HwConfig, trace: bool = True, *,
              max_work: int | None = None, memories: bool = False, spad: np.ndarray | None = None,
              acc: np.ndarray | None = None, n_layers: int = 0, order: bool = False) -> SimResult:
    """Run the encoded program `words` on a copy of `dram` under `hw`.

    `trace` records every instruction's start and end cycle; `memories`
    returns the final SPAD and ACC too. `max_work` bounds the elements
    processed (a guard for untrusted programs; None is no limit). SPAD and
    ACC start zeroed unless `spad` / `acc` give their initial contents (a
    testing aid, as the emulator's: the start of the memory, the rest
    zeroed). `n_layers` > 0 counts each layer's share of the counters
    (`SimResult.layers`; an instruction's layer is in its word 0). `order`
    returns the order the instructions ran in, which `replay_words` takes to
    run the same program on other data without its timing. Raises SimError on
    a malformed program or a run-time fault.
    """
    if max_work is not None and max_work < 1:
        raise ValueError(f"max_work must be positive or None, got {max_work}")
    w = np.ascontiguousarray(words, dtype=np.uint32)
    if w.ndim != 1:
        raise ValueError(f"words must be 1-D, got shape {w.shape}")
    mem = np.array(dram, dtype=np.uint8, copy=True, order="C").reshape(-1)
    n_insns = w.size // WORDS_PER_INSN
    start = np.zeros(n_insns, dtype=np.uint64) if trace else None
    end = np.zeros(n_insns, dtype=np.uint64) if trace else None
    sat = np.zeros(n_insns, dtype=np.uint64) if trace else None
    spad_in = _initial(spad, hw.spad_bytes, np.int8, "spad")
    acc_in = _initial(acc, hw.acc_words, np.int32, "acc")
    spad_out = np.zeros(hw.spad_bytes, dtype=np.int8) if memories else None
    acc_out = np.zeros(hw.acc_words, dtype=np.int32) if memories else None
    order_out = np.zeros(n_insns, dtype=np.uint32) if order else None
    # the cffi buffers stay alive for the call
    bufs = {"insn_start": _ptr("uint64_t[]", start), "insn_end": _ptr("uint64_t[]", end),
            "insn_sat": _ptr("uint64_t[]", sat),
            "spad_out": _ptr("int8_t[]", spad_out), "acc_out": _ptr("int32_t[]", acc_out),
            "spad_in": _ptr("int8_t[]", spad_in), "acc_in": _ptr("int32_t[]", acc_in),
            "order_out": _ptr("uint32_t[]", order_out)}
    per_layer = ffi.new("npu_stats[]", n_layers) if n_layers > 0 else ffi.NULL
    opts = ffi.new("npu_opts *", {"max_work": max_work or 0, **bufs, "layer_stats": per_layer,
                                  "n_layers": max(n_layers, 0)})
    stats = ffi.new("npu_stats *")
    err_insn = ffi.new("int64_t *")
    err = ffi.new("char[]", _ERR_LEN)
    rc = lib.npu_run(hw_struct(hw), ffi.from_buffer("uint32_t[]", w), w.size,
                     ffi.from_buffer("uint8_t[]", mem, require_writable=True), mem.size, opts,
                     stats, err_insn, err, _ERR_LEN)
    if rc != 0:
        raise SimError(int(err_insn[0]), ffi.string(err).decode("utf-8", "replace"))
    layers = [_stats(per_layer[i]) for i in range(n_layers)] if n_layers > 0 else None
    return SimResult(_stats(stats), mem, start, end, spad_out, acc_out, layers=layers, order=order_out,
                     insn_sat=sat)


def replay_words(words: np.ndarray, order: np.ndarray, dram: np.ndarray, hw: HwConfig, *,
                 max_work: int | None = None) -> SimStats:
    """The data path alone of the encoded program `words`, in place on `dram` (a writable,
    C-contiguous uint8 array): the instructions run one after the other in `order` (the
    `order` of a `run_words` of the same program under the same `hw`), without units, tokens
    or cycles. The values are those `run_words` would compute; the returned counters are the
    data path's (MACs, bytes, vector operations, instructions), with zero cycles, as cycles do
    not depend on the data. The C call releases the GIL, so threads can replay several inputs
    at once. Raises SimError as `run_words` does."""
    if max_work is not None and max_work < 1:
        raise ValueError(f"max_work must be positive or None, got {max_work}")
    w = np.ascontiguousarray(words, dtype=np.uint32)
    o = np.ascontiguousarray(order, dtype=np.uint32)
    if dram.dtype != np.uint8 or dram.ndim != 1 or not dram.flags.c_contiguous:
        raise ValueError("replay_words runs in place: dram must be a 1-D C-contiguous uint8 array")
    opts = ffi.new("npu_opts *", {"max_work": max_work or 0})
    stats = ffi.new("npu_stats *")
    err_insn = ffi.new("int64_t *")
    err = ffi.new("char[]", _ERR_LEN)
    rc = lib.npu_replay(hw_struct(hw), ffi.from_buffer("uint32_t[]", w), w.size, ffi.from_buffer("uint32_t[]", o),
                        o.size, ffi.from_buffer("uint8_t[]", dram, require_writable=True), dram.size, opts,
                        stats, err_insn, err, _ERR_LEN)
    if rc != 0:
        raise SimError(int(err_insn[0]), ffi.string(err).decode("utf-8", "replace"))
    return _stats(stats)


def _initial(init: np.ndarray | None, size: int, dtype: type, name: str) -> np.ndarray | None:
    """A whole memory image for the C core (which reads exactly `size` elements): `init` at its
    start, zeros after it; None for None."""
    if init is None:
        return None
    flat = np.asarray(init).reshape(-1)
    if flat.size > size:
        raise ValueError(f"{name}: {flat.size} initial elements for a memory of {size}")
    out: np.ndarray = np.zeros(size, dtype=dtype)
    out[:flat.size] = flat.astype(dtype, copy=False)
    return out


def _ptr(ctype: str, a: np.ndarray | None) -> Any:
    return ffi.NULL if a is None else ffi.from_buffer(ctype, a, require_writable=True)
