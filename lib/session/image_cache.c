/* The session's encoded-image cache: XXH3-128 of an image's preprocessed pixels -> its
 * projector output, so another prompt on the same image skips the vision tower. Slots used
 * by the current images are pinned: a prompt of several images never evicts one of its own
 * (the cache grows past its size for that). */
#include "session/session_internal.h"

#include <stdlib.h>
#include <string.h>

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

void pg__session_cache_unpin(pg_session *s)
{
    for (uint32_t i = 0; s->cache && i < s->n_cache; i++) {
        s->cache[i].pinned = false;
    }
}

int32_t pg__session_cache_lookup(pg_session *s, uint32_t img)
{
    const uint64_t *key = s->pixel_keys[img];
    for (uint32_t i = 0; i < s->n_cache; i++) {
        pg__image_entry *e = &s->cache[i];
        if (e->last_use && e->key[0] == key[0] && e->key[1] == key[1]) {
            e->last_use = ++s->clock;
            e->pinned = true;
            return (int32_t)i;
        }
    }
    return -1;
}

/* An empty slot, else the least recently used unpinned one (emptied), else a new slot. */
static pg_status victim(pg_session *s, uint32_t *out)
{
    int64_t best = -1;
    for (uint32_t i = 0; i < s->n_cache; i++) {
        const pg__image_entry *e = &s->cache[i];
        if (!e->last_use) {
            best = i;
            break;
        }
        if (!e->pinned && (best < 0 || e->last_use < s->cache[best].last_use)) {
            best = i;
        }
    }
    if (best < 0) {
        pg__image_entry *grown = pg__realloc(s->cache, (s->n_cache + 1) * sizeof *grown);
        if (!grown) {
            return pg__error(PG_ERR_OUT_OF_MEMORY, "image cache: out of memory");
        }
        s->cache = grown;
        memset(&s->cache[s->n_cache], 0, sizeof *grown);
        best = s->n_cache++;
    }
    entry_clear(&s->cache[best]);
    *out = (uint32_t)best;
    return PG_OK;
}

pg_status pg__session_cache_insert(pg_session *s, uint32_t img, float *proj, float *vision_out,
                                   int32_t *slot)
{
    uint32_t i = 0;
    pg_status st = victim(s, &i);
    if (st != PG_OK) {
        free(proj);
        free(vision_out);
        return st;
    }
    pg__image_entry *e = &s->cache[i];
    e->key[0] = s->pixel_keys[img][0];
    e->key[1] = s->pixel_keys[img][1];
    e->proj = proj;
    e->vision_out = vision_out;
    e->last_use = ++s->clock;
    e->pinned = true;
    *slot = (int32_t)i;
    return PG_OK;
}
