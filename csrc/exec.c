/* Instruction semantics: one function per instruction, following the Action
 * lines of isa/ISA.md.
 *
 * Each function checks every box it touches (in the table order of their
 * address fields; a box the Action never reads, such as gemm's weights when
 * M = 0, is not checked), then any other condition, then charges its work,
 * and only then touches memory. After the checks every address is inside its
 * buffer, so the loops below run unchecked on int64 addresses. Each returns
 * its cycles in *cost (the transfer part for a DMA) and counts its traffic.
 */
#include <string.h>

#include "kernels.h"
#include "sim_internal.h"

typedef int (*npu_exec_fn)(npu_sim *s, int64_t idx, const npu_insn *in, uint64_t *cost);

static int charge_work(npu_sim *s, int64_t idx, const npu_insn *in, uint64_t work)
{
    s->work = npu_sat_add(s->work, work);
    if (s->opts.max_work != 0 && s->work > s->opts.max_work)
        return npu_fail(s, idx, "%s: work limit of %llu elements exceeded", npu_specs[in->kind].mnemonic,
                        (unsigned long long)s->opts.max_work);
    return 0;
}

/* DMA transfer cycles of n0 rows of n1 runs of n2 bytes (ISA.md, Bursts). */
static uint64_t dma_xfer(const npu_sim *s, int64_t n0, int64_t n1, int64_t n2, int one_burst_per_row)
{
    uint64_t bw = (uint64_t)s->hw.dram_bw;
    if (one_burst_per_row)
        return npu_sat_mul((uint64_t)n0, npu_ceil_div((uint64_t)n1 * (uint64_t)n2, bw));
    return npu_sat_mul(npu_sat_mul((uint64_t)n0, (uint64_t)n1), npu_ceil_div((uint64_t)n2, bw));
}

/* Cycles of a vector instruction over m rows of n elements. */
static uint64_t vec_cost(const npu_sim *s, int64_t m, int64_t n)
{
    uint64_t per_row = npu_ceil_div((uint64_t)n, (uint64_t)s->hw.vec_lanes);
    return npu_sat_add((uint64_t)s->hw.vec_latency, npu_sat_mul((uint64_t)m, per_row));
}

static int exec_ld(npu_sim *s, int64_t idx, const npu_insn *in, uint64_t *cost)
{
    const int32_t *f = in->f;
    int64_t dst = f[NPU_F_LD_DST], src = f[NPU_F_LD_SRC];
    int64_t n0 = f[NPU_F_LD_N0], n1 = f[NPU_F_LD_N1], n2 = f[NPU_F_LD_N2];
    int64_t ss0 = f[NPU_F_LD_SS0], ss1 = f[NPU_F_LD_SS1], ds0 = f[NPU_F_LD_DS0], ds1 = f[NPU_F_LD_DS1];
    int64_t pt = f[NPU_F_LD_PT], pl = f[NPU_F_LD_PL];
    int64_t e0 = pt + n0 + f[NPU_F_LD_PB], e1 = pl + n1 + f[NPU_F_LD_PR];
    const npu_dim sbox[3] = {{e0, ds0}, {e1, ds1}, {n2, 1}};
    const npu_dim dbox[3] = {{n0, ss0}, {n1, ss1}, {n2, 1}};
    uint64_t written = npu_box_elems(3, sbox);
    if (npu_check_box(s, idx, in, NPU_F_LD_DST, NPU_MEM_SPAD, dst, 3, sbox) ||
        npu_check_box(s, idx, in, NPU_F_LD_SRC, NPU_MEM_DRAM, src, 3, dbox) ||
        charge_work(s, idx, in, written))
        return -1;
    *cost = dma_xfer(s, n0, n1, n2, ss1 == n2);
    s->stats.dram_rd += npu_box_elems(3, dbox);
    s->stats.spad_wr += written;
    if (written == 0)
        return 0;
    for (int64_t i0 = 0; i0 < e0; i0++) {
        for (int64_t i1 = 0; i1 < e1; i1++) {
            int8_t *d = s->spad + dst + i0 * ds0 + i1 * ds1;
            if (pt <= i0 && i0 < pt + n0 && pl <= i1 && i1 < pl + n1)
                memcpy(d, s->dram + src + (i0 - pt) * ss0 + (i1 - pl) * ss1, (size_t)n2);
            else
                memset(d, f[NPU_F_LD_FILL], (size_t)n2);
        }
    }
    return 0;
}

static uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int exec_lda(npu_sim *s, int64_t idx, const npu_insn *in, uint64_t *cost)
{
    const int32_t *f = in->f;
    int64_t dst = f[NPU_F_LDA_DST], src = f[NPU_F_LDA_SRC], n0 = f[NPU_F_LDA_N0], n1 = f[NPU_F_LDA_N1];
    int64_t ss0 = f[NPU_F_LDA_SS0], ds0 = f[NPU_F_LDA_DS0];
    const npu_dim abox[2] = {{n0, ds0}, {n1, 1}};
    const npu_dim dbox[2] = {{n0, ss0}, {4 * n1, 1}};
    uint64_t words = npu_box_elems(2, abox);
    if (npu_check_box(s, idx, in, NPU_F_LDA_DST, NPU_MEM_ACC, dst, 2, abox) ||
        npu_check_box(s, idx, in, NPU_F_LDA_SRC, NPU_MEM_DRAM, src, 2, dbox) ||
        charge_work(s, idx, in, words))
        return -1;
    *cost = dma_xfer(s, n0, 1, 4 * n1, 0);
    s->stats.dram_rd += 4 * words;
    s->stats.acc_wr += 4 * words;
    if (words == 0)
        return 0;
    for (int64_t i0 = 0; i0 < n0; i0++) {
        uint32_t *d = s->acc + dst + i0 * ds0;
        const uint8_t *p = s->dram + src + i0 * ss0;
        for (int64_t i1 = 0; i1 < n1; i1++)
            d[i1] = load_le32(p + 4 * i1);
    }
    return 0;
}

static int exec_st(npu_sim *s, int64_t idx, const npu_insn *in, uint64_t *cost)
{
    const int32_t *f = in->f;
    int64_t dst = f[NPU_F_ST_DST], src = f[NPU_F_ST_SRC];
    int64_t n0 = f[NPU_F_ST_N0], n1 = f[NPU_F_ST_N1], n2 = f[NPU_F_ST_N2];
    int64_t ds0 = f[NPU_F_ST_DS0], ds1 = f[NPU_F_ST_DS1], ss0 = f[NPU_F_ST_SS0], ss1 = f[NPU_F_ST_SS1];
    const npu_dim dbox[3] = {{n0, ds0}, {n1, ds1}, {n2, 1}};
    const npu_dim sbox[3] = {{n0, ss0}, {n1, ss1}, {n2, 1}};
    uint64_t bytes = npu_box_elems(3, dbox);
    if (npu_check_box(s, idx, in, NPU_F_ST_DST, NPU_MEM_DRAM, dst, 3, dbox) ||
        npu_check_box(s, idx, in, NPU_F_ST_SRC, NPU_MEM_SPAD, src, 3, sbox) ||
        charge_work(s, idx, in, bytes))
        return -1;
    *cost = dma_xfer(s, n0, n1, n2, ds1 == n2);
    s->stats.spad_rd += bytes;
    s->stats.dram_wr += bytes;
    if (bytes == 0)
        return 0;
    for (int64_t i0 = 0; i0 < n0; i0++)
        for (int64_t i1 = 0; i1 < n1; i1++)
            memcpy(s->dram + dst + i0 * ds0 + i1 * ds1, s->spad + src + i0 * ss0 + i1 * ss1, (size_t)n2);
    return 0;
}

/* out[j] = sum_r a[r] * w[r*ws + j] straight from the scratchpad, exact in int64: the gemms the
 * packed kernel does not take (beyond the staged R x C tile: k > R in os, n > C in is; int16 input
 * rows; int4 weights under a narrow accumulator; acc_bits < 32). int16 rows are little-endian (low
 * byte unsigned, high byte signed); int4 weights two per byte, column j the low (j even) or high
 * (j odd) nibble of byte j / 2, sign-extended. |out| <= 2^16 * 2^15 * 2^7 = 2^38. */
static void gemm_row_direct(const int8_t *a, const int8_t *w, int64_t ws, int64_t k, int64_t n, int w4,
                            int a16, int64_t *restrict out)
{
    for (int64_t j = 0; j < n; j++)
        out[j] = 0;
    for (int64_t r = 0; r < k; r++) {
        const int64_t ar = a16 ? (int64_t)(uint8_t)a[2 * r] + 256 * (int64_t)a[2 * r + 1] : (int64_t)a[r];
        const int8_t *wr = w + r * ws;
        if (!w4) {
            for (int64_t j = 0; j < n; j++)
                out[j] += ar * wr[j];
            continue;
        }
        for (int64_t j = 0; j < n; j++) {
            int32_t b = (uint8_t)wr[j / 2];
            b = j % 2 ? b >> 4 : b & 0xf;
            out[j] += ar * (b >= 8 ? b - 16 : b); /* sign-extend the nibble */
        }
    }
}

