/* libFuzzer harness for the C simulator core: any bytes -> npu_run -> a result or a clean error.
 *
 *   bash csrc/fuzz/run_fuzz.sh 60s        # build with clang -fsanitize=fuzzer,address,undefined, run 60 s
 *
 * Input layout (little-endian; a short input is zero-padded):
 *
 *   byte  0      flags: bit 0 "repair" the words into well-formed instructions (below),
 *                       bit 1 take the hw fields raw (else reduce them to a small NPU),
 *                       bit 2 record per-instruction cycles and per-layer counters (1 to 4
 *                       layers, by byte 1), bit 3 dump SPAD and ACC,
 *                       bit 4 pass NULL for stats and err_insn (and for opts when there is
 *                       no whole instruction), bit 5 a tiny work limit, bit 6 DRAM words
 *                       in [0, 63] (so that lda can load valid vrq shifts), bit 7 initial
 *                       SPAD and ACC (npu_opts spad_in, acc_in) filled as DRAM is
 *   byte  1      length of the error buffer (0 -> NULL buffer)
 *   bytes 2-37   nine int32: rows, cols, fold_overlap, spad_bytes, acc_words, dram_bw,
 *                dram_latency, vec_lanes, vec_latency (npu_hw); in the small mode the
 *                fold_overlap word's bits 1-5 give acc_bits = 32 - (bits % 17), bit 6
 *                int4_pack = 2 - bit, bit 7 act16_passes = 2 - bit, bits 8-9 dataflow (0 ws,
 *                1 os, 2 is, 3 ws), bits 10-12 depthwise lanes, bits 13-16 depthwise taps - 1
 *                (raw mode: acc_bits = 32, int4_pack = 2, act16_passes = 2, ws, no depthwise
 *                engine)
 *   bytes 38-41  uint32 DRAM size
 *   bytes 42-    the program: uint32 words, NPU_WORDS_PER_INSN per instruction (a partial
 *                last instruction is passed as it is); DRAM is filled with these bytes, cycled
 *
 * Raw words mostly exercise the decoder (an unknown opcode or a field out of range ends the
 * run); "repair" maps each instruction to a valid opcode, clears reserved bits and unused
 * words, and draws each field from its table range, mostly small, so that the units, the
 * token scheduler and every address check run. Real programs from the compiler are in the
 * seed corpus (csrc/fuzz/corpus/, made by csrc/fuzz/make_corpus.py).
 *
 * Beyond "no crash, no sanitizer report" the harness checks the error contract of npusim.h
 * and aborts when it is broken: rc is 0 or 1; on success no error is reported; on failure the
 * message is non-empty, NUL-terminated within the buffer, the instruction index is -1 or a
 * valid index (the count of whole instructions for a truncated stream), and a message with
 * an index starts with "insn <index>: "; recorded cycles never exceed the total.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npu_isa.h"
#include "npusim.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_ASAN 1
#endif
#ifdef FUZZ_ASAN
#include <sanitizer/asan_interface.h>
#else
#define ASAN_POISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#define ASAN_UNPOISON_MEMORY_REGION(addr, size) ((void)(addr), (void)(size))
#endif

#define HEADER_BYTES 42
#define MAX_SMALL_DRAM 16384u
#define MAX_SMALL_SPAD 16384u
#define MAX_SMALL_ACC 4096u
/* What the raw mode may allocate per run. The core accepts up to 1 GiB of SPAD and 2^28
 * ACC words (its own range checks refuse more); larger values are cut to these so that
 * each run stays in the milliseconds. The compiled CNN of the corpus needs 230720 bytes
 * of DRAM. */
#define MAX_RAW_DRAM (512u * 1024u)
#define MAX_RAW_SPAD (1 << 18)
#define MAX_RAW_ACC (1 << 16)
#define WORK_LIMIT 16384u /* elements processed per run: keeps each run well under a millisecond */

typedef struct {
    int64_t lo, hi;
} range;

#define OPCODE_OF(name, OPCODE, UNIT, NFIELDS) OPCODE,
static const uint8_t OPCODES[NPU_NUM_INSNS] = {NPU_INSNS(OPCODE_OF)};
#undef OPCODE_OF
#define NFIELDS_OF(name, OPCODE, UNIT, NFIELDS) NFIELDS,
static const int NFIELDS[NPU_NUM_INSNS] = {NPU_INSNS(NFIELDS_OF)};
#undef NFIELDS_OF
#define FIELDS_OF(name, OPCODE, UNIT, NFIELDS) npu_fields_##name,
static const npu_field_range *const FIELDS[NPU_NUM_INSNS] = {NPU_INSNS(FIELDS_OF)};
#undef FIELDS_OF

