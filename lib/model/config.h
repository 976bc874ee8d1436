/*
 * model/config: the numbers that define a PaliGemma 2 variant, read from config.json with the
 * Hugging Face defaults for missing keys (spec §1.2, fixtures/models/README.md).
 */
#ifndef PG_MODEL_CONFIG_H
#define PG_MODEL_CONFIG_H

#include "core/core.h"

typedef struct pg__text_config {
    int32_t hidden;           /* D: hidden_size */
    int32_t ffn;              /* intermediate_size */
    int32_t layers;           /* num_hidden_layers */
    int32_t heads;            /* num_attention_heads (default 8) */
    int32_t kv_heads;         /* num_key_value_heads */
    int32_t head_dim;         /* head_dim (default 256) */
    float query_pre_attn_scalar; /* default 256 (Gemma2Config), not head_dim */
    float attn_softcap;       /* attn_logit_softcapping (0 = none) */
    float final_softcap;      /* final_logit_softcapping (0 = none) */
    int32_t sliding_window;   /* default 4096 */
    float rope_theta;         /* default 10000 */
    float rms_eps;            /* default 1e-6 */
    int32_t vocab;            /* vocab_size */
    int32_t max_positions;    /* max_position_embeddings (default 8192) */
} pg__text_config;

typedef struct pg__vision_config {
    int32_t hidden;           /* hidden_size */
    int32_t ffn;              /* intermediate_size */
    int32_t layers;
    int32_t heads;
    int32_t patch;            /* patch_size */
    int32_t image_size;       /* default 224 */
    int32_t n_tokens;         /* (image_size / patch)^2 (num_positions is ignored) */
    float ln_eps;             /* layer_norm_eps (default 1e-6) */
} pg__vision_config;

typedef struct pg__config {
    pg__text_config text;
    pg__vision_config vision;
    int32_t image_token_index; /* 257152 on the hub */
    int32_t bos_id, eos_id, pad_id;
    int32_t projection_dim;    /* == text.hidden */
} pg__config;

/* Parses config.json text (`path` is for messages). Validates every number (positive,
 * divisibility: image_size % patch, heads % kv_heads, hidden % heads for vision, ...). */
pg_status pg__config_parse(pg__config *cfg, const char *json, size_t len, const char *path);

#endif /* PG_MODEL_CONFIG_H */
