"""Write the seed corpus of the libFuzzer harness (csrc/fuzz/fuzz_sim.c) into csrc/fuzz/corpus/.

    python csrc/fuzz/make_corpus.py          # from the repository root, with npuc installed

Seeds, each in the harness's input layout (see fuzz_sim.c): hand-made
micro-programs that run every instruction, one of each error class, and
windows of the bundled CNN compiled for the `tiny` preset. The output is
deterministic; the corpus is committed, so CI does not need to run this.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from pathlib import Path

import numpy as np

from npuc.hw import HwConfig, load_hw
from npuc.isa.encoding import encode
from npuc.isa.program import Insn, make_insn
from npuc.isa.table import WORDS_PER_INSN

OUT = Path(__file__).with_name("corpus")
REPAIR, RAW_HW, TRACE, DUMP, NULLS, TINY_WORK, SMALL_WORDS = 1, 2, 4, 8, 16, 32, 64
INITIAL = 128  # SPAD and ACC start from the input bytes
MAX_SEED_BYTES = 8192  # the harness runs with -max_len=8192
SMALL = HwConfig(rows=4, cols=8, spad_kib=4, acc_kib=4, dram_bw=4, dram_latency=10, vec_lanes=4, vec_latency=3)
BIG, NEG = 2**31 - 1, -(2**31)


HEADER = "<BB9iI"  # flags, error-buffer length, npu_hw member by member, DRAM size
HEADER_BYTES = struct.calcsize(HEADER)


def header(hw: HwConfig, dram_size: int, flags: int, err_len: int = 200) -> bytes:
    """The 42-byte header: flags, error-buffer length, npu_hw as int32, DRAM size."""
    fields = (hw.rows, hw.cols, int(hw.fold_overlap), hw.spad_bytes, hw.acc_words, hw.dram_bw, hw.dram_latency,
              hw.vec_lanes, hw.vec_latency)
    if not flags & RAW_HW:  # the small mode reduces each value modulo its range: store value - offset
        # the fold_overlap word's upper bits carry 32 - acc_bits, 2 - int4_pack, 2 - act16_passes (0: defaults)
        # then the dataflow, the depthwise lanes and taps - 1 (fuzz_sim.c, hw_of)
        overlap = (int(hw.fold_overlap) | (32 - hw.acc_bits) << 1 | (2 - hw.int4_pack) << 6
                   | (2 - hw.act16_passes) << 7 | ("ws", "os", "is").index(hw.dataflow) << 8
                   | min(hw.lanes, 7) << 10 | (min(hw.taps, 16) - 1) << 13)
        fields = (hw.rows - 1, hw.cols - 1, overlap, hw.spad_bytes - 1, hw.acc_words - 1,
                  hw.dram_bw - 1, hw.dram_latency, hw.vec_lanes - 1, hw.vec_latency)
    return struct.pack(HEADER, flags, err_len, *fields, dram_size)


def seed(insns: list[Insn] | np.ndarray, hw: HwConfig = SMALL, dram: int = 4096,
         flags: int = TRACE | DUMP, err_len: int = 200) -> bytes:
    words = insns if isinstance(insns, np.ndarray) else encode(insns)
    return header(hw, dram, flags, err_len) + np.asarray(words, "<u4").tobytes()


def chain(*insns: Insn) -> list[Insn]:
    """Serialize with tokens: instruction i+1 waits for instruction i."""
    out = []
    for i, insn in enumerate(insns):
        wait = 1 << ((i - 1) % 16) if i > 0 else 0
        signal = 1 << (i % 16) if i < len(insns) - 1 else 0
        out.append(Insn(insn.op, insn.fields, wait, signal, insn.layer))
    return out


ins = make_insn  # short: the seeds below are dense


def micro() -> dict[str, bytes]:
    """Small programs on the SMALL NPU (SPAD 4096 B, ACC 1024 words, DRAM 4096 B)."""
    ld = ins("ld", dst=0, src=0, n0=4, n1=4, n2=4, ss0=16, ss1=4, ds0=24, ds1=4, pt=1, pb=1, pl=1, pr=1, fill=-3)
    lda = ins("lda", dst=512, src=256, n0=2, n1=8, ss0=32, ds0=8)
    gemm = ins("gemm", dst=0, a=0, w=256, m0=4, m1=2, k=4, n=8, as0=4, as1=16, ws=8, ds0=8, ds1=32, acc=1)
    vaddv = ins("vaddv", dst=0, src=0, vec=512, m=8, n=8, ds=8, ss=8)
    shifts = ins("lda", dst=600, src=1024, n0=1, n1=16)  # with SMALL_WORDS, DRAM words are valid shifts
    vrq = ins("vrq", dst=1024, src=0, mul=512, sh=600, m=8, n=8, ds=8, ss=8, zp=3, lo=-100, hi=100, rnd=0)
    vrq_up = ins("vrq", dst=1024, src=0, mul=512, sh=600, m=8, n=8, ds=8, ss=8, zp=0, lo=-128, hi=127, rnd=1)
    vrq_tr = ins("vrq", dst=1024, src=0, mul=512, sh=600, m=8, n=8, ds=8, ss=8, zp=-1, lo=-5, hi=5, rnd=2)
    vmax = {"dst": 2048, "a": 1024, "b": 1040, "m": 4, "n": 16, "ds": 16, "as": 16, "bs": -16}
    vsum = ins("vsum", dst=700, src=2048, m=4, n=16, ss=16, acc=0)
    st = ins("st", dst=3000, src=2048, n0=2, n1=2, n2=8, ds0=64, ds1=8, ss0=32, ss1=16)
    vmul = {"dst": 1536, "a": 1024, "b": 1040, "m": 4, "n": 16, "ds": 16, "as": 16, "bs": 0, "za": -3, "zb": 5,
            "mul": -(2**31), "sh": 40, "zp": 2, "lo": -120, "hi": 110, "rnd": 1}
    vlut = ins("vlut", dst=2048, src=1536, tab=0, m=4, n=16, ds=16, ss=16, ts=0)
    vlut_pc = ins("vlut", dst=2048, src=2048, tab=0, m=4, n=8, ds=16, ss=16, ts=256)  # in place, per column
    full = chain(ld, lda, gemm, vaddv, shifts, vrq, vrq_up, vrq_tr, ins("vmax", **vmax), ins("vmul", **vmul),
                 vlut, vlut_pc, vsum, st)
    parallel = [  # no tokens: three units overlap and contend for the DRAM channel
        ins("ld", dst=0, src=0, n0=8, n1=1, n2=64, ss0=64, ss1=64, ds0=64, ds1=64),
        ins("ld", dst=512, src=512, n0=8, n1=8, n2=8, ss0=80, ss1=9, ds0=64, ds1=8),
        ins("gemm", dst=0, a=0, w=0, m0=16, m1=1, k=4, n=8, as0=4, ws=8, ds0=8),
        ins("st", dst=2048, src=0, n0=4, n1=1, n2=100, ds0=100, ds1=100, ss0=100, ss1=100),
        ins("vsum", dst=100, src=0, m=16, n=32, ss=32, acc=1),
    ]
    zero = ([ins(op) for op in ("ld", "lda", "st", "vaddv", "vrq", "vmax", "vsum", "vadd", "vlut", "vmul")]
            + [ins("gemm", k=1, n=1), ins("vlut", tab=BIG, m=0, n=4, ts=BIG)])
    aliasing = chain(
        ins("ld", dst=0, src=0, n0=1, n1=1, n2=4096),
        ins("vmax", dst=0, a=0, b=1, m=100, n=40, ds=40, **{"as": 40, "bs": 40}),
        ins("lda", dst=0, src=0, n0=1, n1=1024),
        ins("vaddv", dst=1, src=0, vec=0, m=63, n=16, ds=16, ss=16),
        ins("gemm", dst=0, a=0, w=0, m0=2, m1=3, k=4, n=8, as0=0, as1=1, ws=0, ds0=0, ds1=8, acc=1),
        ins("vlut", dst=100, src=90, tab=0, m=30, n=16, ds=3, ss=5, ts=64),  # writes into its own tables
        ins("vmul", dst=1, a=0, b=2, m=50, n=30, ds=30, bs=-1, mul=3, sh=1, lo=-128, hi=127, **{"as": 30}),
    )
    # gemm chains: back to back, broken by a vector instruction and by a late token; a bias row
    gemms = [ins("gemm", dst=0, a=0, w=256, m0=m, m1=1, k=4, n=8, as0=4, ws=8, ds0=8, acc=1) for m in (2, 9, 3)]
    chains = [*gemms, ins("vsum", dst=700, src=0, m=1, n=4), *gemms,
              ins("ld", dst=3000, src=0, n0=1, n1=1, n2=64, signal=1),
              Insn("gemm", gemms[0].fields, wait=1),
              ins("gemm", dst=64, a=0, w=256, m0=4, m1=2, k=4, n=8, as0=4, as1=16, ws=8, ds0=8, ds1=32, acc=2,
                  bias=0)]
    serial = HwConfig(**{**SMALL.to_flat(), "fold_overlap": False})
    # int4 weights (w4 = 1): 16 columns from 8-byte weight rows, an odd n, a 16-bit accumulator's add
    # int16 input rows (a16 = 1), with int4 weights too, chained and not
    int16 = chain(ld, lda,
                  ins("gemm", dst=0, a=0, w=256, m0=4, m1=2, k=4, n=8, as0=8, as1=32, ws=8, ds0=8, ds1=32, a16=1),
                  ins("gemm", dst=64, a=2, w=256, m0=3, m1=1, k=3, n=12, as0=8, ws=8, ds0=12, acc=1, a16=1, w4=1))
    int4 = chain(ld, lda,
                 ins("gemm", dst=0, a=0, w=256, m0=4, m1=2, k=4, n=16, as0=4, as1=16, ws=8, ds0=16, ds1=64, w4=1),
                 ins("gemm", dst=128, a=0, w=300, m0=3, m1=1, k=4, n=9, as0=4, ws=5, ds0=9, acc=1, w4=1),
                 ins("gemm", dst=0, a=0, w=256, m0=4, m1=1, k=4, n=16, as0=4, ws=8, ds0=16, acc=2, bias=512, w4=1))
    # the widths in the other dataflows: os (M <= R, n <= int4_pack * C, k beyond R row by row),
    # is (M <= C, k <= R, n beyond C row by row), int4 and int16
    os_widths = chain(ld, lda,
                      ins("gemm", dst=0, a=0, w=256, m0=4, m1=1, k=12, n=16, as0=12, ws=8, ds0=16, w4=1),
                      ins("gemm", dst=64, a=0, w=256, m0=2, m1=2, k=6, n=8, as0=12, as1=24, ws=8, ds0=8, ds1=16,
                          acc=1, a16=1))
    is_widths = chain(ld, lda,
                      ins("gemm", dst=0, a=0, w=256, m0=8, m1=1, k=4, n=24, as0=8, ws=24, ds0=24, a16=1),
                      ins("gemm", dst=200, a=0, w=256, m0=4, m1=2, k=3, n=20, as0=6, as1=24, ws=10, ds0=20, ds1=80,
                          acc=1, w4=1))
    return {
        "micro-gemm-chains": seed(chains, flags=TRACE | DUMP),
        "micro-gemm-chains-serial": seed(chains, hw=serial, flags=TRACE | DUMP),
        "micro-every-insn": seed(full, flags=SMALL_WORDS | TRACE | DUMP),
        "micro-every-insn-big-words": seed(full),
        "micro-every-insn-repaired": seed(full, flags=REPAIR | SMALL_WORDS | TRACE | DUMP),
        "micro-acc-16-bits": seed(full, hw=SMALL.replace(acc_bits=16), flags=TRACE | DUMP),
        "micro-int4-weights": seed(int4, flags=TRACE | DUMP),
        "micro-int4-weights-pack-1": seed(int4[:3], hw=SMALL.replace(int4_pack=1), flags=TRACE | DUMP),
        "micro-int16-rows": seed(int16, flags=TRACE | DUMP),
        "micro-int16-rows-one-pass": seed(int16, hw=SMALL.replace(act16_passes=1), flags=TRACE | DUMP),
        # the widths in the other dataflows: os (n <= int4_pack * C, k beyond R row by row), is (n any)
        "micro-int4-int16-os": seed(os_widths, hw=SMALL.replace(dataflow="os"), flags=TRACE | DUMP),
        "micro-int4-int16-is": seed(is_widths, hw=SMALL.replace(dataflow="is", acc_bits=20), flags=TRACE | DUMP),
        "micro-parallel": seed(parallel),
        "micro-empty-boxes": seed(zero, flags=TRACE),
        "micro-aliasing": seed(aliasing, flags=DUMP),
        "micro-initial-memories": seed(full, flags=INITIAL | SMALL_WORDS | TRACE | DUMP),
        "micro-nulls": seed(full, flags=NULLS),
        "micro-tiny-work": seed(full, flags=TINY_WORK, err_len=40),
        "micro-short-error-buffer": seed(full[:3] + [ins("st", dst=5000, n0=1, n1=1, n2=1)], err_len=5),
    }


def errors() -> dict[str, bytes]:
    """One seed per error class of the decoder and of the run."""
    ok = [ins("vsum", dst=0, m=0, n=0)]
    words = encode(ok * 2)
    out: dict[str, bytes] = {}

    def mutated(name: str, index: int, value: int) -> None:
        w = words.copy()
        w[index] = value & 0xFFFFFFFF
        out[f"error-{name}"] = seed(w)

    mutated("unknown-opcode", WORDS_PER_INSN, 0x7F)
    mutated("reserved-bits", WORDS_PER_INSN, int(words[WORDS_PER_INSN]) | 0x100)
    mutated("field-range", WORDS_PER_INSN + 2 + 2, -1)
    mutated("unused-word", WORDS_PER_INSN + WORDS_PER_INSN - 1, 1)
    out["error-truncated"] = seed(encode(ok * 2)[:-3])
    out["error-deadlock"] = seed([Insn("vsum", ins("vsum").fields, wait=1), Insn("st", ins("st").fields, wait=6)])
    out["error-gemm-too-big"] = seed([ins("gemm", m0=1, m1=1, k=5, n=8)])
    out["error-vrq-lo-hi"] = seed([ins("vrq", m=1, n=1, lo=5, hi=4)])
    out["error-vrq-shift"] = seed(chain(ins("lda", dst=0, src=0, n0=1, n1=4), ins("vrq", sh=0, m=1, n=4, hi=1)))
    out["error-vmul-lo-hi"] = seed([ins("vmul", m=1, n=1, lo=5, hi=4)])
    out["error-vlut-table-box"] = seed([ins("vlut", m=1, n=3, tab=3900, ts=BIG)])
    out["error-vlut-negative-table-stride"] = seed([ins("vlut", m=1, n=2, tab=10, ts=NEG)])
    out["error-box-overflow"] = seed([ins("ld", dst=BIG, n0=BIG, n1=BIG, n2=BIG, ds0=BIG, ds1=NEG, pt=BIG, pb=BIG,
                                        pl=BIG, pr=BIG)])
    out["error-negative-stride"] = seed([ins("vmax", **{"dst": 10, "a": 0, "m": 3, "n": 1, "ds": 1, "as": -1})])
    out["error-work-limit"] = seed([ins("vmax", m=BIG, n=1, ds=0, **{"as": 0, "bs": 0})])
    out["error-dram-box"] = seed([ins("st", dst=4090, src=0, n0=1, n1=1, n2=10)], dram=4096)
    out["error-no-dram"] = seed([ins("st", dst=0, src=0, n0=1, n1=1, n2=1)], dram=0)
    bad_hw = struct.pack(HEADER, RAW_HW | TRACE, 100, 0, 8, 1, 4096, 1024, 4, 10, 4, 3, 4096)
    out["error-raw-hw"] = bad_hw + encode(ok).astype("<u4").tobytes()
    bad_overlap = struct.pack(HEADER, RAW_HW | TRACE, 100, 4, 8, 2, 4096, 1024, 4, 10, 4, 3, 4096)
    out["error-raw-hw-fold-overlap"] = bad_overlap + encode(ok).astype("<u4").tobytes()
    huge_hw = struct.pack(HEADER, RAW_HW, 100, 16, 16, 1, 1 << 30, 1 << 28, 16, 100, 16, 4, 1 << 20)
    out["raw-hw-huge-memories"] = huge_hw + encode(ok).astype("<u4").tobytes()
    out["header-only"] = header(SMALL, 64, TRACE | DUMP)
    out["empty"] = b""
    return out


def runnable(window: np.ndarray) -> np.ndarray:
    """A window of a program with the waits on tokens signalled before it dropped (so it runs)."""
    window = window.copy()
    count = [0] * 16
    for row in window:
        wait, signal = int(row[1]) & 0xFFFF, int(row[1]) >> 16
        for t in range(16):
            if wait >> t & 1:
                if count[t]:
                    count[t] -= 1
                else:
                    wait &= ~(1 << t)
        for t in range(16):
            count[t] += signal >> t & 1
        row[1] = wait | signal << 16
    return window


def cnn_windows() -> dict[str, bytes]:
    """Windows of the bundled CNN compiled for the tiny preset, as raw-hw seeds with its DRAM size."""
    from npuc.compiler import compile_model
    from npuc.examples import SMALL_CNN as MODEL
    from npuc.examples import SMALL_CNN_SAMPLES as SAMPLES

    hw = load_hw("tiny")
    prog = compile_model(MODEL, hw, calib=SAMPLES).program
    words = encode(prog.insns).reshape(-1, WORDS_PER_INSN)
    per_seed = (MAX_SEED_BYTES - HEADER_BYTES) // (4 * WORDS_PER_INSN) // 2  # half the length limit: room to grow
    starts = {0}
    for i in range(1, len(prog.insns)):  # the first instructions of every layer
        if prog.insns[i].layer != prog.insns[i - 1].layer:
            starts.add(i)
    starts |= {len(prog.insns) - per_seed, len(prog.insns) // 2}
    out = {}
    for s in sorted(starts):
        window = runnable(words[s:s + per_seed]).reshape(-1)
        seed_header = header(hw, prog.dram_size, RAW_HW | SMALL_WORDS | TRACE)
        out[f"cnn-tiny-{s:05d}"] = seed_header + window.astype("<u4").tobytes()
    out["cnn-tiny-00000-cut"] = out["cnn-tiny-00000"][:-10]
    return out


def main() -> int:
    seeds = {**micro(), **errors(), **cnn_windows()}
    OUT.mkdir(exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    total = 0
    for name, blob in sorted(seeds.items()):
        assert len(blob) <= MAX_SEED_BYTES, name
        (OUT / name).write_bytes(blob)
        total += len(blob)
    digest = hashlib.sha256(b"".join(seeds[k] for k in sorted(seeds))).hexdigest()[:16]
    print(f"wrote {len(seeds)} seeds, {total} bytes, into {OUT} (digest {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
