"""Bug injection: every bug in BUGS, applied alone to a copy of the repository, must fail its test.

    python bench/inject_bugs.py                  # all bugs (minutes: each runs its test command)
    python bench/inject_bugs.py --only gemm-acc vrq-rare-plus-1 --keep
    python bench/inject_bugs.py --list

The repository's files (git ls-files: tracked, and new ones not ignored, as
they are in the working tree) are copied to a temporary directory, whose
`npuc` the test runs import (`npuc/isa` and `npuc/sim` are symlinked to `isa/`
and `sim/`, as the install maps them, and PYTHONPATH points there, ahead of an
editable install). The C extension is built into the copy with `sim/build_ffi.py`'s
ffibuilder (the flags `pip install` uses), once for the clean copy and again
after each C bug and after restoring it.

First every test command runs on the unmodified copy and must pass. Then each
bug: its `old` text (which must occur exactly once in `file`) becomes `new`,
the copy is rebuilt when the file is C, the test command runs, the file is
restored. A bug is "caught" when pytest reports failing tests (exit code 1) —
every test in its `must_fail`, when it names some — "SURVIVED" when the tests
pass (or one of `must_fail` does), "ERROR" for anything else (a build failure,
no tests collected, a timeout): an error is a broken table entry, not a catch.
Hypothesis runs without its shrink phase (a plugin profile; the tests' example
counts and derandomization are theirs).
Exit code 0 when every bug is caught, 1 when one survived or errored, 2 when
the clean copy fails.

The table is plain data on purpose: when a module moves, update `file` (and
`old` if the line changed) here; `--list` checks that every `old` text is
still found exactly once in its file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Bug:
    id: str
    file: str  # path in the repository
    old: str  # exact text, found exactly once in `file`
    new: str
    test: tuple[str, ...]  # pytest arguments (paths relative to the repository root) expected to fail
    why: str  # what the bug is, and why that test must see it
    must_fail: tuple[str, ...] = ()  # tests (parts of node ids) that must each fail; () = any one


# both drivers of the program generator: the fixed corpus and hypothesis (each must fail)
EMU_VS_C = ("tests/sim/test_emulator_vs_c.py", "-k", "programs_agree")
BOTH_AGREE = ("test_corpus_programs_agree", "test_random_programs_agree")
TIMING = ("tests/sim/test_timing.py",)
CHAIN = ("tests/sim/test_gemm_chain.py",)
# ResNet-50: its host Softmax saturates (999 of 1000 outputs -128), so the graph output alone hides the
# bug below (the smaller zoo models' outputs do show it)
ZOO = ("tests/e2e/test_zoo.py::test_simulator_equals_integer_reference", "-k", "resnet50")
FLOAT_ORACLE = ("tests/e2e/test_float_oracle.py",)
EXEC = "csrc/exec.c"
KERNELS = "csrc/kernels.c"

BUGS: list[Bug] = [
    # -- (a) C data path: the emulator-vs-C property test -------------------------------------------
    Bug("vmax-min", EXEC,
        "s->spad[dst + i * ds + j] = x > y ? x : y;",
        "s->spad[dst + i * ds + j] = x < y ? x : y;",
        EMU_VS_C, must_fail=BOTH_AGREE, why="vmax computes the minimum"),
    Bug("gemm-acc", KERNELS,
        "const uint32_t *base = g->mode == 1 ? dst : brow;",
        "const uint32_t *base = brow;",
        EMU_VS_C, must_fail=BOTH_AGREE, why="gemm ignores acc=1 (overwrites instead of accumulating)"),
    Bug("gemm-plus-1", KERNELS,
        "                dst[j] = r;",
        "                dst[j] = r + 1u;",
        EMU_VS_C, must_fail=BOTH_AGREE, why="gemm adds 1 to every output"),
    Bug("gemm16-acc", KERNELS,
        "__m256i e0 = g->mode == 1 ? _mm256_loadu_si256((const __m256i *)o) : b0;",
        "__m256i e0 = b0;",
        ("tests/sim/test_kernels.py",), why="the 16x16 fold's gemm ignores acc=1 in columns 0-7 (the small "
        "array of the random programs never takes that path)"),
    Bug("gemm-row-acc", EXEC,
        "o[j] = acc_add(s, mode == 1 ? o[j] : s->brow[j], s->orow[j], &sat);",
        "o[j] = acc_add(s, mode == 2 ? s->brow[j] : 0u, s->orow[j], &sat);",
        EMU_VS_C, must_fail=BOTH_AGREE, why="gemm off the packed kernel (int16 rows, acc_bits < 32, beyond "
        "the staged tile) ignores acc=1"),
    Bug("gemm-row-plus-1", EXEC,
        "o[j] = acc_add(s, mode == 1 ? o[j] : s->brow[j], s->orow[j], &sat);",
        "o[j] = acc_add(s, mode == 1 ? o[j] : s->brow[j], s->orow[j], &sat) + 1u;",
        EMU_VS_C, must_fail=BOTH_AGREE, why="gemm off the packed kernel adds 1 to every output"),
    Bug("acc-sat-wraps", EXEC,
        "        if (s->hw.acc_bits < 32)\n            v = v > hi ? hi : -hi - 1;",
        "        if (s->hw.acc_bits < 16)\n            v = v > hi ? hi : -hi - 1;",
        ("tests/sim/test_acc_bits.py",), must_fail=("test_a_narrow_accumulator_saturates_and_counts",
                                                    "test_a_fresh_sum_saturates_too"),
        why="a narrow accumulator wraps instead of saturating (still counted)"),
    Bug("int4-nibble-order", KERNELS,
        "            b = j % 2 ? b >> 4 : b & 0xf;",
        "            b = j % 2 ? b & 0xf : b >> 4;",
        EMU_VS_C, must_fail=BOTH_AGREE, why="the packed kernel reads int4 weights high nibble first"),
    Bug("int4-no-sign", KERNELS,
        "dst[2 * j] = (int16_t)(b >= 8 ? b - 16 : b);",
        "dst[2 * j] = (int16_t)b;",
        EMU_VS_C, must_fail=BOTH_AGREE, why="the packed kernel does not sign-extend int4 weights"),
    Bug("int4-row-nibble-order", EXEC,
        "            b = j % 2 ? b >> 4 : b & 0xf;",
        "            b = j % 2 ? b & 0xf : b >> 4;",
        EMU_VS_C, must_fail=BOTH_AGREE, why="gemm off the packed kernel reads int4 weights high nibble first"),
    Bug("int4-row-no-sign", EXEC,
        "out[j] += ar * (b >= 8 ? b - 16 : b); /* sign-extend the nibble */",
        "out[j] += ar * b;",
        EMU_VS_C, must_fail=BOTH_AGREE, why="gemm off the packed kernel does not sign-extend int4 weights"),
    Bug("int16-low-byte-signed", EXEC,
        "a16 ? (int64_t)(uint8_t)a[2 * r] + 256",
        "a16 ? (int64_t)a[2 * r] + 256",
        EMU_VS_C, must_fail=BOTH_AGREE, why="an int16 row's low byte is read as signed"),
    Bug("int16-one-pass", EXEC,
        "phase[1] = npu_sat_mul(phase[1], a16 ? (uint64_t)s->hw.act16_passes : 1u);",
        "phase[1] = npu_sat_mul(phase[1], 1u);",
        ("tests/sim/test_gemm_int16.py",), must_fail=("test_int16_rows_are_a_matrix_product",),
        why="int16 rows stream once whatever act16_passes"),
    Bug("acc-sat-uncounted", EXEC,
        "        *sat += 1;\n",
        "",
        ("tests/sim/test_acc_bits.py",), must_fail=("test_a_narrow_accumulator_saturates_and_counts",),
        why="saturations are not counted"),
    Bug("acc-wrap-uncounted", KERNELS,
        "                w += ((r ^ e) & (r ^ x)) >> 31;\n",
        "",
        ("tests/sim/test_acc_bits.py",), must_fail=("test_32_bits_wraps_as_before_and_counts_the_wraps",),
        why="the packed kernel does not count wrapped sums"),
    Bug("gemm16-wrap-uncounted", KERNELS,
        "cnt = _mm256_add_epi32(cnt, _mm256_add_epi32(_mm256_srli_epi32(v0, 31), _mm256_srli_epi32(v1, 31)));",
        "cnt = _mm256_add_epi32(cnt, _mm256_srli_epi32(v0, 31));",
        ("tests/sim/test_widths_dataflows.py", "-k", "packed_kernel_counts_wraps"),
        why="the 16x16 fold counts the wraps of columns 0-7 only"),
    Bug("vrq-plus-1", KERNELS,
        "int64_t r = npu_round_shift(t, npu_i32(acc[sh + j]), RND) + zp;",
        "int64_t r = npu_round_shift(t, npu_i32(acc[sh + j]), RND) + zp + 1;",
        EMU_VS_C, must_fail=BOTH_AGREE, why="vrq adds 1 before the clamp"),
    Bug("vadd-plus-1", EXEC,
        "int64_t r = npu_round_shift(t, f[NPU_F_VADD_SH], f[NPU_F_VADD_RND]) + f[NPU_F_VADD_ZP];",
        "int64_t r = npu_round_shift(t, f[NPU_F_VADD_SH], f[NPU_F_VADD_RND]) + f[NPU_F_VADD_ZP] + 1;",
        EMU_VS_C, must_fail=BOTH_AGREE, why="vadd adds 1 before the clamp"),
    Bug("vmul-plus-1", EXEC,
        "int64_t r = npu_round_shift(t, f[NPU_F_VMUL_SH], f[NPU_F_VMUL_RND]) + f[NPU_F_VMUL_ZP];",
        "int64_t r = npu_round_shift(t, f[NPU_F_VMUL_SH], f[NPU_F_VMUL_RND]) + f[NPU_F_VMUL_ZP] + 1;",
        EMU_VS_C, must_fail=BOTH_AGREE, why="vmul adds 1 before the clamp"),
    Bug("vlut-neighbour", EXEC,
        "s->spad[dst + i * ds + j] = s->spad[tab + j * ts + x + 128];",
        "s->spad[dst + i * ds + j] = s->spad[tab + j * ts + ((x + 128) ^ 1)];",
        EMU_VS_C, must_fail=BOTH_AGREE, why="vlut reads the neighbouring table entry (inside the table)"),
    Bug("vaddv-no-vector", EXEC,
        "s->acc[dst + i * ds + j] = s->acc[src + i * ss + j] + s->acc[vec + j];",
        "s->acc[dst + i * ds + j] = s->acc[src + i * ss + j];",
        EMU_VS_C, must_fail=BOTH_AGREE, why="vaddv drops the broadcast vector (a copy)"),
    Bug("vsum-low-bit", EXEC,
        "d[j] += (uint32_t)(int32_t)row[j];",
        "d[j] += (uint32_t)(int32_t)(row[j] & ~1);",
        EMU_VS_C, must_fail=BOTH_AGREE, why="vsum drops the low bit of every element"),
    Bug("ties-up", "csrc/kernels.h",
        "return q + (rem > half || (rem == half && q % 2 != 0));",
        "return q + (rem >= half);",
        EMU_VS_C, must_fail=BOTH_AGREE, why="round half to even rounds ties up (vrq, vadd, vmul)"),
    Bug("ld-fill-zero", EXEC,
        "memset(d, f[NPU_F_LD_FILL], (size_t)n2);",
        "memset(d, 0, (size_t)n2);",
        EMU_VS_C, must_fail=BOTH_AGREE, why="ld fills the padding with 0 instead of `fill`"),
    Bug("lda-byte-order", EXEC,
        "d[i1] = load_le32(p + 4 * i1);",
        "d[i1] = __builtin_bswap32(load_le32(p + 4 * i1));",
        EMU_VS_C, must_fail=BOTH_AGREE, why="lda reads big-endian words"),
    # -- (b) a rare error that a saturating host Softmax hides: the zoo's NPU tensors ---------------
    Bug("vrq-rare-plus-1", KERNELS,
        "int64_t r = npu_round_shift(t, npu_i32(acc[sh + j]), RND) + zp;",
        "int64_t r = npu_round_shift(t, npu_i32(acc[sh + j]), RND) + zp + ((t & 255) == 77);",
        ZOO, "vrq adds 1 to about 1/256 of its results (those whose product has low byte 77)"),
    # -- (c) the compiler's own tables and multipliers, against the ONNX float definition ----------
    Bug("avgpool-count-minus-1", "npuc/passes/quantize/conv.py",
        "ratio = [qi.scale / (k * qo.scale) for k in counts]",
        "ratio = [qi.scale / (max(k - 1, 1) * qo.scale) for k in counts]",
        FLOAT_ORACLE, "AveragePool divides by count - 1", must_fail=("test_average_pool",)),
    Bug("lut-twice-input-scale", "npuc/passes/quantize/vector.py",
        "lut_params(node), qi.scale, qi.zp,",
        "lut_params(node), 2 * qi.scale, qi.zp,",
        FLOAT_ORACLE, "a Lut table is built with twice the input scale", must_fail=("test_lut_table",)),
    Bug("requant-shift-plus-1", "npuc/passes/quantize/layout.py",
        "ma, sh = 1, qi.exp - qo.exp",
        "ma, sh = 1, qi.exp - qo.exp + 1",
        FLOAT_ORACLE, "a pow2 Requant shifts one bit too far (halves the value)", must_fail=("test_requant",)),
    # -- (d) cycle formulas of ISA.md: the timing tests ----------------------------------------------
    Bug("gemm-cost-2C", EXEC,
        "phase[2] = (uint64_t)(s->hw.rows + s->hw.cols - 2);",
        "phase[2] = (uint64_t)(2 * s->hw.cols - s->hw.rows - 2);",
        TIMING, "gemm costs 2C + M - 2 (equal to 2R + C + M - 2 when R = 4, C = 8)"),
    Bug("gemm-cost-4R", EXEC,
        "phase[2] = (uint64_t)(s->hw.rows + s->hw.cols - 2);",
        "phase[2] = (uint64_t)(3 * s->hw.rows - 2);",
        TIMING, "gemm costs 4R + M - 2 (equal to 2R + C + M - 2 when R = 4, C = 8)"),
    Bug("os-preloads", EXEC,
        "phase[0] = df == NPU_HW_DATAFLOW_OS ? 0 : (uint64_t)s->hw.rows;",
        "phase[0] = (uint64_t)s->hw.rows;",
        EMU_VS_C, "the output-stationary array pays an R-cycle preload (it has nothing to preload)"),
    Bug("is-streams-rows", EXEC,
        "phase[1] = df == NPU_HW_DATAFLOW_OS ? k : df == NPU_HW_DATAFLOW_IS ? n : m;",
        "phase[1] = df == NPU_HW_DATAFLOW_OS ? k : m;",
        EMU_VS_C, "the input-stationary array streams the M rows instead of the n weight columns"),
    Bug("dwc-cost-one-tap", EXEC,
        "npu_ceil_div((uint64_t)taps, (uint64_t)s->hw.dw_taps));",
        "(uint64_t)1);",
        ("tests/sim/test_dwc.py",), "the depthwise engine takes every kernel tap in one step, whatever its taps"),
    Bug("dwc-no-bias", EXEC,
        "int64_t acc = npu_i32(s->acc[par + j] + (uint32_t)sum);",
        "int64_t acc = sum;",
        ("tests/sim/test_dwc.py",), "dwc leaves out the bias"),
    Bug("gemm-chain-own-rows", EXEC,
        "cost = npu_sat_add(phase[1], phase[0] > s->array.stream ? phase[0] - s->array.stream : 0);",
        "cost = phase[1] > phase[0] ? phase[1] : phase[0];",
        CHAIN, "a chained gemm costs max(M, R) of its own rows (equal when a chain's gemms have one M)"),
    Bug("gemm-chain-ignores-tokens", EXEC,
        "*chained = s->hw.fold_overlap && s->array.last_gemm && s->ready <= s->array.start;",
        "*chained = s->hw.fold_overlap && s->array.last_gemm;",
        CHAIN, "a gemm whose token arrives after the previous gemm started still chains"),
    Bug("ld-burst-dst-stride", EXEC,
        "*cost = dma_xfer(s, n0, n1, n2, ss1 == n2);",
        "*cost = dma_xfer(s, n0, n1, n2, ds1 == n2);",
        TIMING, "ld decides one burst per row from the SPAD stride instead of the DRAM stride"),
    Bug("ld-cost-padding", EXEC,
        "*cost = dma_xfer(s, n0, n1, n2, ss1 == n2);",
        "*cost = dma_xfer(s, e0, e1, n2, ss1 == n2);",
        TIMING, "ld charges DRAM transfer for the padding too"),
    Bug("lda-burst-per-word", EXEC,
        "*cost = dma_xfer(s, n0, 1, 4 * n1, 0);",
        "*cost = dma_xfer(s, n0, n1, 4, 0);",
        TIMING, "lda moves one burst per word instead of one per row (equal when BW = 4)"),
    Bug("st-burst-src-stride", EXEC,
        "*cost = dma_xfer(s, n0, n1, n2, ds1 == n2);",
        "*cost = dma_xfer(s, n0, n1, n2, ss1 == n2);",
        TIMING, "st decides one burst per row from the SPAD stride instead of the DRAM stride"),
    Bug("vaddv-cost-packed", EXEC,
        "*cost = vec_cost(s, m, n);\n    if (elems == 0)\n        return 0;\n"
        "    s->stats.acc_rd += 4 * (elems + (uint64_t)n);",
        "*cost = vec_cost(s, 1, m * n);\n    if (elems == 0)\n        return 0;\n"
        "    s->stats.acc_rd += 4 * (elems + (uint64_t)n);",
        TIMING, "vaddv costs VL + ceil(m*n / L): rows packed across the lanes"),
    Bug("vrq-cost-rows-as-lanes", EXEC,
        "*cost = vec_cost(s, m, n);\n    if (elems == 0)\n        return 0;\n"
        "    s->stats.acc_rd += 4 * (elems + 2 * (uint64_t)n);",
        "*cost = (uint64_t)s->hw.vec_latency\n"
        "            + (uint64_t)m * npu_ceil_div((uint64_t)n, (uint64_t)s->hw.rows);\n"
        "    if (elems == 0)\n        return 0;\n    s->stats.acc_rd += 4 * (elems + 2 * (uint64_t)n);",
        TIMING, "vrq counts the array's rows as its lanes (equal when R = L)"),
    Bug("vmax-cost-swapped", EXEC,
        "*cost = vec_cost(s, m, n);\n    if (elems == 0)\n        return 0;\n"
        "    s->stats.spad_rd += 2 * elems;\n    s->stats.spad_wr += elems;\n    s->stats.vec_ops += elems;\n"
        "    /* element by element, as the Action reads: dst may alias a or b */\n"
        "    for (int64_t i = 0; i < m; i++) {",
        "*cost = vec_cost(s, n, m);\n    if (elems == 0)\n        return 0;\n"
        "    s->stats.spad_rd += 2 * elems;\n    s->stats.spad_wr += elems;\n    s->stats.vec_ops += elems;\n"
        "    /* element by element, as the Action reads: dst may alias a or b */\n"
        "    for (int64_t i = 0; i < m; i++) {",
        TIMING, "vmax costs VL + n * ceil(m / L): rows and columns swapped"),
    Bug("vsum-cost-one-row", EXEC,
        "*cost = vec_cost(s, m, n);\n    if (n == 0)",
        "*cost = vec_cost(s, 1, n);\n    if (n == 0)",
        TIMING, "vsum costs one row, VL + ceil(n / L), whatever m"),
    Bug("vadd-cost-four-lanes", EXEC,
        "return exec_binary(s, idx, in, cost, \"vadd\", NPU_F_VADD_LO, NPU_F_VADD_HI, vadd_one);",
        "int rc = exec_binary(s, idx, in, cost, \"vadd\", NPU_F_VADD_LO, NPU_F_VADD_HI, vadd_one);\n"
        "    *cost = (uint64_t)s->hw.vec_latency\n"
        "            + (uint64_t)in->f[NPU_F_VADD_M] * npu_ceil_div((uint64_t)in->f[NPU_F_VADD_N], 4);\n"
        "    return rc;",
        TIMING, "vadd assumes 4 lanes (equal when L = 4)"),
    Bug("vlut-cost-no-lanes", EXEC,
        "*cost = vec_cost(s, m, n);\n    if (elems == 0)\n        return 0;\n"
        "    s->stats.spad_rd += 2 * elems; /* the source byte",
        "*cost = vec_cost(s, m * n, 1);\n    if (elems == 0)\n        return 0;\n"
        "    s->stats.spad_rd += 2 * elems; /* the source byte",
        TIMING, "vlut does one lookup per cycle: VL + m*n"),
    Bug("vmul-cost-no-latency", EXEC,
        "return exec_binary(s, idx, in, cost, \"vmul\", NPU_F_VMUL_LO, NPU_F_VMUL_HI, vmul_one);",
        "int rc = exec_binary(s, idx, in, cost, \"vmul\", NPU_F_VMUL_LO, NPU_F_VMUL_HI, vmul_one);\n"
        "    *cost -= (uint64_t)s->hw.vec_latency;\n"
        "    return rc;",
        TIMING, "vmul leaves out the pipeline latency: m * ceil(n / L)"),
]


def _is_c(path: str) -> bool:
    return path.startswith("csrc/") and path.endswith((".c", ".h"))


def check_table(root: Path) -> list[str]:
    """The entries whose `old` text is not found exactly once (an outdated table), as messages."""
    problems = []
    ids = [b.id for b in BUGS]
    problems += [f"duplicate id {i}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    for b in BUGS:
        path = root / b.file
        if not path.exists():
            problems.append(f"{b.id}: {b.file} does not exist")
            continue
        n = path.read_text(encoding="utf-8").count(b.old)
        if n != 1:
            problems.append(f"{b.id}: the old text occurs {n} times in {b.file}")
    return problems


# A pytest plugin for the runs: a hypothesis profile without the shrink phase (a failing example
# is all a verdict needs; shrinking it can take a minute). Tests' own settings keep their example
# counts and derandomization; only the phases they leave unset come from the profile.
PLUGIN = "npuc_inject_profile"
PLUGIN_SOURCE = """from hypothesis import Phase, settings
settings.register_profile("npuc-inject", phases=[Phase.explicit, Phase.reuse, Phase.generate])
"""


def setup(tmp: Path) -> Path:
    """The copy of the repository in `tmp` (returned) and the pytest plugin beside it."""
    (tmp / "plugins").mkdir()
    (tmp / "plugins" / f"{PLUGIN}.py").write_text(PLUGIN_SOURCE, encoding="utf-8")
    copy_repo(tmp / "repo")
    return tmp / "repo"


def copy_repo(dst: Path) -> None:
    """The repository's files as they are in the working tree (tracked, and new ones git does not
    ignore), and the import layout of the install."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True).stdout
    for rel in files.decode().split("\0"):
        if not rel or not (ROOT / rel).is_file():
            continue  # a tracked file deleted in the working tree
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dst / rel)
    # pyproject maps npuc.isa -> isa/ and npuc.sim -> sim/
    (dst / "npuc" / "isa").symlink_to(Path("..") / "isa", target_is_directory=True)
    (dst / "npuc" / "sim").symlink_to(Path("..") / "sim", target_is_directory=True)


