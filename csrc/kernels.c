/* Data-path kernels of the C core (kernels.h): gemm's multiply-accumulate
 * and the vector loops, on addresses exec.c has checked. */
#include <string.h>

#include "kernels.h"
#include "sim_internal.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

/* Columns are handled in blocks of 16 (two 8-lane int32 vectors), rows of
 * activations NPU_ROW_BLOCK at a time (sharing each weight load). */
#define NPU_COL_BLOCK 16
#define NPU_ROW_BLOCK 4

static int64_t round_up(int64_t v, int64_t to)
{
    return (v + to - 1) / to * to;
}

int64_t npu_gemm_wpack_elems(int64_t rows, int64_t cols)
{
    return (rows + 1) / 2 * round_up(cols, NPU_COL_BLOCK) * 2;
}

int64_t npu_gemm_arow_elems(int64_t rows)
{
    return NPU_ROW_BLOCK * round_up(rows, 2);
}

int64_t npu_gemm_orow_elems(int64_t cols)
{
    return NPU_ROW_BLOCK * round_up(cols, NPU_COL_BLOCK);
}

/* The k x n weight tile into wpack as int16 pairs: entry (p, j) holds
 * (w[2p][j], w[2p+1][j]) at wpack[2*(p*np + j)], np = n rounded up to a column
 * block; an odd k's last pair and the padded columns are zero. This is the
 * operand layout of a 16-bit multiply-add of two products (pmaddwd). */
static void pack_weights(const npu_gemm_job *g, int16_t *restrict wpack, int64_t np)
{
    int64_t kp = (g->k + 1) / 2;
    memset(wpack, 0, (size_t)(kp * np * 2) * sizeof *wpack);
    for (int64_t r = 0; r < g->k; r++) {
        const int8_t *restrict wr = g->w + r * g->ws;
        int16_t *restrict dst = wpack + (r / 2) * np * 2 + (r % 2);
        if (!g->w4) {
            for (int64_t j = 0; j < g->n; j++)
                dst[2 * j] = wr[j];
            continue;
        }
        for (int64_t j = 0; j < g->n; j++) { /* int4: column j is byte j / 2's low (j even) or high nibble */
            int32_t b = (uint8_t)wr[j / 2];
            b = j % 2 ? b >> 4 : b & 0xf;
            dst[2 * j] = (int16_t)(b >= 8 ? b - 16 : b);
        }
    }
}

#if defined(__AVX2__)
static __m256i pair_of(const int16_t *arow, int64_t p)
{
    int32_t pair;
    memcpy(&pair, arow + 2 * p, sizeof pair);
    return _mm256_set1_epi32(pair);
}

/* orow[t][0:np] = sum over pairs p of row t's pair p times wpack's pairs p, for
 * NPU_ROW_BLOCK rows of arow (each apart by ap int16): one 16-bit multiply-add
 * (pmaddwd) computes two products of eight columns. */
