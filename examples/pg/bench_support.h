/* pg bench: the parts of the benchmark besides the command itself (cmd_bench.c). */
#ifndef PG_BENCH_SUPPORT_H
#define PG_BENCH_SUPPORT_H

#include "paligemma.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Work of one caption, counted from the model's shapes (bench_work.c). A multiply-add is
 * 2 FLOP. */
typedef struct bench_work {
    double vision_flop;            /* patch embedding, vision tower, projector */
    double prefill_flop;           /* decoder over the prompt, logits of the last position */
    double decode_flop_per_token;  /* one decode step (matmuls + lm_head) */
    double weight_bytes_per_token; /* decoder matmul weights + output head, as stored */
    uint32_t prefill_tokens, decode_tokens;
} bench_work;

/* Fills `w` for `prefill_tokens` prompt tokens with weights of `dtype` (PG_DTYPE_AUTO =
 * bf16, Q8 = 34 bytes per 32 weights, Q4 = 18 bytes per 32). */
void bench_work_of(const pg_model_info *info, int32_t dtype, uint32_t prefill_tokens,
                   bench_work *w);

/*
 * Finds or makes the random-weight checkpoint of `variant` (n_layers 0 = the variant's own)
 * in the cache folder (NULL = default) and writes its path to dir_out. A new checkpoint
 * replaces any other one made by pg bench there. 0 on success; prints why on failure.
 * (bench_checkpoint.c)
 */
int bench_checkpoint(const char *variant, int n_layers, uint64_t seed, const char *cache_dir,
                     bool verbose, char *dir_out, size_t cap);

/* System helpers (bench_sys.c). */
double bench_now_ms(void);
/* CPU time of the whole process (all threads), in ms. */
double bench_cpu_ms(void);
int bench_cpu_count(void);
/* Resets the kernel's peak-RSS mark of this process; false where that is not possible. */
bool bench_reset_peak_rss(void);
/* Peak resident set size in MB (since the last reset where possible). */
double bench_peak_rss_mb(void);

#endif