/* (preload, stream, drain) cycles of one fold of an M x k x n gemm in the array's dataflow
 * (isa/timing.py, fold_phases): ws streams the M rows, os the k reduction steps (no preload),
 * is the n weight columns; int16 input rows (a16) stream act16_passes times; the drain is
 * R + C - 2 in all three. */
static void fold_phases(const npu_sim *s, uint64_t m, uint64_t k, uint64_t n, int a16, uint64_t phase[3])
{
    int df = s->hw.dataflow;
    phase[0] = df == NPU_HW_DATAFLOW_OS ? 0 : (uint64_t)s->hw.rows;
    phase[1] = df == NPU_HW_DATAFLOW_OS ? k : df == NPU_HW_DATAFLOW_IS ? n : m;
    phase[1] = npu_sat_mul(phase[1], a16 ? (uint64_t)s->hw.act16_passes : 1u);
    phase[2] = (uint64_t)(s->hw.rows + s->hw.cols - 2);
}

/* The cost of an M x k x n gemm (ISA.md, gemm Cycles): a chain's first gemm pays preload, stream
 * and drain; a gemm continuing the chain its stream plus the preload its predecessor's stream did
 * not hide. *chained tells which, *stream the streamed length; s->array becomes the state after it. */
static uint64_t gemm_cycles(npu_sim *s, uint64_t m, uint64_t k, uint64_t n, int a16, int *chained,
                            uint64_t *stream)
{
    uint64_t phase[3], cost;
    fold_phases(s, m, k, n, a16, phase);
    *chained = s->hw.fold_overlap && s->array.last_gemm && s->ready <= s->array.start;
    if (*chained)
        cost = npu_sat_add(phase[1], phase[0] > s->array.stream ? phase[0] - s->array.stream : 0);
    else
        cost = npu_sat_add(npu_sat_add(phase[0], phase[1]), phase[2]);
    s->array.last_gemm = 1;
    s->array.start = s->start;
    s->array.stream = phase[1];
    *stream = phase[1];
    return cost;
}

/* The accumulator adder (ISA.md, gemm): base + sum, wrapped mod 2^32 when acc_bits = 32, else
 * saturated to [-2^(acc_bits-1), 2^(acc_bits-1) - 1]; *sat counts the sums outside that range. */
static uint32_t acc_add(const npu_sim *s, uint32_t base, int64_t sum, uint64_t *sat)
{
    int64_t v = (int64_t)npu_i32(base) + sum, hi = ((int64_t)1 << (s->hw.acc_bits - 1)) - 1;
    if (v > hi || v < -hi - 1) {
        *sat += 1;
        if (s->hw.acc_bits < 32)
            v = v > hi ? hi : -hi - 1;
    }
    return (uint32_t)v; /* mod 2^32: the wrap of a 32-bit adder */
}

