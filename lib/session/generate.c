/*
 * Generation: token selection, stop conditions, streaming text, log-probabilities.
 *
 * A generation is begin (options checked and copied) -> start (after the prefill) -> next,
 * fed, next, fed ... -> end. pg_session_generate runs it as one loop; a batch (batch.c) runs
 * next/fed for many sessions per step, feeding their tokens through the decoder together.
 */
#include "session/session_internal.h"

#include "tokenizer/tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_NEW_TOKENS 256u

PG_API void pg_generate_options_init(pg_generate_options *opts, size_t struct_size)
{
    pg_generate_options d;
    memset(&d, 0, sizeof d);
    d.max_new_tokens = DEFAULT_MAX_NEW_TOKENS;
    d.top_p = 1.0f;
    pg__options_init(opts, struct_size, &d, sizeof d);
}

/* Stop strings must be UTF-8: then a match in the (UTF-8) text starts and ends on character
 * boundaries, and the text cut before it stays valid UTF-8. */
static bool is_utf8(const char *str)
{
    const unsigned char *p = (const unsigned char *)str;
    size_t n = strlen(str);
    while (n > 0) {
        const size_t k = pg__utf8_valid_prefix(p, n);
        if (k == 0) {
            return false;
        }
        p += k;
        n -= k;
    }
    return true;
}

static pg_status read_options(pg_generate_options *o, const pg_generate_options *user)
{
    pg_generate_options_init(o, sizeof *o);
    if (user) {
        pg_status st = pg__check_struct_size(user, sizeof *user,
                                             offsetof(pg_generate_options, temperature),
                                             "pg_generate_options");
        if (st != PG_OK) {
            return st;
        }
        memcpy(o, user, user->struct_size < sizeof *o ? user->struct_size : sizeof *o);
        o->struct_size = sizeof *o;
    }
    if (o->max_new_tokens == 0) {
        o->max_new_tokens = DEFAULT_MAX_NEW_TOKENS;
    }
    if (!(o->temperature >= 0.0f) || !isfinite(o->temperature)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "temperature must be finite and >= 0");
    }
    if (!(o->top_p > 0.0f && o->top_p <= 1.0f)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "top_p must be in (0, 1]");
    }
    if (o->n_logprobs > PG__MAX_LOGPROBS) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "n_logprobs %u is over %u", o->n_logprobs,
                         PG__MAX_LOGPROBS);
    }
    if (o->n_stop_strings && !o->stop_strings) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "stop_strings is NULL");
    }
    for (uint32_t i = 0; i < o->n_stop_strings; i++) {
        if (!o->stop_strings[i] || !o->stop_strings[i][0]) {
            return pg__error(PG_ERR_INVALID_ARGUMENT, "stop string %u is NULL or empty", i);
        }
        if (!is_utf8(o->stop_strings[i])) {
            return pg__error(PG_ERR_INVALID_UTF8, "stop string %u is not valid UTF-8", i);
        }
    }
    if (o->flags != 0) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_generate_options.flags must be 0");
    }
    return PG_OK;
}

static bool is_stop_id(const pg_session *s, int32_t id)
{
    return id == s->model->cfg.eos_id || id == PG__END_OF_TURN_ID;
}

static pg_status append_id(pg_session *s, int32_t id)
{
    if (s->n_out == s->cap_out) {
        size_t cap = s->cap_out ? 2 * s->cap_out : 64;
        int32_t *p = pg__realloc(s->out, cap * sizeof *p);
        if (!p) {
            return PG_ERR_OUT_OF_MEMORY;
        }
        s->out = p;
        s->cap_out = cap;
    }
    s->out[s->n_out++] = id;
    return PG_OK;
}

/* The first stop string in the text written since `from`: its offset, or -1. */
static ptrdiff_t find_stop(const pg_session *s, size_t from)
{
    const pg__gen *g = &s->gen;
    ptrdiff_t best = -1;
    for (uint32_t i = 0; i < g->o.n_stop_strings; i++) {
        const char *stop = g->stops[i];
        const size_t len = strlen(stop);
        /* A match may start up to len-1 bytes before the new text. */
        const size_t start = from >= len - 1 ? from - (len - 1) : 0;
        const char *hit = memmem(s->text + start, s->text_len - start, stop, len);
        if (hit && (best < 0 || hit - s->text < best)) {
            best = hit - s->text;
        }
    }
    return best;
}

