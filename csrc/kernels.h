/* Data-path kernels of the C core: the inner loops of gemm and the vector
 * instructions, apart from their checks and timing (exec.c).
 *
 * Every kernel runs on addresses exec.c has already checked, once per
 * instruction, against their memories (box.c): no kernel checks a bound.
 * Each keeps the element order of its Action in isa/ISA.md wherever an output
 * may alias an input, so the results are those of the Action line by line.
 * The loops are written for the compiler to vectorize (int8 operands packed
 * contiguously per fold, int32 accumulation); gemm has an AVX2 form as well,
 * chosen at compile time, with the portable loop as its fallback.
 */
#ifndef NPU_KERNELS_H
#define NPU_KERNELS_H

#include <stdint.h>

#include "npu_isa.h"

/* One gemm's operands, all inside their memories: row (i1, i0) of the
 * activations starts at a + i1*as1 + i0*as0 (k int8), weight row r at
 * w + r*ws (n int8), output row (i1, i0) at o + i1*ds1 + i0*ds0 (n words);
 * mode is the acc field (0 overwrite, 1 accumulate, 2 add the bias row);
 * w4: int4 weights, two per byte (column j in byte j / 2, low nibble for even j). */
typedef struct {
    const int8_t *a, *w;
    uint32_t *o;
    const uint32_t *bias;
    int64_t as0, as1, ws, ds0, ds1, m0, m1, k, n;
    int mode, w4;
} npu_gemm_job;

/* Scratch a gemm kernel needs, sized by npu_gemm_scratch_* for an array of
 * `rows` x `cols` (allocated once per run, reused by every gemm). */
typedef struct {
    int16_t *wpack; /* the weight tile in (row pair, column) order, int16 pairs */
    int16_t *arow;  /* a block of activation rows widened to int16, each zero-padded to even k */
    int32_t *orow;  /* their rows of products, cols rounded up to 16 */
    uint32_t *brow; /* the bias row, read before any output is written */
} npu_gemm_scratch;

/* Elements of each scratch buffer for an array of rows x cols. */
int64_t npu_gemm_wpack_elems(int64_t rows, int64_t cols);
int64_t npu_gemm_arow_elems(int64_t rows);
int64_t npu_gemm_orow_elems(int64_t cols);

/* The gemm Action with a 32-bit adder: o[row] = base[row] + sum_r a[row][r] * w[r],
 * mod 2^32, row by row in (i1, i0) order (k <= rows and n <= cols of the scratch).
 * Returns how many outputs wrapped (the acc_sat counter at acc_bits = 32). */
uint64_t npu_kernel_gemm(const npu_gemm_job *g, const npu_gemm_scratch *scr);

/* vrq: spad[dst + i*ds + j] = clamp(round_shift(acc[src + i*ss + j] * mul[j],
 * sh[j], rnd) + zp, lo, hi), shifts in [0, 62] (checked by exec.c). */
void npu_kernel_vrq(int8_t *spad, const uint32_t *acc, int64_t dst, int64_t src, int64_t mul, int64_t sh,
                    int64_t m, int64_t n, int64_t ds, int64_t ss, int64_t zp, int64_t lo, int64_t hi, int rnd);

/* floor(t / 2^sh), without shifting a negative value. */
static inline int64_t npu_floor_shift(int64_t t, int sh)
{
    return t >= 0 ? t >> sh : -((-(t + 1)) >> sh) - 1;
}

/* isa/arith.py round_shift, for |t| <= 2^62 and 0 <= sh <= 62. */
static inline int64_t npu_round_shift(int64_t t, int sh, int rnd)
{
    int64_t q, half, rem;
    if (sh == 0)
        return t;
    q = npu_floor_shift(t, sh);
    half = (int64_t)1 << (sh - 1);
    switch (rnd) {
    case NPU_ROUND_TRUNCATE:
        return q;
    case NPU_ROUND_HALF_UP:
        return npu_floor_shift(t + half, sh);
    case NPU_ROUND_HALF_AWAY: /* |t| <= 2^62: -t and |t| + half do not overflow */
        return t >= 0 ? (t + half) >> sh : -((half - t) >> sh);
    default:
        rem = (int64_t)((uint64_t)t & (((uint64_t)1 << sh) - 1));
        return q + (rem > half || (rem == half && q % 2 != 0));
    }
}


#endif /* NPU_KERNELS_H */
