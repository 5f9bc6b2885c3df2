/* Units, tokens and time (isa/ISA.md): the scheduler around exec.c.
 *
 * Three units each run their instructions in program order. A token
 * semaphore is a min-heap of the cycles its tokens become available; a wait
 * takes the earliest one. The simulator repeatedly executes, among the units
 * whose next instruction can take all its tokens, the one with the smallest
 * start (ties: load, compute, store). DMAs share one DRAM channel.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

static const char *const UNIT_NAME[NPU_NUM_UNITS] = {"load", "compute", "store"};

int npu_fail(npu_sim *s, int64_t idx, const char *fmt, ...)
{
    va_list ap;
    int n = 0;
    if (s->err[0] != '\0')
        return -1; /* keep the first error */
    s->err_insn = idx;
    if (idx >= 0)
        n = snprintf(s->err, sizeof s->err, "insn %lld: ", (long long)idx);
    va_start(ap, fmt);
    vsnprintf(s->err + n, sizeof s->err - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- token semaphores ---- */

static int sem_push(npu_sim *s, int64_t idx, int tok, uint64_t t)
{
    npu_sem *q = &s->tok[tok];
    uint32_t i;
    if (q->n >= NPU_TOKEN_MAX)
        return npu_fail(s, idx, "%s: TOK[%d] overflows: more than %d tokens outstanding",
                        npu_specs[s->insns[idx].kind].mnemonic, tok, NPU_TOKEN_MAX);
    if (q->n == q->cap) {
        uint32_t cap = q->cap ? 2 * q->cap : 16;
        uint64_t *grown = realloc(q->t, cap * sizeof *grown);
        if (grown == NULL)
            return npu_fail(s, idx, "out of memory growing TOK[%d]", tok);
        q->t = grown;
        q->cap = cap;
    }
    for (i = q->n++; i > 0 && q->t[(i - 1) / 2] > t; i = (i - 1) / 2)
        q->t[i] = q->t[(i - 1) / 2];
    q->t[i] = t;
    return 0;
}

static void sem_pop(npu_sem *q)
{
    uint64_t last = q->t[--q->n];
    uint32_t i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= q->n)
            break;
        if (c + 1 < q->n && q->t[c + 1] < q->t[c])
            c++;
        if (q->t[c] >= last)
            break;
        q->t[i] = q->t[c];
        i = c;
    }
    if (q->n > 0)
        q->t[i] = last;
}

static int can_take(const npu_sim *s, uint16_t mask)
{
    for (int b = 0; b < NPU_NUM_TOKENS; b++)
        if ((mask >> b & 1u) && s->tok[b].n == 0)
            return 0;
    return 1;
}

/* The latest availability among the earliest token of each waited semaphore. */
static uint64_t ready_at(const npu_sim *s, uint16_t mask)
{
    uint64_t ready = 0;
    for (int b = 0; b < NPU_NUM_TOKENS; b++)
        if ((mask >> b & 1u) && s->tok[b].t[0] > ready)
            ready = s->tok[b].t[0];
    return ready;
}

static void take(npu_sim *s, uint16_t mask)
{
    for (int b = 0; b < NPU_NUM_TOKENS; b++)
        if (mask >> b & 1u)
            sem_pop(&s->tok[b]);
}

static int give(npu_sim *s, int64_t idx, uint16_t mask, uint64_t t)
{
    for (int b = 0; b < NPU_NUM_TOKENS; b++)
        if ((mask >> b & 1u) && sem_push(s, idx, b, t))
            return -1;
    return 0;
}

/* ---- scheduling ---- */

static size_t next_of_unit(const npu_sim *s, size_t from, int unit)
{
    while (from < s->n_insns && npu_specs[s->insns[from].kind].unit != unit)
        from++;
    return from;
}

/* npu_stats is read as an array of counters (all uint64_t) to add one run's share to a layer */
typedef char npu_stats_are_uint64s[sizeof(npu_stats) % sizeof(uint64_t) == 0 ? 1 : -1];

