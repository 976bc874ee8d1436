/* Session life cycle, image and prompt setting, accessors (paligemma.h, "Sessions"). */
#include "session/session_internal.h"

#include "image/image.h"
#include "tokenizer/tokenizer.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_EXTRA_CTX 1024u /* n_ctx default: image tokens + this */
#define DEFAULT_IMAGE_CACHE 4u
#define MAX_IMAGE_CACHE 256u
#define MAX_CTX (1u << 20)

pg_status pg__session_fail(pg_session *s, pg_status st)
{
    if (st != PG_OK && s) {
        snprintf(s->last_error, sizeof s->last_error, "%s", pg__error_message());
    }
    return st;
}

/* pg__session_fail for the read-only accessors: their failures are the session's last
 * error too. Sessions are always allocated writable, and one thread uses one at a time. */
static pg_status fail_const(const pg_session *s, pg_status st)
{
    return pg__session_fail((pg_session *)(uintptr_t)s, st);
}

void pg__session_clear_interrupt(pg_session *s)
{
    atomic_store(&s->interrupt, 0);
}

void pg__session_clear_output(pg_session *s)
{
    s->n_out = 0;
    s->text_len = 0;
    if (s->text) {
        s->text[0] = '\0';
    }
    s->stop_reason = PG_STOP_NONE;
}

/* Forget everything computed from the prompt (the image cache stays). */
static void clear_decoding(pg_session *s)
{
    s->prefilled = false;
    s->after_generate = false;
    s->has_logits = false;
    s->pos = 0;
    pg__session_clear_output(s);
}

PG_API void pg_session_options_init(pg_session_options *opts, size_t struct_size)
{
    pg_session_options d;
    memset(&d, 0, sizeof d);
    d.kv_dtype = PG_DTYPE_AUTO;
    d.resize_method = PG_RESIZE_BICUBIC_PIL;
    pg__options_init(opts, struct_size, &d, sizeof d);
}

/* The caller's options over the defaults (an older, smaller struct keeps the defaults). */
static pg_status read_options(pg_session_options *o, const pg_session_options *user)
{
    pg_session_options_init(o, sizeof *o);
    if (!user) {
        return PG_OK;
    }
    pg_status st = pg__check_struct_size(user, sizeof *user,
                                         offsetof(pg_session_options, kv_dtype),
                                         "pg_session_options");
    if (st != PG_OK) {
        return st;
    }
    memcpy(o, user, user->struct_size < sizeof *o ? user->struct_size : sizeof *o);
    o->struct_size = sizeof *o;
    return PG_OK;
}

static pg_status kv_dtype_of(int32_t public_dtype, pg__dtype *out)
{
    switch (public_dtype) {
    case PG_DTYPE_AUTO: /* float32: the goldens' precision; bf16 keys move logits by ~1e-2 */
    case PG_DTYPE_F32: *out = PG__F32; return PG_OK;
    case PG_DTYPE_F16: *out = PG__F16; return PG_OK;
    case PG_DTYPE_BF16: *out = PG__BF16; return PG_OK;
    default:
        return pg__error(PG_ERR_INVALID_ARGUMENT, "kv_dtype %d is not F32, F16 or BF16",
                         (int)public_dtype);
    }
}

/* The largest context a session may ask for: the model's trained positions, and MAX_CTX. */
static uint32_t max_ctx_of(const pg_model *m)
{
    const uint32_t max_pos = (uint32_t)m->cfg.text.max_positions;
    return max_pos < MAX_CTX ? max_pos : MAX_CTX;
}

/* n_ctx 0 means the default: the image tokens + DEFAULT_EXTRA_CTX, within the model's limit. */
static uint32_t n_ctx_of(const pg_session_options *o, const pg_model *m)
{
    const uint32_t def = (uint32_t)m->cfg.vision.n_tokens + DEFAULT_EXTRA_CTX;
    const uint32_t max = max_ctx_of(m);
    return o->n_ctx ? o->n_ctx : (def < max ? def : max);
}

