/* npusim: the cycle-accurate C simulator of the npuc NPU (isa/ISA.md).
 *
 * One call runs a whole program: decode every instruction (rejecting the
 * program before anything runs if one is malformed), then execute the three
 * units under the token model of ISA.md, "Units, tokens and time".
 * The caller owns the DRAM buffer, which is modified in place; SPAD and ACC
 * are allocated (zeroed, unless npu_opts gives their initial contents) and
 * freed inside. No global or static mutable state: concurrent calls on
 * different buffers are safe.
 */
#ifndef NPUSIM_H
#define NPUSIM_H

#include <stddef.h>
#include <stdint.h>

/* npu_hw (the hardware parameters, with the range each member must be in) and
 * npu_stats (the counters of a run): generated from their Python declarations. */
#include "npu_types.h"

/* A semaphore never holds more tokens than this; one more is an error. */
#define NPU_TOKEN_MAX 65535

/* Optional inputs and outputs of a run; a NULL npu_opts means all zero. */
typedef struct {
    /* 0 for no limit; otherwise the run stops with an error before an
     * instruction that would bring the total number of elements processed
     * (the iteration count of its Action loops; gemm counts M*k*n) above it.
     * A guard for untrusted programs, not part of the ISA. */
    uint64_t max_work;
    /* NULL, or n_words / NPU_WORDS_PER_INSN entries: each executed
     * instruction's start and end cycle (end = completion for a DMA). */
    uint64_t *insn_start, *insn_end;
    /* NULL, or one entry per instruction as insn_start: the gemm outputs each
     * instruction saturated (wrapped at acc_bits = 32); 0 for any other. */
    uint64_t *insn_sat;
    /* NULL, or hw.spad_bytes / hw.acc_words entries: the final SPAD and ACC
     * (written also after a run-time error, once the memories exist). */
    int8_t *spad_out;
    int32_t *acc_out;
    /* NULL, or hw.spad_bytes / hw.acc_words entries: the initial SPAD and ACC
     * (NULL: zeroed, as a program always finds them). A testing aid, so that
     * the C core and the emulator can be compared from any machine state;
     * only read, and only once the hardware configuration has been checked. */
    const int8_t *spad_in;
    const int32_t *acc_in;
    /* NULL, or n_layers entries: each layer's share of the counters (an
     * instruction's events go to the layer its word 0 names; cycles: how far
     * its instructions moved the run's end). Layers >= n_layers are not
     * counted. Summed over the layers, every counter but cycles is the run's. */
    npu_stats *layer_stats;
    size_t n_layers;
    /* NULL, or n_words / NPU_WORDS_PER_INSN entries: the index of each
     * instruction in the order the run executed them (the order npu_replay
     * takes); entries after a run-time error are left as they were. */
    uint32_t *order_out;
} npu_opts;

/* Run a program of n_words 32-bit words (NPU_WORDS_PER_INSN per instruction).
 *
 * Returns 0 on success. On error returns nonzero, sets *err_insn to the
 * instruction index (-1 when the error belongs to no instruction) and writes
 * a NUL-terminated message of at most err_len bytes to err_msg; stats and
 * DRAM then hold what the instructions before the error produced.
 */
int npu_run(const npu_hw *hw, const uint32_t *words, size_t n_words,
            uint8_t *dram, size_t dram_size, const npu_opts *opts,
            npu_stats *stats, int64_t *err_insn, char *err_msg, size_t err_len);

/* Run the data path of a program alone, for another input of a program whose
 * timing is known: execute the n_order instructions `order` (a run's
 * order_out on the same program and hardware) one after the other, with every
 * check of npu_run but no units, tokens or cycles. A run's order respects
 * every token, and what an instruction computes does not depend on when it
 * runs, so DRAM ends as npu_run would leave it; cycles do not depend on the
 * data, so the timed run's cycles and counters are this one's too. stats
 * (may be NULL) receives the counters of the data path (macs, bytes,
 * vec_ops, insns), zero cycles. Errors and opts (but order_out, insn_start
 * and insn_end, unused) as npu_run's; an index outside the program is an error. */
int npu_replay(const npu_hw *hw, const uint32_t *words, size_t n_words, const uint32_t *order, size_t n_order,
               uint8_t *dram, size_t dram_size, const npu_opts *opts,
               npu_stats *stats, int64_t *err_insn, char *err_msg, size_t err_len);

#endif /* NPUSIM_H */