static inline void products(const int16_t *restrict arow, int64_t ap, int nrows, const int16_t *restrict wpack,
                     int64_t kp, int64_t np, int32_t *restrict orow)
{
    if (nrows < NPU_ROW_BLOCK) {
        for (int t = 0; t < nrows; t++)
            for (int64_t j0 = 0; j0 < np; j0 += 16) {
                __m256i c0 = _mm256_setzero_si256(), c1 = _mm256_setzero_si256();
                const int16_t *wp = wpack + 2 * j0;
                for (int64_t p = 0; p < kp; p++, wp += 2 * np) {
                    __m256i x = pair_of(arow + t * ap, p);
                    c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(x, _mm256_loadu_si256((const __m256i *)wp)));
                    c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(x, _mm256_loadu_si256((const __m256i *)(wp + 16))));
                }
                _mm256_storeu_si256((__m256i *)(orow + t * np + j0), c0);
                _mm256_storeu_si256((__m256i *)(orow + t * np + j0 + 8), c1);
            }
        return;
    }
    for (int64_t j0 = 0; j0 < np; j0 += 16) {
        __m256i c[NPU_ROW_BLOCK][2];
        const int16_t *wp = wpack + 2 * j0;
        for (int t = 0; t < NPU_ROW_BLOCK; t++)
            c[t][0] = c[t][1] = _mm256_setzero_si256();
        for (int64_t p = 0; p < kp; p++, wp += 2 * np) {
            __m256i w0 = _mm256_loadu_si256((const __m256i *)wp);
            __m256i w1 = _mm256_loadu_si256((const __m256i *)(wp + 16));
            for (int t = 0; t < NPU_ROW_BLOCK; t++) {
                __m256i x = pair_of(arow + t * ap, p);
                c[t][0] = _mm256_add_epi32(c[t][0], _mm256_madd_epi16(x, w0));
                c[t][1] = _mm256_add_epi32(c[t][1], _mm256_madd_epi16(x, w1));
            }
        }
        for (int t = 0; t < NPU_ROW_BLOCK; t++) {
            _mm256_storeu_si256((__m256i *)(orow + t * np + j0), c[t][0]);
            _mm256_storeu_si256((__m256i *)(orow + t * np + j0 + 8), c[t][1]);
        }
    }
}

/* The sum of eight uint32 lanes. */
static uint64_t lanes_sum(__m256i v)
{
    uint32_t l[8];
    uint64_t t = 0;
    _mm256_storeu_si256((__m256i *)l, v);
    for (int i = 0; i < 8; i++)
        t += l[i];
    return t;
}

/* The gemm of a full fold of a 16 x 16 array (k = n = 16), the shape of
 * almost every gemm a compiled CNN issues, with its sizes known: weight pairs
 * in registers, one activation row one 16-byte load. Returns the outputs whose add wrapped. */
static uint64_t gemm_16x16(const npu_gemm_job *g, const uint32_t *restrict brow)
{
    __m256i w[8][2], b0, b1;
    uint64_t wraps = 0;
    for (int p = 0; p < 8; p++) { /* columns (0-3, 8-11) in w[p][0], (4-7, 12-15) in w[p][1] */
        __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(g->w + 2 * p * g->ws)));
        __m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(g->w + (2 * p + 1) * g->ws)));
        w[p][0] = _mm256_unpacklo_epi16(x, y);
        w[p][1] = _mm256_unpackhi_epi16(x, y);
    }
    b0 = _mm256_loadu_si256((const __m256i *)brow);
    b1 = _mm256_loadu_si256((const __m256i *)(brow + 8));
    for (int64_t i1 = 0; i1 < g->m1; i1++) {
        __m256i cnt = _mm256_setzero_si256(); /* wraps per lane: at most 2 * m0 < 2^17 */
        for (int64_t i0 = 0; i0 < g->m0; i0++) {
            __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(g->a + i1 * g->as1 + i0 * g->as0)));
            __m256i lo = _mm256_permute2x128_si256(x, x, 0x00), hi = _mm256_permute2x128_si256(x, x, 0x11);
            __m256i c0 = _mm256_setzero_si256(), c1 = _mm256_setzero_si256(), d0, d1;
            uint32_t *o = g->o + i1 * g->ds1 + i0 * g->ds0;
#define NPU_PAIR(p, half, imm)                                                          \
            do {                                                                        \
                __m256i v = _mm256_shuffle_epi32(half, imm);                            \
                c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(v, w[p][0]));              \
                c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(v, w[p][1]));              \
            } while (0)
            NPU_PAIR(0, lo, 0x00);
            NPU_PAIR(1, lo, 0x55);
            NPU_PAIR(2, lo, 0xaa);
            NPU_PAIR(3, lo, 0xff);
            NPU_PAIR(4, hi, 0x00);
            NPU_PAIR(5, hi, 0x55);
            NPU_PAIR(6, hi, 0xaa);
            NPU_PAIR(7, hi, 0xff);