static pg_status check_options(const pg_session_options *o, const pg_model *m)
{
    const uint32_t n_img = (uint32_t)m->cfg.vision.n_tokens;
    const uint32_t n_ctx = n_ctx_of(o, m);
    /* Checked before anything is allocated: a huge n_ctx is a clear error, not an OOM. */
    if (n_ctx > max_ctx_of(m)) {
        return pg__error(PG_ERR_LIMIT, "n_ctx %u is over the limit of %u tokens (the model's "
                         "max_position_embeddings is %d)", n_ctx, max_ctx_of(m),
                         (int)m->cfg.text.max_positions);
    }
    if (n_ctx < n_img + 2) {
        return pg__error(o->n_ctx ? PG_ERR_INVALID_ARGUMENT : PG_ERR_LIMIT,
                         "n_ctx %u must be 0 or at least %u (the image tokens, <bos> and "
                         "\"\\n\" must fit)", n_ctx, n_img + 2);
    }
    if (o->resize_method != PG_RESIZE_BICUBIC_PIL && o->resize_method != PG_RESIZE_BILINEAR_TF) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "resize_method %d is unknown",
                         (int)o->resize_method);
    }
    if (o->image_cache > MAX_IMAGE_CACHE) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "image_cache %u is over %u", o->image_cache,
                         MAX_IMAGE_CACHE);
    }
    if (o->flags & ~(uint32_t)PG_SESSION_KEEP_TENSORS) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "unknown session flags 0x%x", o->flags);
    }
    return PG_OK;
}

/* Buffers whose size depends only on the model and options. */
static pg_status session_alloc(pg_session *s, const pg_session_options *o)
{
    const pg_model *m = s->model;
    const size_t side = (size_t)m->cfg.vision.image_size;
    pg__dtype kv_dt = PG__F32;
    pg_status st = kv_dtype_of(o->kv_dtype, &kv_dt);
    if (st != PG_OK) {
        return st;
    }
    s->n_ctx = n_ctx_of(o, m);
    s->n_cache = o->image_cache ? o->image_cache : DEFAULT_IMAGE_CACHE;
    s->resize_method = o->resize_method;
    s->flags = o->flags;
    s->n_pixels = 3 * side * side;
    s->pixels = pg__malloc_array(s->n_pixels, sizeof(float));
    s->cache = pg__calloc(s->n_cache, sizeof *s->cache);
    s->logits = pg__malloc_array((size_t)m->cfg.text.vocab, sizeof(float));
    s->prompt_logits = pg__malloc_array((size_t)m->cfg.text.vocab, sizeof(float));
    s->prompt = pg__malloc_array(s->n_ctx, sizeof(int32_t));
    s->text_cap = 256;
    s->text = pg__calloc(s->text_cap, 1);
    if (!s->pixels || !s->cache || !s->logits || !s->prompt_logits || !s->prompt || !s->text) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "session: out of memory");
    }
    return pg__kv_cache_init(&s->kv, &m->cfg.text, s->n_ctx, kv_dt);
}

PG_API pg_status pg_session_new(pg_session **out, pg_model *model,
                                const pg_session_options *opts)
{
    pg_session_options o;
    pg_status st;
    if (!out) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_new: out is NULL");
    }
    *out = NULL;
    if (!model) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_new: model is NULL");
    }
    if (!model->backend || !model->decoder.layers || !model->vision.layers) {
        return pg__error(PG_ERR_BAD_STATE, "pg_session_new: the model has no weights "
                         "(loaded with PG_MODEL_TOKENIZER_ONLY?)");
    }
    st = read_options(&o, opts);
    if (st == PG_OK) {
        st = check_options(&o, model);
    }
    if (st != PG_OK) {
        return st;
    }
    pg_session *s = pg__calloc(1, sizeof *s);
    if (!s) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    s->model = model;
    pg__model_ref(model);
    atomic_init(&s->interrupt, 0);
    s->timings.struct_size = sizeof s->timings;
    st = session_alloc(s, &o);
    if (st != PG_OK) {
        pg_session_free(s);
        return st;
    }
    *out = s;
    return PG_OK;
}

