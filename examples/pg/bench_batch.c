/*
 * pg bench --batch: throughput of the pg_batch engine at one batch width (bench_support.h).
 *
 * Two measurements per width B, both through the public batch API:
 *  1. Aggregate decode: B sessions, each with its own image, are added together; once every
 *     one has produced its first token, the steps in which all B decode are timed one by
 *     one (a step where a session ends is left out). Rate = B x steps / their time.
 *  2. Images per minute: `images` fresh images, each captioned with `tokens` new tokens,
 *     streamed through the batch with B + 1 sessions circulating (as `pg caption --batch`
 *     does: one prefills while B decode). Rate = images / wall time of the whole stream.
 * Random-weight checkpoints pick arbitrary ids, so a caption may end early at <eos>; the
 * tokens actually generated are counted and reported.
 */
#include "bench_support.h"

#include "paligemma.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SLOTS 65

typedef struct counter {
    uint32_t tokens;
} counter;

static int count_token(void *user, const pg_token_event *ev)
{
    (void)ev;
    ((counter *)user)->tokens++;
    return 0;
}

typedef struct bench_slots {
    pg_session *s[MAX_SLOTS];
    counter c[MAX_SLOTS];
    uint32_t n;
} bench_slots;

static int new_sessions(pg_model *model, const pg_model_info *info, uint32_t n,
                        uint32_t tokens, bench_slots *sl)
{
    pg_session_options so;
    PG_SESSION_OPTIONS_INIT(&so);
    so.n_ctx = info->image_tokens + 16 + tokens;
    for (sl->n = 0; sl->n < n; sl->n++) {
        if (pg_session_new(&sl->s[sl->n], model, &so) != PG_OK) {
            fprintf(stderr, "pg bench: session: %s\n", pg_last_error());
            return -1;
        }
    }
    return 0;
}

static void free_sessions(bench_slots *sl)
{
    for (uint32_t k = 0; k < sl->n; k++) {
        pg_session_free(sl->s[k]);
    }
    sl->n = 0;
}

/* Sets image `run` and the prompt on slot k and adds it to the batch. */
static int add_job(pg_batch *b, bench_slots *sl, uint32_t k, const pg_model_info *info,
                   int run, uint32_t tokens)
{
    pg_image *img = bench_make_image(info->image_size, run);
    pg_status st = img ? pg_session_set_image(sl->s[k], img) : PG_ERR_OUT_OF_MEMORY;
    pg_image_free(img);
    if (st == PG_OK) {
        st = bench_set_prompt(sl->s[k], info);
    }
    pg_generate_options go;
    PG_GENERATE_OPTIONS_INIT(&go);
    go.max_new_tokens = tokens;
    go.on_token = count_token;
    go.on_token_user = &sl->c[k];
    sl->c[k].tokens = 0;
    if (st == PG_OK) {
        st = pg_batch_add(b, sl->s[k], &go);
    }
    if (st != PG_OK) {
        fprintf(stderr, "pg bench: batch job: %s\n", pg_last_error());
        return -1;
    }
    return 0;
}

static pg_batch *new_batch(pg_model *model, uint32_t width, uint32_t sessions)
{
    pg_batch_options bo;
    PG_BATCH_OPTIONS_INIT(&bo);
    bo.max_batch = width;
    bo.max_sessions = sessions;
    pg_batch *b = NULL;
    if (pg_batch_new(&b, model, &bo) != PG_OK) {
        fprintf(stderr, "pg bench: batch: %s\n", pg_last_error());
        return NULL;
    }
    return b;
}

static bool all_started(const bench_slots *sl)
{
    for (uint32_t k = 0; k < sl->n; k++) {
        if (sl->c[k].tokens == 0) {
            return false;
        }
    }
    return true;
}

/* Measurement 1: the aggregate decode rate of `width` sessions decoding together. */
static int measure_decode(pg_model *model, const pg_model_info *info, uint32_t width,
                          uint32_t tokens, int first_run, bench_batch_row *row)
{
    bench_slots sl;
    memset(&sl, 0, sizeof sl);
    pg_batch *b = new_batch(model, width, width);
    int rc = b ? new_sessions(model, info, width, tokens, &sl) : -1;
    for (uint32_t k = 0; rc == 0 && k < width; k++) {
        rc = add_job(b, &sl, k, info, first_run + (int)k, tokens);
    }
    uint32_t active = width;
    while (rc == 0 && !all_started(&sl) && active == width) {
        rc = pg_batch_step(b, &active) == PG_OK ? 0 : -1;
    }
    double ms = 0;
    uint32_t steps = 0;
    while (rc == 0 && active == width) {
        double t0 = bench_now_ms();
        rc = pg_batch_step(b, &active) == PG_OK ? 0 : -1;
        if (rc == 0 && active == width) { /* every session decoded in this step */
            ms += bench_now_ms() - t0;
            steps++;
        }
    }
    row->decode_steps = steps;
    row->decode_tok_s = ms > 0 ? (double)width * steps / (ms * 1e-3) : 0;
    if (rc != 0) {
        fprintf(stderr, "pg bench: batch step: %s\n", pg_last_error());
    }
    pg_batch_free(b);
    free_sessions(&sl);
    return rc;
}