/* Selects the next token from the current logits. */
static int32_t select_token(pg_session *s)
{
    pg__gen *g = &s->gen;
    const size_t vocab = (size_t)s->model->cfg.text.vocab;
    if (g->o.temperature > 0.0f) {
        return pg__sample(s->logits, vocab, g->o.temperature, g->o.top_k, g->o.top_p, &g->rng,
                          g->work);
    }
    /* Greedy over every row, like transformers (the goldens' argmax includes padding rows). */
    return pg__sample_greedy(s->logits, vocab);
}

/* Delivers one token to the callback; returns its non-zero answer. */
static int call_back(pg_session *s, int32_t id, size_t text_from)
{
    pg__gen *g = &s->gen;
    const size_t vocab = (size_t)s->model->cfg.text.vocab;
    const double log_z = pg__log_normalizer(s->logits, vocab);
    pg_token_event ev;
    memset(&ev, 0, sizeof ev);
    ev.struct_size = sizeof ev;
    ev.token_id = id;
    ev.index = (uint32_t)(s->n_out - 1);
    ev.text = s->text + text_from;
    ev.text_len = s->text_len - text_from;
    ev.logprob = (float)((double)s->logits[id] - log_z);
    if (g->o.n_logprobs) {
        pg__top_logprobs(s->logits, vocab, log_z, g->o.n_logprobs, g->top_ids, g->top_lps);
        ev.n_top = g->o.n_logprobs < vocab ? g->o.n_logprobs : (uint32_t)vocab;
        ev.top_ids = g->top_ids;
        ev.top_logprobs = g->top_lps;
    }
    return g->o.on_token(g->o.on_token_user, &ev);
}

/* Takes one token: record it, stream its text, check the stop conditions (sets g->stop). */
static pg_status take_token(pg_session *s, int32_t id)
{
    pg__gen *g = &s->gen;
    const pg_tokenizer *tok = s->model->tokenizer;
    const size_t text_from = s->text_len;
    pg_status st = append_id(s, id);
    /* Embedding rows past the tokenizer's pieces (the hub's padding rows 257152..257216)
     * can win the argmax over all rows, as in transformers; they have no text. */
    if (st == PG_OK && tok && (uint32_t)id < pg__tokenizer_size(tok)) {
        st = pg__detok_stream_push(tok, &g->detok, id, &s->text, &s->text_len, &s->text_cap);
    }
    if (st != PG_OK) {
        return st;
    }
    if (g->o.on_token && call_back(s, id, text_from) != 0) {
        g->stop = PG_STOP_CALLBACK;
    }
    if (!g->stop && g->o.n_stop_strings) {
        ptrdiff_t at = find_stop(s, text_from);
        if (at >= 0) {
            s->text_len = (size_t)at; /* the text ends before the stop string */
            s->text[at] = '\0';
            g->stop = PG_STOP_STRING;
        }
    }
    if (!g->stop && s->n_out >= g->o.max_new_tokens) {
        g->stop = PG_STOP_MAX_TOKENS;
    }
    if (!g->stop && s->pos >= s->kv.n_ctx) {
        g->stop = PG_STOP_CONTEXT;
    }
    return PG_OK;
}

void pg__gen_free(pg_session *s)
{
    pg__gen *g = &s->gen;
    for (uint32_t i = 0; g->stops && i < g->o.n_stop_strings; i++) {
        free(g->stops[i]);
    }
    free(g->stops);
    free(g->work);
    memset(g, 0, sizeof *g);
}

/* Own copies of the stop strings: a batch keeps the options past the call. */
static pg_status copy_stops(pg__gen *g)
{
    if (!g->o.n_stop_strings) {
        return PG_OK;
    }
    g->stops = pg__calloc(g->o.n_stop_strings, sizeof *g->stops);
    if (!g->stops) {
        g->o.n_stop_strings = 0;
        return PG_ERR_OUT_OF_MEMORY;
    }
    for (uint32_t i = 0; i < g->o.n_stop_strings; i++) {
        g->stops[i] = pg__strdup(g->o.stop_strings[i]);
        if (!g->stops[i]) {
            return PG_ERR_OUT_OF_MEMORY;
        }
    }
    g->o.stop_strings = (const char *const *)g->stops;
    return PG_OK;
}