def build(copy: Path) -> tuple[bool, str]:
    """Build the cffi extension into the copy's sim/ (what `pip install` does); (ok, log)."""
    for old in (copy / "sim").glob("_npusim*.so"):
        old.unlink()  # a failed build must not leave the previous extension behind
    # build_ffi names its sources relative to the repository root, and cffi compiles in `tmpdir`:
    # so the root, where the module npuc.sim._npusim lands in npuc/sim, that is sim/
    script = ("import sys; sys.path.insert(0, 'sim'); import build_ffi; "
              "print(build_ffi.ffibuilder.compile(tmpdir='.'))")
    out = subprocess.run([sys.executable, "-c", script], cwd=copy, capture_output=True, text=True,
                         env=_env(copy))
    if out.returncode != 0 or not list((copy / "sim").glob("_npusim*.so")):
        return False, out.stdout + out.stderr
    return True, ""


def _env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(copy), str(copy.parent / "plugins"), *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def check_imports(copy: Path) -> None:
    """The test runs must import the copy, extension included, not an installed npuc."""
    script = "import npuc, npuc.isa.table, npuc.sim._npusim as m; print(npuc.__file__); print(m.__file__)"
    out = subprocess.run([sys.executable, "-c", script], cwd=copy, capture_output=True, text=True,
                         env=_env(copy), check=True)
    for line in out.stdout.split():
        if not Path(line).is_relative_to(copy):
            raise SystemExit(f"inject_bugs: the copy imports {line}, not its own npuc")


