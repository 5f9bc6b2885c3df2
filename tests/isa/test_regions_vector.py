"""regions() of vlut and vmul: every box their Action can touch (the dependency pass relies on it)."""

from npuc.isa.program import make_insn
from npuc.isa.regions import SPAD, Region, regions


def test_vlut_reads_source_and_the_whole_table_box_writes_dst():
    r = regions(make_insn("vlut", dst=1000, src=10, tab=4096, m=3, n=4, ds=-8, ss=5, ts=-256))
    assert r == [Region(SPAD, 10, 10 + 2 * 5 + 3, False), Region(SPAD, 4096 - 3 * 256, 4096 + 255, False),
                 Region(SPAD, 1000 - 16, 1000 + 3, True)]


def test_vlut_without_rows_reads_no_table():
    assert regions(make_insn("vlut", dst=0, src=0, tab=99, m=0, n=4, ts=256)) == []


def test_vmul_reads_a_and_the_broadcast_row_of_b():
    r = regions(make_insn("vmul", dst=0, a=100, b=500, m=4, n=8, ds=8, bs=0, hi=127, **{"as": 8}))
    assert r == [Region(SPAD, 100, 131, False), Region(SPAD, 500, 507, False), Region(SPAD, 0, 31, True)]
