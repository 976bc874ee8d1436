/* A session's results: logits, text, ids, stop reason, timings and the kept tensors. While
 * the session is in a batch they are the stepping thread's: the accessors return empty
 * results then. */
#include "session/session_internal.h"

#include <stdlib.h>
#include <string.h>

PG_API pg_status pg_session_logits(const pg_session *s, const float **logits, size_t *n_vocab)
{
    if (!s || !logits) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_logits: NULL argument");
    }
    *logits = NULL;
    if (n_vocab) {
        *n_vocab = 0;
    }
    if (pg__session_in_batch(s)) {
        return pg__error(PG_ERR_BAD_STATE, "pg_session_logits: the session is in a batch");
    }
    if (!s->has_logits) {
        return pg__session_fail_const(s, pg__error(PG_ERR_BAD_STATE, "pg_session_logits: no logits yet: "
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
    const bool ok = s && !pg__session_in_batch(s) && s->text;
    if (len) {
        *len = ok ? s->text_len : 0;
    }
    return ok ? s->text : "";
}

PG_API const int32_t *pg_session_output_ids(const pg_session *s, size_t *n)
{
    const bool ok = s && !pg__session_in_batch(s);
    if (n) {
        *n = ok ? s->n_out : 0;
    }
    return ok ? s->out : NULL;
}

PG_API const int32_t *pg_session_prompt_ids(const pg_session *s, size_t *n)
{
    const bool ok = s && !pg__session_in_batch(s) && s->has_prompt;
    if (n) {
        *n = ok ? s->n_prompt : 0;
    }
    return ok ? s->prompt : NULL;
}

PG_API int32_t pg_session_stop_reason(const pg_session *s)
{
    return s && !pg__session_in_batch(s) ? s->stop_reason : PG_STOP_NONE;
}

PG_API pg_status pg_session_get_timings(const pg_session *s, pg_timings *t)
{
    if (!s || !t) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_get_timings: NULL argument");
    }
    if (pg__session_in_batch(s)) {
        return pg__error(PG_ERR_BAD_STATE, "pg_session_get_timings: the session is in a "
                         "batch");
    }
    if (t->struct_size < sizeof(size_t) || t->struct_size > 4096) {
        return pg__session_fail_const(s, pg__error(PG_ERR_INVALID_ARGUMENT, "pg_timings: struct_size %zu "
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

/* The images' rows of one kind (vision_out or proj) as one block: the cache entry itself for
 * one image, else a concatenated copy in s->concat. */
static const float *image_rows(pg_session *s, bool vision, int64_t width)
{
    const size_t rows = (size_t)s->model->cfg.vision.n_tokens;
    if (s->n_images == 1) {
        const pg__image_entry *e = &s->cache[s->slots[0]];
        return vision ? e->vision_out : e->proj;
    }
    const size_t per = rows * (size_t)width;
    free(s->concat);
    s->concat = pg__malloc_array(per * s->n_images, sizeof(float));
    for (uint32_t i = 0; s->concat && i < s->n_images; i++) {
        const pg__image_entry *e = &s->cache[s->slots[i]];
        const float *src = vision ? e->vision_out : e->proj;
        if (!src) {
            return NULL;
        }
        memcpy(s->concat + i * per, src, per * sizeof(float));
    }
    return s->concat;
}

/* The kept tensor `which`, or an error saying what is missing. */
static pg_status kept_tensor(pg_session *s, int32_t which, const float **data,
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
        shape[0] = s->n_images, shape[1] = 3, shape[2] = shape[3] = c->vision.image_size;
        return PG_OK;
    case PG_TENSOR_VISION_OUT:
    case PG_TENSOR_PROJECTOR_OUT: {
        if (!encoded) {
            return pg__error(PG_ERR_BAD_STATE, "the image is not encoded yet: prefill first");
        }
        const bool vision = which == PG_TENSOR_VISION_OUT;
        const int64_t width = vision ? c->vision.hidden : c->text.hidden;
        *data = image_rows(s, vision, width);
        if (!*data) {
            return pg__error(PG_ERR_OUT_OF_MEMORY, "no memory for the kept tensors");
        }
        *ndim = 2;
        shape[0] = (int64_t)s->n_images * c->vision.n_tokens;
        shape[1] = width;
        return PG_OK;
    }
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
    if (pg__session_in_batch(s)) {
        return pg__error(PG_ERR_BAD_STATE, "pg_session_get_tensor: the session is in a batch");
    }
    if (!(s->flags & PG_SESSION_KEEP_TENSORS)) {
        return pg__session_fail_const(s, pg__error(PG_ERR_BAD_STATE, "pg_session_get_tensor needs a "
                                       "session made with PG_SESSION_KEEP_TENSORS"));
    }
    /* kept_tensor may build a concatenated copy: sessions are allocated writable */
    return pg__session_fail_const(s, kept_tensor((pg_session *)(uintptr_t)s, which, data, shape,
                                                 ndim));
}

