/*
 * The prefill (images + prompt through the decoder) and teacher-forced feeding.
 *
 * A prefill is a sequence of steps so that a batch can run it between other sessions'
 * decode steps (batch.c): one vision-tower step (the patch embedding, or one encoder layer)
 * per image that misses the encoded-image cache, then the embedding with the first decoder
 * layer, one decoder layer per step, and the head with the last. Alone, pg__session_prefill
 * runs the same steps back to back, so both give identical results.
 */
#include "session/session_internal.h"

#include "projector/projector.h"

#include <stdlib.h>
#include <string.h>

/* Rows of decoder input for n tokens. */
static float *alloc_embeddings(const pg_model *m, size_t n)
{
    size_t count;
    if (!pg__mul_size(n, (size_t)m->cfg.text.hidden, &count)) {
        pg__error(PG_ERR_LIMIT, "too many tokens (%zu)", n);
        return NULL;
    }
    return pg__malloc_array(count, sizeof(float));
}

void pg__prefill_abort(pg_session *s)
{
    pg__prefill *pf = &s->pf;
    pg__vision_job_free(pf->vision);
    free(pf->vision_out);
    free(pf->x);
    pg__decoder_scratch_free(pf->scratch);
    memset(pf, 0, sizeof *pf);
}

pg_status pg__prefill_begin(pg_session *s)
{
    if (!s->has_image) {
        return pg__error(PG_ERR_BAD_STATE, "no image: call pg_session_set_image first");
    }
    if (!s->has_prompt) {
        return pg__error(PG_ERR_BAD_STATE, "no prompt: call pg_session_set_prompt first");
    }
    pg__session_clear_decoding(s);
    s->encoded = false;
    s->timings.vision_ms = 0.0;
    s->timings.prefill_ms = 0.0;
    s->timings.prefill_tokens = 0;
    s->timings.image_cache_hit = 0;
    s->pf.active = true;
    return PG_OK;
}

/* Starts the tower on image pf->image, or takes its encoding from the cache. */
static pg_status vision_start(pg_session *s)
{
    pg__prefill *pf = &s->pf;
    const pg_model *m = s->model;
    s->slots[pf->image] = pg__session_cache_lookup(s, pf->image);
    if (s->slots[pf->image] >= 0) {
        pf->image++;
        return PG_OK;
    }
    const size_t n = (size_t)m->cfg.vision.n_tokens;
    pf->vision_out = pg__malloc_array(n * (size_t)m->cfg.vision.hidden, sizeof(float));
    if (!pf->vision_out) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    return pg__vision_job_new(&pf->vision, m, s->pixels + (size_t)pf->image * s->n_pixels);
}

/* One tower step of the current image; after its last, the projector and the cache. */
static pg_status vision_step(pg_session *s)
{
    pg__prefill *pf = &s->pf;
    const pg_model *m = s->model;
    bool done;
    pg_status st = pg__vision_job_step(pf->vision, pf->vision_out, NULL, &done);
    if (st != PG_OK || !done) {
        return st;
    }
    pg__vision_job_free(pf->vision);
    pf->vision = NULL;
    const size_t n = (size_t)m->cfg.vision.n_tokens;
    float *proj = pg__malloc_array(n * (size_t)m->cfg.text.hidden, sizeof(float));
    if (!proj) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    st = pg__projector_forward(m, pf->vision_out, (int64_t)n, proj);
    if (st != PG_OK) {
        free(proj);
        return st;
    }
    float *kept = (s->flags & PG_SESSION_KEEP_TENSORS) ? pf->vision_out : NULL;
    if (!kept) {
        free(pf->vision_out);
    }
    pf->vision_out = NULL;
    st = pg__session_cache_insert(s, pf->image, proj, kept, &s->slots[pf->image]);
    if (st == PG_OK) {
        s->n_encodes++;
        pf->n_encoded++;
        pf->image++;
    }
    return st;
}

/* The prompt rows with the images' features merged in, and the decoder's scratch. */
static pg_status embed_prompt(pg_session *s)
{
    pg__prefill *pf = &s->pf;
    const pg_model *m = s->model;
    const float *proj[PG__MAX_IMAGES];
    for (uint32_t i = 0; i < s->n_images; i++) {
        proj[i] = s->cache[s->slots[i]].proj;
    }
    s->encoded = true;
    s->timings.image_cache_hit = pf->n_encoded == 0;
    pf->x = alloc_embeddings(m, s->n_prompt);
    if (!pf->x) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    pg_status st = pg__decoder_scratch_new(&pf->scratch, m, (int64_t)s->n_prompt);
    if (st == PG_OK) {
        st = pg__decoder_embed_images(m, s->prompt, (int64_t)s->n_prompt, proj, s->n_images,
                                      m->cfg.vision.n_tokens, pf->x);
    }
    return st;
}

/* One decoder layer over the whole prompt (one bidirectional block); the head after the
 * last. */