static int exec_gemm(npu_sim *s, int64_t idx, const npu_insn *in, uint64_t *cost)
{
    const int32_t *f = in->f;
    int64_t dst = f[NPU_F_GEMM_DST], a = f[NPU_F_GEMM_A], w = f[NPU_F_GEMM_W], bias = f[NPU_F_GEMM_BIAS];
    int64_t m0 = f[NPU_F_GEMM_M0], m1 = f[NPU_F_GEMM_M1], k = f[NPU_F_GEMM_K], n = f[NPU_F_GEMM_N];
    int64_t as0 = f[NPU_F_GEMM_AS0], as1 = f[NPU_F_GEMM_AS1], ws = f[NPU_F_GEMM_WS];
    int64_t ds0 = f[NPU_F_GEMM_DS0], ds1 = f[NPU_F_GEMM_DS1];
    int mode = f[NPU_F_GEMM_ACC], w4 = f[NPU_F_GEMM_W4], a16 = f[NPU_F_GEMM_A16], chained;
    int64_t wbytes = w4 ? (n + 1) / 2 : n; /* bytes of one weight row */
    uint64_t sat = 0, stream;
    uint64_t rows = (uint64_t)m0 * (uint64_t)m1; /* M < 2^62 */
    int64_t abytes = a16 ? 2 * k : k; /* bytes of one input row */
    const npu_dim obox[3] = {{m1, ds1}, {m0, ds0}, {n, 1}};
    const npu_dim abox[3] = {{m1, as1}, {m0, as0}, {abytes, 1}};
    const npu_dim wbox[2] = {{k, ws}, {wbytes, 1}};
    const npu_dim bbox[1] = {{n, 1}};
    if (npu_check_box(s, idx, in, NPU_F_GEMM_DST, NPU_MEM_ACC, dst, 3, obox))
        return -1;
    *cost = gemm_cycles(s, rows, (uint64_t)k, (uint64_t)n, a16, &chained, &stream);
    s->stats.gemm_chained += (uint64_t)chained;
    s->stats.gemm_fill = npu_sat_add(s->stats.gemm_fill, *cost - stream);
    if (rows == 0)
        return 0;
    if (npu_check_box(s, idx, in, NPU_F_GEMM_A, NPU_MEM_SPAD, a, 3, abox) ||
        npu_check_box(s, idx, in, NPU_F_GEMM_W, NPU_MEM_SPAD, w, 2, wbox) ||
        (mode == 2 && npu_check_box(s, idx, in, NPU_F_GEMM_BIAS, NPU_MEM_ACC, bias, 1, bbox)) ||
        charge_work(s, idx, in, npu_sat_mul(rows, (uint64_t)(k * n))))
        return -1;
    s->stats.macs += rows * (uint64_t)(k * n);
    s->stats.spad_rd += rows * (uint64_t)abytes + (uint64_t)(k * wbytes);
    s->stats.acc_rd += mode == 1 ? 4 * rows * (uint64_t)n : mode == 2 ? 4 * (uint64_t)n : 0;
    s->stats.acc_wr += 4 * rows * (uint64_t)n;
    /* the packed kernel (int32 sums, kernels.c) takes the staged tile with int8 inputs and a 32-bit
     * adder; everything else runs row by row from the scratchpad with exact int64 sums */
    if (k > s->hw.rows || n > npu_gemm_cols(&s->hw, w4) || a16 || s->hw.acc_bits < 32) {
        for (int64_t j = 0; j < n; j++) /* the bias row is read before any output is written */
            s->brow[j] = mode == 2 ? s->acc[bias + j] : 0u;
        for (int64_t i1 = 0; i1 < m1; i1++) {
            for (int64_t i0 = 0; i0 < m0; i0++) {
                uint32_t *o = s->acc + dst + i1 * ds1 + i0 * ds0;
                gemm_row_direct(s->spad + a + i1 * as1 + i0 * as0, s->spad + w, ws, k, n, w4, a16, s->orow);
                for (int64_t j = 0; j < n; j++)
                    o[j] = acc_add(s, mode == 1 ? o[j] : s->brow[j], s->orow[j], &sat);
            }
        }
    } else if (n > 0) { /* k = 0: the activation box is empty, unchecked, and never read */
        const npu_gemm_job job = {s->spad + (k > 0 ? a : 0), s->spad + (k > 0 ? w : 0), s->acc + dst,
                                  s->acc + (mode == 2 ? bias : 0), k > 0 ? as0 : 0, k > 0 ? as1 : 0, ws,
                                  ds0, ds1, m0, m1, k, n, mode, w4};
        sat = npu_kernel_gemm(&job, &s->gemm);
    }
    s->stats.acc_sat += sat;
    s->insn_sat = sat;
    return 0;
}

/* dwc cycles (isa/semantics.py, dw_cost): a pipeline of 3, then per output pixel ceil(c / lanes)
 * channel groups of ceil(kh*kw / taps) steps. */
static uint64_t dw_cost(const npu_sim *s, uint64_t rows, int64_t c, int64_t taps)
{
    uint64_t per = npu_sat_mul(npu_ceil_div((uint64_t)c, (uint64_t)s->hw.dw_lanes),
                               npu_ceil_div((uint64_t)taps, (uint64_t)s->hw.dw_taps));
    return npu_sat_add(3, npu_sat_mul(rows, per));
}


