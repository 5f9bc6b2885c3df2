/* Internal state and helpers shared by decode.c, box.c, exec.c and sim.c. */
#ifndef NPU_SIM_INTERNAL_H
#define NPU_SIM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "npu_isa.h"
#include "npusim.h"

#define NPU_ERR_MAX 1024

/* Instruction kinds, numbered in table order (NPU_K_ld, NPU_K_lda, ...). */
#define NPU_KIND(name, OPCODE, UNIT, NFIELDS) NPU_K_##name,
enum npu_kind { NPU_INSNS(NPU_KIND) NPU_K_COUNT };
#undef NPU_KIND

typedef struct {
    const char *mnemonic;
    uint8_t opcode, unit, nfields;
    const npu_field_range *fields;
} npu_insn_spec;

extern const npu_insn_spec npu_specs[NPU_NUM_INSNS];

/* One decoded instruction; fields are range-checked against the table. */
typedef struct {
    uint8_t kind;
    uint16_t wait, signal, layer;
    int32_t f[NPU_MAX_FIELDS];
} npu_insn;

/* A counting semaphore: a min-heap of the cycles its tokens become available. */
typedef struct {
    uint64_t *t;
    uint32_t n, cap;
} npu_sem;

typedef enum { NPU_MEM_DRAM, NPU_MEM_SPAD, NPU_MEM_ACC } npu_mem;

/* The array between instructions of the compute unit (isa/timing.py, ArrayState). */
typedef struct {
    int last_gemm;   /* the compute unit's previous instruction was a gemm */
    uint64_t start;  /* that gemm's start cycle */
    uint64_t stream; /* its streamed rows */
} npu_array;

typedef struct {
    npu_hw hw;
    uint8_t *dram;
    size_t dram_size;
    int8_t *spad;
    uint32_t *acc;          /* int32 words, kept unsigned so adds wrap mod 2^32 */
    npu_gemm_scratch gemm;  /* gemm's packed weight tile and row buffers (kernels.h) */
    int64_t *orow;          /* gemm off the packed kernel (beyond the staged tile, int16 rows, acc_bits < 32):
                             * one output row of exact sums */
    uint32_t *brow;         /* and its bias row (2^16 words in the is dataflow, else int4_pack * cols) */
    npu_insn *insns;
    size_t n_insns;
    npu_sem tok[NPU_NUM_TOKENS];
    uint64_t free_at[NPU_NUM_UNITS];
    uint64_t dram_free;
    npu_array array;        /* the fold pipeline between compute instructions (ISA.md, gemm Cycles) */
    uint64_t start, ready;  /* the executing instruction's start cycle and token readiness */
    uint64_t work;
    size_t n_done;          /* instructions executed so far (the next order_out entry) */
    uint64_t insn_sat;      /* the executing gemm's outputs that left the acc_bits range */
    npu_opts opts;
    npu_stats stats;
    int64_t err_insn;
    char err[NPU_ERR_MAX];
} npu_sim;

/* One strided dimension of a box: `ext` elements `stride` apart. */
typedef struct {
    int64_t ext, stride;
} npu_dim;

/* sim.c: record an error (message prefixed "insn <idx>: " when idx >= 0); returns -1. */
int npu_fail(npu_sim *s, int64_t idx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* decode.c: decode and check every instruction into s->insns. */
int npu_decode(npu_sim *s, const uint32_t *words, size_t n_words);

/* box.c: check that a box lies inside `mem`; an empty box passes. Errors
 * name instruction `idx` and its field number `field` (the box's base). */
int npu_check_box(npu_sim *s, int64_t idx, const npu_insn *in, int field, npu_mem mem,
                  int64_t base, int nd, const npu_dim *dims);
/* Number of elements of a box, saturating at UINT64_MAX. */
uint64_t npu_box_elems(int nd, const npu_dim *dims);

/* exec.c: execute instruction idx; *cost receives its cycles (xfer for a DMA). */
int npu_exec(npu_sim *s, int64_t idx, uint64_t *cost);

/* Saturating unsigned arithmetic for cycle and byte counts. */
static inline uint64_t npu_sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static inline uint64_t npu_sat_mul(uint64_t a, uint64_t b)
{
    return (a != 0 && b > UINT64_MAX / a) ? UINT64_MAX : a * b;
}

static inline uint64_t npu_ceil_div(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

/* The output columns a gemm may have: cols, or int4_pack * cols with int4 weights (ISA.md, gemm). */
static inline int64_t npu_gemm_cols(const npu_hw *hw, int32_t w4)
{
    return (int64_t)hw->cols * (w4 ? hw->int4_pack : 1);
}

/* The int32 value of an accumulator word (two's complement, no UB). */
static inline int32_t npu_i32(uint32_t u)
{
    return u <= INT32_MAX ? (int32_t)u : (int32_t)(u - 2147483648u) - INT32_MAX - 1;
}

#endif /* NPU_SIM_INTERNAL_H */
