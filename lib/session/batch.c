/*
 * pg_batch: many sessions of one model generated together (docs/batch.md).
 *
 * Each step has two parts:
 *   1. Decode: every decoding session picks its next token (sampling, callbacks and stop
 *      rules as alone, generate.c); the tokens that go on run through the decoder together,
 *      in groups of at most DECODE_GROUP rows: one pass over the weights per group, RoPE,
 *      KV writes and attention per session (lib/decoder's sequences).
 *   2. Prefill: the oldest waiting session's prefill (prefill.c: vision-tower layers, then
 *      decoder layers) runs step by step until this step's prefill time reaches
 *      prefill_ratio x its decode time (at least one prefill step); with nothing decoding,
 *      until that prefill is complete. It runs only while the session would find a decode
 *      slot: fewer than max_batch sessions decode or are ready, or none is ready.
 * Sessions that end go to the finished queue, in the order they end.
 *
 * Threads: pg_batch_add / remove / take_finished / wait / count may come from any thread.
 * `lock` guards the fields marked (L); the member list is the stepping thread's alone. A
 * session belongs to the batch from add until it is taken or removed (s->batch is set);
 * meanwhile only the stepping thread touches its state.
 */
#include "session/session_internal.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MAX_BATCH 8u
#define MAX_MAX_BATCH 64u
#define MAX_MAX_SESSIONS 4096u
#define DEFAULT_PREFILL_RATIO 8.0f
/* Rows per decoder pass. The backend's matmul gives each row the same result for any row
 * count up to this (backend.h), which is what makes a session's tokens in a batch identical
 * to its tokens alone. */
#define DECODE_GROUP 16

enum member_state { M_WAITING, M_PREFILLING, M_READY, M_DECODING };

typedef struct member {
    pg_session *s;     /* NULL once it left (compacted at the end of the step) */
    int state;
    bool feed;         /* picked a token this step that goes through the decoder */
    int32_t feed_id;
} member;

typedef struct finished {
    pg_session *s;
    pg_status st;
} finished;

struct pg_batch {
    pg_model *model;
    pg_batch_options o;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* (L) */
    pg_session **incoming;
    uint32_t n_incoming, cap_incoming;
    finished *done;
    size_t n_done, cap_done, head_done;
    pg_session **removals;
    uint32_t n_removals, cap_removals;
    uint32_t n_members; /* sessions added and not finished: incoming + the member list */
    uint64_t kv_bytes;  /* their KV caches */
    bool stepping;
    pthread_t stepper;
    uint64_t wakes;
    /* the stepping thread's */
    member *members;
    uint32_t n_list, cap_list;
    pg__decoder_scratch *scratch;
    float *x, *logits;
    pg__decoder_seq seqs[DECODE_GROUP];
    pg_session *current; /* the session whose token callback may be running */
    pg_session *group[DECODE_GROUP];
};

PG_API void pg_batch_options_init(pg_batch_options *opts, size_t struct_size)
{
    pg_batch_options d;
    memset(&d, 0, sizeof d);
    pg__options_init(opts, struct_size, &d, sizeof d);
}

static pg_status read_options(pg_batch_options *o, const pg_batch_options *user)
{
    pg_batch_options_init(o, sizeof *o);
    if (user) {
        pg_status st = pg__check_struct_size(user, sizeof *user,
                                             offsetof(pg_batch_options, max_sessions),
                                             "pg_batch_options");
        if (st != PG_OK) {
            return st;
        }
        memcpy(o, user, user->struct_size < sizeof *o ? user->struct_size : sizeof *o);
        o->struct_size = sizeof *o;
    }
    if (o->max_batch == 0) {
        o->max_batch = DEFAULT_MAX_BATCH;
    }
    if (o->max_batch > MAX_MAX_BATCH) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "max_batch %u is over %u", o->max_batch,
                         MAX_MAX_BATCH);
    }
    if (o->max_sessions == 0) {
        o->max_sessions = 2 * o->max_batch;
    }
    if (o->max_sessions > MAX_MAX_SESSIONS) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "max_sessions %u is over %u",
                         o->max_sessions, MAX_MAX_SESSIONS);
    }
    if (!(o->prefill_ratio >= 0.0f) || !isfinite(o->prefill_ratio)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "prefill_ratio must be finite and >= 0");
    }
    if (o->prefill_ratio == 0.0f) {
        o->prefill_ratio = DEFAULT_PREFILL_RATIO;
    }
    if (o->flags != 0) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_batch_options.flags must be 0");
    }
    return PG_OK;
}