PG_API void pg_session_free(pg_session *s)
{
    if (!s) {
        return;
    }
    pg__kv_cache_free(&s->kv);
    pg__session_cache_free(s);
    free(s->pixels);
    free(s->logits);
    free(s->prompt_logits);
    free(s->prompt);
    free(s->out);
    free(s->text);
    pg__model_unref(s->model);
    free(s);
}

PG_API pg_status pg_session_set_image(pg_session *s, const pg_image *image)
{
    if (!s) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_set_image: session is NULL");
    }
    if (!image || !image->rgb || image->width == 0 || image->height == 0) {
        return pg__session_fail(s, pg__error(PG_ERR_INVALID_ARGUMENT,
                                             "pg_session_set_image: no image (NULL or empty)"));
    }
    const double t0 = pg__now_ms();
    s->has_image = false;
    s->encoded = NULL;
    clear_decoding(s);
    pg_status st = pg__image_preprocess(image, (uint32_t)s->model->cfg.vision.image_size,
                                        s->resize_method, s->pixels);
    if (st != PG_OK) {
        return pg__session_fail(s, st);
    }
    pg__session_hash_pixels(s);
    s->has_image = true;
    s->timings.preprocess_ms = pg__now_ms() - t0;
    return PG_OK;
}

/* Stores image tokens + ids as the prompt, after checking ids and the context size. */
static pg_status store_prompt(pg_session *s, const int32_t *const *parts, const size_t *lens,
                              size_t n_parts)
{
    const pg__config *cfg = &s->model->cfg;
    size_t total = (size_t)cfg->vision.n_tokens;
    for (size_t p = 0; p < n_parts; p++) {
        /* The length first: a huge count is refused before its ids are read. */
        if (lens[p] > s->n_ctx || total > s->n_ctx - lens[p]) {
            return pg__error(PG_ERR_LIMIT, "the prompt (%zu image tokens + text) is longer "
                             "than the context of %u tokens", (size_t)cfg->vision.n_tokens,
                             s->n_ctx);
        }
        for (size_t i = 0; i < lens[p]; i++) {
            const int32_t id = parts[p][i];
            if (id < 0 || id >= cfg->text.vocab) {
                return pg__error(PG_ERR_INVALID_ARGUMENT, "prompt token %d is outside the "
                                 "vocabulary (0..%d)", (int)id, (int)cfg->text.vocab - 1);
            }
            if (id == cfg->image_token_index) {
                return pg__error(PG_ERR_INVALID_ARGUMENT, "the prompt may not contain the "
                                 "image token %d (the session places the image tokens)",
                                 (int)id);
            }
        }
        total += lens[p];
    }
    size_t k = 0;
    for (int32_t i = 0; i < cfg->vision.n_tokens; i++) {
        s->prompt[k++] = cfg->image_token_index;
    }
    for (size_t p = 0; p < n_parts; p++) {
        if (lens[p]) {
            memcpy(s->prompt + k, parts[p], lens[p] * sizeof(int32_t));
            k += lens[p];
        }
    }
    s->n_prompt = k;
    s->has_prompt = true;
    return PG_OK;
}

/* <bos> tok(prompt) tok("\n"), the two pieces tokenized separately (spec §6.1). */
static pg_status tokenize_prompt(pg_session *s, const char *prompt, size_t len)
{
    const pg_tokenizer *tok = s->model->tokenizer;
    int32_t *text_ids = NULL, *nl_ids = NULL;
    size_t n_text = 0, n_nl = 0;
    if (!tok) {
        return pg__error(PG_ERR_UNSUPPORTED, "the model has no tokenizer: use "
                         "pg_session_set_prompt_ids");
    }
    pg_status st = pg__tokenizer_encode(tok, prompt, len, 0, &text_ids, &n_text);
    if (st == PG_OK) {
        st = pg__tokenizer_encode(tok, "\n", 1, 0, &nl_ids, &n_nl);
    }
    if (st == PG_OK) {
        const int32_t bos = s->model->cfg.bos_id;
        const int32_t *parts[3] = { &bos, text_ids, nl_ids };
        const size_t lens[3] = { 1, n_text, n_nl };
        st = store_prompt(s, parts, lens, 3);
    }
    free(text_ids);
    free(nl_ids);
    return st;
}

