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
/* cmd_bench.c: a deterministic noise image of the model's size, distinct per `run` (so the
 * encoded-image cache never hits), and the benchmark's prompt ids. */
pg_image *bench_make_image(uint32_t size, int run);
pg_status bench_set_prompt(pg_session *s, const pg_model_info *info);

/* bench_batch.c: pg bench --batch (throughput of the pg_batch engine). */
typedef struct bench_batch_row {
    uint32_t width;          /* sessions decoded together */
    double decode_tok_s;     /* aggregate decode rate while all `width` sessions decode */
    uint32_t decode_steps;   /* steps that rate is measured over */
    double images_per_min;   /* images captioned per minute (prefill + decode, streamed) */
    uint32_t images;         /* images that rate is measured over */
    uint64_t tokens;         /* tokens they generated */
    double wall_ms;
    double cpu_ms;           /* process CPU time over that wall time (all threads) */
} bench_batch_row;

int bench_batch_run(pg_model *model, const pg_model_info *info, uint32_t width,
                    uint32_t tokens, uint32_t images, int first_run, bool verbose,
                    bench_batch_row *row);

double bench_now_ms(void);
/* CPU time of the whole process (all threads), in ms. */
double bench_cpu_ms(void);
int bench_cpu_count(void);
/* Resets the kernel's peak-RSS mark of this process; false where that is not possible. */
bool bench_reset_peak_rss(void);
/* Peak resident set size in MB (since the last reset where possible). */
double bench_peak_rss_mb(void);

#endif