PG_API pg_status pg_batch_new(pg_batch **out, pg_model *model, const pg_batch_options *opts)
{
    if (!out) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_batch_new: out is NULL");
    }
    *out = NULL;
    if (!model) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_batch_new: model is NULL");
    }
    if (!model->backend || !model->decoder.layers || !model->vision.layers) {
        return pg__error(PG_ERR_BAD_STATE, "pg_batch_new: the model has no weights (loaded "
                         "with PG_MODEL_TOKENIZER_ONLY?)");
    }
    pg_batch_options o;
    pg_status st = read_options(&o, opts);
    if (st != PG_OK) {
        return st;
    }
    pg_batch *b = pg__calloc(1, sizeof *b);
    if (!b) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    if (pthread_mutex_init(&b->lock, NULL) != 0) {
        free(b);
        return pg__error(PG_ERR_INTERNAL, "pg_batch_new: cannot create a mutex");
    }
    if (pthread_cond_init(&b->cond, NULL) != 0) {
        pthread_mutex_destroy(&b->lock);
        free(b);
        return pg__error(PG_ERR_INTERNAL, "pg_batch_new: cannot create a condition variable");
    }
    b->o = o;
    b->model = model;
    pg__model_ref(model);
    *out = b;
    return PG_OK;
}

/* ---- growable arrays ---- */

static bool grow(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap) {
        return true;
    }
    uint32_t c = *cap ? *cap * 2 : 8;
    c = c < need ? need : c;
    void *q = pg__realloc(*p, (size_t)c * elem);
    if (!q) {
        return false;
    }
    *p = q;
    *cap = c;
    return true;
}

static uint64_t kv_bytes_of(const pg_session *s)
{
    const pg__kv_cache *kv = &s->kv;
    return 2u * (uint64_t)kv->n_layers * (uint64_t)kv->n_ctx * (uint64_t)kv->row * kv->elem;
}

/* ---- ending a session's generation ---- */

/* The session's result, with its error message kept in the session (call right after the
 * failure, while this thread's message is the failure's). */
static pg_status record(pg_session *s, pg_status st)
{
    if (st != PG_OK) {
        pg__session_fail(s, st);
    }
    return st;
}

/* Ends a member's generation with st (PG_OK, or the failure) as pg_session_generate would. */
static pg_status end_member(member *mb, pg_status st)
{
    pg_session *s = mb->s;
    if (mb->state == M_READY || mb->state == M_DECODING) {
        return record(s, pg__gen_end(s, st));
    }
    /* It never decoded: no text, the stop reason says why. */
    pg__prefill_abort(s);
    pg__gen_free(s);
    pg__session_clear_output(s);
    s->stop_reason = st == PG_ERR_CANCELLED ? PG_STOP_INTERRUPT : PG_STOP_NONE;
    if (st == PG_ERR_CANCELLED) {
        atomic_store(&s->interrupt, 0);
    }
    return record(s, st);
}

