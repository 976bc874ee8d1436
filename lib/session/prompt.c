/* The prompt: `<image>` x (images x tokens per image), then the text ids (<bos>, prompt,
 * "\n" when given as text; verbatim when given as ids), as transformers' PaliGemmaProcessor
 * builds it (spec §6.1). The text ids are kept apart so that a later pg_session_set_images
 * with another image count rebuilds the image part. */
#include "session/session_internal.h"

#include <stdlib.h>
#include <string.h>

/* Image tokens of n images (n 0 counts as 1: a prompt set before any image). */
static size_t image_tokens(const pg_session *s, uint32_t n_images)
{
    return (size_t)(n_images ? n_images : 1) * (size_t)s->model->cfg.vision.n_tokens;
}

pg_status pg__session_compose_prompt(pg_session *s, uint32_t n_images)
{
    const pg__config *cfg = &s->model->cfg;
    const size_t n_img = image_tokens(s, n_images);
    if (n_img > s->n_ctx || s->n_text_ids > s->n_ctx - n_img) {
        return pg__error(PG_ERR_LIMIT, "the prompt (%zu image tokens + %zu text tokens) is "
                         "longer than the context of %u tokens", n_img, s->n_text_ids,
                         s->n_ctx);
    }
    for (size_t i = 0; i < n_img; i++) {
        s->prompt[i] = cfg->image_token_index;
    }
    if (s->n_text_ids) {
        memcpy(s->prompt + n_img, s->text_ids, s->n_text_ids * sizeof(int32_t));
    }
    s->n_prompt = n_img + s->n_text_ids;
    return PG_OK;
}

/* Checks the parts (count against the context first, then every id) and stores them as the
 * text ids, then the whole prompt. */
static pg_status store_prompt(pg_session *s, const int32_t *const *parts, const size_t *lens,
                              size_t n_parts)
{
    const pg__config *cfg = &s->model->cfg;
    const size_t n_img = image_tokens(s, s->n_images);
    size_t total = n_img;
    for (size_t p = 0; p < n_parts; p++) {
        /* The length first: a huge count is refused before its ids are read. */
        if (lens[p] > s->n_ctx || total > s->n_ctx - lens[p]) {
            return pg__error(PG_ERR_LIMIT, "the prompt (%zu image tokens + text) is longer "
                             "than the context of %u tokens", n_img, s->n_ctx);
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
    for (size_t p = 0; p < n_parts; p++) {
        if (lens[p]) {
            memcpy(s->text_ids + k, parts[p], lens[p] * sizeof(int32_t));
            k += lens[p];
        }
    }
    s->n_text_ids = k;
    pg_status st = pg__session_compose_prompt(s, s->n_images);
    s->has_prompt = st == PG_OK;
    return st;
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
    pg_status st = pg__session_check_free(s, "pg_session_set_prompt");
    if (st != PG_OK) {
        return st;
    }
    if (!prompt && len) {
        return pg__session_fail(s, pg__error(PG_ERR_INVALID_ARGUMENT,
                                             "pg_session_set_prompt: prompt is NULL"));
    }
    s->has_prompt = false;
    pg__session_clear_decoding(s);
    return pg__session_fail(s, tokenize_prompt(s, prompt ? prompt : "", len));
}

PG_API pg_status pg_session_set_prompt_ids(pg_session *s, const int32_t *ids, size_t n)
{
    if (!s) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_set_prompt_ids: session is NULL");
    }
    pg_status st = pg__session_check_free(s, "pg_session_set_prompt_ids");
    if (st != PG_OK) {
        return st;
    }
    if (!ids && n) {
        return pg__session_fail(s, pg__error(PG_ERR_INVALID_ARGUMENT,
                                             "pg_session_set_prompt_ids: ids is NULL"));
    }
    s->has_prompt = false;
    pg__session_clear_decoding(s);
    const int32_t *parts[1] = { ids };
    return pg__session_fail(s, store_prompt(s, parts, &n, 1));
}