pg_status pg__gen_begin(pg_session *s, const pg_generate_options *user)
{
    pg__gen_free(s);
    pg__gen *g = &s->gen;
    g->t_start = pg__now_ms();
    pg_status st = read_options(&g->o, user);
    if (st == PG_OK) {
        st = copy_stops(g);
    }
    if (st != PG_OK) {
        pg__gen_free(s);
    }
    return st;
}

pg_status pg__gen_start(pg_session *s)
{
    pg__gen *g = &s->gen;
    pg__session_clear_output(s);
    s->after_generate = true;
    if (g->o.temperature > 0.0f) {
        g->work = pg__malloc_array((size_t)s->model->cfg.text.vocab, sizeof *g->work);
        if (!g->work) {
            return PG_ERR_OUT_OF_MEMORY;
        }
        pg__rng_seed(&g->rng, g->o.seed);
    }
    pg__detok_stream_init(&g->detok, PG_DETOKENIZE_SKIP_SPECIAL);
    g->t_decode = pg__now_ms();
    g->decoded = 0;
    g->stop = PG_STOP_NONE;
    return PG_OK;
}

bool pg__gen_next(pg_session *s, int32_t *feed, pg_status *st)
{
    pg__gen *g = &s->gen;
    const int32_t id = select_token(s);
    if (s->n_out == 0) {
        s->timings.ttft_ms = pg__now_ms() - g->t_start;
    }
    if (is_stop_id(s, id)) {
        g->stop = PG_STOP_EOS;
        return false;
    }
    *st = take_token(s, id);
    if (*st != PG_OK || g->stop) {
        return false;
    }
    if (atomic_load(&s->interrupt)) {
        g->stop = PG_STOP_INTERRUPT;
        return false;
    }
    *feed = id;
    return true;
}

void pg__gen_fed(pg_session *s)
{
    s->gen.decoded++;
}

pg_status pg__gen_end(pg_session *s, pg_status st)
{
    pg__gen *g = &s->gen;
    s->timings.decode_ms = pg__now_ms() - g->t_decode;
    s->timings.decode_tokens = g->decoded;
    s->stop_reason = g->stop;
    if (g->stop == PG_STOP_INTERRUPT) {
        atomic_store(&s->interrupt, 0);
        st = pg__error(PG_ERR_CANCELLED, "generation interrupted by pg_session_interrupt "
                       "after %zu tokens", s->n_out);
    }
    if (s->model->tokenizer && g->stop != PG_STOP_STRING) {
        pg_status fst = pg__detok_stream_finish(s->model->tokenizer, &g->detok, &s->text,
                                                &s->text_len, &s->text_cap);
        st = st == PG_OK ? fst : st;
    }
    pg__gen_free(s);
    return st;
}

static pg_status generate(pg_session *s, const pg_generate_options *user)
{
    pg__session_clear_interrupt(s);
    pg_status st = pg__gen_begin(s, user);
    bool need_prefill = false;
    if (st == PG_OK) {
        st = pg__session_ready_to_generate(s, &need_prefill);
    }
    if (st == PG_OK && need_prefill) {
        st = pg__session_prefill(s);
    }
    if (st == PG_OK) {
        st = pg__gen_start(s);
    }
    if (st != PG_OK) {
        pg__gen_free(s);
        return st;
    }
    int32_t id;
    while (pg__gen_next(s, &id, &st)) {
        st = pg__session_feed(s, &id, 1);
        if (st == PG_ERR_CANCELLED) {
            s->gen.stop = PG_STOP_INTERRUPT;
        }
        if (st != PG_OK) {
            break;
        }
        pg__gen_fed(s);
    }
    return pg__gen_end(s, st);
}

PG_API pg_status pg_session_generate(pg_session *s, const pg_generate_options *opts)
{
    if (!s) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_generate: session is NULL");
    }
    pg_status st = pg__session_check_free(s, "pg_session_generate");
    if (st != PG_OK) {
        return st;
    }
    return pg__session_fail(s, generate(s, opts));
}
