/* The session's image-encoding cache: XXH3-128 of the preprocessed pixels -> projector
 * output, so a second prompt on the same image skips the vision tower. */
#include "session/session_internal.h"

#include "projector/projector.h"
#include "vision/vision.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <stdlib.h>
#include <string.h>

void pg__session_hash_pixels(pg_session *s)
{
    XXH128_hash_t h = XXH3_128bits(s->pixels, s->n_pixels * sizeof(float));
    s->pixel_key[0] = h.low64;
    s->pixel_key[1] = h.high64;
}

static void entry_clear(pg__image_entry *e)
{
    free(e->proj);
    free(e->vision_out);
    memset(e, 0, sizeof *e);
}

void pg__session_cache_free(pg_session *s)
{
    for (uint32_t i = 0; s->cache && i < s->n_cache; i++) {
        entry_clear(&s->cache[i]);
    }
    free(s->cache);
    s->cache = NULL;
}

static pg__image_entry *cache_find(pg_session *s)
{
    for (uint32_t i = 0; i < s->n_cache; i++) {
        pg__image_entry *e = &s->cache[i];
        if (e->last_use && e->key[0] == s->pixel_key[0] && e->key[1] == s->pixel_key[1]) {
            return e;
        }
    }
    return NULL;
}

/* The empty slot, or the least recently used one (emptied). */
static pg__image_entry *cache_victim(pg_session *s)
{
    pg__image_entry *v = &s->cache[0];
    for (uint32_t i = 1; i < s->n_cache && v->last_use; i++) {
        if (s->cache[i].last_use < v->last_use) {
            v = &s->cache[i];
        }
    }
    entry_clear(v);
    return v;
}

/* Vision tower + projector into a fresh cache entry. */
static pg_status encode(pg_session *s, pg__image_entry **out)
{
    const pg_model *m = s->model;
    const size_t n = (size_t)m->cfg.vision.n_tokens;
    float *vision_out = pg__malloc_array(n * (size_t)m->cfg.vision.hidden, sizeof(float));
    float *proj = pg__malloc_array(n * (size_t)m->cfg.text.hidden, sizeof(float));
    pg_status st = PG_ERR_OUT_OF_MEMORY;
    if (vision_out && proj) {
        st = pg__vision_forward(m, s->pixels, vision_out, NULL, &s->interrupt);
    }
    if (st == PG_OK) {
        st = pg__projector_forward(m, vision_out, (int64_t)n, proj);
    }
    if (st != PG_OK) {
        free(vision_out);
        free(proj);
        return st;
    }
    s->n_encodes++;
    pg__image_entry *e = cache_victim(s);
    e->key[0] = s->pixel_key[0];
    e->key[1] = s->pixel_key[1];
    e->proj = proj;
    if (s->flags & PG_SESSION_KEEP_TENSORS) {
        e->vision_out = vision_out;
    } else {
        free(vision_out);
    }
    *out = e;
    return PG_OK;
}

pg_status pg__session_encode_image(pg_session *s)
{
    const double t0 = pg__now_ms();
    pg__image_entry *e = cache_find(s);
    s->timings.image_cache_hit = e != NULL;
    if (!e) {
        pg_status st = encode(s, &e);
        if (st != PG_OK) {
            return st;
        }
    }
    e->last_use = ++s->clock;
    s->encoded = e;
    s->timings.vision_ms = s->timings.image_cache_hit ? 0.0 : pg__now_ms() - t0;
    return PG_OK;
}
