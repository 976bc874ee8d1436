/*
 * model/loader: the steps of pg_model_load (load.c), one file each:
 *   shards.c   find and map the safetensors files of a model folder (single file or index)
 *   weights.c  map tensor names to the pg__tensor slots of model.h, checking shape and dtype
 *   owned.c    weights that cannot be used in place: quantized (Q8/Q4) or misaligned copies
 *   variant.c  the variant name ("3b-448", "custom")
 * Internal to lib/model.
 */
#ifndef PG_MODEL_LOADER_H
#define PG_MODEL_LOADER_H

#include "model/model.h"

/* Maps model.safetensors, or model.safetensors.index.json and every shard it names, into
 * m->files / m->n_files. Checks that the index and the shard contents agree exactly. */
pg_status pg__model_open_shards(pg_model *m, const char *dir);

/*
 * Fills every pg__tensor of m->vision, m->projector and m->decoder from m->files (layers
 * arrays allocated here). Accepts both key spellings (language_model.model.* and
 * model.language_model.*, ...). Fails on a missing tensor, a wrong shape, an unsupported
 * dtype, a tensor present twice (in any spelling, in any shard) or a tensor the model does
 * not use. With no files (m->n_files == 0, tokenizer-only) only the shapes are filled.
 * Sets m->n_params (elements of the distinct stored tensors).
 */
pg_status pg__model_bind_weights(pg_model *m, const char *dir);

/* Calls fn for every weight slot of the model, decoder.lm_head last (also when it is tied to
 * the embedding: then its data equals decoder.embed's; visitors that count storage must
 * skip it). `matmul` marks the big 2-D matrices used only through matmul (quantization
 * candidates). Stops at the first status other than PG_OK. */
typedef pg_status (*pg__tensor_visit_fn)(void *user, pg__tensor *t, bool matmul);
pg_status pg__model_foreach_tensor(pg_model *m, pg__tensor_visit_fn fn, void *user);

/* Makes the owned copies (m->owned): tensors whose data is misaligned for their dtype, and,
 * for weight_dtype PG_DTYPE_Q8/Q4, the quantized matmul weights, which come from the
 * quantized-weight cache file (m->qcache) when a valid one exists and are saved to one
 * otherwise (unless m->flags has PG_MODEL_NO_QUANT_CACHE; a cache that cannot be written
 * only logs a warning). The mapped bf16 pages of quantized tensors are released. Sets
 * m->weight_dtype and m->weight_bytes. progress(user, f) with f in [0,1]; non-zero return
 * cancels. */
pg_status pg__model_make_owned(pg_model *m, int32_t weight_dtype, int32_t n_threads,
                               pg_progress_fn progress, void *progress_user);

/* Bytes of a slot's data as stored (plain or quantized). */
size_t pg__model_tensor_bytes(const pg__tensor *t);

/* "3b-224" ... "28b-896" for the released sizes (text width 2304/3584/4608 and image size
 * 224/448/896), else "custom". */
void pg__model_variant(const pg__config *cfg, char *buf, size_t cap);

#endif /* PG_MODEL_LOADER_H */
