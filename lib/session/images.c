/* The session's images: preprocessing into model input and the pixel hashes that key the
 * encoded-image cache (pg_session_set_image, pg_session_set_images). */
#include "session/session_internal.h"

#include "image/image.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <stdlib.h>
#include <string.h>

pg_status pg__session_images_reserve(pg_session *s, uint32_t n)
{
    if (n <= s->cap_images) {
        return PG_OK;
    }
    size_t floats;
    if (!pg__mul_size(s->n_pixels, n, &floats)) {
        return pg__error(PG_ERR_LIMIT, "%u images are too many", n);
    }
    float *px = pg__realloc(s->pixels, floats * sizeof(float));
    if (!px) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "session: no memory for %u images", n);
    }
    s->pixels = px;
    uint64_t(*keys)[2] = pg__realloc(s->pixel_keys, n * sizeof *keys);
    if (!keys) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "session: no memory for %u images", n);
    }
    s->pixel_keys = keys;
    int32_t *slots = pg__realloc(s->slots, n * sizeof *slots);
    if (!slots) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "session: no memory for %u images", n);
    }
    s->slots = slots;
    s->cap_images = n;
    return PG_OK;
}

static void hash_pixels(pg_session *s, uint32_t i)
{
    const float *px = s->pixels + (size_t)i * s->n_pixels;
    XXH128_hash_t h = XXH3_128bits(px, s->n_pixels * sizeof(float));
    s->pixel_keys[i][0] = h.low64;
    s->pixel_keys[i][1] = h.high64;
}

static pg_status check_images(const pg_image *const *images, size_t n)
{
    if (!images || n == 0) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "no images (NULL or none)");
    }
    if (n > PG__MAX_IMAGES) {
        return pg__error(PG_ERR_LIMIT, "%zu images are over the limit of %u per prompt", n,
                         PG__MAX_IMAGES);
    }
    for (size_t i = 0; i < n; i++) {
        if (!images[i] || !images[i]->rgb || images[i]->width == 0 || images[i]->height == 0) {
            return pg__error(PG_ERR_INVALID_ARGUMENT, "image %zu is NULL or empty", i);
        }
    }
    return PG_OK;
}

static pg_status set_images(pg_session *s, const pg_image *const *images, size_t n)
{
    const double t0 = pg__now_ms();
    pg_status st = check_images(images, n);
    if (st != PG_OK) {
        return st;
    }
    s->has_image = false;
    s->n_images = 0;
    s->encoded = false;
    pg__session_cache_unpin(s);
    pg__session_clear_decoding(s);
    /* The prompt's image tokens follow the image count; a prompt that no longer fits is
     * refused now, not at the prefill. */
    if (s->has_prompt) {
        st = pg__session_compose_prompt(s, (uint32_t)n);
        if (st != PG_OK) {
            s->has_prompt = false;
            return st;
        }
    }
    st = pg__session_images_reserve(s, (uint32_t)n);
    for (size_t i = 0; i < n && st == PG_OK; i++) {
        st = pg__image_preprocess(images[i], (uint32_t)s->model->cfg.vision.image_size,
                                  s->resize_method, s->pixels + i * s->n_pixels);
        if (st == PG_OK) {
            hash_pixels(s, (uint32_t)i);
            s->slots[i] = -1;
        }
    }
    if (st != PG_OK) {
        return st;
    }
    s->n_images = (uint32_t)n;
    s->has_image = true;
    s->timings.preprocess_ms = pg__now_ms() - t0;
    return PG_OK;
}

PG_API pg_status pg_session_set_images(pg_session *s, const pg_image *const *images, size_t n)
{
    if (!s) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_set_images: session is NULL");
    }
    pg_status st = pg__session_check_free(s, "pg_session_set_images");
    if (st != PG_OK) {
        return st;
    }
    return pg__session_fail(s, set_images(s, images, n));
}

PG_API pg_status pg_session_set_image(pg_session *s, const pg_image *image)
{
    if (!s) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_session_set_image: session is NULL");
    }
    pg_status st = pg__session_check_free(s, "pg_session_set_image");
    if (st != PG_OK) {
        return st;
    }
    if (!image || !image->rgb || image->width == 0 || image->height == 0) {
        return pg__session_fail(s, pg__error(PG_ERR_INVALID_ARGUMENT,
                                             "pg_session_set_image: no image (NULL or empty)"));
    }
    const pg_image *const list[1] = { image };
    return pg__session_fail(s, set_images(s, list, 1));
}