/* Moves a member to the finished queue with its result. */
static void finish(pg_batch *b, member *mb, pg_status st)
{
    pg_session *s = mb->s;
    st = end_member(mb, st);
    mb->s = NULL;
    pthread_mutex_lock(&b->lock);
    b->n_members--;
    b->kv_bytes -= kv_bytes_of(s);
    if (b->n_done == b->cap_done) {
        /* compact, then grow: the queue keeps its order */
        if (b->head_done && b->n_done > b->head_done) { /* a new batch's queue is NULL */
            memmove(b->done, b->done + b->head_done,
                    (b->n_done - b->head_done) * sizeof *b->done);
        }
        b->n_done -= b->head_done;
        b->head_done = 0;
        uint32_t cap = (uint32_t)b->cap_done;
        if (!grow((void **)&b->done, &cap, (uint32_t)b->n_done + 1, sizeof *b->done)) {
            /* no room to queue it: hand it back as if removed (its error says why) */
            pthread_mutex_unlock(&b->lock);
            pg__error(PG_ERR_OUT_OF_MEMORY, "pg_batch: no memory to queue a finished session");
            pg__session_fail(s, PG_ERR_OUT_OF_MEMORY);
            atomic_store(&s->batch, NULL);
            return;
        }
        b->cap_done = cap;
    }
    b->done[b->n_done++] = (finished){ s, st };
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

/* Takes a member out (pg_batch_remove): ended as interrupted, not queued. */
static void drop(pg_batch *b, member *mb)
{
    pg_session *s = mb->s;
    pg__error(PG_ERR_CANCELLED, "taken out of the batch by pg_batch_remove");
    if (mb->state == M_READY || mb->state == M_DECODING) {
        s->gen.stop = PG_STOP_INTERRUPT;
    }
    end_member(mb, PG_ERR_CANCELLED);
    mb->s = NULL;
    pthread_mutex_lock(&b->lock);
    b->n_members--;
    b->kv_bytes -= kv_bytes_of(s);
    atomic_store(&s->batch, NULL);
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static member *find_member(pg_batch *b, const pg_session *s)
{
    for (uint32_t i = 0; i < b->n_list; i++) {
        if (b->members[i].s == s) {
            return &b->members[i];
        }
    }
    return NULL;
}

/* Removal requests from other threads, and interrupts of sessions not decoding (a decoding
 * session sees its interrupt when it picks its next token). */
static void handle_requests(pg_batch *b)
{
    pthread_mutex_lock(&b->lock);
    while (b->n_removals > 0) {
        pg_session *s = b->removals[--b->n_removals];
        pthread_mutex_unlock(&b->lock);
        member *mb = find_member(b, s);
        if (mb) {
            drop(b, mb);
        }
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    for (uint32_t i = 0; i < b->n_list; i++) {
        member *mb = &b->members[i];
        if (mb->s && mb->state != M_DECODING && atomic_load(&mb->s->interrupt)) {
            pg__error(PG_ERR_CANCELLED, "generation interrupted by pg_session_interrupt "
                      "before its first token");
            if (mb->state == M_READY) {
                mb->s->gen.stop = PG_STOP_INTERRUPT;
            }
            finish(b, mb, PG_ERR_CANCELLED);
        }
    }
}

/* ---- the decode pass ---- */

static pg_status ensure_decode_buffers(pg_batch *b)
{
    if (b->scratch) {
        return PG_OK;
    }
    const pg_model *m = b->model;
    const uint32_t g = b->o.max_batch < DECODE_GROUP ? b->o.max_batch : DECODE_GROUP;
    pg_status st = pg__decoder_scratch_new(&b->scratch, m, g);
    if (st != PG_OK) {
        return st;
    }
    b->x = pg__malloc_array((size_t)g * (size_t)m->cfg.text.hidden, sizeof(float));
    b->logits = pg__malloc_array((size_t)g * (size_t)m->cfg.text.vocab, sizeof(float));
    if (!b->x || !b->logits) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "pg_batch: no memory for %u decode rows", g);
    }
    return PG_OK;
}

/* One decoder pass over the group's tokens: each session's logits, position and count. */
static pg_status run_group(pg_batch *b, member **grp, int32_t n)
{
    const pg_model *m = b->model;
    const int64_t d = m->cfg.text.hidden;
    const size_t vocab = (size_t)m->cfg.text.vocab;
    pg_status st = PG_OK;
    for (int32_t i = 0; i < n && st == PG_OK; i++) {
        pg_session *s = grp[i]->s;
        /* the same embedding call as a single-token feed */
        st = pg__decoder_embed(m, &grp[i]->feed_id, 1, NULL, 0, b->x + i * d);
        b->seqs[i] = (pg__decoder_seq){ .kv = &s->kv, .start = s->pos, .n = 1,
                                        .prefix_len = (int64_t)s->n_prompt };
        s->has_logits = false;
    }
    if (st == PG_OK) {
        st = pg__decoder_layers(m, b->seqs, n, b->x, 0, m->cfg.text.layers, b->scratch, NULL,
                                NULL);
    }
    if (st == PG_OK) {
        st = pg__decoder_head(m, b->x, n, b->logits, n, b->scratch);
    }
    for (int32_t i = 0; i < n && st == PG_OK; i++) {
        pg_session *s = grp[i]->s;
        memcpy(s->logits, b->logits + (size_t)i * vocab, vocab * sizeof(float));
        s->pos++;
        s->has_logits = true;
        pg__gen_fed(s);
    }
    return st;
}

/* Ready sessions take free decode slots, oldest first. Returns the decoding count. */
static uint32_t fill_slots(pg_batch *b)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < b->n_list; i++) {
        n += b->members[i].s && b->members[i].state == M_DECODING;
    }
    for (uint32_t i = 0; i < b->n_list && n < b->o.max_batch; i++) {
        if (b->members[i].s && b->members[i].state == M_READY) {
            b->members[i].state = M_DECODING;
            n++;
        }
    }
    return n;
}

