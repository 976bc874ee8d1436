/*
 * The session API on the tiny checkpoint: argument and state errors, the image-encoding
 * cache, stopping (callback, max tokens, context, stop strings), interrupts, reset,
 * sampling, log-probabilities, feed/logits, and the model/session lifetime rules.
 * usage: test_session [BACKEND]
 */
#include "harness.h"

#include "session/session_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pg_model *g_model;
static pg_image *g_cat, *g_coffee;

static pg_session *new_session(uint32_t n_ctx, uint32_t flags)
{
    pg_session_options so;
    PG_SESSION_OPTIONS_INIT(&so);
    so.n_ctx = n_ctx;
    so.flags = flags;
    pg_session *s = NULL;
    CHECK_OK(pg_session_new(&s, g_model, &so));
    return s;
}

static pg_status run(pg_session *s, const pg_image *img, const char *prompt, uint32_t max_new)
{
    pg_generate_options go;
    PG_GENERATE_OPTIONS_INIT(&go);
    go.max_new_tokens = max_new;
    pg_status st = pg_session_set_image(s, img);
    if (st == PG_OK) {
        st = pg_session_set_prompt(s, prompt, strlen(prompt));
    }
    return st == PG_OK ? pg_session_generate(s, &go) : st;
}

/* Greedy ids of a fresh session (the reference for other checks). */
static size_t reference_ids(const pg_image *img, const char *prompt, uint32_t max_new,
                            int32_t *ids)
{
    pg_session *s = new_session(0, 0);
    size_t n = 0;
    CHECK_OK(run(s, img, prompt, max_new));
    const int32_t *out = pg_session_output_ids(s, &n);
    memcpy(ids, out, n * sizeof *ids);
    pg_session_free(s);
    return n;
}

static void test_bad_arguments(void)
{
    pg_session *s = NULL;
    CHECK_EQ_INT(pg_session_new(NULL, g_model, NULL), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_session_new(&s, NULL, NULL), PG_ERR_INVALID_ARGUMENT);
    CHECK(s == NULL);
    pg_session_options so;
    PG_SESSION_OPTIONS_INIT(&so);
    so.struct_size = 3;
    CHECK_EQ_INT(pg_session_new(&s, g_model, &so), PG_ERR_INVALID_ARGUMENT);
    PG_SESSION_OPTIONS_INIT(&so);
    so.n_ctx = 5; /* fewer than the 16 image tokens */
    CHECK_EQ_INT(pg_session_new(&s, g_model, &so), PG_ERR_INVALID_ARGUMENT);
    CHECK(strstr(pg_last_error(), "n_ctx") != NULL);
    PG_SESSION_OPTIONS_INIT(&so);
    so.kv_dtype = PG_DTYPE_Q4;
    CHECK_EQ_INT(pg_session_new(&s, g_model, &so), PG_ERR_INVALID_ARGUMENT);

    s = new_session(0, 0);
    CHECK_EQ_INT(pg_session_set_image(NULL, g_cat), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_session_set_image(s, NULL), PG_ERR_INVALID_ARGUMENT);
    CHECK(pg_session_last_error(s)[0] != '\0');
    CHECK_EQ_INT(pg_session_set_prompt(s, NULL, 3), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_session_set_prompt_ids(s, NULL, 2), PG_ERR_INVALID_ARGUMENT);
    const int32_t bad[] = { 2, 99999, 108 };
    CHECK_EQ_INT(pg_session_set_prompt_ids(s, bad, 3), PG_ERR_INVALID_ARGUMENT);
    const int32_t with_image[] = { 2, 2176, 108 };
    CHECK_EQ_INT(pg_session_set_prompt_ids(s, with_image, 3), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_session_generate(NULL, NULL), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_session_feed(s, NULL, 1), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_session_logits(s, NULL, NULL), PG_ERR_INVALID_ARGUMENT);
    const float *lg;
    CHECK_EQ_INT(pg_session_logits(s, &lg, NULL), PG_ERR_BAD_STATE);
    CHECK(strstr(pg_session_last_error(s), "no logits") != NULL); /* kept by the session */
    pg_generate_options go;
    PG_GENERATE_OPTIONS_INIT(&go);
    go.top_p = 0.0f;
    CHECK_OK(pg_session_set_image(s, g_cat));
    CHECK_OK(pg_session_set_prompt(s, "caption en", 10));
    CHECK_EQ_INT(pg_session_generate(s, &go), PG_ERR_INVALID_ARGUMENT);
    PG_GENERATE_OPTIONS_INIT(&go);
    go.n_logprobs = 21;
    CHECK_EQ_INT(pg_session_generate(s, &go), PG_ERR_INVALID_ARGUMENT);
    PG_GENERATE_OPTIONS_INIT(&go);
    const char *stops[] = { "" };
    go.stop_strings = stops;
    go.n_stop_strings = 1;
    CHECK_EQ_INT(pg_session_generate(s, &go), PG_ERR_INVALID_ARGUMENT);
    const char *bad_utf8[] = { "ok", "\xbd" }; /* could cut the text inside a character */
    go.stop_strings = bad_utf8;
    go.n_stop_strings = 2;
    CHECK_EQ_INT(pg_session_generate(s, &go), PG_ERR_INVALID_UTF8);
    CHECK(strstr(pg_session_last_error(s), "stop string 1") != NULL);
    const float *data;
    int64_t shape[4];
    int32_t ndim;
    CHECK_EQ_INT(pg_session_get_tensor(s, PG_TENSOR_VISION_OUT, &data, shape, &ndim),
                 PG_ERR_BAD_STATE); /* no PG_SESSION_KEEP_TENSORS */
    CHECK(strstr(pg_session_last_error(s), "PG_SESSION_KEEP_TENSORS") != NULL);
    pg_timings t = { .struct_size = 0 };
    CHECK_EQ_INT(pg_session_get_timings(s, &t), PG_ERR_INVALID_ARGUMENT);
    /* NULL-tolerant accessors. */
    CHECK(pg_session_text(NULL, NULL)[0] == '\0');
    CHECK(pg_session_output_ids(NULL, NULL) == NULL);
    CHECK_EQ_INT(pg_session_stop_reason(NULL), PG_STOP_NONE);
    CHECK(pg_session_last_error(NULL)[0] == '\0');
    pg_session_interrupt(NULL);
    pg_session_free(NULL);
    pg_session_free(s);
}

