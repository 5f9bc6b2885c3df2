"""cffi (out-of-line API mode) build of the C simulator core as `npuc.sim._npusim`.

`pip install .` runs this through setup.py's `cffi_modules`; setuptools runs it
from the repository root, so the paths below are relative to it. Set
NPUC_SANITIZE=1 at build time for an AddressSanitizer + UBSan build
(see sim/sanitize_check.sh).
"""

import os
from glob import glob

from cffi import FFI

CSRC = "csrc"

CDEF = """
typedef struct {
    int32_t rows, cols, spad_bytes, acc_words, dram_bw, dram_latency, vec_lanes, vec_latency;
} npu_hw;

typedef struct {
    uint64_t cycles;
    uint64_t busy[3], token_stall[3], dram_stall[3], insns[3];
    uint64_t macs, dram_rd, dram_wr, spad_rd, spad_wr, acc_rd, acc_wr;
} npu_stats;

#define NPU_TOKEN_MAX 65535

typedef struct {
    uint64_t max_work;
    uint64_t *insn_start, *insn_end;
    int8_t *spad_out;
    int32_t *acc_out;
} npu_opts;

int npu_run(const npu_hw *hw, const uint32_t *words, size_t n_words,
            uint8_t *dram, size_t dram_size, const npu_opts *opts,
            npu_stats *stats, int64_t *err_insn, char *err_msg, size_t err_len);
"""

if os.environ.get("NPUC_SANITIZE") == "1":
    _SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    # -fno-wrapv undoes the -fwrapv of Python's own CFLAGS, which would define signed
    # overflow and so hide it from UBSan
    COMPILE_ARGS = ["-std=c99", "-O1", "-g", "-fno-omit-frame-pointer", "-fno-wrapv", "-Wall", "-Wextra",
                    *_SAN]
    LINK_ARGS = _SAN
else:
    COMPILE_ARGS = ["-std=c99", "-O3", "-march=native", "-Wall", "-Wextra"]
    LINK_ARGS = []

SOURCES = sorted(glob(os.path.join(CSRC, "*.c")))
if not SOURCES:
    raise RuntimeError(f"no C sources in {os.path.abspath(CSRC)}: build from the repository root")

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "npuc.sim._npusim",
    '#include "npusim.h"',
    sources=SOURCES,
    depends=sorted(glob(os.path.join(CSRC, "*.h"))),
    include_dirs=[CSRC],
    extra_compile_args=COMPILE_ARGS,
    extra_link_args=LINK_ARGS,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