/* DRAM lives at the end of one static buffer: a fresh malloc of up to 512 KiB per run costs
 * page faults that dominated the run time. The bytes before it are poisoned and the buffer's
 * ASan redzone follows it, so an access outside [dram, dram + size) is still reported. */
static uint8_t DRAM_BUF[MAX_RAW_DRAM];

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int32_t as_i32(uint32_t u)
{
    return u <= INT32_MAX ? (int32_t)u : (int32_t)(u - 2147483648u) - INT32_MAX - 1;
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* A field value inside [lo, hi] from one word: mostly small, sometimes raw, sometimes an edge. */
static uint32_t field_value(uint32_t w, int64_t lo, int64_t hi)
{
    uint32_t sel = w >> 29;
    int64_t v;
    if (sel < 6)
        v = lo < 0 ? (int64_t)(int8_t)(w & 0xffu) : (int64_t)(w & 0xffu) + lo;
    else if (sel == 6)
        v = as_i32(w);
    else {
        const int64_t edges[8] = {lo, hi, 0, 1, -1, hi - 1, lo + 1, 65536};
        v = edges[w & 7u];
    }
    return (uint32_t)clamp(v, lo, hi);
}

static void repair(uint32_t *insn)
{
    int kind = (int)((insn[0] & 0xffu) % NPU_NUM_INSNS);
    insn[0] = OPCODES[kind] | (insn[0] & 0xffff0000u);
    for (int i = 0; i < NFIELDS[kind]; i++)
        insn[NPU_HEADER_WORDS + i] = field_value(insn[NPU_HEADER_WORDS + i], FIELDS[kind][i].lo, FIELDS[kind][i].hi);
    for (int i = NPU_HEADER_WORDS + NFIELDS[kind]; i < NPU_WORDS_PER_INSN; i++)
        insn[i] = 0;
}

static void hw_of(const uint8_t *h, int raw, npu_hw *hw)
{
    int32_t v[9];
    for (int i = 0; i < 9; i++)
        v[i] = as_i32(le32(h + 4 * i));
    if (raw) {
        hw->rows = v[0];
        hw->cols = v[1];
        hw->fold_overlap = v[2];
        hw->spad_bytes = v[3] > MAX_RAW_SPAD ? MAX_RAW_SPAD + (v[3] & 0xff) : v[3];
        hw->acc_words = v[4] > MAX_RAW_ACC ? MAX_RAW_ACC + (v[4] & 0xff) : v[4];
        hw->dram_bw = v[5];
        hw->dram_latency = v[6];
        hw->vec_lanes = v[7];
        hw->vec_latency = v[8];
        hw->acc_bits = 32;
        hw->int4_pack = 2;
        hw->act16_passes = 2;
        hw->dataflow = 0;
        hw->dw_lanes = 0;
        hw->dw_taps = 9;
        return;
    }
    hw->rows = 1 + (int32_t)((uint32_t)v[0] % 32u);
    hw->cols = 1 + (int32_t)((uint32_t)v[1] % 32u);
    hw->fold_overlap = (int32_t)((uint32_t)v[2] % 2u);
    hw->spad_bytes = 1 + (int32_t)((uint32_t)v[3] % MAX_SMALL_SPAD);
    hw->acc_words = 1 + (int32_t)((uint32_t)v[4] % MAX_SMALL_ACC);
    hw->dram_bw = 1 + (int32_t)((uint32_t)v[5] % 64u);
    hw->dram_latency = (int32_t)((uint32_t)v[6] % 256u);
    hw->vec_lanes = 1 + (int32_t)((uint32_t)v[7] % 32u);
    hw->vec_latency = (int32_t)((uint32_t)v[8] % 16u);
    /* the fold_overlap word's other bits: 0 gives acc_bits = 32, int4_pack = 2 */
    hw->acc_bits = 32 - (int32_t)((((uint32_t)v[2] >> 1) & 31u) % 17u);
    hw->int4_pack = 2 - (int32_t)(((uint32_t)v[2] >> 6) & 1u);
    hw->act16_passes = 2 - (int32_t)(((uint32_t)v[2] >> 7) & 1u);
    /* bits 8-9 the dataflow (ws, os, is; 3 is ws), bits 10-12 the depthwise lanes (0: no engine),
     * bits 13-16 its taps - 1 */
    hw->dataflow = (int32_t)((((uint32_t)v[2] >> 8) & 3u) % 3u);
    hw->dw_lanes = (int32_t)(((uint32_t)v[2] >> 10) & 7u);
    hw->dw_taps = 1 + (int32_t)(((uint32_t)v[2] >> 13) & 15u);
}

/* DRAM = the program bytes, cycled; with small_words, every aligned 4-byte word reduced to
 * [0, 63] (valid vrq shifts). The pattern is made once and the buffer doubled with memcpy:
 * a per-byte or per-word loop over 0.5 MB costs milliseconds under ASan. */
static void fill_dram(uint8_t *dram, size_t size, const uint8_t *body, size_t body_len, int small_words)
{
    uint8_t pat[4 * 2048];
    size_t plen = body_len, filled;
    if (size == 0)
        return;
    if (small_words) {
        plen = plen / 4 * 4; /* a whole number of words keeps the words aligned when cycled */
        if (plen > sizeof pat)
            plen = sizeof pat;
        if (plen == 0) {
            memset(dram, 0, size);
            return;
        }
        for (size_t i = 0; i < plen; i++)
            pat[i] = i % 4 == 0 ? body[i] & 0x3fu : 0;
        body = pat;
    } else if (plen == 0) {
        memset(dram, 0x5a, size);
        return;
    }
    filled = plen < size ? plen : size;
    memcpy(dram, body, filled);
    while (filled < size) {
        size_t n = size - filled < filled ? size - filled : filled;
        memcpy(dram + filled, dram, n);
        filled += n;
    }
}

/* FUZZ_SIM_VERBOSE=1: print each run's outcome (to check seeds: ./fuzz_sim corpus/FILE ...). */
static int verbose(void)
{
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("FUZZ_SIM_VERBOSE");
        v = e != NULL && e[0] == '1';
    }
    return v;
}