static void decode_pass(pg_batch *b)
{
    if (fill_slots(b) == 0) {
        return;
    }
    /* 1. every decoding session picks its token (callbacks run here) */
    for (uint32_t i = 0; i < b->n_list; i++) {
        member *mb = &b->members[i];
        mb->feed = false;
        if (!mb->s || mb->state != M_DECODING) {
            continue;
        }
        pg_status st = PG_OK;
        b->current = mb->s;
        const bool go_on = pg__gen_next(mb->s, &mb->feed_id, &st);
        b->current = NULL;
        if (go_on) {
            mb->feed = true;
        } else if (mb->s) { /* a callback may have removed it */
            finish(b, mb, st);
        }
    }
    handle_requests(b);
    /* 2. the tokens that go on, through the decoder in groups */
    pg_status st = ensure_decode_buffers(b);
    member *grp[DECODE_GROUP];
    int32_t n = 0;
    for (uint32_t i = 0; i <= b->n_list; i++) {
        member *mb = i < b->n_list ? &b->members[i] : NULL;
        if (mb && mb->s && mb->feed) {
            grp[n++] = mb;
        }
        if (n == DECODE_GROUP || (n > 0 && !mb)) {
            pg_status gst = st == PG_OK ? run_group(b, grp, n) : st;
            for (int32_t k = 0; k < n && gst != PG_OK; k++) {
                finish(b, grp[k], gst); /* the group's failure is each session's */
            }
            n = 0;
        }
    }
}

/* ---- prefill work ---- */

/* Counts of members in each state. */
static void count_states(const pg_batch *b, uint32_t *decoding, uint32_t *ready)
{
    *decoding = *ready = 0;
    for (uint32_t i = 0; i < b->n_list; i++) {
        const member *mb = &b->members[i];
        if (mb->s) {
            *decoding += mb->state == M_DECODING;
            *ready += mb->state == M_READY;
        }
    }
}

/* The member whose prefill runs: the one in progress, else the oldest waiting one (which
 * starts now: a prefill, a rewind, or nothing). NULL when none. */
static member *prefill_target(pg_batch *b)
{
    for (uint32_t i = 0; i < b->n_list; i++) {
        if (b->members[i].s && b->members[i].state == M_PREFILLING) {
            return &b->members[i];
        }
    }
    for (uint32_t i = 0; i < b->n_list; i++) {
        member *mb = &b->members[i];
        if (!mb->s || mb->state != M_WAITING) {
            continue;
        }
        bool need_prefill = false;
        pg_status st = pg__session_ready_to_generate(mb->s, &need_prefill);
        if (st == PG_OK && need_prefill) {
            st = pg__prefill_begin(mb->s);
            if (st == PG_OK) {
                mb->state = M_PREFILLING;
                return mb;
            }
        }
        if (st == PG_OK) {
            st = pg__gen_start(mb->s);
            mb->state = M_READY;
        }
        if (st != PG_OK) {
            finish(b, mb, st);
        }
    }
    return NULL;
}

static void prefill_work(pg_batch *b, double decode_ms)
{
    const double t0 = pg__now_ms();
    uint32_t decoding, ready;
    count_states(b, &decoding, &ready);
    const bool unlimited = decoding == 0;
    const double budget = decode_ms * (double)b->o.prefill_ratio;
    for (;;) {
        if (ready > 0 && decoding + ready >= b->o.max_batch) {
            return; /* it would find no slot: the next session is ready already */
        }
        member *mb = prefill_target(b);
        if (!mb) {
            return;
        }
        if (atomic_load(&mb->s->interrupt)) {
            pg__error(PG_ERR_CANCELLED, "interrupted in the prefill");
            finish(b, mb, PG_ERR_CANCELLED);
            continue;
        }
        bool done = false;
        pg_status st = pg__prefill_step(mb->s, &done);
        if (st == PG_OK && done) {
            st = pg__gen_start(mb->s);
            mb->state = M_READY;
            ready++;
        }
        if (st != PG_OK) {
            finish(b, mb, st);
        }
        handle_requests(b);
        if (unlimited ? (done || st != PG_OK) : pg__now_ms() - t0 >= budget) {
            return;
        }
    }
}

