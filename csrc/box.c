/* Bounds of strided boxes, computed exactly.
 *
 * A box is base + sum_i idx_i * stride_i with 0 <= idx_i < ext_i. Its lowest
 * address adds every negative span (ext_i - 1) * stride_i, its highest every
 * positive one. An ld's padded box has extents up to 3 * (2^31 - 1) and
 * strides down to -2^31, so a span does not fit in int64: the sums are kept
 * in 128-bit two's complement (two uint64 halves, portable C99). Once a box
 * is inside its memory every partial sum of its addresses lies in [lo, hi],
 * so the execution loops can use plain int64 arithmetic.
 */
#include <stdio.h>

#include "sim_internal.h"

typedef struct {
    uint64_t hi, lo;
} wide;

static wide w_of(int64_t v)
{
    wide r;
    r.hi = v < 0 ? UINT64_MAX : 0;
    r.lo = (uint64_t)v;
    return r;
}

static wide w_add(wide a, wide b)
{
    wide r;
    r.lo = a.lo + b.lo;
    r.hi = a.hi + b.hi + (r.lo < a.lo);
    return r;
}

static wide w_neg(wide a)
{
    wide r;
    r.lo = ~a.lo + 1;
    r.hi = ~a.hi + (r.lo == 0);
    return r;
}

static int w_is_neg(wide a)
{
    return (a.hi >> 63) != 0;
}

/* Signed comparison: <0, 0, >0. */
static int w_cmp(wide a, wide b)
{
    uint64_t ah = a.hi ^ ((uint64_t)1 << 63), bh = b.hi ^ ((uint64_t)1 << 63);
    if (ah != bh)
        return ah < bh ? -1 : 1;
    if (a.lo != b.lo)
        return a.lo < b.lo ? -1 : 1;
    return 0;
}

static uint64_t u_abs(int64_t v)
{
    return v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
}

/* The exact product of two int64 values. */
static wide w_mul(int64_t a, int64_t b)
{
    uint64_t ua = u_abs(a), ub = u_abs(b);
    uint64_t a0 = ua & 0xffffffffu, a1 = ua >> 32, b0 = ub & 0xffffffffu, b1 = ub >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    wide r;
    r.lo = (p00 & 0xffffffffu) | (mid << 32);
    r.hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    return ((a < 0) != (b < 0)) ? w_neg(r) : r;
}

/* Divide the magnitude in limb[] (most significant first) by 10 in place; the remainder. */
static unsigned div10(uint32_t limb[4])
{
    uint64_t rem = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t cur = rem << 32 | limb[i];
        limb[i] = (uint32_t)(cur / 10);
        rem = cur % 10;
    }
    return (unsigned)rem;
}

/* Decimal text of v into buf of len bytes. */
static void w_format(wide v, char *buf, size_t len)
{
    char rev[48]; /* |v| < 2^127: at most 39 digits and a sign */
    size_t n = 0, i;
    int neg = w_is_neg(v);
    wide mag = neg ? w_neg(v) : v;
    uint32_t limb[4] = {(uint32_t)(mag.hi >> 32), (uint32_t)mag.hi,
                        (uint32_t)(mag.lo >> 32), (uint32_t)mag.lo};
    do
        rev[n++] = (char)('0' + div10(limb));
    while ((limb[0] | limb[1] | limb[2] | limb[3]) != 0);
    if (neg)
        rev[n++] = '-';
    for (i = 0; i < n && i + 1 < len; i++)
        buf[i] = rev[n - 1 - i];
    buf[i] = '\0';
}

uint64_t npu_box_elems(int nd, const npu_dim *dims)
{
    uint64_t n = 1;
    for (int i = 0; i < nd; i++)
        n = npu_sat_mul(n, dims[i].ext > 0 ? (uint64_t)dims[i].ext : 0);
    return n;
}

static const char *const MEM_NAME[] = {"DRAM", "SPAD", "ACC"};
static const char *const MEM_UNIT[] = {"bytes", "bytes", "words"};

static uint64_t mem_size(const npu_sim *s, npu_mem mem)
{
    switch (mem) {
    case NPU_MEM_DRAM:
        return s->dram_size;
    case NPU_MEM_SPAD:
        return (uint64_t)s->hw.spad_bytes;
    default:
        return (uint64_t)s->hw.acc_words;
    }
}

int npu_check_box(npu_sim *s, int64_t idx, const npu_insn *in, int field, npu_mem mem,
                  int64_t base, int nd, const npu_dim *dims)
{
    wide lo = w_of(base), hi = w_of(base), size;
    char los[48], his[48];
    const npu_insn_spec *spec = &npu_specs[in->kind];
    if (npu_box_elems(nd, dims) == 0)
        return 0;
    for (int i = 0; i < nd; i++) {
        wide span = w_mul(dims[i].ext - 1, dims[i].stride);
        if (w_is_neg(span))
            lo = w_add(lo, span);
        else
            hi = w_add(hi, span);
    }
    size.hi = 0;
    size.lo = mem_size(s, mem);
    if (!w_is_neg(lo) && w_cmp(hi, size) < 0)
        return 0;
    w_format(lo, los, sizeof los);
    w_format(hi, his, sizeof his);
    return npu_fail(s, idx, "%s %s: address range [%s, %s] outside %s of %llu %s", spec->mnemonic,
                    spec->fields[field].name, los, his, MEM_NAME[mem],
                    (unsigned long long)size.lo, MEM_UNIT[mem]);
}
