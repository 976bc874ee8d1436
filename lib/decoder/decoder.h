/*
 * decoder: the Gemma 2 language model of PaliGemma 2 (spec §5-§7): input assembly (token
 * embeddings with image features merged in, scaled by sqrt(D)), the decoder layers with the
 * prefix-LM + sliding-window mask, the final norm and the soft-capped, tied output head.
 * All arithmetic goes through the model's backend ops.
 */
#ifndef PG_DECODER_H
#define PG_DECODER_H

#include "decoder/kv_cache.h"
#include "model/model.h"

#include <stdatomic.h>

/*
 * Decoder input rows for ids[n] (Hugging Face semantics, fixtures README items 4-5): token
 * embeddings; when `proj` is given, the rows whose id is the image token are replaced in order
 * by proj rows scaled by 1/sqrt(D) (n_proj must equal their count); then every row is
 * multiplied by float32(sqrt(D)). Ids must be in [0, vocab). x: [n][D].
 */
pg_status pg__decoder_embed(const pg_model *m, const int32_t *ids, int64_t n,
                            const float *proj, int64_t n_proj, float *x);

/* The same for several images: n_images feature blocks of rows_per_image rows each (proj[i]
 * is image i's [rows_per_image][D] projector output), merged into the image-token rows in
 * order. n_images 0: no image features. */
pg_status pg__decoder_embed_images(const pg_model *m, const int32_t *ids, int64_t n,
                                   const float *const *proj, int64_t n_images,
                                   int64_t rows_per_image, float *x);

/* Optional per-stage outputs of pg__decoder_forward (golden tests, debugging). */
typedef struct pg__decoder_trace {
    float *layer_out;  /* NULL or [layers][n][D]: residual stream after each layer */
    float *final_norm; /* NULL or [n][D]: the final RMSNorm output */
} pg__decoder_trace;

/*
 * Runs rows x[n][D] (overwritten: it becomes the residual stream) at sequence indices
 * start .. start+n-1 through every layer, storing their keys and values in `kv`. RoPE
 * positions are 1-based (index + 1) like transformers. Keys below prefix_len form the
 * bidirectional prompt block; later keys are causal; even layers apply the sliding window.
 * logits: NULL, or [n_logits][vocab] for the last n_logits rows (soft-capped).
 * interrupt: NULL or a flag checked between layers (PG_ERR_CANCELLED when set).
 */
pg_status pg__decoder_forward(const pg_model *m, pg__kv_cache *kv, float *x, int64_t n,
                              int64_t start, int64_t prefix_len, float *logits,
                              int64_t n_logits, const pg__decoder_trace *trace,
                              atomic_int *interrupt);

/*
 * The same computation in pieces, for sessions that advance together (lib/session/batch.c)
 * and prefills cut into layers. The rows of x are the concatenation of the sequences' rows:
 * sequence i contributes seqs[i].n rows at its indices start .. start+n-1, with its own KV
 * cache and prompt length. Every row goes through the same ops as in pg__decoder_forward,
 * so a sequence's results depend only on its own rows wherever the backend's matmul is
 * row-exact (backend.h).
 */
typedef struct pg__decoder_seq {
    pg__kv_cache *kv;
    int64_t start;
    int64_t n;
    int64_t prefix_len;
} pg__decoder_seq;

/* Activations for up to max_rows rows (reused across calls; grown on demand). */
typedef struct pg__decoder_scratch pg__decoder_scratch;
pg_status pg__decoder_scratch_new(pg__decoder_scratch **out, const pg_model *m,
                                  int64_t max_rows);
void pg__decoder_scratch_free(pg__decoder_scratch *s);

/* Runs layers [l0, l1) over x (rows of every sequence; checked against their caches).
 * trace->layer_out, if given, receives the rows after each layer at [layer][row][D]. */
pg_status pg__decoder_layers(const pg_model *m, const pg__decoder_seq *seqs, int32_t n_seqs,
                             float *x, int32_t l0, int32_t l1, pg__decoder_scratch *scratch,
                             const pg__decoder_trace *trace, atomic_int *interrupt);

/* The final norm and the soft-capped head for the last n_logits of the n rows of x (after
 * every layer): logits [n_logits][vocab]. */
pg_status pg__decoder_head(const pg_model *m, const float *x, int64_t n, float *logits,
                           int64_t n_logits, pg__decoder_scratch *scratch);

#endif /* PG_DECODER_H */