/* Add the counters' growth since `before` to the instruction's layer, when the caller asked. */
static void charge_layer(npu_sim *s, const npu_insn *in, const npu_stats *before)
{
    uint64_t *dst, now[sizeof(npu_stats) / sizeof(uint64_t)], was[sizeof now / sizeof now[0]];
    if (s->opts.layer_stats == NULL || in->layer >= s->opts.n_layers)
        return;
    memcpy(now, &s->stats, sizeof now);
    memcpy(was, before, sizeof was);
    dst = (uint64_t *)(void *)&s->opts.layer_stats[in->layer];
    for (size_t i = 0; i < sizeof now / sizeof now[0]; i++)
        dst[i] = npu_sat_add(dst[i], now[i] - was[i]);
}

/* Execute instruction idx on unit u: tokens, semantics, timing, statistics. */
static int step(npu_sim *s, int u, size_t idx)
{
    const npu_insn *in = &s->insns[idx];
    uint64_t ready = ready_at(s, in->wait), free_u = s->free_at[u];
    uint64_t start = ready > free_u ? ready : free_u, cost, end;
    npu_stats before = s->stats;
    take(s, in->wait);
    s->start = start;
    s->ready = ready;
    s->insn_sat = 0;
    if (npu_exec(s, (int64_t)idx, &cost))
        return -1;
    if (npu_specs[in->kind].unit == NPU_UNIT_COMPUTE && in->kind != NPU_K_gemm)
        s->array.last_gemm = 0; /* another compute instruction ends the array's chain */
    if (ready > free_u)
        s->stats.token_stall[u] += start - free_u;
    if (npu_specs[in->kind].unit == NPU_UNIT_COMPUTE) {
        end = npu_sat_add(start, cost);
        s->free_at[u] = end;
    } else { /* a DMA: the channel carries the transfer, the latency follows it */
        uint64_t x = start > s->dram_free ? start : s->dram_free;
        s->dram_free = npu_sat_add(x, cost);
        s->free_at[u] = s->dram_free;
        end = npu_sat_add(s->dram_free, (uint64_t)s->hw.dram_latency);
        s->stats.dram_stall[u] += x - start;
    }
    s->stats.busy[u] = npu_sat_add(s->stats.busy[u], cost);
    s->stats.insns[u]++;
    if (end > s->stats.cycles)
        s->stats.cycles = end;
    if (s->opts.insn_start != NULL)
        s->opts.insn_start[idx] = start;
    if (s->opts.insn_end != NULL)
        s->opts.insn_end[idx] = end;
    charge_layer(s, in, &before);
    if (s->opts.order_out != NULL)
        s->opts.order_out[s->n_done] = (uint32_t)idx;
    s->n_done++;
    if (s->opts.insn_sat != NULL)
        s->opts.insn_sat[idx] = s->insn_sat;
    return give(s, (int64_t)idx, in->signal, end);
}

static int deadlock(npu_sim *s, const size_t next[NPU_NUM_UNITS])
{
    char why[NPU_ERR_MAX];
    size_t len = 0, first = SIZE_MAX;
    for (int u = 0; u < NPU_NUM_UNITS; u++) {
        const npu_insn *in;
        if (next[u] >= s->n_insns)
            continue;
        in = &s->insns[next[u]];
        first = next[u] < first ? next[u] : first;
        len += (size_t)snprintf(why + len, sizeof why - len, "; %s unit at insn %lu (%s) waits for",
                                UNIT_NAME[u], (unsigned long)next[u], npu_specs[in->kind].mnemonic);
        for (int b = 0; b < NPU_NUM_TOKENS && len < sizeof why; b++)
            if ((in->wait >> b & 1u) && s->tok[b].n == 0)
                len += (size_t)snprintf(why + len, sizeof why - len, " TOK[%d]", b);
        if (len >= sizeof why)
            break;
    }
    return npu_fail(s, (int64_t)first, "%s: deadlock: no unit can proceed%s",
                    npu_specs[s->insns[first].kind].mnemonic, why);
}

static int simulate(npu_sim *s)
{
    size_t next[NPU_NUM_UNITS];
    for (int u = 0; u < NPU_NUM_UNITS; u++)
        next[u] = next_of_unit(s, 0, u);
    for (;;) {
        int best = -1, pending = 0;
        uint64_t best_start = 0;
        for (int u = 0; u < NPU_NUM_UNITS; u++) {
            uint64_t start;
            if (next[u] >= s->n_insns)
                continue;
            pending = 1;
            if (!can_take(s, s->insns[next[u]].wait))
                continue;
            start = ready_at(s, s->insns[next[u]].wait);
            start = start > s->free_at[u] ? start : s->free_at[u];
            if (best < 0 || start < best_start) {
                best = u;
                best_start = start;
            }
        }
        if (best < 0)
            return pending ? deadlock(s, next) : 0;
        if (step(s, best, next[best]))
            return -1;
        next[best] = next_of_unit(s, next[best] + 1, best);
    }
}