PG_API pg_status pg_session_set_prompt(pg_session *s, const char *prompt, size_t len)
{
    if (!s) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_set_prompt: session is NULL");
    }
    if (!prompt && len) {
        return pg__session_fail(s, pg__error(PG_ERR_INVALID_ARGUMENT,
                                             "pg_session_set_prompt: prompt is NULL"));
    }
    s->has_prompt = false;
    clear_decoding(s);
    return pg__session_fail(s, tokenize_prompt(s, prompt ? prompt : "", len));
}

PG_API pg_status pg_session_set_prompt_ids(pg_session *s, const int32_t *ids, size_t n)
{
    if (!s) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_set_prompt_ids: session is NULL");
    }
    if (!ids && n) {
        return pg__session_fail(s, pg__error(PG_ERR_INVALID_ARGUMENT,
                                             "pg_session_set_prompt_ids: ids is NULL"));
    }
    s->has_prompt = false;
    clear_decoding(s);
    const int32_t *parts[1] = { ids };
    return pg__session_fail(s, store_prompt(s, parts, &n, 1));
}

PG_API pg_status pg_session_prefill(pg_session *s)
{
    if (!s) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_prefill: session is NULL");
    }
    pg__session_clear_interrupt(s);
    return pg__session_fail(s, pg__session_prefill(s));
}

/* Fed ids are checked before any work (a prefill) is done: the count against the context,
 * then every id against the vocabulary; the image token has no place after the prompt. */
static pg_status check_fed_ids(const pg_session *s, const int32_t *ids, size_t n)
{
    const pg__config *cfg = &s->model->cfg;
    if (n > s->n_ctx) {
        return pg__error(PG_ERR_LIMIT, "pg_session_feed: %zu tokens do not fit the context "
                         "of %u", n, s->n_ctx);
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= cfg->text.vocab) {
            return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_feed: ids[%zu] = %d is "
                             "outside the vocabulary (0..%d)", i, (int)ids[i],
                             (int)cfg->text.vocab - 1);
        }
        if (ids[i] == cfg->image_token_index) {
            return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_feed: ids[%zu] is the image "
                             "token %d (image tokens belong to the prompt)", i, (int)ids[i]);
        }
    }
    return PG_OK;
}

PG_API pg_status pg_session_feed(pg_session *s, const int32_t *ids, size_t n)
{
    if (!s) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_feed: session is NULL");
    }
    if (!ids || n == 0) {
        return pg__session_fail(s, pg__error(PG_ERR_INVALID_ARGUMENT,
                                             "pg_session_feed: no ids"));
    }
    pg_status st = check_fed_ids(s, ids, n);
    if (st != PG_OK) {
        return pg__session_fail(s, st);
    }
    pg__session_clear_interrupt(s);
    if (!s->prefilled) {
        st = pg__session_prefill(s);
    } else if (s->after_generate) {
        pg__session_rewind(s);
    }
    if (st == PG_OK) {
        pg__session_clear_output(s);
        st = pg__session_feed(s, ids, n);
    }
    return pg__session_fail(s, st);
}

PG_API pg_status pg_session_logits(const pg_session *s, const float **logits, size_t *n_vocab)
{
    if (!s || !logits) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_logits: NULL argument");
    }
    *logits = NULL;
    if (n_vocab) {
        *n_vocab = 0;
    }
    if (!s->has_logits) {
        return fail_const(s, pg__error(PG_ERR_BAD_STATE, "pg_session_logits: no logits yet: "
                                       "prefill, feed or generate first"));
    }
    *logits = s->logits;
    if (n_vocab) {
        *n_vocab = (size_t)s->model->cfg.text.vocab;
    }
    return PG_OK;
}

PG_API const char *pg_session_text(const pg_session *s, size_t *len)
{
    if (len) {
        *len = s ? s->text_len : 0;
    }
    return s && s->text ? s->text : "";
}

PG_API const int32_t *pg_session_output_ids(const pg_session *s, size_t *n)
{
    if (n) {
        *n = s ? s->n_out : 0;
    }
    return s ? s->out : NULL;
}

