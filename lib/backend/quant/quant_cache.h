/*
 * backend/quant/quant_cache: a file holding the quantized (Q8/Q4) copies of a model's matmul
 * weights, so that the next load maps it (mmap) instead of quantizing gigabytes again.
 *
 * The file names the checkpoint it was made from by a key: xxHash of every source shard's
 * file name, size, modification time and safetensors header bytes, plus the target type
 * and the block-layout version. A cache whose key differs (the checkpoint was replaced,
 * touched or re-downloaded; another quantization; an older layout) is stale and is
 * rebuilt. The format is in docs/quantization.md; everything read from the file is
 * validated (sizes, offsets, index checksum) before use. The tensor bytes themselves are
 * not checksummed on open (that would read the whole file, which mapping is meant to
 * avoid): like the safetensors shards they are trusted once the header checks pass.
 *
 * Loader use (model/load.c), one call:
 *
 *     pg__qcache *qc = NULL;
 *     st = pg__qcache_load_or_build(&qc, dir, shard_paths, n_shards, PG__Q8,
 *                                   matmul_tensors, n, build_fn, build_user, flags);
 *
 * `matmul_tensors` are the slots to quantize (still pointing at the bf16/f32 source). When
 * a valid cache holds all of them, each slot is pointed into the mapping (dtype Q8/Q4) and
 * *qc holds the mapping (pg__qcache_close it when the model is freed). Otherwise
 * build_fn(build_user) quantizes them in memory as today (setting dtype and data of each
 * slot), and the cache file is then written from the slots (best effort: a read-only
 * folder is not an error), *qc = NULL.
 */
#ifndef PG_BACKEND_QUANT_CACHE_H
#define PG_BACKEND_QUANT_CACHE_H

#include "backend/backend.h"

typedef struct pg__qcache pg__qcache;

/* Flags of pg__qcache_load_or_build. */
enum {
    PG__QCACHE_NO_READ = 1u << 0,  /* ignore an existing cache */
    PG__QCACHE_NO_WRITE = 1u << 1, /* do not write one */
    PG__QCACHE_NO_FALLBACK = 1u << 2 /* only next to the model, never in the user cache */
};

/* The key of a checkpoint made of `n` shard files for target type dt (PG__Q8 / PG__Q4). */
pg_status pg__qcache_key(const char *const *shard_paths, size_t n, pg__dtype dt,
                         uint64_t *key);

/*
 * Where the cache lives: next to the model ("<dir>/model.q8.pgcache"), or, for a model
 * folder one cannot write, in the user's cache ("$XDG_CACHE_HOME/paligemma/<key>.q8.pgcache",
 * else "$HOME/.cache/paligemma/..."). Returns a new string (free()), NULL on no memory or
 * when the fallback has no home.
 */
char *pg__qcache_path(const char *model_dir, pg__dtype dt, uint64_t key, bool fallback);

/* Maps `path` if it is a valid cache for (key, dt). PG_ERR_NOT_FOUND when there is none,
 * PG_ERR_FORMAT when it is stale or damaged, PG_ERR_IO / _OUT_OF_MEMORY otherwise. */
pg_status pg__qcache_open(pg__qcache **out, const char *path, uint64_t key, pg__dtype dt);
/* The data of tensor `name` if the cache holds it with this shape, else NULL. */
const void *pg__qcache_find(const pg__qcache *c, const char *name, int64_t rows,
                            int64_t cols);
/* Bytes mapped. */
size_t pg__qcache_size(const pg__qcache *c);
/* Unmaps (NULL is fine). */
void pg__qcache_close(pg__qcache *c);

/* Writes the quantized tensors (all of type dt, each with a distinct name) to `path`,
 * atomically: a temporary file in the same folder, synced, then renamed over `path`. */
pg_status pg__qcache_write(const char *path, uint64_t key, pg__dtype dt,
                           const pg__tensor *const *tensors, size_t n);

/* See the comment at the top. On PG_OK *out may be NULL (built, not mapped). */
pg_status pg__qcache_load_or_build(pg__qcache **out, const char *model_dir,
                                   const char *const *shard_paths, size_t n_shards,
                                   pg__dtype dt, pg__tensor *const *tensors, size_t n,
                                   pg_status (*build)(void *user), void *user,
                                   uint32_t flags);

#endif