static void test_bad_state(void)
{
    pg_session *s = new_session(0, 0);
    CHECK_EQ_INT(pg_session_generate(s, NULL), PG_ERR_BAD_STATE);
    CHECK(strstr(pg_session_last_error(s), "image") != NULL);
    CHECK_EQ_INT(pg_session_prefill(s), PG_ERR_BAD_STATE);
    CHECK_OK(pg_session_set_prompt(s, "caption en", 10));
    CHECK_EQ_INT(pg_session_generate(s, NULL), PG_ERR_BAD_STATE); /* no image yet */
    CHECK_OK(pg_session_reset(s));
    CHECK(pg_session_last_error(s)[0] == '\0');
    CHECK_OK(pg_session_set_image(s, g_cat));
    CHECK_EQ_INT(pg_session_generate(s, NULL), PG_ERR_BAD_STATE); /* reset dropped prompt */
    const int32_t one = 5;
    CHECK_EQ_INT(pg_session_feed(s, &one, 1), PG_ERR_BAD_STATE);
    pg_session_free(s);
}

static void test_context_limits(void)
{
    /* 16 image tokens + <bos> + prompt + "\n" must fit n_ctx = 20. */
    pg_session *s = new_session(20, 0);
    const char *longp = "answer en what is the colour of the cat on the blanket?";
    CHECK_EQ_INT(pg_session_set_prompt(s, longp, strlen(longp)), PG_ERR_LIMIT);
    CHECK(strstr(pg_session_last_error(s), "context") != NULL);
    size_t n;
    CHECK(pg_session_prompt_ids(s, &n) == NULL && n == 0);
    /* "caption en" is 16 + 4 = 20 tokens: it fits, and generation stops at the context. */
    CHECK_OK(run(s, g_cat, "caption en", 50));
    CHECK_EQ_INT(pg_session_stop_reason(s), PG_STOP_CONTEXT);
    pg_session_output_ids(s, &n);
    CHECK_EQ_INT(n, 1); /* the first token is chosen from the prompt's logits */
    pg_session_free(s);

    s = new_session(23, 0);
    CHECK_OK(run(s, g_cat, "caption en", 50));
    CHECK_EQ_INT(pg_session_stop_reason(s), PG_STOP_CONTEXT);
    pg_session_output_ids(s, &n);
    CHECK_EQ_INT(n, 4);
    pg_session_free(s);
}