/* ---- stepping ---- */

/* Takes over the added sessions (in order) and drops the members that left. */
static void admit(pg_batch *b)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < b->n_list; i++) {
        if (b->members[i].s) {
            b->members[k++] = b->members[i];
        }
    }
    b->n_list = k;
    pthread_mutex_lock(&b->lock);
    if (grow((void **)&b->members, &b->cap_list, b->n_list + b->n_incoming, sizeof(member))) {
        for (uint32_t i = 0; i < b->n_incoming; i++) {
            b->members[b->n_list++] = (member){ .s = b->incoming[i], .state = M_WAITING };
        }
        b->n_incoming = 0;
    }
    pthread_mutex_unlock(&b->lock);
}

/* Claims the stepping role; false when another thread has it. */
static bool claim(pg_batch *b)
{
    pthread_mutex_lock(&b->lock);
    const bool ok = !b->stepping;
    if (ok) {
        b->stepping = true;
        b->stepper = pthread_self();
    }
    pthread_mutex_unlock(&b->lock);
    return ok;
}

static uint32_t release(pg_batch *b)
{
    pthread_mutex_lock(&b->lock);
    b->stepping = false;
    const uint32_t n = b->n_members;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
    return n;
}

PG_API pg_status pg_batch_step(pg_batch *b, uint32_t *n_active)
{
    if (n_active) {
        *n_active = 0;
    }
    if (!b) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_batch_step: batch is NULL");
    }
    if (!claim(b)) {
        return pg__error(PG_ERR_BAD_STATE, "pg_batch_step: another thread is stepping this "
                         "batch");
    }
    admit(b);
    handle_requests(b);
    const double t0 = pg__now_ms();
    decode_pass(b);
    prefill_work(b, pg__now_ms() - t0);
    handle_requests(b);
    admit(b);
    const uint32_t n = release(b);
    if (n_active) {
        *n_active = n;
    }
    return PG_OK;
}

/* ---- adding, removing, taking ---- */

static pg_status check_addable(const pg_batch *b, const pg_session *s)
{
    if (s->model != b->model) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_batch_add: the session is on another "
                         "model than the batch");
    }
    if (pg__session_in_batch(s)) {
        return pg__error(PG_ERR_BAD_STATE, "pg_batch_add: the session is in a batch already");
    }
    if (!s->has_image || !s->has_prompt) {
        return pg__error(PG_ERR_BAD_STATE, "pg_batch_add: the session needs an image and a "
                         "prompt (pg_session_set_image, pg_session_set_prompt)");
    }
    if (s->prefilled && !s->after_generate && !s->has_logits) {
        return pg__error(PG_ERR_BAD_STATE, "pg_batch_add: the session's last pg_session_feed "
                         "failed: feed again, or set the prompt again");
    }
    return PG_OK;
}

/* Reserves room for s under the limits. */
static pg_status reserve(pg_batch *b, const pg_session *s)
{
    const uint64_t kv = kv_bytes_of(s);
    pg_status st = PG_OK;
    pthread_mutex_lock(&b->lock);
    if (b->n_members >= b->o.max_sessions) {
        st = pg__error(PG_ERR_LIMIT, "pg_batch_add: the batch holds max_sessions (%u) "
                       "sessions", b->o.max_sessions);
    } else if (b->o.max_kv_bytes && kv > b->o.max_kv_bytes - b->kv_bytes) {
        st = pg__error(PG_ERR_LIMIT, "pg_batch_add: the session's KV cache (%llu bytes) would "
                       "exceed max_kv_bytes (%llu, %llu in use)", (unsigned long long)kv,
                       (unsigned long long)b->o.max_kv_bytes,
                       (unsigned long long)b->kv_bytes);
    } else if (!grow((void **)&b->incoming, &b->cap_incoming, b->n_incoming + 1,
                     sizeof *b->incoming)) {
        st = PG_ERR_OUT_OF_MEMORY;
    } else {
        b->n_members++;
        b->kv_bytes += kv;
    }
    pthread_mutex_unlock(&b->lock);
    return st;
}