static int exec_dwc(npu_sim *s, int64_t idx, const npu_insn *in, uint64_t *cost)
{
    const int32_t *f = in->f;
    int64_t dst = f[NPU_F_DWC_DST], a = f[NPU_F_DWC_A], w = f[NPU_F_DWC_W], par = f[NPU_F_DWC_PAR];
    int64_t m0 = f[NPU_F_DWC_M0], m1 = f[NPU_F_DWC_M1], c = f[NPU_F_DWC_C];
    int64_t kh = f[NPU_F_DWC_KH], kw = f[NPU_F_DWC_KW], taps = kh * kw;
    int64_t as0 = f[NPU_F_DWC_AS0], as1 = f[NPU_F_DWC_AS1], ts0 = f[NPU_F_DWC_TS0], ts1 = f[NPU_F_DWC_TS1];
    int64_t ds = f[NPU_F_DWC_DS], zp = f[NPU_F_DWC_ZP], lo = f[NPU_F_DWC_LO], hi = f[NPU_F_DWC_HI];
    int rnd = f[NPU_F_DWC_RND];
    uint64_t rows = (uint64_t)m0 * (uint64_t)m1;
    const npu_dim obox[3] = {{m1, m0 * ds}, {m0, ds}, {c, 1}};
    const npu_dim abox[5] = {{m1, as1}, {m0, as0}, {kh, ts1}, {kw, ts0}, {c, 1}};
    const npu_dim wbox[1] = {{taps * c, 1}};
    const npu_dim pbox[2] = {{3, c}, {c, 1}};
    if (npu_check_box(s, idx, in, NPU_F_DWC_DST, NPU_MEM_SPAD, dst, 3, obox))
        return -1;
    if (rows > 0 && (npu_check_box(s, idx, in, NPU_F_DWC_A, NPU_MEM_SPAD, a, 5, abox) ||
                     npu_check_box(s, idx, in, NPU_F_DWC_W, NPU_MEM_SPAD, w, 1, wbox) ||
                     npu_check_box(s, idx, in, NPU_F_DWC_PAR, NPU_MEM_ACC, par, 2, pbox)))
        return -1;
    if (lo > hi)
        return npu_fail(s, idx, "dwc: lo = %ld > hi = %ld", (long)lo, (long)hi);
    *cost = dw_cost(s, rows, c, taps);
    if (rows == 0)
        return 0;
    for (int64_t j = 0; j < c; j++) {
        int32_t v = npu_i32(s->acc[par + 2 * c + j]);
        if (v < 0 || v > 62)
            return npu_fail(s, idx, "dwc par: shift %ld at channel %lld outside [0, 62]", (long)v, (long long)j);
    }
    if (charge_work(s, idx, in, npu_sat_mul(rows, (uint64_t)(taps * c))))
        return -1;
    s->stats.macs += rows * (uint64_t)(taps * c);
    s->stats.spad_rd += rows * (uint64_t)(taps * c) + (uint64_t)(taps * c);
    s->stats.acc_rd += 4 * 3 * (uint64_t)c;
    s->stats.spad_wr += rows * (uint64_t)c;
    /* the parameters are in ACC, the outputs go to SPAD: element order cannot change a value read,
     * but outputs may overwrite inputs, so pixels are done in loop order, each reading SPAD as the
     * Action does */
    for (int64_t i1 = 0; i1 < m1; i1++) {
        for (int64_t i0 = 0; i0 < m0; i0++) {
            for (int64_t j = 0; j < c; j++) {
                const int8_t *x = s->spad + a + i1 * as1 + i0 * as0 + j;
                const int8_t *wt = s->spad + w + j;
                int32_t sum = 0; /* |sum| <= 2^16 * 2^14 */
                for (int64_t u = 0; u < kh; u++)
                    for (int64_t v = 0; v < kw; v++)
                        sum += (int32_t)x[u * ts1 + v * ts0] * (int32_t)wt[(u * kw + v) * c];
                int64_t acc = npu_i32(s->acc[par + j] + (uint32_t)sum); /* from the bias, mod 2^32 */
                int64_t t = acc * npu_i32(s->acc[par + c + j]);
                int64_t r = npu_round_shift(t, npu_i32(s->acc[par + 2 * c + j]), rnd) + zp;
                s->spad[dst + (i1 * m0 + i0) * ds + j] = (int8_t)(r < lo ? lo : r > hi ? hi : r);
            }
        }
    }
    return 0;
}

static int exec_vaddv(npu_sim *s, int64_t idx, const npu_insn *in, uint64_t *cost)
{
    const int32_t *f = in->f;
    int64_t dst = f[NPU_F_VADDV_DST], src = f[NPU_F_VADDV_SRC], vec = f[NPU_F_VADDV_VEC];
    int64_t m = f[NPU_F_VADDV_M], n = f[NPU_F_VADDV_N], ds = f[NPU_F_VADDV_DS], ss = f[NPU_F_VADDV_SS];
    const npu_dim dbox[2] = {{m, ds}, {n, 1}}, sbox[2] = {{m, ss}, {n, 1}};
    const npu_dim vbox[1] = {{n, 1}};
    uint64_t elems = npu_box_elems(2, dbox);
    if (npu_check_box(s, idx, in, NPU_F_VADDV_DST, NPU_MEM_ACC, dst, 2, dbox) ||
        npu_check_box(s, idx, in, NPU_F_VADDV_SRC, NPU_MEM_ACC, src, 2, sbox) ||
        (m > 0 && npu_check_box(s, idx, in, NPU_F_VADDV_VEC, NPU_MEM_ACC, vec, 1, vbox)) ||
        charge_work(s, idx, in, elems))
        return -1;
    *cost = vec_cost(s, m, n);
    if (elems == 0)
        return 0;
    s->stats.acc_rd += 4 * (elems + (uint64_t)n);
    s->stats.acc_wr += 4 * elems;
    s->stats.vec_ops += elems;
    /* element by element, as the Action reads: dst may alias src or vec */
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            s->acc[dst + i * ds + j] = s->acc[src + i * ss + j] + s->acc[vec + j];
    return 0;
}