/* Measurement 2: images per minute, streamed through width + 1 circulating sessions. */
static int measure_stream(pg_model *model, const pg_model_info *info, uint32_t width,
                          uint32_t tokens, uint32_t images, int first_run, bool verbose,
                          bench_batch_row *row)
{
    bench_slots sl;
    memset(&sl, 0, sizeof sl);
    uint32_t n_slots = width + 1 < images ? width + 1 : images;
    pg_batch *b = new_batch(model, width, n_slots);
    int rc = b ? new_sessions(model, info, n_slots, tokens, &sl) : -1;
    bool busy[MAX_SLOTS] = { false };
    uint32_t next = 0, done = 0;
    double t0 = bench_now_ms(), c0 = bench_cpu_ms();
    while (rc == 0 && done < images) {
        for (uint32_t k = 0; rc == 0 && k < n_slots && next < images; k++) {
            if (!busy[k]) {
                rc = add_job(b, &sl, k, info, first_run + (int)next++, tokens);
                busy[k] = rc == 0;
            }
        }
        if (rc == 0 && pg_batch_step(b, NULL) != PG_OK) {
            fprintf(stderr, "pg bench: batch step: %s\n", pg_last_error());
            rc = -1;
        }
        pg_session *s = NULL;
        pg_status result = PG_OK;
        while (rc == 0 && pg_batch_take_finished(b, 0, &s, &result) == PG_OK && s) {
            for (uint32_t k = 0; k < n_slots; k++) {
                if (sl.s[k] == s) {
                    busy[k] = false;
                    row->tokens += sl.c[k].tokens;
                }
            }
            if (result != PG_OK) {
                fprintf(stderr, "pg bench: caption failed: %s\n", pg_session_last_error(s));
                rc = -1;
            }
            done++;
            if (verbose) {
                pg_timings t = { .struct_size = sizeof t };
                pg_session_get_timings(s, &t);
                fprintf(stderr, "  batch %u: %u/%u images, %.1f s (this one: vision %.1f s, "
                        "prefill %.1f s, first token after %.1f s, %u tokens in %.1f s)\n",
                        width, done, images, (bench_now_ms() - t0) / 1e3, t.vision_ms / 1e3,
                        t.prefill_ms / 1e3, t.ttft_ms / 1e3, t.decode_tokens,
                        t.decode_ms / 1e3);
            }
        }
    }
    row->wall_ms = bench_now_ms() - t0;
    row->cpu_ms = bench_cpu_ms() - c0;
    row->images = done;
    row->images_per_min = row->wall_ms > 0 ? done / (row->wall_ms / 60e3) : 0;
    pg_batch_free(b);
    free_sessions(&sl);
    return rc;
}

int bench_batch_run(pg_model *model, const pg_model_info *info, uint32_t width,
                    uint32_t tokens, uint32_t images, int first_run, bool verbose,
                    bench_batch_row *row)
{
    memset(row, 0, sizeof *row);
    row->width = width;
    if (width < 1 || width + 1 > MAX_SLOTS || tokens < 2 || images < 1) {
        fprintf(stderr, "pg bench: bad batch width %u / tokens %u / images %u\n", width,
                tokens, images);
        return -1;
    }
    if (measure_decode(model, info, width, tokens, first_run, row) != 0) {
        return -1;
    }
    if (verbose) {
        fprintf(stderr, "  batch %u: decode %.2f tok/s over %u steps\n", width,
                row->decode_tok_s, row->decode_steps);
    }
    int rc = measure_stream(model, info, width, tokens, images, first_run + (int)width,
                            verbose, row);
    if (verbose && rc == 0) {
        fprintf(stderr, "  batch %u: %.2f images/min, %.2f cores busy on average\n", width,
                row->images_per_min, row->wall_ms > 0 ? row->cpu_ms / row->wall_ms : 0.0);
    }
    return rc;
}
