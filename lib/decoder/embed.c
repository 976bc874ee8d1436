/* Decoder input assembly: token embeddings, merged image features, the sqrt(D) scale. */
#include "decoder/decoder.h"

#include <math.h>
#include <string.h>

pg_status pg__decoder_embed_images(const pg_model *m, const int32_t *ids, int64_t n,
                                   const float *const *proj, int64_t n_images,
                                   int64_t rows_per_image, float *x)
{
    pg__backend *be = m->backend;
    const int64_t d = m->cfg.text.hidden;
    const int32_t image_id = m->cfg.image_token_index;
    const int64_t n_proj = n_images * rows_per_image;
    /* transformers: image_features = proj / hidden**0.5, later every row * normalizer where
     * normalizer = tensor(hidden**0.5, dtype=float32). */
    const float inv_sqrt_d = (float)(1.0 / sqrt((double)d));
    const float sqrt_d = (float)sqrt((double)d);
    int64_t used = 0;
    pg_status st = PG_OK;

    if (n_images > 0 && (!proj || rows_per_image <= 0)) {
        return pg__error(PG_ERR_INTERNAL, "decoder: image features without rows");
    }
    for (int64_t r = 0; r < n && st == PG_OK; r++) {
        float *row = x + r * d;
        if (ids[r] < 0 || ids[r] >= m->cfg.text.vocab) {
            return pg__error(PG_ERR_INVALID_ARGUMENT, "token id %d is outside the vocabulary "
                             "(0..%d)", (int)ids[r], (int)m->cfg.text.vocab - 1);
        }
        if (n_images > 0 && ids[r] == image_id) {
            if (used >= n_proj) {
                return pg__error(PG_ERR_INVALID_ARGUMENT, "more image tokens than the %lld "
                                 "image features", (long long)n_proj);
            }
            /* the images' features in order, as transformers flattens them */
            const float *feat = proj[used / rows_per_image] + (used % rows_per_image) * d;
            st = be->ops->scale(be, row, feat, inv_sqrt_d, (size_t)d);
            used++;
        } else {
            st = be->ops->get_rows(be, row, &m->decoder.embed, &ids[r], 1);
        }
    }
    if (st != PG_OK) {
        return st;
    }
    if (n_images > 0 && used != n_proj) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "prompt has %lld image tokens, the images "
                         "give %lld features", (long long)used, (long long)n_proj);
    }
    return be->ops->scale(be, x, x, sqrt_d, (size_t)(n * d));
}

pg_status pg__decoder_embed(const pg_model *m, const int32_t *ids, int64_t n,
                            const float *proj, int64_t n_proj, float *x)
{
    const float *const list[1] = { proj };
    return pg__decoder_embed_images(m, ids, n, list, proj ? 1 : 0, n_proj, x);
}