static void test_image_cache(void)
{
    pg_session *s = new_session(0, 0);
    static const char *prompts[] = { "caption en", "detect cat", "answer en what is this?" };
    pg_timings t;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(run(s, g_cat, prompts[i], 4));
        t.struct_size = sizeof t;
        CHECK_OK(pg_session_get_timings(s, &t));
        CHECK_EQ_INT(t.image_cache_hit, i > 0);
        CHECK_EQ_INT(t.prefill_tokens, i == 2 ? 24 : 20);
        CHECK_EQ_INT(t.decode_tokens, 3);
    }
    CHECK_EQ_INT(s->n_encodes, 1); /* the same image with three prompts: encoded once */
    CHECK_OK(run(s, g_coffee, "caption en", 2));
    CHECK_OK(run(s, g_cat, "caption en", 2));
    CHECK_EQ_INT(s->n_encodes, 2);
    pg_session_free(s);

    /* A cache of one entry evicts. */
    pg_session_options so;
    PG_SESSION_OPTIONS_INIT(&so);
    so.image_cache = 1;
    CHECK_OK(pg_session_new(&s, g_model, &so));
    CHECK_OK(run(s, g_cat, "caption en", 2));
    CHECK_OK(run(s, g_coffee, "caption en", 2));
    CHECK_OK(run(s, g_cat, "caption en", 2));
    CHECK_EQ_INT(s->n_encodes, 3);
    pg_session_free(s);
}

static int stop_first(void *user, const pg_token_event *ev)
{
    (void)ev;
    ++*(int *)user;
    return 1;
}

typedef struct lp_check {
    int calls;
    int bad;
} lp_check;

static int check_logprobs(void *user, const pg_token_event *ev)
{
    lp_check *c = user;
    c->calls++;
    if (ev->struct_size != sizeof *ev || ev->index != (uint32_t)(c->calls - 1) ||
        ev->n_top != 5 || ev->top_ids[0] != ev->token_id || ev->logprob > 0.0f ||
        fabsf(ev->logprob - ev->top_logprobs[0]) > 1e-6f || !ev->text ||
        strlen(ev->text) != ev->text_len) {
        c->bad++;
    }
    for (uint32_t i = 1; i < ev->n_top; i++) {
        c->bad += ev->top_logprobs[i] > ev->top_logprobs[i - 1];
    }
    return 0;
}

