/*
 * st_write: writes a random-weight PaliGemma 2 checkpoint folder in the exact Hugging Face
 * hub layout (config.json, model.safetensors.index.json, two bf16 shards named
 * model-0000k-of-00002.safetensors, hub tensor names), for benchmarks that need full-size
 * tensors without downloading weights. Used by `pg bench` and the load-time benchmark.
 */
#ifndef PG_ST_WRITE_H
#define PG_ST_WRITE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Writes the checkpoint into the existing folder `dir`.
 *  variant            "3b-224", "3b-448", "3b-896", "10b-224" ... "28b-896"
 *  n_layers_override  0 = the variant's real layer counts; n > 0 = n decoder layers and
 *                     min(n, 27) vision layers (every tensor keeps its full shape)
 *  seed               the values are a deterministic function of (seed, tensor name)
 * Values: matrices and embeddings normal * 0.02, biases normal * 0.002, Gemma RMSNorm
 * weights (stored as offsets from 1) normal * 0.02, SigLIP LayerNorm weights 1 + normal * 0.02.
 * Each shard is synced and dropped from the page cache after writing.
 * Returns 0 on success, -1 with a message on stderr otherwise.
 */
int pg_write_random_checkpoint(const char *dir, const char *variant, int n_layers_override,
                               uint64_t seed);

#ifdef __cplusplus
}
#endif

#endif /* PG_ST_WRITE_H */