static int check_vrq_shifts(npu_sim *s, int64_t idx, int64_t sh, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        int32_t v = npu_i32(s->acc[sh + j]);
        if (v < 0 || v > 62)
            return npu_fail(s, idx, "vrq sh: shift %ld at column %lld outside [0, 62]", (long)v,
                            (long long)j);
    }
    return 0;
}

static int exec_vrq(npu_sim *s, int64_t idx, const npu_insn *in, uint64_t *cost)
{
    const int32_t *f = in->f;
    int64_t dst = f[NPU_F_VRQ_DST], src = f[NPU_F_VRQ_SRC], mul = f[NPU_F_VRQ_MUL], sh = f[NPU_F_VRQ_SH];
    int64_t m = f[NPU_F_VRQ_M], n = f[NPU_F_VRQ_N], ds = f[NPU_F_VRQ_DS], ss = f[NPU_F_VRQ_SS];
    int64_t zp = f[NPU_F_VRQ_ZP], lo = f[NPU_F_VRQ_LO], hi = f[NPU_F_VRQ_HI];
    int rnd = f[NPU_F_VRQ_RND];
    const npu_dim dbox[2] = {{m, ds}, {n, 1}}, sbox[2] = {{m, ss}, {n, 1}};
    const npu_dim vbox[1] = {{n, 1}};
    uint64_t elems = npu_box_elems(2, dbox);
    if (npu_check_box(s, idx, in, NPU_F_VRQ_DST, NPU_MEM_SPAD, dst, 2, dbox) ||
        npu_check_box(s, idx, in, NPU_F_VRQ_SRC, NPU_MEM_ACC, src, 2, sbox) ||
        (m > 0 && npu_check_box(s, idx, in, NPU_F_VRQ_MUL, NPU_MEM_ACC, mul, 1, vbox)) ||
        (m > 0 && npu_check_box(s, idx, in, NPU_F_VRQ_SH, NPU_MEM_ACC, sh, 1, vbox)))
        return -1;
    if (lo > hi)
        return npu_fail(s, idx, "vrq: lo = %ld > hi = %ld", (long)lo, (long)hi);
    if ((m > 0 && check_vrq_shifts(s, idx, sh, n)) || charge_work(s, idx, in, elems))
        return -1;
    *cost = vec_cost(s, m, n);
    if (elems == 0)
        return 0;
    s->stats.acc_rd += 4 * (elems + 2 * (uint64_t)n);
    s->stats.spad_wr += elems;
    s->stats.vec_ops += elems;
    npu_kernel_vrq(s->spad, s->acc, dst, src, mul, sh, m, n, ds, ss, zp, lo, hi, rnd);
    return 0;
}

static int exec_vmax(npu_sim *s, int64_t idx, const npu_insn *in, uint64_t *cost)
{
    const int32_t *f = in->f;
    int64_t dst = f[NPU_F_VMAX_DST], a = f[NPU_F_VMAX_A], b = f[NPU_F_VMAX_B];
    int64_t m = f[NPU_F_VMAX_M], n = f[NPU_F_VMAX_N];
    int64_t ds = f[NPU_F_VMAX_DS], as = f[NPU_F_VMAX_AS], bs = f[NPU_F_VMAX_BS];
    const npu_dim dbox[2] = {{m, ds}, {n, 1}}, abox[2] = {{m, as}, {n, 1}}, bbox[2] = {{m, bs}, {n, 1}};
    uint64_t elems = npu_box_elems(2, dbox);
    if (npu_check_box(s, idx, in, NPU_F_VMAX_DST, NPU_MEM_SPAD, dst, 2, dbox) ||
        npu_check_box(s, idx, in, NPU_F_VMAX_A, NPU_MEM_SPAD, a, 2, abox) ||
        npu_check_box(s, idx, in, NPU_F_VMAX_B, NPU_MEM_SPAD, b, 2, bbox) ||
        charge_work(s, idx, in, elems))
        return -1;
    *cost = vec_cost(s, m, n);
    if (elems == 0)
        return 0;
    s->stats.spad_rd += 2 * elems;
    s->stats.spad_wr += elems;
    s->stats.vec_ops += elems;
    /* element by element, as the Action reads: dst may alias a or b */
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            int8_t x = s->spad[a + i * as + j], y = s->spad[b + i * bs + j];
            s->spad[dst + i * ds + j] = x > y ? x : y;
        }
    }
    return 0;
}

