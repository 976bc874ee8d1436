/*
 * pg's many-image driver (batch_run.h).
 *
 * width + 1 sessions circulate: each takes the next image, goes into the pg_batch, and when it
 * finishes its output is formatted at once (so the session is free for the next image) and
 * kept until every earlier image has been printed: output stays in input order however the
 * images finish. The one session beyond `width` lets the batch prefill the next image while
 * `width` others decode (docs/batch.md).
 */
#include "batch_run.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_WIDTH 64u

typedef struct slot {
    pg_session *s;
    size_t index;          /* the image it holds */
    uint32_t w, h;
    bool busy;
} slot;

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

bool pg_cli_parse_batch(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < 1 || v > MAX_WIDTH) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

uint32_t pg_cli_default_batch(const pg_model *model, size_t n_images, uint32_t n_ctx)
{
    if (n_images <= 1) {
        return 1;
    }
    pg_model_info info = { .struct_size = sizeof info };
    uint32_t width = n_images < 8 ? (uint32_t)n_images : 8;
    if (pg_model_get_info(model, &info) != PG_OK) {
        return width;
    }
    /* Upper bound of one session's KV cache: f32 keys and values for every layer. */
    uint64_t ctx = n_ctx ? n_ctx : (uint64_t)info.image_tokens + 1024;
    uint64_t kv = ctx * info.text_layers * info.text_kv_heads * info.text_head_dim * 2 * 4;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && kv > 0) {
        uint64_t budget = (uint64_t)pages * (uint64_t)page / 4;
        uint64_t fit = budget / kv;
        width = fit < width ? (uint32_t)(fit ? fit : 1) : width;
    }
    return width;
}

char *pg_cli_error_line(const char *image, const char *message)
{
    json_t *o = json_pack("{s:s?, s:s?}", "image", image, "error", message);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    char *line = s ? malloc(strlen(s) + 2) : NULL;
    if (line) {
        sprintf(line, "%s\n", s);
    }
    free(s);
    return line;
}

typedef struct runner {
    const pg_cli_batch *job;
    pg_batch *batch;
    slot slots[MAX_WIDTH + 1];
    uint32_t n_slots;
    char **out;       /* per image: its output once finished */
    bool *done;
    size_t next_in, next_out;
    int rc;
} runner;

/* Records image i's result (NULL output: it failed, message already on stderr). */
static void record(runner *r, size_t i, char *output, const char *message)
{
    if (!output) {
        r->rc = 1;
        if (r->job->json) {
            output = pg_cli_error_line(r->job->images[i], message);
        }
    }
    r->out[i] = output;
    r->done[i] = true;
}

static void flush_ready(runner *r)
{
    while (r->next_out < r->job->n_images && r->done[r->next_out]) {
        if (r->out[r->next_out]) {
            fputs(r->out[r->next_out], stdout);
            free(r->out[r->next_out]);
            r->out[r->next_out] = NULL;
        }
        r->next_out++;
    }
    fflush(stdout);
}

/* Loads the next image into a free slot and adds it. false when no image or slot is left. */
static bool feed_one(runner *r, slot *sl)
{
    const pg_cli_batch *j = r->job;
    if (r->next_in >= j->n_images) {
        return false;
    }
    size_t i = r->next_in++;
    pg_image *img = NULL;
    pg_status st = pg_image_load_file(&img, j->images[i], NULL);
    const char *msg = NULL;
    if (st == PG_OK) {
        sl->w = pg_image_width(img);
        sl->h = pg_image_height(img);
        st = pg_session_set_image(sl->s, img);
        pg_image_free(img);
        if (st == PG_OK) {
            st = j->prompt ? pg_session_set_prompt(sl->s, j->prompt, strlen(j->prompt))
                           : pg_session_set_prompt_ids(sl->s, j->prompt_ids, j->n_prompt_ids);
        }
        msg = st == PG_OK ? NULL : pg_session_last_error(sl->s);
        if (st == PG_OK && (st = pg_batch_add(r->batch, sl->s, j->go)) != PG_OK) {
            msg = pg_last_error();
        }
    } else {
        msg = pg_last_error(); /* names the file */
    }
    if (st != PG_OK) {
        if (strstr(msg, j->images[i])) {
            fprintf(stderr, "%s: %s\n", j->tool, msg);
        } else {
            fprintf(stderr, "%s: %s: %s\n", j->tool, j->images[i], msg);
        }
        record(r, i, NULL, msg);
        return true;
    }
    sl->index = i;
    sl->busy = true;
    return true;
}

