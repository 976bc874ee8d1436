/* Prefill (image + prompt through the decoder) and teacher-forced feeding. */
#include "session/session_internal.h"

#include "decoder/decoder.h"

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

pg_status pg__session_prefill(pg_session *s)
{
    const pg_model *m = s->model;
    const size_t vocab = (size_t)m->cfg.text.vocab;
    pg_status st;
    if (!s->has_image) {
        return pg__error(PG_ERR_BAD_STATE, "no image: call pg_session_set_image first");
    }
    if (!s->has_prompt) {
        return pg__error(PG_ERR_BAD_STATE, "no prompt: call pg_session_set_prompt first");
    }
    s->prefilled = false;
    s->has_logits = false;
    s->after_generate = false;
    s->pos = 0;
    pg__session_clear_output(s);

    st = pg__session_encode_image(s);
    if (st != PG_OK) {
        return st;
    }
    const double t0 = pg__now_ms();
    float *x = alloc_embeddings(m, s->n_prompt);
    if (!x) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    st = pg__decoder_embed(m, s->prompt, (int64_t)s->n_prompt, s->encoded->proj,
                           m->cfg.vision.n_tokens, x);
    if (st == PG_OK) {
        st = pg__decoder_forward(m, &s->kv, x, (int64_t)s->n_prompt, 0, (int64_t)s->n_prompt,
                                 s->logits, 1, NULL, &s->interrupt);
    }
    free(x);
    if (st != PG_OK) {
        return st;
    }
    memcpy(s->prompt_logits, s->logits, vocab * sizeof(float));
    s->pos = (int64_t)s->n_prompt;
    s->prefilled = true;
    s->has_logits = true;
    s->timings.prefill_ms = pg__now_ms() - t0;
    s->timings.prefill_tokens = (uint32_t)s->n_prompt;
    return PG_OK;
}

void pg__session_rewind(pg_session *s)
{
    const size_t vocab = (size_t)s->model->cfg.text.vocab;
    s->pos = (int64_t)s->n_prompt;
    memcpy(s->logits, s->prompt_logits, vocab * sizeof(float));
    s->has_logits = true;
    s->after_generate = false;
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