static int exec_vsum(npu_sim *s, int64_t idx, const npu_insn *in, uint64_t *cost)
{
    const int32_t *f = in->f;
    int64_t dst = f[NPU_F_VSUM_DST], src = f[NPU_F_VSUM_SRC];
    int64_t m = f[NPU_F_VSUM_M], n = f[NPU_F_VSUM_N], ss = f[NPU_F_VSUM_SS];
    int acc = f[NPU_F_VSUM_ACC];
    const npu_dim dbox[1] = {{n, 1}}, sbox[2] = {{m, ss}, {n, 1}};
    uint64_t elems = npu_box_elems(2, sbox);
    uint32_t *d;
    if (npu_check_box(s, idx, in, NPU_F_VSUM_DST, NPU_MEM_ACC, dst, 1, dbox) ||
        npu_check_box(s, idx, in, NPU_F_VSUM_SRC, NPU_MEM_SPAD, src, 2, sbox) ||
        charge_work(s, idx, in, npu_sat_add(elems, (uint64_t)n)))
        return -1;
    *cost = vec_cost(s, m, n);
    if (n == 0)
        return 0;
    d = s->acc + dst;
    s->stats.spad_rd += elems;
    s->stats.vec_ops += elems;
    s->stats.acc_rd += acc ? 4 * (uint64_t)n : 0;
    s->stats.acc_wr += 4 * (uint64_t)n;
    /* row by row: the sums land in ACC, the rows come from SPAD, so the
     * order of the additions (mod 2^32) does not change the result */
    for (int64_t j = 0; j < n; j++)
        d[j] = acc ? d[j] : 0u;
    for (int64_t i = 0; i < m; i++) {
        const int8_t *row = s->spad + src + i * ss;
        for (int64_t j = 0; j < n; j++)
            d[j] += (uint32_t)(int32_t)row[j];
    }
    return 0;
}

/* (a - za)*ma + (b - zb)*mb, rounded once: |t| <= 2 * 255 * 2^31 < 2^40, no overflow. */
static int8_t vadd_one(int8_t x, int8_t y, const int32_t *f)
{
    int64_t t = ((int64_t)x - f[NPU_F_VADD_ZA]) * f[NPU_F_VADD_MA] + ((int64_t)y - f[NPU_F_VADD_ZB]) * f[NPU_F_VADD_MB];
    int64_t r = npu_round_shift(t, f[NPU_F_VADD_SH], f[NPU_F_VADD_RND]) + f[NPU_F_VADD_ZP];
    int64_t lo = f[NPU_F_VADD_LO], hi = f[NPU_F_VADD_HI];
    return (int8_t)(r < lo ? lo : r > hi ? hi : r);
}

/* vadd and vmul share their first eight fields (dst a b m n ds as bs, isa/table.py) and run
 * dst = fn(a, b) element by element; only the combining function and the bound fields differ */
typedef char npu_vmul_fields_follow_vadd[(NPU_F_VMUL_DST == NPU_F_VADD_DST && NPU_F_VMUL_A == NPU_F_VADD_A &&
                                          NPU_F_VMUL_B == NPU_F_VADD_B && NPU_F_VMUL_M == NPU_F_VADD_M &&
                                          NPU_F_VMUL_N == NPU_F_VADD_N && NPU_F_VMUL_DS == NPU_F_VADD_DS &&
                                          NPU_F_VMUL_AS == NPU_F_VADD_AS && NPU_F_VMUL_BS == NPU_F_VADD_BS)
                                             ? 1 : -1];

static int exec_binary(npu_sim *s, int64_t idx, const npu_insn *in, uint64_t *cost, const char *name,
                       int lo_field, int hi_field, int8_t (*fn)(int8_t, int8_t, const int32_t *))
{
    const int32_t *f = in->f;
    int64_t dst = f[NPU_F_VADD_DST], a = f[NPU_F_VADD_A], b = f[NPU_F_VADD_B];
    int64_t m = f[NPU_F_VADD_M], n = f[NPU_F_VADD_N];
    int64_t ds = f[NPU_F_VADD_DS], as = f[NPU_F_VADD_AS], bs = f[NPU_F_VADD_BS];
    const npu_dim dbox[2] = {{m, ds}, {n, 1}}, abox[2] = {{m, as}, {n, 1}}, bbox[2] = {{m, bs}, {n, 1}};
    uint64_t elems = npu_box_elems(2, dbox);
    if (npu_check_box(s, idx, in, NPU_F_VADD_DST, NPU_MEM_SPAD, dst, 2, dbox) ||
        npu_check_box(s, idx, in, NPU_F_VADD_A, NPU_MEM_SPAD, a, 2, abox) ||
        npu_check_box(s, idx, in, NPU_F_VADD_B, NPU_MEM_SPAD, b, 2, bbox))
        return -1;
    if (f[lo_field] > f[hi_field])
        return npu_fail(s, idx, "%s: lo = %ld > hi = %ld", name, (long)f[lo_field], (long)f[hi_field]);
    if (charge_work(s, idx, in, elems))
        return -1;
    *cost = vec_cost(s, m, n);
    if (elems == 0)
        return 0;
    s->stats.spad_rd += 2 * elems;
    s->stats.spad_wr += elems;
    s->stats.vec_ops += elems;
    /* element by element, as the Action reads: dst may alias a or b */
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            s->spad[dst + i * ds + j] = fn(s->spad[a + i * as + j], s->spad[b + i * bs + j], f);
    return 0;
}