PG_API const int32_t *pg_session_prompt_ids(const pg_session *s, size_t *n)
{
    const bool ok = s && s->has_prompt;
    if (n) {
        *n = ok ? s->n_prompt : 0;
    }
    return ok ? s->prompt : NULL;
}

PG_API int32_t pg_session_stop_reason(const pg_session *s)
{
    return s ? s->stop_reason : PG_STOP_NONE;
}

PG_API pg_status pg_session_get_timings(const pg_session *s, pg_timings *t)
{
    if (!s || !t) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_get_timings: NULL argument");
    }
    if (t->struct_size < sizeof(size_t) || t->struct_size > 4096) {
        return fail_const(s, pg__error(PG_ERR_INVALID_ARGUMENT, "pg_timings: struct_size %zu "
                                       "is invalid", t->struct_size));
    }
    /* Fill what both sides know; an older caller's smaller struct gets its prefix, a newer
     * caller's larger one gets zeros in the fields this library does not know. */
    const size_t caller = t->struct_size;
    const size_t n = caller < sizeof *t ? caller : sizeof *t;
    memcpy(t, &s->timings, n);
    if (caller > n) {
        memset((unsigned char *)t + n, 0, caller - n);
    }
    t->struct_size = caller;
    return PG_OK;
}

/* The kept tensor `which`, or an error saying what is missing. */
static pg_status kept_tensor(const pg_session *s, int32_t which, const float **data,
                             int64_t shape[4], int32_t *ndim)
{
    const pg__config *c = &s->model->cfg;
    const bool encoded = s->prefilled && s->encoded;
    switch (which) {
    case PG_TENSOR_PIXEL_VALUES:
        if (!s->has_image) {
            return pg__error(PG_ERR_BAD_STATE, "no image set");
        }
        *data = s->pixels;
        *ndim = 4;
        shape[0] = 1, shape[1] = 3, shape[2] = shape[3] = c->vision.image_size;
        return PG_OK;
    case PG_TENSOR_VISION_OUT:
    case PG_TENSOR_PROJECTOR_OUT:
        if (!encoded) {
            return pg__error(PG_ERR_BAD_STATE, "the image is not encoded yet: prefill first");
        }
        *data = which == PG_TENSOR_VISION_OUT ? s->encoded->vision_out : s->encoded->proj;
        *ndim = 2;
        shape[0] = c->vision.n_tokens;
        shape[1] = which == PG_TENSOR_VISION_OUT ? c->vision.hidden : c->text.hidden;
        return PG_OK;
    case PG_TENSOR_PREFILL_LOGITS_LAST:
        if (!s->prefilled) {
            return pg__error(PG_ERR_BAD_STATE, "no prefill yet");
        }
        *data = s->prompt_logits;
        *ndim = 1;
        shape[0] = c->text.vocab;
        return PG_OK;
    default:
        return pg__error(PG_ERR_INVALID_ARGUMENT, "unknown tensor %d", (int)which);
    }
}

PG_API pg_status pg_session_get_tensor(const pg_session *s, int32_t which, const float **data,
                                       int64_t shape[4], int32_t *ndim)
{
    if (!s || !data || !shape || !ndim) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_get_tensor: NULL argument");
    }
    *data = NULL;
    *ndim = 0;
    memset(shape, 0, 4 * sizeof *shape);
    if (!(s->flags & PG_SESSION_KEEP_TENSORS)) {
        return fail_const(s, pg__error(PG_ERR_BAD_STATE, "pg_session_get_tensor needs a "
                                       "session made with PG_SESSION_KEEP_TENSORS"));
    }
    return fail_const(s, kept_tensor(s, which, data, shape, ndim));
}

PG_API void pg_session_interrupt(pg_session *s)
{
    if (s) {
        atomic_store(&s->interrupt, 1);
    }
}

PG_API pg_status pg_session_reset(pg_session *s)
{
    if (!s) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_reset: session is NULL");
    }
    s->has_prompt = false;
    s->n_prompt = 0;
    clear_decoding(s);
    atomic_store(&s->interrupt, 0);
    s->last_error[0] = '\0';
    return PG_OK;
}

PG_API const char *pg_session_last_error(const pg_session *s)
{
    return s ? s->last_error : "";
}
