"""The dependency pass: a token exactly where a cross-unit hazard is."""

from npuc.backend.deps import TOKEN, insert_tokens
from npuc.isa.program import make_insn
from npuc.isa.regions import ACC, DRAM, SPAD
from npuc.isa.table import Unit

SIZES = {DRAM: 1 << 16, SPAD: 1 << 14, ACC: 1 << 12}
L2C = 1 << TOKEN[(Unit.LOAD, Unit.COMPUTE)]
C2L = 1 << TOKEN[(Unit.COMPUTE, Unit.LOAD)]
C2S = 1 << TOKEN[(Unit.COMPUTE, Unit.STORE)]
S2L = 1 << TOKEN[(Unit.STORE, Unit.LOAD)]


def ld(dst, src=0, n=64):
    return make_insn("ld", dst=dst, src=src, n0=1, n1=1, n2=n)


def gemm(a, w=4096, dst=0, m=4):
    return make_insn("gemm", dst=dst, a=a, w=w, m0=m, m1=1, k=16, n=16, as0=16, ws=16, ds0=16)


def test_read_after_load_waits_for_the_load():
    out = insert_tokens([ld(0), gemm(0)], SIZES)
    assert out[0].signal == L2C and out[1].wait == L2C


def test_disjoint_regions_need_no_token():
    out = insert_tokens([ld(8192), gemm(0)], SIZES)
    assert all(i.wait == 0 and i.signal == 0 for i in out)


def test_overwrite_waits_for_the_last_reader():
    out = insert_tokens([gemm(0), gemm(256), ld(0)], SIZES)
    assert out[2].wait == C2L
    # the later gemm reads a disjoint region: only the first one is the hazard
    assert out[0].signal == C2L and out[1].signal == 0


def test_one_wait_covers_earlier_producers():
    prog = [ld(0), ld(64), gemm(64), gemm(0)]
    out = insert_tokens(prog, SIZES)
    assert out[2].wait == L2C and out[1].signal == L2C
    assert out[3].wait == 0  # the compute unit already waited for a later load
    assert out[0].signal == 0


def test_store_then_load_of_the_same_dram():
    st = make_insn("st", dst=1000, src=0, n0=1, n1=1, n2=16)
    vrq = make_insn("vrq", dst=0, src=0, mul=100, sh=200, m=1, n=16, ds=16, ss=16, lo=-128, hi=127)
    out = insert_tokens([vrq, st, ld(512, src=1000, n=16)], SIZES)
    assert out[1].wait == C2S and out[0].signal == C2S
    assert out[2].wait == S2L and out[1].signal == S2L


def test_signals_pair_with_waits_in_order():
    """Every semaphore gets exactly as many signals as waits (no leftover tokens)."""
    prog = []
    for t in range(6):
        slot = (t % 2) * 256
        prog += [ld(slot), gemm(slot, dst=(t % 2) * 64)]
    out = insert_tokens(prog, SIZES)
    for bit in range(16):
        waits = sum(1 for i in out if i.wait >> bit & 1)
        signals = sum(1 for i in out if i.signal >> bit & 1)
        assert waits == signals