static int exec_vadd(npu_sim *s, int64_t idx, const npu_insn *in, uint64_t *cost)
{
    return exec_binary(s, idx, in, cost, "vadd", NPU_F_VADD_LO, NPU_F_VADD_HI, vadd_one);
}

static int exec_vlut(npu_sim *s, int64_t idx, const npu_insn *in, uint64_t *cost)
{
    const int32_t *f = in->f;
    int64_t dst = f[NPU_F_VLUT_DST], src = f[NPU_F_VLUT_SRC], tab = f[NPU_F_VLUT_TAB];
    int64_t m = f[NPU_F_VLUT_M], n = f[NPU_F_VLUT_N];
    int64_t ds = f[NPU_F_VLUT_DS], ss = f[NPU_F_VLUT_SS], ts = f[NPU_F_VLUT_TS];
    const npu_dim dbox[2] = {{m, ds}, {n, 1}}, sbox[2] = {{m, ss}, {n, 1}};
    const npu_dim tbox[2] = {{n, ts}, {256, 1}}; /* every entry a lookup could read */
    uint64_t elems = npu_box_elems(2, dbox);
    if (npu_check_box(s, idx, in, NPU_F_VLUT_DST, NPU_MEM_SPAD, dst, 2, dbox) ||
        npu_check_box(s, idx, in, NPU_F_VLUT_SRC, NPU_MEM_SPAD, src, 2, sbox) ||
        (m > 0 && npu_check_box(s, idx, in, NPU_F_VLUT_TAB, NPU_MEM_SPAD, tab, 2, tbox)) ||
        charge_work(s, idx, in, elems))
        return -1;
    *cost = vec_cost(s, m, n);
    if (elems == 0)
        return 0;
    s->stats.spad_rd += 2 * elems; /* the source byte and the table byte it selects */
    s->stats.spad_wr += elems;
    s->stats.vec_ops += elems;
    /* element by element, as the Action reads: dst may alias src or a table; the table
     * box is inside SPAD, so tab + j*ts + (x + 128) is too */
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            int64_t x = s->spad[src + i * ss + j];
            s->spad[dst + i * ds + j] = s->spad[tab + j * ts + x + 128];
        }
    }
    return 0;
}

/* (a - za)*(b - zb)*mul, rounded once: |t| <= 255^2 * 2^31 < 2^47, no overflow. */
static int8_t vmul_one(int8_t x, int8_t y, const int32_t *f)
{
    int64_t t = ((int64_t)x - f[NPU_F_VMUL_ZA]) * ((int64_t)y - f[NPU_F_VMUL_ZB]) * f[NPU_F_VMUL_MUL];
    int64_t r = npu_round_shift(t, f[NPU_F_VMUL_SH], f[NPU_F_VMUL_RND]) + f[NPU_F_VMUL_ZP];
    int64_t lo = f[NPU_F_VMUL_LO], hi = f[NPU_F_VMUL_HI];
    return (int8_t)(r < lo ? lo : r > hi ? hi : r);
}

static int exec_vmul(npu_sim *s, int64_t idx, const npu_insn *in, uint64_t *cost)
{
    return exec_binary(s, idx, in, cost, "vmul", NPU_F_VMUL_LO, NPU_F_VMUL_HI, vmul_one);
}

#define NPU_EXEC(name, OPCODE, UNIT, NFIELDS) exec_##name,
static const npu_exec_fn EXEC[NPU_NUM_INSNS] = {NPU_INSNS(NPU_EXEC)};
#undef NPU_EXEC

int npu_exec(npu_sim *s, int64_t idx, uint64_t *cost)
{
    const npu_insn *in = &s->insns[idx];
    *cost = 0;
    return EXEC[in->kind](s, idx, in, cost);
}