PG_API pg_status pg_batch_add(pg_batch *b, pg_session *s, const pg_generate_options *opts)
{
    if (!b || !s) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_batch_add: %s is NULL",
                         b ? "session" : "batch");
    }
    pg_status st = check_addable(b, s);
    if (st != PG_OK) {
        return st; /* the session may be another thread's batch's: its error stays */
    }
    st = reserve(b, s);
    if (st != PG_OK) {
        return pg__session_fail(s, st);
    }
    pg__session_clear_interrupt(s);
    st = pg__gen_begin(s, opts);
    pthread_mutex_lock(&b->lock);
    if (st == PG_OK) {
        atomic_store(&s->batch, b);
        b->incoming[b->n_incoming++] = s;
        pthread_cond_broadcast(&b->cond);
    } else {
        b->n_members--;
        b->kv_bytes -= kv_bytes_of(s);
    }
    pthread_mutex_unlock(&b->lock);
    return st == PG_OK ? PG_OK : pg__session_fail(s, st);
}

/* Removes s from a queue of the batch (caller holds the lock); true when it was there. */
static bool unqueue(pg_batch *b, pg_session *s, pg_status *result_of_done)
{
    for (uint32_t i = 0; i < b->n_incoming; i++) {
        if (b->incoming[i] == s) {
            memmove(b->incoming + i, b->incoming + i + 1,
                    (b->n_incoming - i - 1) * sizeof *b->incoming);
            b->n_incoming--;
            b->n_members--;
            b->kv_bytes -= kv_bytes_of(s);
            pg__gen_free(s);
            pg__session_clear_output(s);
            s->stop_reason = PG_STOP_INTERRUPT;
            pg__session_fail(s, pg__error(PG_ERR_CANCELLED, "taken out of the batch by "
                                          "pg_batch_remove before it started"));
            *result_of_done = PG_ERR_CANCELLED;
            return true;
        }
    }
    for (size_t i = b->head_done; i < b->n_done; i++) {
        if (b->done[i].s == s) {
            *result_of_done = b->done[i].st;
            memmove(b->done + i, b->done + i + 1, (b->n_done - i - 1) * sizeof *b->done);
            b->n_done--;
            return true;
        }
    }
    return false;
}

PG_API pg_status pg_batch_remove(pg_batch *b, pg_session *s)
{
    if (!b || !s) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_batch_remove: %s is NULL",
                         b ? "session" : "batch");
    }
    pg_status result;
    pthread_mutex_lock(&b->lock);
    if (atomic_load(&s->batch) != b) {
        pthread_mutex_unlock(&b->lock);
        return pg__error(PG_ERR_NOT_FOUND, "pg_batch_remove: the session is not in this batch");
    }
    if (unqueue(b, s, &result)) {
        atomic_store(&s->batch, NULL);
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
        return PG_OK;
    }
    if (b->stepping && !pthread_equal(b->stepper, pthread_self())) {
        /* the stepping thread takes it out at its next safe point */
        if (!grow((void **)&b->removals, &b->cap_removals, b->n_removals + 1,
                  sizeof *b->removals)) {
            pthread_mutex_unlock(&b->lock);
            return PG_ERR_OUT_OF_MEMORY;
        }
        b->removals[b->n_removals++] = s;
        while (atomic_load(&s->batch) == b && b->stepping) {
            pthread_cond_wait(&b->cond, &b->lock);
        }
        /* the step ended before reaching it: it was taken out then, or finished */
        if (atomic_load(&s->batch) == b && unqueue(b, s, &result)) {
            atomic_store(&s->batch, NULL);
        }
        for (uint32_t i = 0; i < b->n_removals; i++) {
            if (b->removals[i] == s) {
                b->removals[i] = b->removals[--b->n_removals];
                break;
            }
        }
        const bool gone = atomic_load(&s->batch) != b;
        pthread_mutex_unlock(&b->lock);
        if (gone) {
            return PG_OK;
        }
        /* still a member (the stepper stopped between steps): take it out ourselves */
        return pg_batch_remove(b, s);
    }
    const bool own = !b->stepping;
    if (own) {
        b->stepping = true;
        b->stepper = pthread_self();
    }
    pthread_mutex_unlock(&b->lock);
    /* this thread steps (a token callback) or holds the stepping role now */
    if (s == b->current) {
        return pg__error(PG_ERR_BAD_STATE, "pg_batch_remove: a session cannot be removed from "
                         "its own token callback (return non-zero from it to stop)");
    }
    member *mb = find_member(b, s);
    if (mb) {
        drop(b, mb);
    }
    if (own) {
        release(b);
    }
    return mb ? PG_OK : pg__error(PG_ERR_INTERNAL, "pg_batch_remove: session not found");
}

