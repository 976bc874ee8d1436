/* Session life cycle: options, new/free, reset, interrupt, errors (paligemma.h, "Sessions"). */
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
pg_status pg__session_fail_const(const pg_session *s, pg_status st)
{
    return pg__session_fail((pg_session *)(uintptr_t)s, st);
}

bool pg__session_in_batch(const pg_session *s)
{
    return atomic_load(&((pg_session *)(uintptr_t)s)->batch) != NULL;
}

pg_status pg__session_check_free(pg_session *s, const char *what)
{
    if (!pg__session_in_batch(s)) {
        return PG_OK;
    }
    /* The stepping thread owns the session's state: the message goes to the thread-local
     * error only, not into the session. */
    return pg__error(PG_ERR_BAD_STATE, "%s: the session is in a batch (take it out with "
                     "pg_batch_take_finished or pg_batch_remove first)", what);
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

void pg__session_clear_decoding(pg_session *s)
{
    s->prefilled = false;
    s->after_generate = false;
    s->has_logits = false;
    s->pos = 0;
    pg__prefill_abort(s);
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
    s->cache = pg__calloc(s->n_cache, sizeof *s->cache);
    s->logits = pg__malloc_array((size_t)m->cfg.text.vocab, sizeof(float));
    s->prompt_logits = pg__malloc_array((size_t)m->cfg.text.vocab, sizeof(float));
    s->prompt = pg__malloc_array(s->n_ctx, sizeof(int32_t));
    s->text_ids = pg__malloc_array(s->n_ctx, sizeof(int32_t));
    s->text_cap = 256;
    s->text = pg__calloc(s->text_cap, 1);
    if (!s->cache || !s->logits || !s->prompt_logits || !s->prompt || !s->text_ids ||
        !s->text || pg__session_images_reserve(s, 1) != PG_OK) {
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
    atomic_init(&s->batch, NULL);
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
    pg__batch_forget(s); /* a session freed inside a batch leaves it first */
    pg__prefill_abort(s);
    pg__gen_free(s);
    pg__kv_cache_free(&s->kv);
    pg__session_cache_free(s);
    free(s->pixels);
    free(s->pixel_keys);
    free(s->slots);
    free(s->concat);
    free(s->text_ids);
    free(s->logits);
    free(s->prompt_logits);
    free(s->prompt);
    free(s->out);
    free(s->text);
    pg__model_unref(s->model);
    free(s);
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
    pg_status st = pg__session_check_free(s, "pg_session_reset");
    if (st != PG_OK) {
        return st;
    }
    s->has_prompt = false;
    s->n_prompt = 0;
    s->n_text_ids = 0;
    pg__session_clear_decoding(s);
    atomic_store(&s->interrupt, 0);
    s->last_error[0] = '\0';
    return PG_OK;
}

PG_API const char *pg_session_last_error(const pg_session *s)
{
    return s ? s->last_error : "";
}