#undef NPU_PAIR
            d0 = _mm256_permute2x128_si256(c0, c1, 0x20); /* columns 0-7 */
            d1 = _mm256_permute2x128_si256(c0, c1, 0x31); /* columns 8-15 */
            {
                __m256i e0 = g->mode == 1 ? _mm256_loadu_si256((const __m256i *)o) : b0;
                __m256i e1 = g->mode == 1 ? _mm256_loadu_si256((const __m256i *)(o + 8)) : b1;
                __m256i r0 = _mm256_add_epi32(d0, e0), r1 = _mm256_add_epi32(d1, e1);
                /* |d| <= 16 * 2^14: an add can wrap only where |e| >= 2^30 (bits 31 and 30 differ);
                 * only then count the lanes whose result's sign differs from both operands' */
                __m256i near = _mm256_or_si256(_mm256_xor_si256(e0, _mm256_slli_epi32(e0, 1)),
                                               _mm256_xor_si256(e1, _mm256_slli_epi32(e1, 1)));
                if (_mm256_movemask_ps(_mm256_castsi256_ps(near)) != 0) {
                    __m256i v0 = _mm256_and_si256(_mm256_xor_si256(r0, d0), _mm256_xor_si256(r0, e0));
                    __m256i v1 = _mm256_and_si256(_mm256_xor_si256(r1, d1), _mm256_xor_si256(r1, e1));
                    cnt = _mm256_add_epi32(cnt, _mm256_add_epi32(_mm256_srli_epi32(v0, 31), _mm256_srli_epi32(v1, 31)));
                }
                _mm256_storeu_si256((__m256i *)o, r0);
                _mm256_storeu_si256((__m256i *)(o + 8), r1);
            }
        }
        wraps += lanes_sum(cnt);
    }
    return wraps;
}
#else
/* The portable form of the same sums: |each| <= k * 2^14 <= 2^24, no overflow. */
static inline void products(const int16_t *restrict arow, int64_t ap, int nrows, const int16_t *restrict wpack,
                     int64_t kp, int64_t np, int32_t *restrict orow)
{
    for (int t = 0; t < nrows; t++) {
        int32_t *restrict out = orow + t * np;
        for (int64_t j = 0; j < np; j++)
            out[j] = 0;
        for (int64_t p = 0; p < kp; p++) {
            const int32_t x0 = arow[t * ap + 2 * p], x1 = arow[t * ap + 2 * p + 1];
            const int16_t *restrict wp = wpack + 2 * p * np;
            for (int64_t j = 0; j < np; j++)
                out[j] += x0 * wp[2 * j] + x1 * wp[2 * j + 1];
        }
    }
}
#endif

/* Write NPU_ROW_BLOCK (or fewer) rows of products back, in row order: a later row
 * may accumulate onto the same words as an earlier one (mode 1, ds = 0). Returns
 * the outputs whose 32-bit add wrapped (the result's sign differs from both operands'). */
static uint64_t write_rows(const npu_gemm_job *g, uint32_t *const *o, int nrows, const int32_t *restrict orow,
                           int64_t np, const uint32_t *restrict brow)
{
    uint64_t wraps = 0;
    for (int t = 0; t < nrows; t++) {
        uint32_t *dst = o[t], w = 0; /* w: this row's wraps, n <= 2^16 */
        const int32_t *restrict src = orow + t * np;
        const uint32_t *base = g->mode == 1 ? dst : brow;
        if (g->mode == 0) /* from 0: |sum| <= 2^30 cannot wrap */
            for (int64_t j = 0; j < g->n; j++)
                dst[j] = (uint32_t)src[j];
        else
            for (int64_t j = 0; j < g->n; j++) {
                uint32_t e = base[j], x = (uint32_t)src[j], r = e + x;
                w += ((r ^ e) & (r ^ x)) >> 31;
                dst[j] = r;
            }
        wraps += w;
    }
    return wraps;
}