static void broken(const char *what, int rc, int64_t err_insn, const char *msg)
{
    fprintf(stderr, "fuzz_sim: error contract broken: %s (rc %d, err_insn %lld, message \"%s\")\n", what, rc,
            (long long)err_insn, msg != NULL ? msg : "(null)");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t head[HEADER_BYTES] = {0};
    size_t body = size > HEADER_BYTES ? size - HEADER_BYTES : 0;
    size_t n_words = body / 4, n_insns = n_words / NPU_WORDS_PER_INSN;
    uint8_t flags;
    size_t err_len, dram_size;
    uint32_t *words;
    uint8_t *dram;
    uint64_t *start = NULL, *end = NULL;
    npu_stats *layers = NULL;
    int8_t *spad = NULL, *spad_in = NULL;
    int32_t *acc = NULL, *acc_in = NULL;
    char *err = NULL;
    npu_hw hw;
    npu_opts opts;
    npu_stats stats;
    int64_t err_insn = -2;
    int rc;

    memcpy(head, data, size < HEADER_BYTES ? size : HEADER_BYTES);
    flags = head[0];
    err_len = head[1];
    hw_of(head + 2, flags & 2, &hw);
    dram_size = le32(head + 38);
    dram_size = (flags & 2) ? (dram_size > MAX_RAW_DRAM ? MAX_RAW_DRAM : dram_size) : dram_size % (MAX_SMALL_DRAM + 1);

    /* exact-size heap copies, so that ASan sees any access past their ends */
    words = malloc(n_words ? n_words * 4 : 1);
    dram = DRAM_BUF + (MAX_RAW_DRAM - dram_size);
    ASAN_POISON_MEMORY_REGION(DRAM_BUF, MAX_RAW_DRAM - dram_size);
    if (words == NULL)
        abort();
    for (size_t i = 0; i < n_words; i++)
        words[i] = le32(data + HEADER_BYTES + 4 * i);
    if (flags & 1)
        for (size_t i = 0; i < n_insns; i++)
            repair(words + i * NPU_WORDS_PER_INSN);
    fill_dram(dram, dram_size, data + HEADER_BYTES, body, flags & 64);

    memset(&opts, 0, sizeof opts);
    opts.max_work = (flags & 32) ? (uint64_t)(head[1] + 1) : WORK_LIMIT;
    if (flags & 4) {
        start = calloc(n_insns ? n_insns : 1, sizeof *start);
        end = calloc(n_insns ? n_insns : 1, sizeof *end);
        opts.insn_start = start;
        opts.insn_end = end;
        opts.n_layers = 1 + (size_t)(head[1] % 4); /* exact size: ASan sees a write past it */
        layers = calloc(opts.n_layers, sizeof *layers);
        if (start == NULL || end == NULL || layers == NULL)
            abort();
        opts.layer_stats = layers;
    }
    if ((flags & 8) && hw.spad_bytes > 0 && hw.acc_words > 0 && hw.spad_bytes <= MAX_RAW_SPAD + 0xff &&
        hw.acc_words <= MAX_RAW_ACC + 0xff) {
        spad = malloc((size_t)hw.spad_bytes);
        acc = malloc((size_t)hw.acc_words * sizeof *acc);
        opts.spad_out = spad;
        opts.acc_out = acc;
    }
    if ((flags & 128) && hw.spad_bytes > 0 && hw.acc_words > 0 && hw.spad_bytes <= MAX_RAW_SPAD + 0xff &&
        hw.acc_words <= MAX_RAW_ACC + 0xff) {
        /* exact sizes, as the core reads hw.spad_bytes bytes and hw.acc_words words */
        spad_in = malloc((size_t)hw.spad_bytes);
        acc_in = malloc((size_t)hw.acc_words * sizeof *acc_in);
        if (spad_in == NULL || acc_in == NULL)
            abort();
        fill_dram((uint8_t *)spad_in, (size_t)hw.spad_bytes, data + HEADER_BYTES, body, 0);
        fill_dram((uint8_t *)acc_in, (size_t)hw.acc_words * sizeof *acc_in, data + HEADER_BYTES, body, flags & 64);
        opts.spad_in = spad_in;
        opts.acc_in = acc_in;
    }
    if (err_len > 0)
        err = malloc(err_len);

    if (flags & 16) {
        /* NULL opts means no work limit: only for a program with no whole instruction */
        rc = npu_run(&hw, words, n_words, dram, dram_size, n_insns == 0 ? NULL : &opts, NULL, NULL, err,
                     err_len);
        if (rc != 0 && rc != 1)
            broken("rc is neither 0 nor 1", rc, -2, err);
    } else {
        rc = npu_run(&hw, words, n_words, dram, dram_size, &opts, &stats, &err_insn, err, err_len);
        if (rc != 0 && rc != 1)
            broken("rc is neither 0 nor 1", rc, err_insn, err);
        if (rc == 0 && err_insn != -1)
            broken("success with an instruction index", rc, err_insn, err);
        if (rc != 0 && (err_insn < -1 || err_insn > (int64_t)n_insns))
            broken("instruction index out of range", rc, err_insn, err);
        if (err != NULL) {
            if (memchr(err, '\0', err_len) == NULL)
                broken("message not NUL-terminated", rc, err_insn, NULL);
            if (rc == 0 && err[0] != '\0')
                broken("success with a message", rc, err_insn, err);
            if (rc != 0 && err_len > 1 && err[0] == '\0')
                broken("failure without a message", rc, err_insn, err);
            if (rc != 0 && err_insn >= 0 && err_len >= 64) {
                char prefix[40];
                snprintf(prefix, sizeof prefix, "insn %lld: ", (long long)err_insn);
                if (strncmp(err, prefix, strlen(prefix)) != 0)
                    broken("message does not start with its instruction", rc, err_insn, err);
            }
        }
        if (verbose())
            fprintf(stderr, "fuzz_sim: rc %d, insns %lu, cycles %llu, err_insn %lld: %s\n", rc,
                    (unsigned long)n_insns, (unsigned long long)stats.cycles, (long long)err_insn,
                    err != NULL ? err : "");
        if (rc == 0 && start != NULL)
            for (size_t i = 0; i < n_insns; i++)
                if (start[i] > end[i] || end[i] > stats.cycles)
                    broken("an instruction's cycles outside the run", rc, err_insn, err);
    }

    free(words);
    ASAN_UNPOISON_MEMORY_REGION(DRAM_BUF, MAX_RAW_DRAM);
    if (rc == 0 && layers != NULL && !(flags & 16)) {
        /* the layers' shares never exceed the run's counters (instructions of layers past
         * n_layers are not counted) */
        uint64_t macs = 0;
        for (size_t i = 0; i < opts.n_layers; i++)
            macs += layers[i].macs;
        if (macs > stats.macs)
            broken("the layers' MACs exceed the run's", rc, err_insn, err);
    }
    free(layers);
    free(start);
    free(end);
    free(spad);
    free(acc);
    free(spad_in);
    free(acc_in);
    free(err);
    return 0;
}
