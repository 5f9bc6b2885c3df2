"""`isa/coverage.py` against the Action lines of ISA.md, run element by element in Python.

Random st / ld / lda boxes (negative, zero and overlapping strides, empty
extents) and random windows: the bytes `covered` reports are exactly the
bytes the loops below touch.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from npuc.hw import HwConfig
from npuc.isa import coverage
from npuc.isa.coverage import covered, element_index, touches
from npuc.isa.image import ProgramImage
from npuc.isa.program import HostOp, Insn, Program, TensorInfo, make_insn


def touched_by(insn: Insn, writes: bool) -> set[int]:
    """The DRAM bytes `insn` writes (st) or reads (ld, lda), straight from ISA.md's loops."""
    f = insn.as_dict()
    out: set[int] = set()
    if insn.op == "st" and writes:
        for i0 in range(f["n0"]):
            for i1 in range(f["n1"]):
                for i2 in range(f["n2"]):
                    out.add(f["dst"] + i0 * f["ds0"] + i1 * f["ds1"] + i2)
    elif insn.op == "ld" and not writes:
        for i0 in range(f["n0"]):
            for i1 in range(f["n1"]):
                for i2 in range(f["n2"]):
                    out.add(f["src"] + i0 * f["ss0"] + i1 * f["ss1"] + i2)
    elif insn.op == "lda" and not writes:
        for i0 in range(f["n0"]):
            for i1 in range(f["n1"]):
                for b in range(4):
                    out.add(f["src"] + i0 * f["ss0"] + 4 * i1 + b)
    return out


def random_insn(rnd: random.Random) -> Insn:
    small = lambda: rnd.choice([0, 1, 1, 2, 3, 5, 7])  # noqa: E731
    stride = lambda: rnd.choice([0, 1, 2, 3, 4, 7, 16, -1, -3, -8, 40])  # noqa: E731
    op = rnd.choice(["st", "ld", "lda", "vsum"])
    if op == "st":
        return make_insn("st", dst=rnd.randint(0, 300), n0=small(), n1=small(), n2=small(), ds0=stride(),
                         ds1=stride())
    if op == "ld":
        return make_insn("ld", src=rnd.randint(0, 300), n0=small(), n1=small(), n2=small(), ss0=stride(),
                         ss1=stride(), pt=small(), pl=small())  # padding touches SPAD only
    if op == "lda":
        return make_insn("lda", src=rnd.randint(0, 300), n0=small(), n1=small(), ss0=stride())
    return make_insn("vsum", src=rnd.randint(0, 300), m=small(), n=small(), ss=stride())  # no DRAM at all


def image(insns: list[Insn], data=(), hosts=()) -> ProgramImage:
    return ProgramImage.from_program(Program(HwConfig().to_flat(), 4096, [], [], list(data), insns, list(hosts)))


@pytest.mark.parametrize("seed", range(40))
def test_covered_is_exactly_what_the_actions_touch(seed):
    rnd = random.Random(seed)
    insns = [random_insn(rnd) for _ in range(rnd.randint(1, 12))]
    img = image(insns)
    for writes in (True, False):
        truth = set().union(*(touched_by(i, writes) for i in insns))
        for _ in range(5):
            lo = rnd.randint(-50, 350)
            hi = lo + rnd.randint(0, 200)
            got = covered(img, lo, hi, writes=writes)
            assert got.shape == (max(hi - lo, 0),)
            assert {lo + int(i) for i in np.flatnonzero(got)} == {a for a in truth if lo <= a < hi}
            assert touches(img, lo, hi, writes=writes) == any(lo <= a < hi for a in truth)


def test_chunks_give_the_same_answer(monkeypatch):
    """Many instructions, enumerated in chunks of a few runs: the chunk boundaries lose nothing."""
    rnd = random.Random(7)
    insns = [random_insn(rnd) for _ in range(200)]
    img = image(insns)
    whole = covered(img, 0, 600, writes=True)
    monkeypatch.setattr(coverage, "_CHUNK", 3)
    assert np.array_equal(covered(img, 0, 600, writes=True), whole)


def test_data_and_host_tensors_count():
    t_in = TensorInfo("a", "input", 100, (1, 8), "flat", 1.0, 0)
    t_out = TensorInfo("b", "output", 200, (1, 2), "flat", 1.0, 0, "int64")
    img = image([], data=[(10, b"\x01" * 5)], hosts=[HostOp("h", "ArgMax", 0, (t_in, t_out), b"")])
    assert list(np.flatnonzero(covered(img, 0, 300, writes=True))) == [*range(10, 15), *range(200, 216)]
    assert list(np.flatnonzero(covered(img, 0, 300, writes=False))) == list(range(100, 108))


def test_huge_boxes_count_as_their_bounding_interval(monkeypatch):
    monkeypatch.setattr(coverage, "MAX_RUNS_PER_INSN", 4)
    st = make_insn("st", dst=10, n0=3, n1=3, n2=1, ds0=10, ds1=2)  # 9 runs: 10,12,14, 20,22,24, 30,32,34
    assert list(np.flatnonzero(covered(image([st]), 0, 40, writes=True))) == list(range(10, 35))


def test_element_index_reads_the_layout():
    assert element_index((1, 3, 4, 5), "nhwc", 0) == (0, 0, 0, 0)
    assert element_index((1, 3, 4, 5), "nhwc", 1) == (0, 1, 0, 0)  # channels innermost in DRAM
    assert element_index((1, 3, 4, 5), "nhwc", 3 * 5 + 3 + 2) == (0, 2, 1, 1)
    assert element_index((1, 10), "flat", 7) == (0, 7)