/* ---- setup ---- */

static int check_hw(npu_sim *s, const npu_hw *hw)
{
    /* every member, with the range declared beside it (npu_types.h) */
#define NPU_HW_LIMIT(member, lo, hi) {#member, hw->member, lo, hi},
    const struct {
        const char *name;
        int32_t value, lo, hi;
    } lim[] = {NPU_HW_FIELDS(NPU_HW_LIMIT)};
#undef NPU_HW_LIMIT
    for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++)
        if (lim[i].value < lim[i].lo || lim[i].value > lim[i].hi)
            return npu_fail(s, -1, "hw %s = %ld: must be in [%ld, %ld]", lim[i].name, (long)lim[i].value,
                            (long)lim[i].lo, (long)lim[i].hi);
    s->hw = *hw;
    return 0;
}

static int alloc_memories(npu_sim *s)
{
    const npu_hw *hw = &s->hw;
    s->spad = calloc((size_t)hw->spad_bytes, 1);
    s->acc = calloc((size_t)hw->acc_words, sizeof *s->acc);
    /* the widest tile: int4 weights pack int4_pack columns per PE */
    int64_t wcols = npu_gemm_cols(hw, 1);
    s->gemm.wpack = malloc((size_t)npu_gemm_wpack_elems(hw->rows, wcols) * sizeof *s->gemm.wpack);
    s->gemm.arow = malloc((size_t)npu_gemm_arow_elems(hw->rows) * sizeof *s->gemm.arow);
    s->gemm.orow = malloc((size_t)npu_gemm_orow_elems(wcols) * sizeof *s->gemm.orow);
    s->gemm.brow = malloc((size_t)wcols * sizeof *s->gemm.brow);
    /* a gemm off the staged tile (os: any k; is: any n) runs row by row from the scratchpad:
     * its output and bias rows hold any n the field allows (2^16 in is) */
    size_t row = hw->dataflow == NPU_HW_DATAFLOW_IS ? (size_t)1 << 16 : (size_t)wcols;
    s->orow = malloc(row * sizeof *s->orow);
    s->brow = malloc(row * sizeof *s->brow);
    if (s->spad == NULL || s->acc == NULL || s->gemm.wpack == NULL || s->gemm.arow == NULL ||
        s->gemm.orow == NULL || s->gemm.brow == NULL || s->orow == NULL || s->brow == NULL)
        return npu_fail(s, -1, "out of memory allocating SPAD of %ld bytes and ACC of %ld words",
                        (long)hw->spad_bytes, (long)hw->acc_words);
    if (s->opts.spad_in != NULL)
        memcpy(s->spad, s->opts.spad_in, (size_t)hw->spad_bytes);
    if (s->opts.acc_in != NULL)
        for (int32_t i = 0; i < hw->acc_words; i++)
            s->acc[i] = (uint32_t)s->opts.acc_in[i];
    return 0;
}

/* Copy the final SPAD and ACC out, when asked and when they exist. */
static void dump_memories(const npu_sim *s)
{
    if (s->opts.spad_out != NULL && s->spad != NULL)
        memcpy(s->opts.spad_out, s->spad, (size_t)s->hw.spad_bytes);
    if (s->opts.acc_out != NULL && s->acc != NULL)
        for (int32_t i = 0; i < s->hw.acc_words; i++)
            s->opts.acc_out[i] = npu_i32(s->acc[i]);
}

static void release(npu_sim *s)
{
    for (int b = 0; b < NPU_NUM_TOKENS; b++)
        free(s->tok[b].t);
    free(s->insns);
    free(s->spad);
    free(s->acc);
    free(s->gemm.wpack);
    free(s->gemm.arow);
    free(s->gemm.orow);
    free(s->gemm.brow);
    free(s->orow);
    free(s->brow);
}