@dataclass
class Outcome:
    rc: int | None  # pytest's exit code, None on a timeout
    seconds: float
    failed: list[str]  # node ids of the failed tests
    tail: str  # the last lines of the output


def run_tests(copy: Path, args: tuple[str, ...], timeout: float) -> Outcome:
    cmd = [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "-p", PLUGIN,
           "--hypothesis-profile=npuc-inject", *args]
    t = time.perf_counter()
    try:
        out = subprocess.run(cmd, cwd=copy, capture_output=True, text=True, env=_env(copy), timeout=timeout)
    except subprocess.TimeoutExpired:
        return Outcome(None, time.perf_counter() - t, [], f"timeout after {timeout:.0f} s")
    lines = (out.stdout + out.stderr).strip().splitlines()
    failed = [ln.split()[1] for ln in lines if ln.startswith("FAILED ")]
    return Outcome(out.returncode, time.perf_counter() - t, failed, "\n".join(lines[-3:]))


def verdict(b: Bug, o: Outcome) -> tuple[str, str]:
    """("caught" | "SURVIVED" | "ERROR", a note: how many tests failed, or why it is not a catch)."""
    if o.rc == 0:
        return "SURVIVED", ""
    if o.rc != 1:
        return "ERROR", o.tail if o.rc is None else f"pytest exit {o.rc}: {o.tail}"
    missed = [name for name in b.must_fail if not any(name in f for f in o.failed)]
    if missed:
        return "SURVIVED", f"these tests passed: {missed}"
    return "caught", f"{len(o.failed)} failed"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="ID", help="run these bugs only")
    ap.add_argument("--list", action="store_true", help="print the table, check it, and exit")
    ap.add_argument("--keep", action="store_true", help="keep the copy (its path is printed)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per test command (default 900)")
    ap.add_argument("--skip-clean", action="store_true", help="do not run the clean copy's tests first")
    args = ap.parse_args(argv)

    problems = check_table(ROOT)
    if args.list:
        for b in BUGS:
            print(f"{b.id:24} {b.file:34} {' '.join(b.test):60} {b.why}")
    if problems:
        print("inject_bugs: the table is out of date:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    if args.list:
        return 0
    bugs = BUGS if not args.only else [b for b in BUGS if b.id in set(args.only)]
    unknown = set(args.only or ()) - {b.id for b in BUGS}
    if unknown:
        print(f"inject_bugs: unknown bug ids {sorted(unknown)}", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="npuc-inject-"))
    try:
        copy = setup(tmp)
        ok, log = build(copy)
        if not ok:
            print(f"inject_bugs: the clean copy does not build:\n{log}", file=sys.stderr)
            return 2
        check_imports(copy)
        print(f"copy: {copy}")
        if not args.skip_clean:
            for test in dict.fromkeys(b.test for b in bugs):  # each command once, in table order
                o = run_tests(copy, test, args.timeout)
                print(f"clean    {' '.join(test)}: exit {o.rc} in {o.seconds:.0f} s", flush=True)
                if o.rc != 0:
                    print(f"inject_bugs: the clean copy fails {' '.join(test)}:\n{o.tail}", file=sys.stderr)
                    return 2
        results = []
        dirty = False  # the built extension is not the clean sources'
        for b in bugs:
            path = copy / b.file
            text = path.read_text(encoding="utf-8")
            path.write_text(text.replace(b.old, b.new, 1), encoding="utf-8")
            try:
                if _is_c(b.file) or dirty:
                    ok, log = build(copy)
                    dirty = _is_c(b.file)
                else:
                    ok, log = True, ""
                if not ok:
                    result, secs, note = "ERROR", 0.0, "build failed: " + log.strip().splitlines()[-1]
                else:
                    o = run_tests(copy, b.test, args.timeout)
                    (result, note), secs = verdict(b, o), o.seconds
            finally:
                path.write_text(text, encoding="utf-8")
            results.append((b, result, secs))
            note = f" ({note})" if result == "caught" else f"\n         {note}" if note else ""
            print(f"{result:8} {b.id:24} {secs:6.0f} s  {' '.join(b.test)}{note}", flush=True)
        print("\n| bug | file | test that must fail | result | seconds |\n|---|---|---|---|---|")
        for b, result, secs in results:
            print(f"| {b.id}: {b.why} | {b.file} | {' '.join(b.test)} | {result} | {secs:.0f} |")
        bad = [b.id for b, result, _ in results if result != "caught"]
        missed = f"; not caught: {bad}" if bad else ""
        print(f"\n{len(results) - len(bad)} of {len(results)} bugs caught{missed}")
        return 1 if bad else 0
    finally:
        if args.keep:
            print(f"kept {copy}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