static void test_generation_controls(void)
{
    int32_t ref[32];
    size_t n_ref = reference_ids(g_cat, "caption en", 16, ref);
    CHECK_EQ_INT(n_ref, 16);
    pg_session *s = new_session(0, 0);
    CHECK_OK(pg_session_set_image(s, g_cat));
    CHECK_OK(pg_session_set_prompt(s, "caption en", 10));

    /* A callback that stops at the first token. */
    int calls = 0;
    pg_generate_options go;
    PG_GENERATE_OPTIONS_INIT(&go);
    go.on_token = stop_first;
    go.on_token_user = &calls;
    CHECK_OK(pg_session_generate(s, &go));
    size_t n;
    const int32_t *out = pg_session_output_ids(s, &n);
    CHECK(calls == 1 && n == 1 && out[0] == ref[0]);
    CHECK_EQ_INT(pg_session_stop_reason(s), PG_STOP_CALLBACK);

    /* max_new_tokens, the log-probabilities, text == detokenized ids. */
    lp_check lc = { 0, 0 };
    PG_GENERATE_OPTIONS_INIT(&go);
    go.max_new_tokens = 16;
    go.n_logprobs = 5;
    go.on_token = check_logprobs;
    go.on_token_user = &lc;
    CHECK_OK(pg_session_generate(s, &go));
    out = pg_session_output_ids(s, &n);
    CHECK(n == 16 && !memcmp(out, ref, n * sizeof *out));
    CHECK_EQ_INT(pg_session_stop_reason(s), PG_STOP_MAX_TOKENS);
    CHECK(lc.calls == 16 && lc.bad == 0);
    char text[4096];
    size_t len, tlen, n_text = 0;
    int32_t with_text[16]; /* ids past the tokenizer (padding rows) have no text */
    const pg_tokenizer *tok = pg_model_tokenizer(g_model);
    for (size_t i = 0; i < n; i++) {
        if ((uint32_t)out[i] < pg_tokenizer_vocab_size(tok)) {
            with_text[n_text++] = out[i];
        }
    }
    CHECK_OK(pg_detokenize(tok, with_text, n_text, PG_DETOKENIZE_SKIP_SPECIAL, text,
                           sizeof text, &len));
    const char *st = pg_session_text(s, &tlen);
    CHECK(tlen == len && !memcmp(st, text, len));

    /* A stop string cut out of that text: generation ends there, the text before it. */
    if (len >= 4) {
        char stop[3] = { text[len / 2], text[len / 2 + 1], 0 };
        const char *stops[] = { stop };
        const size_t at = (size_t)(strstr(text, stop) - text);
        PG_GENERATE_OPTIONS_INIT(&go);
        go.max_new_tokens = 16;
        go.stop_strings = stops;
        go.n_stop_strings = 1;
        CHECK_OK(pg_session_generate(s, &go));
        CHECK_EQ_INT(pg_session_stop_reason(s), PG_STOP_STRING);
        st = pg_session_text(s, &tlen);
        CHECK(tlen == at && !memcmp(st, text, at));
    }

    /* Sampling: top_k = 1 is greedy; the same seed repeats; top_p -> 0 is greedy. */
    PG_GENERATE_OPTIONS_INIT(&go);
    go.max_new_tokens = 16;
    go.temperature = 0.8f;
    go.top_k = 1;
    CHECK_OK(pg_session_generate(s, &go));
    out = pg_session_output_ids(s, &n);
    CHECK(n == 16 && !memcmp(out, ref, n * sizeof *out));
    go.top_k = 0;
    go.top_p = 1e-6f;
    CHECK_OK(pg_session_generate(s, &go));
    out = pg_session_output_ids(s, &n);
    CHECK(n == 16 && !memcmp(out, ref, n * sizeof *out));
    int32_t a[16], b[16];
    go.temperature = 1.5f;
    go.top_p = 0.9f;
    go.top_k = 50;
    go.seed = 1234;
    CHECK_OK(pg_session_generate(s, &go));
    out = pg_session_output_ids(s, &n);
    CHECK_EQ_INT(n, 16);
    memcpy(a, out, sizeof a);
    CHECK_OK(pg_session_generate(s, &go));
    out = pg_session_output_ids(s, &n);
    memcpy(b, out, sizeof b);
    CHECK(n == 16 && !memcmp(a, b, sizeof a));
    go.temperature = 5.0f;
    go.top_p = 1.0f;
    go.top_k = 0;
    go.seed = 99;
    CHECK_OK(pg_session_generate(s, &go));
    out = pg_session_output_ids(s, &n);
    CHECK(n == 16 && memcmp(out, ref, n * sizeof *out) != 0); /* very unlikely to be greedy */
    pg_session_free(s);
}

static void test_feed_logits(void)
{
    int32_t ref[8];
    reference_ids(g_cat, "caption en", 4, ref);
    pg_session *s = new_session(0, PG_SESSION_KEEP_TENSORS);
    CHECK_OK(pg_session_set_image(s, g_cat));
    CHECK_OK(pg_session_set_prompt(s, "caption en", 10));
    CHECK_OK(pg_session_prefill(s));
    const float *lg, *kept;
    size_t nv;
    int64_t shape[4];
    int32_t ndim;
    CHECK_OK(pg_session_logits(s, &lg, &nv));
    CHECK_OK(pg_session_get_tensor(s, PG_TENSOR_PREFILL_LOGITS_LAST, &kept, shape, &ndim));
    CHECK(nv == 2240 && ndim == 1 && shape[0] == 2240 && !memcmp(lg, kept, nv * sizeof *lg));
    CHECK_EQ_INT(pg__sample_greedy(lg, nv), ref[0]);
    /* Teacher forcing the greedy ids reproduces the greedy choices. */
    for (int t = 0; t < 3; t++) {
        CHECK_OK(pg_session_feed(s, &ref[t], 1));
        CHECK_OK(pg_session_logits(s, &lg, &nv));
        CHECK_EQ_INT(pg__sample_greedy(lg, nv), ref[t + 1]);
    }
    const int32_t bad = 5000;
    CHECK_EQ_INT(pg_session_feed(s, &bad, 1), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_session_get_tensor(s, 42, &kept, shape, &ndim), PG_ERR_INVALID_ARGUMENT);
    CHECK_OK(pg_session_get_tensor(s, PG_TENSOR_PIXEL_VALUES, &kept, shape, &ndim));
    CHECK(ndim == 4 && shape[1] == 3 && shape[2] == 56);
    pg_session_free(s);
}

static void *interrupt_thread(void *arg)
{
    pg_session_interrupt(arg);
    return NULL;
}

