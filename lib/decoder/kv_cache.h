/*
 * decoder/kv_cache: the per-session key/value cache of the Gemma 2 decoder (spec §8.3).
 * Per layer, K and V are [n_ctx][kv_heads * head_dim] (keys after RoPE), of type F32, F16 or
 * BF16. The cache holds every position (no ring buffer): the sliding window is applied by
 * the attention mask, which gives the same result as Hugging Face's HybridCache.
 */
#ifndef PG_DECODER_KV_CACHE_H
#define PG_DECODER_KV_CACHE_H

#include "backend/backend.h"
#include "model/config.h"

typedef struct pg__kv_cache {
    pg__dtype dtype;
    int32_t n_layers;
    int64_t n_ctx;        /* capacity in tokens */
    int64_t row;          /* elements per token and layer: kv_heads * head_dim */
    size_t elem;          /* bytes per element */
    unsigned char *k, *v; /* [n_layers][n_ctx][row] */
} pg__kv_cache;

/* Allocates a cache for n_ctx tokens; dt is F32, F16 or BF16. */
pg_status pg__kv_cache_init(pg__kv_cache *c, const pg__text_config *tc, int64_t n_ctx,
                            pg__dtype dt);
void pg__kv_cache_free(pg__kv_cache *c);

/* Base of layer `layer`'s keys / values (row 0). */
const void *pg__kv_cache_k(const pg__kv_cache *c, int32_t layer);
const void *pg__kv_cache_v(const pg__kv_cache *c, int32_t layer);

/* Stores rows [start, start+n) of one layer from float32 k, v ([n][row] each). */
pg_status pg__kv_cache_write(pg__backend *be, pg__kv_cache *c, int32_t layer, int64_t start,
                             int64_t n, const float *k, const float *v);

#endif /* PG_DECODER_KV_CACHE_H */