/* The absolute time timeout_ms from now, for pthread_cond_timedwait. */
static struct timespec deadline(uint32_t timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(timeout_ms / 1000);
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return until;
}

PG_API pg_status pg_batch_take_finished(pg_batch *b, uint32_t timeout_ms, pg_session **session,
                                        pg_status *result)
{
    if (session) {
        *session = NULL;
    }
    if (!b || !session) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_batch_take_finished: NULL argument");
    }
    const struct timespec until = deadline(timeout_ms);
    pthread_mutex_lock(&b->lock);
    const uint64_t wakes = b->wakes;
    int rc = 0;
    while (timeout_ms && b->head_done == b->n_done && b->wakes == wakes && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&b->cond, &b->lock, &until);
    }
    if (b->head_done == b->n_done) {
        pthread_mutex_unlock(&b->lock);
        return pg__error(PG_ERR_NOT_FOUND, "pg_batch_take_finished: no finished session");
    }
    const finished f = b->done[b->head_done++];
    if (b->head_done == b->n_done) {
        b->head_done = b->n_done = 0;
    }
    atomic_store(&f.s->batch, NULL);
    pthread_mutex_unlock(&b->lock);
    *session = f.s;
    if (result) {
        *result = f.st;
    }
    return PG_OK;
}

PG_API pg_status pg_batch_wait(pg_batch *b, uint32_t timeout_ms, uint32_t *n_active)
{
    if (n_active) {
        *n_active = 0;
    }
    if (!b) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_batch_wait: batch is NULL");
    }
    const struct timespec until = deadline(timeout_ms);
    pthread_mutex_lock(&b->lock);
    const uint64_t wakes = b->wakes;
    int rc = 0;
    while (timeout_ms && b->n_members == 0 && b->wakes == wakes && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&b->cond, &b->lock, &until);
    }
    if (n_active) {
        *n_active = b->n_members;
    }
    pthread_mutex_unlock(&b->lock);
    return PG_OK;
}

PG_API void pg_batch_wake(pg_batch *b)
{
    if (b) {
        pthread_mutex_lock(&b->lock);
        b->wakes++;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
    }
}

PG_API uint32_t pg_batch_count(const pg_batch *cb)
{
    if (!cb) {
        return 0;
    }
    pg_batch *b = (pg_batch *)(uintptr_t)cb; /* the lock is the only thing written */
    pthread_mutex_lock(&b->lock);
    const uint32_t n = b->n_members;
    pthread_mutex_unlock(&b->lock);
    return n;
}

void pg__batch_forget(pg_session *s)
{
    pg_batch *b = atomic_load(&s->batch);
    if (b) {
        pg_batch_remove(b, s);
    }
}

PG_API void pg_batch_free(pg_batch *b)
{
    if (!b) {
        return;
    }
    /* Every session leaves: queued ones and members as interrupted, finished ones as they
     * are. The caller guarantees that no other thread uses the batch now. */
    pthread_mutex_lock(&b->lock);
    b->stepping = true;
    b->stepper = pthread_self();
    while (b->n_incoming > 0) {
        pg_status r;
        pg_session *s = b->incoming[0];
        unqueue(b, s, &r);
        atomic_store(&s->batch, NULL);
    }
    for (size_t i = b->head_done; i < b->n_done; i++) {
        atomic_store(&b->done[i].s->batch, NULL);
    }
    pthread_mutex_unlock(&b->lock);
    for (uint32_t i = 0; i < b->n_list; i++) {
        if (b->members[i].s) {
            drop(b, &b->members[i]);
        }
    }
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->lock);
    free(b->incoming);
    free(b->done);
    free(b->removals);
    free(b->members);
    pg__decoder_scratch_free(b->scratch);
    free(b->x);
    free(b->logits);
    pg__model_unref(b->model);
    free(b);
}
