"""Every error class ends in a SimError naming the instruction.

HW of these tests: SPAD 4096 bytes, ACC 1024 words; DRAM 4096 bytes.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npuc.isa.program import make_insn
from npuc.isa.table import WORDS_PER_INSN
from npuc.sim._npusim import ffi, lib
from npuc.sim.core import SimError

BIG = 2**31 - 1
NEG = -(2**31)


def _error(sim, insns, **kw) -> SimError:
    with pytest.raises(SimError) as e:
        sim.run(insns, **kw)
    return e.value


def _words_error(sim, words, dram=4096) -> SimError:
    from npuc.sim.core import run_words

    with pytest.raises(SimError) as e:
        run_words(np.asarray(words, np.uint32), np.zeros(dram, np.uint8), sim.hw)
    return e.value


OUT_OF_RANGE = [  # op, fields, then what the message names: field, lo, hi, memory
    ("ld", dict(dst=4000, n0=1, n1=1, n2=100), "dst", 4000, 4099, "SPAD"),
    ("ld", dict(src=4090, n0=1, n1=1, n2=10), "src", 4090, 4099, "DRAM"),
    ("ld", dict(dst=0, n0=2, n1=1, n2=1, ds0=-1), "dst", -1, 0, "SPAD"),
    ("ld", dict(dst=10, n0=1, n1=1, n2=1, pt=11, ds0=-1), "dst", -1, 10, "SPAD"),
    ("lda", dict(dst=1020, n0=1, n1=5), "dst", 1020, 1024, "ACC"),
    ("lda", dict(src=4090, n0=1, n1=2), "src", 4090, 4097, "DRAM"),
    ("lda", dict(src=8, n0=2, n1=1, ss0=-9), "src", -1, 11, "DRAM"),
    ("st", dict(dst=0, n0=2, n1=3, n2=4, ds0=4093), "dst", 0, 4096, "DRAM"),
    ("st", dict(src=5000, n0=1, n1=1, n2=1), "src", 5000, 5000, "SPAD"),
    ("gemm", dict(dst=1000, m0=4, m1=1, k=1, n=8, ds0=8), "dst", 1000, 1031, "ACC"),
    ("gemm", dict(a=4095, m0=1, m1=1, k=2, n=1), "a", 4095, 4096, "SPAD"),
    ("gemm", dict(w=4090, m0=1, m1=1, k=4, n=1, ws=2), "w", 4090, 4096, "SPAD"),
    ("vaddv", dict(dst=1023, m=1, n=2), "dst", 1023, 1024, "ACC"),
    ("vaddv", dict(src=5, m=2, n=2, ss=-6), "src", -1, 6, "ACC"),
    ("vaddv", dict(vec=2000, m=1, n=1), "vec", 2000, 2000, "ACC"),
    ("vrq", dict(dst=4096, m=1, n=1, hi=1), "dst", 4096, 4096, "SPAD"),
    ("vrq", dict(src=1024, m=1, n=1, hi=1), "src", 1024, 1024, "ACC"),
    ("vrq", dict(mul=1023, m=1, n=2, hi=1), "mul", 1023, 1024, "ACC"),
    ("vrq", dict(sh=1023, m=1, n=2, hi=1), "sh", 1023, 1024, "ACC"),
    ("vmax", {"dst": 4095, "m": 1, "n": 2}, "dst", 4095, 4096, "SPAD"),
    ("vmax", {"a": 0, "m": 3, "n": 1, "as": -1}, "a", -2, 0, "SPAD"),
    ("vmax", {"b": 4000, "m": 2, "n": 1, "bs": 100}, "b", 4000, 4100, "SPAD"),
    ("vsum", dict(dst=1024, m=0, n=1), "dst", 1024, 1024, "ACC"),
    ("vsum", dict(src=4096, m=1, n=1), "src", 4096, 4096, "SPAD"),
]


SIZE = {"DRAM": "4096 bytes", "SPAD": "4096 bytes", "ACC": "1024 words"}


@pytest.mark.parametrize("op,fields,field,lo,hi,mem", OUT_OF_RANGE,
                         ids=[f"{c[0]} {c[2]}" for c in OUT_OF_RANGE])
def test_out_of_range_boxes_name_field_range_and_memory(sim, op, fields, field, lo, hi, mem):
    prog = [make_insn("vsum", dst=0, m=0, n=0), make_insn("vsum", dst=0, m=0, n=0), make_insn(op, **fields)]
    e = _error(sim, prog)
    assert e.insn == 2 and e.message == str(e)
    assert str(e) == f"insn 2: {op} {field}: address range [{lo}, {hi}] outside {mem} of {SIZE[mem]}"


def _span(n, s):
    return (n - 1) * s


def test_int32_overflow_in_address_arithmetic_is_reported_exactly(sim):
    """dst = 2^31-1 plus spans of (3 * (2^31-1) - 1) * (2^31-1): far beyond int64, still exact."""
    f = dict(dst=BIG, n0=BIG, n1=BIG, n2=BIG, ds0=BIG, ds1=NEG, pt=BIG, pb=BIG, pl=BIG, pr=BIG)
    e = _error(sim, [make_insn("ld", **f)])
    e0 = e1 = 3 * BIG
    lo = BIG + _span(e1, NEG)
    hi = BIG + _span(e0, BIG) + BIG - 1
    assert hi > 2**63 and lo < -(2**63)
    assert str(e) == f"insn 0: ld dst: address range [{lo}, {hi}] outside SPAD of 4096 bytes"


@pytest.mark.parametrize("op,f", [
    ("vmax", {"dst": BIG, "m": BIG, "n": BIG, "ds": BIG}),
    ("st", {"dst": BIG, "n0": BIG, "n1": BIG, "n2": BIG, "ds0": NEG, "ds1": NEG}),
    ("gemm", {"dst": 0, "m0": BIG, "m1": BIG, "k": 1, "n": 1, "ds0": BIG, "ds1": BIG}),
])
def test_huge_extents_and_strides(sim, op, f):
    e = _error(sim, [make_insn(op, **f)])
    assert e.insn == 0 and "address range" in str(e)


def test_huge_zero_stride_box_is_stopped_by_the_work_limit(sim):
    """In range (every stride 0), 2^62 elements: only the optional work limit ends it."""
    e = _error(sim, [make_insn("ld", dst=0, src=0, n0=BIG, n1=BIG, n2=1)], max_work=10**6)
    assert str(e) == "insn 0: ld: work limit of 1000000 elements exceeded"


def test_work_limit_counts_across_instructions(sim):
    gemm = make_insn("gemm", dst=0, a=0, w=0, m0=10, m1=1, k=4, n=8)  # 320 MACs
    sim.run([gemm, gemm], max_work=640)
    e = _error(sim, [gemm, gemm, gemm], max_work=640)
    assert e.insn == 2


def _rows(sim, insns):
    """The encoded program, one row of words per instruction, for editing single words."""
    return sim.encode(insns).reshape(-1, WORDS_PER_INSN)


def test_unknown_opcode(sim):
    w = _rows(sim, [make_insn("vsum"), make_insn("vsum")])
    w[1, 0] = 0x55
    e = _words_error(sim, w.ravel())
    assert (e.insn, str(e)) == (1, "insn 1: unknown opcode 0x55")


def test_reserved_bits(sim):
    w = _rows(sim, [make_insn("ld")])
    w[0, 0] |= 0x0100
    assert str(_words_error(sim, w.ravel())) == "insn 0: ld: reserved bits 8-15 of word 0 are 0x01, must be 0"


def test_unused_words_must_be_zero(sim):
    w = _rows(sim, [make_insn("lda")])
    w[0, 8] = 1
    assert str(_words_error(sim, w.ravel())) == "insn 0: lda: unused word 8 is 0x00000001, must be 0"


def test_layer_id_is_free(sim):
    w = _rows(sim, [make_insn("vsum")])
    w[0, 0] |= 0xFFFF0000
    from npuc.sim.core import run_words

    assert run_words(w.ravel(), np.zeros(1, np.uint8), sim.hw).stats.insns == (0, 1, 0)


@pytest.mark.parametrize("op,f,msg", [
    ("ld", dict(n0=-1), "ld n0 = -1 outside [0, 2147483647]"),
    ("ld", dict(dst=NEG), "ld dst = -2147483648 outside [0, 2147483647]"),
    ("ld", dict(fill=128), "ld fill = 128 outside [-128, 127]"),
    ("ld", dict(fill=-129), "ld fill = -129 outside [-128, 127]"),
    ("gemm", dict(k=0, n=1), "gemm k = 0 outside [1, 65536]"),
    ("gemm", dict(k=1, n=65537), "gemm n = 65537 outside [1, 65536]"),
    ("gemm", dict(k=5, n=1), "gemm k = 5 exceeds the array's 4 rows"),
    ("gemm", dict(k=4, n=9), "gemm n = 9 exceeds the array's 8 cols"),
    ("gemm", dict(k=1, n=1, acc=3), "gemm acc = 3 outside [0, 2]"),
    ("vrq", dict(rnd=4, hi=1), "vrq rnd = 4 outside [0, 3]"),
    ("vrq", dict(zp=-200), "vrq zp = -200 outside [-128, 127]"),
    ("vsum", dict(m=-5), "vsum m = -5 outside [0, 2147483647]"),
])
def test_fields_outside_their_table_range(sim, op, f, msg):
    w = _rows(sim, [make_insn("vsum"), make_insn(op, **f)])
    e = _words_error(sim, w.ravel())
    assert (e.insn, str(e)) == (1, f"insn 1: {msg}")


@pytest.mark.parametrize("n_words", [1, 19, 25, 59])
def test_truncated_word_stream(sim, n_words):
    w = np.tile(_rows(sim, [make_insn("vsum")]).ravel(), 3)[:n_words]
    e = _words_error(sim, w)
    assert e.insn == n_words // WORDS_PER_INSN
    assert str(e) == f"insn {e.insn}: truncated: {n_words % WORDS_PER_INSN} of {WORDS_PER_INSN} words"


def test_whole_program_is_decoded_before_anything_runs(sim):
    """insn 0 would fault at run time, insn 1 is malformed: the decode error wins."""
    w = _rows(sim, [make_insn("st", dst=5000, n0=1, n1=1, n2=1), make_insn("vsum", m=-1)])
    assert _words_error(sim, w.ravel()).insn == 1


def test_vrq_lo_above_hi(sim):
    e = _error(sim, [make_insn("vsum"), make_insn("vrq", m=1, n=1, lo=5, hi=4)])
    assert str(e) == "insn 1: vrq: lo = 5 > hi = 4"


@pytest.mark.parametrize("bad", [-1, 63, 2**31 - 1, -(2**31)])
def test_vrq_shift_outside_0_62_names_its_column(sim, bad):
    acc = np.zeros(sim.hw.acc_words, np.int32)
    acc[100:104] = [0, 62, bad, 1]
    with pytest.raises(SimError) as e:
        sim.run_on([make_insn("vrq", dst=0, src=0, mul=0, sh=100, m=2, n=4, hi=127)], acc=acc)
    assert str(e.value) == f"insn 2: vrq sh: shift {bad} at column 2 outside [0, 62]"


def test_vrq_with_no_rows_reads_no_shift(sim):
    acc = np.full(sim.hw.acc_words, 99, np.int32)
    sim.run_on([make_insn("vrq", dst=0, src=0, mul=0, sh=0, m=0, n=4, hi=127)], acc=acc)


def test_deadlock_names_every_blocked_unit(sim):
    prog = [make_insn("ld", wait=0b10), make_insn("gemm", k=1, n=1, wait=0b01, signal=0b10),
            make_insn("st", wait=0b1100)]
    e = _error(sim, prog)
    assert e.insn == 0
    assert str(e) == ("insn 0: ld: deadlock: no unit can proceed; load unit at insn 0 (ld) waits for TOK[1]; "
                      "compute unit at insn 1 (gemm) waits for TOK[0]; store unit at insn 2 (st) waits for "
                      "TOK[2] TOK[3]")


def test_deadlock_after_progress(sim):
    prog = [make_insn("ld", signal=1), make_insn("vsum", wait=1), make_insn("vsum", wait=1), make_insn("st")]
    e = _error(sim, prog)
    assert str(e) == (
        "insn 2: vsum: deadlock: no unit can proceed; compute unit at insn 2 (vsum) waits for TOK[0]")


def test_token_counter_overflow(sim):
    one = _rows(sim, [make_insn("vsum")])
    one[0, 1] = 1 << 16  # signal TOK[0]
    limit = lib.NPU_TOKEN_MAX
    from npuc.sim.core import run_words

    ok = np.tile(one.ravel(), limit)
    assert run_words(ok, np.zeros(1, np.uint8), sim.hw, trace=False).stats.insns[1] == limit
    e = _words_error(sim, np.tile(one.ravel(), limit + 1), dram=1)
    assert str(e) == f"insn {limit}: vsum: TOK[0] overflows: more than {limit} tokens outstanding"


def _raw_run(hw_fields, words=(), dram_size=0):
    hw = ffi.new("npu_hw *", hw_fields)
    w = np.asarray(words, np.uint32)
    err_insn, err = ffi.new("int64_t *"), ffi.new("char[]", 256)
    dram = np.zeros(max(dram_size, 1), np.uint8)
    rc = lib.npu_run(hw, ffi.from_buffer("uint32_t[]", w), w.size, ffi.from_buffer("uint8_t[]", dram),
                     dram_size,
                     ffi.NULL, ffi.NULL, err_insn, err, 256)
    return rc, int(err_insn[0]), ffi.string(err).decode()


GOOD_HW = dict(rows=4, cols=4, spad_bytes=64, acc_words=16, dram_bw=1, dram_latency=0, vec_lanes=1,
               vec_latency=0, dw_taps=1, acc_bits=32, int4_pack=2,
               act16_passes=2)  # dataflow 0 (ws), dw_lanes 0 (no depthwise engine)


@pytest.mark.parametrize("field,value,msg", [
    ("rows", 0, "hw rows = 0: must be in [1, 1024]"),
    ("cols", 1025, "hw cols = 1025: must be in [1, 1024]"),
    ("spad_bytes", -1, "hw spad_bytes = -1: must be in [1, 1073741824]"),
    ("acc_words", 2**30, "hw acc_words = 1073741824: must be in [1, 268435456]"),
    ("dram_bw", 0, "hw dram_bw = 0: must be in [1, 65536]"),
    ("dram_latency", -1, "hw dram_latency = -1: must be in [0, 1048576]"),
    ("vec_lanes", 0, "hw vec_lanes = 0: must be in [1, 4096]"),
    ("vec_latency", 5000, "hw vec_latency = 5000: must be in [0, 4096]"),
])
def test_bad_hardware_is_refused_before_allocating(field, value, msg):
    assert _raw_run({**GOOD_HW, field: value}) == (1, -1, msg)


def test_the_c_api_accepts_null_outputs_and_an_empty_program():
    assert _raw_run(GOOD_HW) == (0, -1, "")


def test_error_message_is_truncated_to_the_callers_buffer():
    hw = ffi.new("npu_hw *", {**GOOD_HW, "rows": 0})
    err = ffi.new("char[]", 8)
    rc = lib.npu_run(hw, ffi.NULL, 0, ffi.NULL, 0, ffi.NULL, ffi.NULL, ffi.NULL, err, 8)
    assert rc == 1 and ffi.string(err) == b"hw rows"


def test_a_bad_instruction_before_a_truncated_tail_is_named_first(sim):
    w = _rows(sim, [make_insn("vsum"), make_insn("gemm", k=5, n=1)]).ravel()
    e = _words_error(sim, np.concatenate([w, w[:3]]))
    assert str(e) == "insn 1: gemm k = 5 exceeds the array's 4 rows"


def _bounds(base, dims):
    """Exact lowest and highest address of a box (Python integers), None when empty."""
    if any(n == 0 for n, _ in dims):
        return None
    spans = [(n - 1) * s for n, s in dims]
    return base + sum(min(0, x) for x in spans), base + sum(max(0, x) for x in spans)


i31 = st.one_of(st.integers(0, BIG), st.sampled_from([0, 1, 2, BIG]))
i32 = st.one_of(st.integers(NEG, BIG), st.sampled_from([0, 1, -1, NEG, BIG]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(f=st.fixed_dictionaries({**{k: i31 for k in ("dst", "src", "n0", "n1", "n2", "pt", "pb", "pl", "pr")},
                                 **{k: i32 for k in ("ss0", "ss1", "ds0", "ds1")}}))
def test_ld_bounds_are_exact_for_any_fields(sim, f):
    e0, e1 = f["pt"] + f["n0"] + f["pb"], f["pl"] + f["n1"] + f["pr"]
    spad = _bounds(f["dst"], ((e0, f["ds0"]), (e1, f["ds1"]), (f["n2"], 1)))
    dram = _bounds(f["src"], ((f["n0"], f["ss0"]), (f["n1"], f["ss1"]), (f["n2"], 1)))
    want = None
    if spad is not None and not (spad[0] >= 0 and spad[1] < 4096):
        want = f"insn 0: ld dst: address range [{spad[0]}, {spad[1]}] outside SPAD of 4096 bytes"
    elif dram is not None and not (dram[0] >= 0 and dram[1] < 4096):
        want = f"insn 0: ld src: address range [{dram[0]}, {dram[1]}] outside DRAM of 4096 bytes"
    try:
        sim.run([make_insn("ld", **f)], max_work=10_000)
    except SimError as e:
        assert str(e) == want or (want is None and "work limit" in str(e))
    else:
        assert want is None