/* Interrupts from another thread at the third token (joined, so deterministic). */
static int interrupt_at_third(void *user, const pg_token_event *ev)
{
    if (ev->index == 2) {
        pthread_t th;
        if (pthread_create(&th, NULL, interrupt_thread, user) == 0) {
            pthread_join(th, NULL);
        }
    }
    return 0;
}

/* A backend hook: the n-th matmul interrupts the session from another thread (joined, so
 * the interrupt lands at a known point inside a prefill). */
static const pg__backend_ops *g_real_ops;
static pg__backend_ops g_hook_ops;
static pg_session *g_hook_session;
static int g_hook_countdown;

static pg_status hooked_matmul(pg__backend *be, float *y, int64_t ldy, const float *x,
                               int64_t ldx, int64_t m, const pg__tensor *w,
                               const pg__tensor *bias)
{
    if (g_hook_session && --g_hook_countdown == 0) {
        pthread_t th;
        if (pthread_create(&th, NULL, interrupt_thread, g_hook_session) == 0) {
            pthread_join(th, NULL);
        }
    }
    return g_real_ops->matmul(be, y, ldy, x, ldx, m, w, bias);
}

static void hook_matmul(pg_session *s, int countdown)
{
    g_real_ops = g_model->backend->ops;
    g_hook_ops = *g_real_ops;
    g_hook_ops.matmul = hooked_matmul;
    g_hook_session = s;
    g_hook_countdown = countdown;
    g_model->backend->ops = &g_hook_ops;
}

static void unhook_matmul(void)
{
    g_model->backend->ops = g_real_ops;
    g_hook_session = NULL;
}

static void test_interrupt_prefill(void)
{
    int32_t ref[4];
    reference_ids(g_cat, "caption en", 2, ref);
    pg_session *s = new_session(0, 0);
    CHECK_OK(pg_session_set_image(s, g_cat));
    CHECK_OK(pg_session_set_prompt(s, "caption en", 10));
    /* An interrupt before the call is not pending: only a running call is stopped. */
    pg_session_interrupt(s);
    CHECK_OK(pg_session_prefill(s));
    /* In the vision tower (the 3rd matmul is in its first layer). */
    CHECK_OK(pg_session_set_image(s, g_coffee));
    hook_matmul(s, 3);
    CHECK_EQ_INT(pg_session_prefill(s), PG_ERR_CANCELLED);
    unhook_matmul();
    CHECK(strstr(pg_session_last_error(s), "vision") != NULL);
    /* In the decoder (the image is cached, so the 2nd matmul is decoder layer 0's k). */
    CHECK_OK(pg_session_set_image(s, g_cat));
    hook_matmul(s, 2);
    CHECK_EQ_INT(pg_session_generate(s, NULL), PG_ERR_CANCELLED);
    unhook_matmul();
    CHECK(strstr(pg_session_last_error(s), "decoder") != NULL);
    const float *lg;
    CHECK_EQ_INT(pg_session_logits(s, &lg, NULL), PG_ERR_BAD_STATE);
    /* The session goes on: the next call prefills again. */
    pg_generate_options go;
    PG_GENERATE_OPTIONS_INIT(&go);
    go.max_new_tokens = 2;
    CHECK_OK(pg_session_generate(s, &go));
    size_t n;
    const int32_t *out = pg_session_output_ids(s, &n);
    CHECK(n == 2 && !memcmp(out, ref, 2 * sizeof *out));
    pg_session_free(s);
}

/* A feed that fails part-way leaves no logits: generate says so instead of reading stale
 * ones, and a new feed goes on from where the failed one started. */
static void test_failed_feed(void)
{
    int32_t ref[4];
    reference_ids(g_cat, "caption en", 3, ref);
    pg_session *s = new_session(0, 0);
    CHECK_OK(pg_session_set_image(s, g_cat));
    CHECK_OK(pg_session_set_prompt(s, "caption en", 10));
    CHECK_OK(pg_session_prefill(s));
    hook_matmul(s, 1); /* interrupted in decoder layer 0 */
    CHECK_EQ_INT(pg_session_feed(s, ref, 1), PG_ERR_CANCELLED);
    unhook_matmul();
    const float *lg;
    CHECK_EQ_INT(pg_session_logits(s, &lg, NULL), PG_ERR_BAD_STATE);
    CHECK_EQ_INT(pg_session_generate(s, NULL), PG_ERR_BAD_STATE);
    CHECK(strstr(pg_session_last_error(s), "feed") != NULL);
    CHECK_OK(pg_session_feed(s, ref, 1));
    pg_generate_options go;
    PG_GENERATE_OPTIONS_INIT(&go);
    go.max_new_tokens = 2;
    CHECK_OK(pg_session_generate(s, &go)); /* goes on after the fed first token */
    size_t n;
    const int32_t *out = pg_session_output_ids(s, &n);
    CHECK(n == 2 && !memcmp(out, ref + 1, 2 * sizeof *out));
    pg_session_free(s);
}