/* The data path alone, in a timed run's order (npu_replay). */
static int replay(npu_sim *s, const uint32_t *order, size_t n_order)
{
    for (size_t t = 0; t < n_order; t++) {
        uint64_t cost;
        if (order[t] >= s->n_insns)
            return npu_fail(s, -1, "replay: order entry %lu is %lu, outside the %lu instructions", (unsigned long)t,
                            (unsigned long)order[t], (unsigned long)s->n_insns);
        if (npu_exec(s, (int64_t)order[t], &cost))
            return -1;
        if (npu_specs[s->insns[order[t]].kind].unit == NPU_UNIT_COMPUTE && s->insns[order[t]].kind != NPU_K_gemm)
            s->array.last_gemm = 0; /* as step() keeps it, though only cycles depend on it */
        s->stats.insns[npu_specs[s->insns[order[t]].kind].unit]++;
    }
    return 0;
}

/* Check the arguments, decode, allocate; then simulate (order NULL) or replay `order`. */
static int run(npu_sim *s, const npu_hw *hw, const uint32_t *words, size_t n_words, const uint32_t *order,
               size_t n_order, int replaying)
{
    if (hw == NULL)
        return npu_fail(s, -1, "no hardware configuration");
    if (words == NULL && n_words > 0)
        return npu_fail(s, -1, "program is NULL but has %lu words", (unsigned long)n_words);
    if (s->dram == NULL && s->dram_size > 0)
        return npu_fail(s, -1, "DRAM is NULL but has %lu bytes", (unsigned long)s->dram_size);
    if (order == NULL && n_order > 0)
        return npu_fail(s, -1, "replay order is NULL but has %lu entries", (unsigned long)n_order);
    if (check_hw(s, hw) || npu_decode(s, words, n_words) || alloc_memories(s))
        return -1;
    return replaying ? replay(s, order, n_order) : simulate(s);
}

static void report(const npu_sim *s, int rc, npu_stats *stats, int64_t *err_insn, char *err_msg,
                   size_t err_len)
{
    if (stats != NULL)
        *stats = s->stats;
    if (err_insn != NULL)
        *err_insn = rc ? s->err_insn : -1;
    if (err_msg != NULL && err_len > 0)
        snprintf(err_msg, err_len, "%s", rc ? s->err : "");
}

/* npu_run and npu_replay: one simulator state from allocation to release. */
static int run_all(const npu_hw *hw, const uint32_t *words, size_t n_words, const uint32_t *order, size_t n_order,
                   int replaying, uint8_t *dram, size_t dram_size, const npu_opts *opts, npu_stats *stats,
                   int64_t *err_insn, char *err_msg, size_t err_len)
{
    npu_sim *s = calloc(1, sizeof *s);
    int rc;
    if (s == NULL) {
        if (stats != NULL)
            memset(stats, 0, sizeof *stats);
        if (err_insn != NULL)
            *err_insn = -1;
        if (err_msg != NULL && err_len > 0)
            snprintf(err_msg, err_len, "out of memory");
        return 1;
    }
    s->dram = dram;
    s->dram_size = dram_size;
    if (opts != NULL)
        s->opts = *opts;
    if (replaying) { /* no times and no order to record */
        s->opts.insn_start = s->opts.insn_end = NULL;
        s->opts.order_out = NULL;
    }
    s->err_insn = -1;
    rc = run(s, hw, words, n_words, order, n_order, replaying) != 0;
    dump_memories(s);
    report(s, rc, stats, err_insn, err_msg, err_len);
    release(s);
    free(s);
    return rc;
}

int npu_run(const npu_hw *hw, const uint32_t *words, size_t n_words,
            uint8_t *dram, size_t dram_size, const npu_opts *opts,
            npu_stats *stats, int64_t *err_insn, char *err_msg, size_t err_len)
{
    return run_all(hw, words, n_words, NULL, 0, 0, dram, dram_size, opts, stats, err_insn, err_msg, err_len);
}

int npu_replay(const npu_hw *hw, const uint32_t *words, size_t n_words, const uint32_t *order, size_t n_order,
               uint8_t *dram, size_t dram_size, const npu_opts *opts,
               npu_stats *stats, int64_t *err_insn, char *err_msg, size_t err_len)
{
    return run_all(hw, words, n_words, order, n_order, 1, dram, dram_size, opts, stats, err_insn, err_msg,
                   err_len);
}
