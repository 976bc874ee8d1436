/*
 * model: a loaded PaliGemma 2 checkpoint: config, memory-mapped weights grouped into the
 * three modules (vision tower, projector, decoder), tokenizer and compute backend.
 *
 * A pg_model is immutable after pg_model_load returns; sessions hold references
 * (refcount) so the model and its sessions can be freed in any order.
 * The loader (model/load.c) fills every pg__tensor below from the safetensors shards
 * (io/safetensors.h) and checks names, shapes and dtypes; the modules (vision/,
 * projector/, decoder/) only read these structs.
 */
#ifndef PG_MODEL_H
#define PG_MODEL_H

#include "backend/backend.h"
#include "model/config.h"

#include <stdatomic.h>

struct pg__st_file;        /* io/safetensors.h */
struct pg_tokenizer;       /* tokenizer/tokenizer.h */
struct pg__qcache;         /* backend/quant/quant_cache.h */

typedef struct pg__vision_layer {
    pg__tensor ln1_w, ln1_b;
    pg__tensor q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;
    pg__tensor ln2_w, ln2_b;
    pg__tensor fc1_w, fc1_b, fc2_w, fc2_b;
} pg__vision_layer;

typedef struct pg__vision_weights {
    pg__tensor patch_w;    /* [hidden, 3, patch, patch] viewed as [hidden][3*patch*patch] */
    pg__tensor patch_b;    /* [hidden] */
    pg__tensor pos;        /* [n_tokens, hidden] */
    pg__vision_layer *layers; /* vision.layers entries */
    pg__tensor post_ln_w, post_ln_b;
} pg__vision_weights;

typedef struct pg__projector_weights {
    pg__tensor w;          /* [text.hidden, vision.hidden] */
    pg__tensor b;          /* [text.hidden] */
} pg__projector_weights;

typedef struct pg__decoder_layer {
    pg__tensor in_norm;    /* input_layernorm */
    pg__tensor q_w, k_w, v_w, o_w;
    pg__tensor post_attn_norm;
    pg__tensor pre_ff_norm;
    pg__tensor gate_w, up_w, down_w;
    pg__tensor post_ff_norm;
} pg__decoder_layer;

typedef struct pg__decoder_weights {
    pg__tensor embed;      /* [vocab, hidden]; also the tied output head */
    pg__tensor lm_head;    /* == embed unless the checkpoint stores a separate lm_head */
    pg__decoder_layer *layers;
    pg__tensor final_norm;
} pg__decoder_weights;

struct pg_model {
    atomic_int refcount;       /* the caller's reference + one per session */
    pg__config cfg;
    pg__vision_weights vision;
    pg__projector_weights projector;
    pg__decoder_weights decoder;
    struct pg__st_file **files; /* mapped shards */
    size_t n_files;
    void *owned;               /* converted/quantized weight storage, if any */
    size_t owned_size;
    struct pg__qcache *qcache; /* mapped quantized-weight cache the Q8/Q4 slots point into */
    struct pg_tokenizer *tokenizer; /* may be NULL */
    pg__backend *backend;
    pg__logger logger;
    uint32_t flags;            /* PG_MODEL_* */
    int32_t weight_dtype;      /* PG_DTYPE_* of the bulk weights as used */
    uint64_t n_params, weight_bytes;
    char *path;
    char variant[32];
};

/* Adds / drops a reference (the last drop frees everything). */
void pg__model_ref(pg_model *m);
void pg__model_unref(pg_model *m);

#endif /* PG_MODEL_H */