static void test_interrupt_and_reset(void)
{
    int32_t ref[16];
    size_t n_ref = reference_ids(g_cat, "detect cat", 8, ref);
    pg_session *s = new_session(0, 0);
    CHECK_OK(pg_session_set_image(s, g_cat));
    CHECK_OK(pg_session_set_prompt(s, "detect cat", 10));
    /* During generation, from another thread. */
    pg_generate_options go;
    PG_GENERATE_OPTIONS_INIT(&go);
    go.max_new_tokens = 8;
    go.on_token = interrupt_at_third;
    go.on_token_user = s;
    CHECK_EQ_INT(pg_session_generate(s, &go), PG_ERR_CANCELLED);
    CHECK_EQ_INT(pg_session_stop_reason(s), PG_STOP_INTERRUPT);
    CHECK(strstr(pg_session_last_error(s), "interrupt") != NULL);
    size_t n;
    const int32_t *out = pg_session_output_ids(s, &n);
    CHECK(n == 3 && !memcmp(out, ref, 3 * sizeof *out));
    /* Usable after reset, with the same result as a fresh session. */
    CHECK_OK(pg_session_reset(s));
    CHECK_OK(pg_session_set_prompt(s, "detect cat", 10));
    PG_GENERATE_OPTIONS_INIT(&go);
    go.max_new_tokens = 8;
    CHECK_OK(pg_session_generate(s, &go));
    out = pg_session_output_ids(s, &n);
    CHECK(n == n_ref && !memcmp(out, ref, n * sizeof *out));
    CHECK_EQ_INT(s->n_encodes, 1); /* reset keeps the image cache */
    pg_session_free(s);
}

/* Parallel sessions on one model: each thread's ids equal the single-threaded ones. */
typedef struct par_job {
    const pg_image *img;
    const char *prompt;
    int32_t ids[16];
    size_t n;
    pg_status st;
} par_job;

static void *par_run(void *arg)
{
    par_job *j = arg;
    pg_session *s = NULL;
    j->st = pg_session_new(&s, g_model, NULL);
    for (int rep = 0; rep < 2 && j->st == PG_OK; rep++) {
        j->st = run(s, j->img, j->prompt, 12);
    }
    const int32_t *out = pg_session_output_ids(s, &j->n);
    if (j->n <= 16) {
        memcpy(j->ids, out, j->n * sizeof *out);
    }
    pg_session_free(s);
    return NULL;
}

