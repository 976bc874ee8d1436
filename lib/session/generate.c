/* Generation: token selection, stop conditions, streaming text, log-probabilities. */
#include "session/session_internal.h"

#include "tokenizer/tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_NEW_TOKENS 256u
#define MAX_LOGPROBS 20u

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
    if (o->n_logprobs > MAX_LOGPROBS) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "n_logprobs %u is over %u", o->n_logprobs,
                         MAX_LOGPROBS);
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

/* Per-call state of the generation loop. */
typedef struct gen_state {
    pg_generate_options o;
    pg__rng rng;
    pg__cand *work;      /* sampling scratch [vocab] */
    pg__detok_stream detok;
    int32_t top_ids[MAX_LOGPROBS];
    float top_lps[MAX_LOGPROBS];
    double t_start;
} gen_state;

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
static ptrdiff_t find_stop(const pg_session *s, const gen_state *g, size_t from)
{
    ptrdiff_t best = -1;
    for (uint32_t i = 0; i < g->o.n_stop_strings; i++) {
        const char *stop = g->o.stop_strings[i];
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
static int32_t select_token(const pg_session *s, gen_state *g)
{
    const size_t vocab = (size_t)s->model->cfg.text.vocab;
    if (g->o.temperature > 0.0f) {
        return pg__sample(s->logits, vocab, g->o.temperature, g->o.top_k, g->o.top_p, &g->rng,
                          g->work);
    }
    /* Greedy over every row, like transformers (the goldens' argmax includes padding rows). */
    return pg__sample_greedy(s->logits, vocab);
}

/* Delivers one token to the callback; returns its non-zero answer. */
static int call_back(const pg_session *s, gen_state *g, int32_t id, size_t text_from)
{
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

/* Takes one token: record it, stream its text, check the stop conditions. Sets *stop. */
static pg_status take_token(pg_session *s, gen_state *g, int32_t id, int32_t *stop)
{
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
    if (g->o.on_token && call_back(s, g, id, text_from) != 0) {
        *stop = PG_STOP_CALLBACK;
    }
    if (!*stop && g->o.n_stop_strings) {
        ptrdiff_t at = find_stop(s, g, text_from);
        if (at >= 0) {
            s->text_len = (size_t)at; /* the text ends before the stop string */
            s->text[at] = '\0';
            *stop = PG_STOP_STRING;
        }
    }
    if (!*stop && s->n_out >= g->o.max_new_tokens) {
        *stop = PG_STOP_MAX_TOKENS;
    }
    if (!*stop && s->pos >= s->kv.n_ctx) {
        *stop = PG_STOP_CONTEXT;
    }
    return PG_OK;
}

static pg_status generate_loop(pg_session *s, gen_state *g)
{
    int32_t stop = PG_STOP_NONE;
    pg_status st = PG_OK;
    const double t_decode = pg__now_ms();
    uint32_t decoded = 0;
    while (!stop && st == PG_OK) {
        const int32_t id = select_token(s, g);
        if (s->n_out == 0) {
            s->timings.ttft_ms = pg__now_ms() - g->t_start;
        }
        if (is_stop_id(s, id)) {
            stop = PG_STOP_EOS;
            break;
        }
        st = take_token(s, g, id, &stop);
        if (st != PG_OK || stop) {
            break;
        }
        if (atomic_load(&s->interrupt)) {
            stop = PG_STOP_INTERRUPT;
            break;
        }
        st = pg__session_feed(s, &id, 1);
        decoded++;
        if (st == PG_ERR_CANCELLED) {
            stop = PG_STOP_INTERRUPT;
        }
    }
    s->timings.decode_ms = pg__now_ms() - t_decode;
    s->timings.decode_tokens = decoded;
    s->stop_reason = stop;
    if (stop == PG_STOP_INTERRUPT) {
        atomic_store(&s->interrupt, 0);
        st = pg__error(PG_ERR_CANCELLED, "generation interrupted by pg_session_interrupt "
                       "after %zu tokens", s->n_out);
    }
    if (s->model->tokenizer && stop != PG_STOP_STRING) {
        pg_status fst = pg__detok_stream_finish(s->model->tokenizer, &g->detok, &s->text,
                                                &s->text_len, &s->text_cap);
        st = st == PG_OK ? fst : st;
    }
    return st;
}

static pg_status generate(pg_session *s, const pg_generate_options *user)
{
    gen_state g;
    memset(&g, 0, sizeof g);
    g.t_start = pg__now_ms();
    pg__session_clear_interrupt(s);
    pg_status st = read_options(&g.o, user);
    if (st != PG_OK) {
        return st;
    }
    if (!s->has_image || !s->has_prompt) {
        return pg__error(PG_ERR_BAD_STATE, "generate needs an image and a prompt (call "
                         "pg_session_set_image and pg_session_set_prompt first)");
    }
    if (!s->prefilled) {
        st = pg__session_prefill(s);
    } else if (s->after_generate) {
        pg__session_rewind(s);
    } else if (!s->has_logits) {
        /* A feed failed (interrupted, say): its logits are gone, and guessing where to go on
         * from would hide that. */
        return pg__error(PG_ERR_BAD_STATE, "the last pg_session_feed failed: feed again, or "
                         "set the prompt again, before generating");
    }
    if (st != PG_OK) {
        return st;
    }
    pg__session_clear_output(s);
    s->after_generate = true;
    if (g.o.temperature > 0.0f) {
        g.work = pg__malloc_array((size_t)s->model->cfg.text.vocab, sizeof *g.work);
        if (!g.work) {
            return PG_ERR_OUT_OF_MEMORY;
        }
        pg__rng_seed(&g.rng, g.o.seed);
    }
    pg__detok_stream_init(&g.detok, PG_DETOKENIZE_SKIP_SPECIAL);
    st = generate_loop(s, &g);
    free(g.work);
    return st;
}

PG_API pg_status pg_session_generate(pg_session *s, const pg_generate_options *opts)
{
    if (!s) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_generate: session is NULL");
    }
    return pg__session_fail(s, generate(s, opts));
}
