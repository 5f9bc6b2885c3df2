"""Shared rig for the C simulator tests: encode micro-programs, run them, read memories.

The encoder here is the tests' own reading of the layout documented in
`isa/table.py` (word 0 opcode | layer << 16, word 1 wait | signal << 16, then
the fields as int32), so it also cross-checks `isa/encoding.py`.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from npuc.hw import HwConfig
from npuc.isa.program import Insn, make_insn
from npuc.isa.table import BY_MNEMONIC, HEADER_WORDS, WORDS_PER_INSN
from npuc.sim.core import SimResult, run_words

# a small NPU so that every memory is cheap and every boundary easy to reach
HW = HwConfig(rows=4, cols=8, spad_kib=4, acc_kib=4, dram_bw=4, dram_latency=10, vec_lanes=4, vec_latency=3)


def encode(insns: list[Insn]) -> np.ndarray:
    words = np.zeros((len(insns), WORDS_PER_INSN), dtype=np.uint32)
    for i, insn in enumerate(insns):
        words[i, 0] = BY_MNEMONIC[insn.op].opcode | insn.layer << 16
        words[i, 1] = insn.wait | insn.signal << 16
        words[i, HEADER_WORDS:HEADER_WORDS + len(insn.fields)] = [v & 0xFFFFFFFF for v in insn.fields]
    return words.reshape(-1)


def chain(*insns: Insn) -> list[Insn]:
    """Serialize a program with tokens: instruction i+1 waits for instruction i."""
    out = []
    for i, insn in enumerate(insns):
        wait = 1 << ((i - 1) % 16) if i > 0 else 0
        signal = 1 << (i % 16) if i < len(insns) - 1 else 0
        out.append(Insn(insn.op, insn.fields, wait | insn.wait, signal | insn.signal, insn.layer))
    return out


def run(insns: list[Insn], dram: np.ndarray | int = 4096, hw: HwConfig = HW, **kw) -> SimResult:
    """Run `insns` (encoded here) with the final SPAD and ACC returned."""
    mem = np.zeros(dram, dtype=np.uint8) if isinstance(dram, int) else dram
    return run_words(encode(insns), mem, hw, memories=True, **kw)


def strided(base: int, extents: tuple[int, ...], strides: tuple[int, ...]) -> np.ndarray:
    """Addresses of a box, shaped like it: base + sum_i idx_i * stride_i."""
    addr = np.full(extents, base, dtype=np.int64)
    for axis, (n, s) in enumerate(zip(extents, strides)):
        shape = [1] * len(extents)
        shape[axis] = n
        addr = addr + (np.arange(n, dtype=np.int64) * s).reshape(shape)
    return addr


def run_on(body: list[Insn], spad: np.ndarray | None = None, acc: np.ndarray | None = None,
           hw: HwConfig = HW, **kw) -> SimResult:
    """Run `body` serialized after one ld and one lda fill SPAD and ACC with the given images."""
    spad_img = np.zeros(hw.spad_bytes, np.int8) if spad is None else np.asarray(spad, np.int8)
    acc_img = np.zeros(hw.acc_words, np.int32) if acc is None else np.asarray(acc, np.int32)
    dram = np.concatenate([spad_img.view(np.uint8), acc_img.astype("<i4").view(np.uint8)])
    pre = [make_insn("ld", dst=0, src=0, n0=1, n1=1, n2=hw.spad_bytes),
           make_insn("lda", dst=0, src=hw.spad_bytes, n0=1, n1=hw.acc_words)]
    return run(chain(*pre, *body), dram=dram, hw=hw, **kw)


@pytest.fixture
def sim() -> SimpleNamespace:
    return SimpleNamespace(hw=HW, I=make_insn, encode=encode, chain=chain, run=run, run_on=run_on,
                           strided=strided)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