uint64_t npu_kernel_gemm(const npu_gemm_job *g, const npu_gemm_scratch *scr)
{
    uint64_t wraps = 0;
    const int64_t np = round_up(g->n, NPU_COL_BLOCK), kp = (g->k + 1) / 2, ap = 2 * kp;
    uint32_t *o[NPU_ROW_BLOCK];
    int nrows = 0;
    for (int64_t j = 0; j < g->n; j++) /* the bias row is read before any output is written */
        scr->brow[j] = g->mode == 2 ? g->bias[j] : 0u;
#if defined(__AVX2__)
    if (g->k == 16 && g->n == 16 && !g->w4)
        return gemm_16x16(g, scr->brow);
#endif
    pack_weights(g, scr->wpack, np);
    for (int64_t i1 = 0; i1 < g->m1; i1++) {
        for (int64_t i0 = 0; i0 < g->m0; i0++) {
            const int8_t *restrict a = g->a + i1 * g->as1 + i0 * g->as0;
            int16_t *restrict arow = scr->arow + nrows * ap;
            for (int64_t r = 0; r < g->k; r++)
                arow[r] = a[r];
            if (g->k % 2 != 0)
                arow[g->k] = 0; /* an odd k's last pair: its second product is 0 * 0 */
            o[nrows++] = g->o + i1 * g->ds1 + i0 * g->ds0;
            if (nrows == NPU_ROW_BLOCK) {
                if (kp == 8 && np == 16) /* a full fold of a 16 x 16 array: constants let it unroll */
                    products(scr->arow, 16, NPU_ROW_BLOCK, scr->wpack, 8, 16, scr->orow);
                else
                    products(scr->arow, ap, nrows, scr->wpack, kp, np, scr->orow);
                wraps += write_rows(g, o, nrows, scr->orow, np, scr->brow);
                nrows = 0;
            }
        }
    }
    if (nrows > 0) {
        products(scr->arow, ap, nrows, scr->wpack, kp, np, scr->orow);
        wraps += write_rows(g, o, nrows, scr->orow, np, scr->brow);
    }
    return wraps;
}

/* One vrq row per rounding mode, so that the mode is a constant of the loop. */
#define NPU_VRQ_ROWS(RND)                                                                         \
    for (int64_t i = 0; i < m; i++) {                                                             \
        const uint32_t *restrict x = acc + src + i * ss;                                          \
        for (int64_t j = 0; j < n; j++) {                                                         \
            int64_t t = (int64_t)npu_i32(x[j]) * npu_i32(acc[mul + j]);                           \
            int64_t r = npu_round_shift(t, npu_i32(acc[sh + j]), RND) + zp;                       \
            spad[dst + i * ds + j] = (int8_t)(r < lo ? lo : r > hi ? hi : r);                     \
        }                                                                                         \
    }

void npu_kernel_vrq(int8_t *restrict spad, const uint32_t *restrict acc, int64_t dst, int64_t src, int64_t mul, int64_t sh,
                    int64_t m, int64_t n, int64_t ds, int64_t ss, int64_t zp, int64_t lo, int64_t hi, int rnd)
{
    switch (rnd) { /* SPAD and ACC are apart: no output aliases an input */
    case NPU_ROUND_TRUNCATE:
        NPU_VRQ_ROWS(NPU_ROUND_TRUNCATE)
        break;
    case NPU_ROUND_HALF_UP:
        NPU_VRQ_ROWS(NPU_ROUND_HALF_UP)
        break;
    case NPU_ROUND_HALF_AWAY:
        NPU_VRQ_ROWS(NPU_ROUND_HALF_AWAY)
        break;
    default:
        NPU_VRQ_ROWS(NPU_ROUND_HALF_EVEN)
        break;
    }
}
#undef NPU_VRQ_ROWS