static void fill(runner *r)
{
    for (uint32_t k = 0; k < r->n_slots; k++) {
        while (!r->slots[k].busy && feed_one(r, &r->slots[k])) {
        }
    }
}

static slot *slot_of(runner *r, const pg_session *s)
{
    for (uint32_t k = 0; k < r->n_slots; k++) {
        if (r->slots[k].s == s) {
            return &r->slots[k];
        }
    }
    return NULL;
}

/* Takes every finished session: formats its output, frees its slot. */
static void collect(runner *r)
{
    pg_session *s = NULL;
    pg_status result = PG_OK;
    while (pg_batch_take_finished(r->batch, 0, &s, &result) == PG_OK && s) {
        slot *sl = slot_of(r, s);
        if (!sl) {
            continue;
        }
        const char *image = r->job->images[sl->index];
        char *output = NULL;
        const char *msg = pg_session_last_error(s);
        if (result == PG_OK) {
            output = r->job->format(r->job->user, image, s, sl->w, sl->h);
            msg = "cannot format the output";
        } else if (!g_interrupted) {
            fprintf(stderr, "%s: %s: %s\n", r->job->tool, image, msg);
        }
        record(r, sl->index, output, msg);
        sl->busy = false;
    }
}

static bool any_busy(const runner *r)
{
    for (uint32_t k = 0; k < r->n_slots; k++) {
        if (r->slots[k].busy) {
            return true;
        }
    }
    return false;
}

static int setup(runner *r, const pg_cli_batch *j)
{
    r->job = j;
    r->out = calloc(j->n_images ? j->n_images : 1, sizeof *r->out);
    r->done = calloc(j->n_images ? j->n_images : 1, sizeof *r->done);
    uint32_t width = j->width < 1 ? 1 : j->width > MAX_WIDTH ? MAX_WIDTH : j->width;
    pg_batch_options bo;
    PG_BATCH_OPTIONS_INIT(&bo);
    bo.max_batch = width;
    bo.max_sessions = width + 1;
    if (!r->out || !r->done || pg_batch_new(&r->batch, j->model, &bo) != PG_OK) {
        fprintf(stderr, "%s: %s\n", j->tool, r->out && r->done ? pg_last_error() : "no memory");
        return 1;
    }
    pg_session_options so;
    PG_SESSION_OPTIONS_INIT(&so);
    so.n_ctx = j->n_ctx;
    for (uint32_t k = 0; k < width + 1 && k < j->n_images; k++) {
        if (pg_session_new(&r->slots[k].s, j->model, &so) != PG_OK) {
            fprintf(stderr, "%s: %s\n", j->tool, pg_last_error());
            return 1;
        }
        r->n_slots++;
    }
    return 0;
}

static void teardown(runner *r)
{
    pg_batch_free(r->batch); /* detaches sessions still inside */
    for (uint32_t k = 0; k < r->n_slots; k++) {
        pg_session_free(r->slots[k].s);
    }
    for (size_t i = 0; r->out && i < r->job->n_images; i++) {
        free(r->out[i]);
    }
    free(r->out);
    free(r->done);
}

int pg_cli_run_batch(const pg_cli_batch *job)
{
    runner r;
    memset(&r, 0, sizeof r);
    int rc = setup(&r, job);
    g_interrupted = 0;
    void (*old)(int) = signal(SIGINT, on_sigint);
    while (rc == 0 && !g_interrupted) {
        fill(&r);
        flush_ready(&r);
        if (!any_busy(&r)) {
            break;
        }
        if (pg_batch_step(r.batch, NULL) != PG_OK) {
            fprintf(stderr, "%s: %s\n", job->tool, pg_last_error());
            rc = 1;
            break;
        }
        collect(&r);
    }
    if (g_interrupted) {
        for (uint32_t k = 0; k < r.n_slots; k++) {
            pg_session_interrupt(r.slots[k].s);
        }
        fprintf(stderr, "%s: interrupted\n", job->tool);
        rc = 130;
    }
    signal(SIGINT, old);
    if (rc == 0) {
        flush_ready(&r);
        rc = r.rc;
    }
    teardown(&r);
    return rc;
}