static void test_parallel_sessions(void)
{
    par_job jobs[4] = {
        { g_cat, "caption en", { 0 }, 0, PG_OK },
        { g_coffee, "caption en", { 0 }, 0, PG_OK },
        { g_cat, "detect cat", { 0 }, 0, PG_OK },
        { g_coffee, "answer en what is this?", { 0 }, 0, PG_OK },
    };
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        CHECK(pthread_create(&th[i], NULL, par_run, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    for (int i = 0; i < 4; i++) {
        int32_t ref[16];
        size_t n = reference_ids(jobs[i].img, jobs[i].prompt, 12, ref);
        CHECK_OK(jobs[i].st);
        CHECK(jobs[i].n == n && !memcmp(jobs[i].ids, ref, n * sizeof *ref));
    }
}

/* A bf16 / f16 KV cache: same greedy start, prompt logits close to the f32 cache's. */
static void test_kv_dtypes(void)
{
    pg_session *ref = new_session(0, 0);
    CHECK_OK(pg_session_set_image(ref, g_cat));
    CHECK_OK(pg_session_set_prompt(ref, "caption en", 10));
    CHECK_OK(pg_session_prefill(ref));
    const float *want, *got;
    size_t nv;
    CHECK_OK(pg_session_logits(ref, &want, &nv));
    const int32_t dtypes[] = { PG_DTYPE_BF16, PG_DTYPE_F16 };
    for (size_t i = 0; i < 2; i++) {
        pg_session_options so;
        PG_SESSION_OPTIONS_INIT(&so);
        so.kv_dtype = dtypes[i];
        pg_session *s = NULL;
        CHECK_OK(pg_session_new(&s, g_model, &so));
        CHECK_OK(pg_session_set_image(s, g_cat));
        CHECK_OK(pg_session_set_prompt(s, "caption en", 10));
        CHECK_OK(pg_session_prefill(s));
        CHECK_OK(pg_session_logits(s, &got, &nv));
        /* Rounding keys/values to 8 (bf16) or 11 (f16) mantissa bits moves logits a little. */
        const double d = pg_test_max_abs_diff(got, want, nv);
        CHECK_MSG(d < 0.25, "kv dtype %d: logits moved by %g", (int)dtypes[i], d);
        pg_session_free(s);
    }
    pg_session_free(ref);
}

/* The hardening pass: limits before allocation, struct sizes, ids checked before work,
 * invalid UTF-8 prompts, huge max_new_tokens, tiny temperatures, output struct tails. */
static void test_hardening(void)
{
    pg_session *s = NULL;
    pg_session_options so;
    PG_SESSION_OPTIONS_INIT(&so);
    so.n_ctx = UINT32_MAX;
    CHECK_EQ_INT(pg_session_new(&s, g_model, &so), PG_ERR_LIMIT);
    CHECK(s == NULL && strstr(pg_last_error(), "max_position_embeddings") != NULL);
    so.n_ctx = (uint32_t)g_model->cfg.text.max_positions + 1;
    CHECK_EQ_INT(pg_session_new(&s, g_model, &so), PG_ERR_LIMIT);
    so.n_ctx = (uint32_t)g_model->cfg.text.max_positions;
    CHECK_OK(pg_session_new(&s, g_model, &so));
    pg_session_free(s);

    /* Generate options: a bad struct_size, and fields of a newer library set. */
    s = new_session(23, PG_SESSION_KEEP_TENSORS);
    CHECK_OK(pg_session_set_image(s, g_cat));
    CHECK_OK(pg_session_set_prompt(s, "caption en", 10));
    struct {
        pg_generate_options o;
        uint64_t newer;
    } go;
    memset(&go, 0, sizeof go);
    pg_generate_options_init(&go.o, 2);
    go.o.struct_size = 2;
    CHECK_EQ_INT(pg_session_generate(s, &go.o), PG_ERR_INVALID_ARGUMENT);
    CHECK(strstr(pg_session_last_error(s), "struct_size") != NULL);
    pg_generate_options_init(&go.o, sizeof go);
    go.newer = 1;
    CHECK_EQ_INT(pg_session_generate(s, &go.o), PG_ERR_UNSUPPORTED);

    /* Fed ids are checked before the prefill they would trigger. */
    const float *data;
    int64_t shape[4];
    int32_t ndim;
    const int32_t negative[] = { 5, -1 }, too_big[] = { 300000 }, image_tok[] = { 2176 };
    CHECK_EQ_INT(pg_session_feed(s, negative, 2), PG_ERR_INVALID_ARGUMENT);
    CHECK(strstr(pg_session_last_error(s), "ids[1]") != NULL);
    CHECK_EQ_INT(pg_session_feed(s, too_big, 1), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_session_feed(s, image_tok, 1), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_session_feed(s, negative, SIZE_MAX), PG_ERR_LIMIT);
    CHECK_EQ_INT(pg_session_set_prompt_ids(s, negative, SIZE_MAX), PG_ERR_LIMIT);
    CHECK_EQ_INT(pg_session_set_prompt_ids(s, negative, 2), PG_ERR_INVALID_ARGUMENT);
    CHECK(strstr(pg_session_last_error(s), "-1") != NULL);
    CHECK_OK(pg_session_set_prompt(s, "caption en", 10));
    CHECK_EQ_INT(pg_session_get_tensor(s, PG_TENSOR_PREFILL_LOGITS_LAST, &data, shape, &ndim),
                 PG_ERR_BAD_STATE); /* no prefill happened */
    CHECK_EQ_INT(pg_session_get_tensor(s, 99, &data, shape, &ndim), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_session_get_tensor(s, PG_TENSOR_PIXEL_VALUES, NULL, shape, &ndim),
                 PG_ERR_INVALID_ARGUMENT);

    /* A huge max_new_tokens stops at the context (16 + 4 prompt tokens of n_ctx 23). */
    pg_generate_options g;
    PG_GENERATE_OPTIONS_INIT(&g);
    g.max_new_tokens = UINT32_MAX;
    CHECK_OK(pg_session_generate(s, &g));
    CHECK_EQ_INT(pg_session_stop_reason(s), PG_STOP_CONTEXT);
    size_t n;
    int32_t greedy[8];
    const int32_t *out = pg_session_output_ids(s, &n);
    CHECK_EQ_INT(n, 4);
    memcpy(greedy, out, n * sizeof *out);

    /* A temperature so small that logit / temperature overflows samples like greedy. */
    g.temperature = 1e-40f;
    for (uint32_t top_k = 0; top_k <= 50; top_k += 50) {
        g.top_k = top_k;
        g.top_p = top_k ? 0.9f : 1.0f;
        CHECK_OK(pg_session_generate(s, &g));
        out = pg_session_output_ids(s, &n);
        CHECK(n == 4 && !memcmp(out, greedy, n * sizeof *out));
    }

    /* A newer caller's larger pg_timings: the fields unknown here come back 0. */
    struct {
        pg_timings t;
        uint64_t newer[2];
    } big;
    memset(&big, 0xab, sizeof big);
    big.t.struct_size = sizeof big;
    CHECK_OK(pg_session_get_timings(s, &big.t));
    CHECK(big.t.struct_size == sizeof big && big.newer[0] == 0 && big.newer[1] == 0);
    CHECK(big.t.prefill_tokens == 20);

    pg_session_free(s);

    /* Invalid UTF-8 in the prompt text becomes U+FFFD, one per bad byte (like pg_tokenize). */
    s = new_session(0, 0);
    size_t n_bad, n_fffd;
    const char bad[] = "caption \xff\xc0 en";
    CHECK_OK(pg_session_set_prompt(s, bad, strlen(bad)));
    const int32_t *p = pg_session_prompt_ids(s, &n_bad);
    int32_t bad_ids[64];
    CHECK(n_bad <= 64);
    memcpy(bad_ids, p, (n_bad <= 64 ? n_bad : 64) * sizeof *p);
    const char fffd[] = "caption \xef\xbf\xbd\xef\xbf\xbd en";
    CHECK_OK(pg_session_set_prompt(s, fffd, strlen(fffd)));
    p = pg_session_prompt_ids(s, &n_fffd);
    CHECK(n_bad == n_fffd && n_bad <= 64 && !memcmp(bad_ids, p, n_bad * sizeof *p));
    pg_session_free(s);
}

/* The model may be freed before its sessions. */
static void test_lifetime(const char *path, const char *backend)
{
    pg_model_options mo;
    PG_MODEL_OPTIONS_INIT(&mo);
    mo.backend = backend;
    pg_model *m = NULL;
    CHECK_OK(pg_model_load(&m, path, &mo));
    if (!m) {
        return;
    }
    pg_session *s = NULL;
    CHECK_OK(pg_session_new(&s, m, NULL));
    pg_model_free(m);
    CHECK_OK(run(s, g_cat, "caption en", 3));
    pg_session_free(s);
}

int main(int argc, char **argv)
{
    const char *backend = argc > 1 ? argv[1] : "cpu";
    const char *path = pg_test_path(pg_test_data_dir(), "models/tiny/bf16");
    char model_path[1024];
    snprintf(model_path, sizeof model_path, "%s", path);
    pg_model_options mo;
    PG_MODEL_OPTIONS_INIT(&mo);
    mo.backend = backend;
    mo.n_threads = 2;
    CHECK_OK(pg_model_load(&g_model, model_path, &mo));
    const char *images = pg_test_path(pg_test_data_dir(), "image/models");
    CHECK_OK(pg_image_load_file(&g_cat, pg_test_path(images, "cat_chelsea.png"), NULL));
    CHECK_OK(pg_image_load_file(&g_coffee, pg_test_path(images, "coffee.png"), NULL));
    if (g_model && g_cat && g_coffee) {
        test_bad_arguments();
        test_bad_state();
        test_context_limits();
        test_image_cache();
        test_generation_controls();
        test_feed_logits();
        test_interrupt_prefill();
        test_interrupt_and_reset();
        test_failed_feed();
        test_parallel_sessions();
        test_kv_dtypes();
        test_hardening();
        test_lifetime(model_path, backend);
    }
    pg_image_free(g_cat);
    pg_image_free(g_coffee);
    pg_model_free(g_model);
    return pg_test_finish();
}
