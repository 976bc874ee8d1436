/* The decoder's key/value cache: allocation, bounds checks and typed row writes. */
#include "decoder/kv_cache.h"

#include <stdlib.h>
#include <string.h>

pg_status pg__kv_cache_init(pg__kv_cache *c, const pg__text_config *tc, int64_t n_ctx,
                            pg__dtype dt)
{
    size_t per_layer, total;
    memset(c, 0, sizeof *c);
    if (dt != PG__F32 && dt != PG__F16 && dt != PG__BF16) {
        return pg__error(PG_ERR_UNSUPPORTED, "KV cache dtype %s is not supported",
                         pg__dtype_name(dt));
    }
    if (n_ctx <= 0 || tc->layers <= 0 || tc->kv_heads <= 0 || tc->head_dim <= 0) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "KV cache: bad size (n_ctx %lld)",
                         (long long)n_ctx);
    }
    c->dtype = dt;
    c->n_layers = tc->layers;
    c->n_ctx = n_ctx;
    c->row = (int64_t)tc->kv_heads * tc->head_dim;
    c->elem = pg__dtype_size(dt);
    if (!pg__mul_size((size_t)n_ctx, (size_t)c->row, &per_layer) ||
        !pg__mul_size(per_layer, c->elem, &per_layer) ||
        !pg__mul_size(per_layer, (size_t)tc->layers, &total)) {
        return pg__error(PG_ERR_LIMIT, "KV cache for %lld tokens is too large",
                         (long long)n_ctx);
    }
    c->k = pg__malloc(total);
    c->v = pg__malloc(total);
    if (!c->k || !c->v) {
        pg__kv_cache_free(c);
        return pg__error(PG_ERR_OUT_OF_MEMORY, "KV cache: cannot allocate 2 x %zu bytes",
                         total);
    }
    return PG_OK;
}

void pg__kv_cache_free(pg__kv_cache *c)
{
    free(c->k);
    free(c->v);
    c->k = c->v = NULL;
}

static size_t layer_offset(const pg__kv_cache *c, int32_t layer)
{
    return (size_t)layer * (size_t)c->n_ctx * (size_t)c->row * c->elem;
}

const void *pg__kv_cache_k(const pg__kv_cache *c, int32_t layer)
{
    return c->k + layer_offset(c, layer);
}

const void *pg__kv_cache_v(const pg__kv_cache *c, int32_t layer)
{
    return c->v + layer_offset(c, layer);
}

pg_status pg__kv_cache_write(pg__backend *be, pg__kv_cache *c, int32_t layer, int64_t start,
                             int64_t n, const float *k, const float *v)
{
    if (layer < 0 || layer >= c->n_layers || start < 0 || n < 0 || start > c->n_ctx - n) {
        return pg__error(PG_ERR_LIMIT, "KV cache: rows %lld..%lld exceed its %lld tokens",
                         (long long)start, (long long)(start + n), (long long)c->n_ctx);
    }
    const size_t off = layer_offset(c, layer) + (size_t)start * (size_t)c->row * c->elem;
    const size_t count = (size_t)n * (size_t)c->row;
    pg_status st = be->ops->convert(be, c->k + off, c->dtype, k, count);
    if (st == PG_OK) {
        st = be->ops->convert(be, c->v + off, c->dtype, v, count);
    }
    return st;
}