static pg_status decoder_step(pg_session *s, bool *done)
{
    pg__prefill *pf = &s->pf;
    const pg_model *m = s->model;
    const int64_t n = (int64_t)s->n_prompt;
    const pg__decoder_seq seq = {.kv = &s->kv, .start = 0, .n = n, .prefix_len = n};
    pg_status st = pg__decoder_layers(m, &seq, 1, pf->x, pf->layer, pf->layer + 1,
                                      pf->scratch, NULL, NULL);
    if (st != PG_OK || ++pf->layer < m->cfg.text.layers) {
        return st;
    }
    st = pg__decoder_head(m, pf->x, n, s->logits, 1, pf->scratch);
    if (st != PG_OK) {
        return st;
    }
    memcpy(s->prompt_logits, s->logits, (size_t)m->cfg.text.vocab * sizeof(float));
    s->pos = n;
    s->prefilled = true;
    s->has_logits = true;
    s->timings.prefill_tokens = (uint32_t)n;
    *done = true;
    return PG_OK;
}

pg_status pg__prefill_step(pg_session *s, bool *done)
{
    pg__prefill *pf = &s->pf;
    const double t0 = pg__now_ms();
    const bool in_vision = pf->image < s->n_images;
    pg_status st = PG_OK;
    *done = false;
    if (!pf->active) {
        return pg__error(PG_ERR_INTERNAL, "prefill step without a prefill");
    }
    if (in_vision) {
        st = pf->vision ? vision_step(s) : vision_start(s);
    } else {
        if (!pf->x) {
            st = embed_prompt(s);
        }
        if (st == PG_OK) {
            st = decoder_step(s, done);
        }
    }
    if (in_vision) {
        s->timings.vision_ms += pg__now_ms() - t0;
    } else {
        s->timings.prefill_ms += pg__now_ms() - t0;
    }
    if (st != PG_OK || *done) {
        /* success or failure, the prefill's buffers go; the session stays usable (the next
         * call prefills again) */
        pg__prefill_abort(s);
    }
    return st;
}

pg_status pg__session_prefill(pg_session *s)
{
    pg_status st = pg__prefill_begin(s);
    bool done = false;
    while (st == PG_OK && !done) {
        if (atomic_load(&s->interrupt)) {
            const bool vision = s->pf.image < s->n_images;
            const int32_t layer = s->pf.layer;
            pg__prefill_abort(s);
            st = vision ? pg__error(PG_ERR_CANCELLED, "interrupted in the vision tower")
                        : pg__error(PG_ERR_CANCELLED, "interrupted in decoder layer %d "
                                    "(prefill)", (int)layer);
            break;
        }
        st = pg__prefill_step(s, &done);
    }
    return st;
}

void pg__session_rewind(pg_session *s)
{
    const size_t vocab = (size_t)s->model->cfg.text.vocab;
    s->pos = (int64_t)s->n_prompt;
    memcpy(s->logits, s->prompt_logits, vocab * sizeof(float));
    s->has_logits = true;
    s->after_generate = false;
}

pg_status pg__session_ready_to_generate(pg_session *s, bool *need_prefill)
{
    *need_prefill = false;
    if (!s->has_image || !s->has_prompt) {
        return pg__error(PG_ERR_BAD_STATE, "generate needs an image and a prompt (call "
                         "pg_session_set_image and pg_session_set_prompt first)");
    }
    if (!s->prefilled) {
        *need_prefill = true;
    } else if (s->after_generate) {
        pg__session_rewind(s);
    } else if (!s->has_logits) {
        /* A feed failed (interrupted, say): its logits are gone, and guessing where to go on
         * from would hide that. */
        return pg__error(PG_ERR_BAD_STATE, "the last pg_session_feed failed: feed again, or "
                         "set the prompt again, before generating");
    }
    return PG_OK;
}

pg_status pg__session_feed(pg_session *s, const int32_t *ids, size_t n)
{
    const pg_model *m = s->model;
    if (n > (size_t)(s->kv.n_ctx - s->pos)) {
        return pg__error(PG_ERR_LIMIT, "%zu more tokens do not fit the context (%lld of %lld "
                         "used)", n, (long long)s->pos, (long long)s->kv.n_ctx);
    }
    float *x = alloc_embeddings(m, n);
    if (!x) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    /* No image features here: fed ids are ordinary tokens. */
    pg_status st = pg__decoder_embed(m, ids, (int64_t)n, NULL, 0, x);
    if (st == PG_OK) {
        s->has_logits = false;
        st = pg__decoder_forward(m, &s->kv, x, (int64_t)n, s->pos, (int64_t)s->n_prompt,
                                 s->logits, 1, NULL, &s->interrupt);
    }
    free(x);
    if (st == PG_OK) {
        s->pos += (int64_t)n;
        s->has_logits = true;
    }
    return st;
}

PG_API pg_status pg_session_prefill(pg_session *s)
{
    if (!s) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_prefill: session is NULL");
    }
    pg_status st = pg__session_check_free(s, "pg_session_prefill");
    if (st != PG_OK) {
        return st;
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
    pg_status st = pg__session_check_free(s, "pg_session_feed");
    if (st != PG_OK) {
        return st;
    }
    if (!ids || n == 0) {
        return pg__session_fail(s, pg__error(PG_ERR_INVALID_ARGUMENT,
                                             "pg_session_feed: no ids"));
    }
    st = check_fed_ids(s, ids, n);
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
