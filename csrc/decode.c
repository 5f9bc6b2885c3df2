/* Decode the binary instruction stream (ISA.md, "Binary encoding").
 *
 * Every instruction is checked before anything runs: a known opcode, zero
 * reserved bits and unused words, every field inside its table range, and a
 * gemm tile that fits the array (k <= R, n <= C).
 */
#include <stdlib.h>

#include "sim_internal.h"

#define NPU_SPEC(name, OPCODE, UNIT, NFIELDS) {#name, OPCODE, UNIT, NFIELDS, npu_fields_##name},
const npu_insn_spec npu_specs[NPU_NUM_INSNS] = {NPU_INSNS(NPU_SPEC)};
#undef NPU_SPEC

/* kind + 1 by opcode; 0 is an unknown opcode */
#define NPU_OPCODE_KIND(name, OPCODE, UNIT, NFIELDS) [OPCODE] = NPU_K_##name + 1,
static const uint8_t KIND_OF_OPCODE[256] = {NPU_INSNS(NPU_OPCODE_KIND)};
#undef NPU_OPCODE_KIND

static int check_fields(npu_sim *s, int64_t idx, const npu_insn_spec *spec, const uint32_t *w,
                        npu_insn *in)
{
    for (int i = 0; i < spec->nfields; i++) {
        int32_t v = npu_i32(w[NPU_HEADER_WORDS + i]);
        const npu_field_range *r = &spec->fields[i];
        if (v < r->lo || v > r->hi)
            return npu_fail(s, idx, "%s %s = %ld outside [%lld, %lld]", spec->mnemonic, r->name,
                            (long)v, (long long)r->lo, (long long)r->hi);
        in->f[i] = v;
    }
    for (int i = NPU_HEADER_WORDS + spec->nfields; i < NPU_WORDS_PER_INSN; i++)
        if (w[i] != 0)
            return npu_fail(s, idx, "%s: unused word %d is 0x%08lx, must be 0", spec->mnemonic, i,
                            (unsigned long)w[i]);
    return 0;
}

/* The one check that depends on the hardware: the tile must fit the array in its dataflow
 * (isa/timing.py, tile_violation: ws k <= R, n <= C; os k any, n <= C, M <= R; is k <= R,
 * n any, M <= C; checked in the order k, n, M). With int4 weights (w4) the n limit C is
 * int4_pack * C. */
static int check_gemm_tile(npu_sim *s, int64_t idx, const npu_insn *in)
{
    int df = s->hw.dataflow;
    int64_t k = in->f[NPU_F_GEMM_K], n = in->f[NPU_F_GEMM_N];
    int64_t m = (int64_t)in->f[NPU_F_GEMM_M0] * in->f[NPU_F_GEMM_M1];
    int64_t mlim = df == NPU_HW_DATAFLOW_OS ? s->hw.rows : s->hw.cols;
    int64_t nlim = npu_gemm_cols(&s->hw, in->f[NPU_F_GEMM_W4]);
    if (df != NPU_HW_DATAFLOW_OS && k > s->hw.rows)
        return npu_fail(s, idx, "gemm k = %ld exceeds the array's %ld rows", (long)k, (long)s->hw.rows);
    if (df != NPU_HW_DATAFLOW_IS && n > nlim)
        return npu_fail(s, idx, "gemm n = %ld exceeds the array's %ld cols", (long)n, (long)nlim);
    if (df != NPU_HW_DATAFLOW_WS && m > mlim)
        return npu_fail(s, idx, "gemm m0*m1 = %lld exceeds the array's %ld %s", (long long)m, (long)mlim,
                        df == NPU_HW_DATAFLOW_OS ? "rows" : "cols");
    return 0;
}

static int decode_one(npu_sim *s, int64_t idx, const uint32_t *w, npu_insn *in)
{
    uint32_t opcode = w[0] & 0xffu, reserved = (w[0] >> 8) & 0xffu;
    const npu_insn_spec *spec;
    if (KIND_OF_OPCODE[opcode] == 0)
        return npu_fail(s, idx, "unknown opcode 0x%02lx", (unsigned long)opcode);
    in->kind = (uint8_t)(KIND_OF_OPCODE[opcode] - 1);
    spec = &npu_specs[in->kind];
    if (reserved != 0)
        return npu_fail(s, idx, "%s: reserved bits 8-15 of word 0 are 0x%02lx, must be 0", spec->mnemonic,
                        (unsigned long)reserved);
    in->layer = (uint16_t)(w[0] >> 16);
    in->wait = (uint16_t)(w[1] & 0xffffu);
    in->signal = (uint16_t)(w[1] >> 16);
    if (check_fields(s, idx, spec, w, in))
        return -1;
    if (in->kind == NPU_K_gemm)
        return check_gemm_tile(s, idx, in);
    if (in->kind == NPU_K_dwc && s->hw.dw_lanes == 0)
        return npu_fail(s, idx, "dwc: the NPU has no depthwise engine (depthwise.lanes = 0)");
    return 0;
}

int npu_decode(npu_sim *s, const uint32_t *words, size_t n_words)
{
    size_t n = n_words / NPU_WORDS_PER_INSN;
    if (n > 0 && (n > SIZE_MAX / sizeof(npu_insn) || (s->insns = calloc(n, sizeof(npu_insn))) == NULL))
        return npu_fail(s, -1, "out of memory decoding %lu instructions", (unsigned long)n);
    s->n_insns = n;
    for (size_t i = 0; i < n; i++)
        if (decode_one(s, (int64_t)i, words + i * NPU_WORDS_PER_INSN, &s->insns[i]))
            return -1;
    /* the lowest-index error wins: a partial last instruction comes after the whole ones */
    if (n_words % NPU_WORDS_PER_INSN != 0)
        return npu_fail(s, (int64_t)n, "truncated: %lu of %d words",
                        (unsigned long)(n_words % NPU_WORDS_PER_INSN), NPU_WORDS_PER_INSN);
    return 0;
}
