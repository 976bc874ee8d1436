/*
 * config.json -> pg__config (spec §1.2, fixtures/models/README.md).
 *
 * Policy for missing keys: the keys a hub config always writes (the sizes that define a
 * variant) are required; the keys the hub omits get the Hugging Face defaults
 * (Gemma2Config, SiglipVisionConfig, PaliGemmaConfig of transformers 4.47). Keys that
 * transformers ignores (top-level hidden_size, vision_config.num_positions, ...) are
 * ignored here too. Every number is range-checked so that the tensor sizes derived from it
 * cannot overflow.
 */
#include "model/config.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

/* Generous upper bounds: far above every released variant, low enough that products of a
 * few of them stay well inside int64. */
#define MAX_WIDTH (1 << 16)   /* hidden sizes, FFN widths, head dims */
#define MAX_LAYERS 1024
#define MAX_HEADS 1024
#define MAX_VOCAB (1 << 22)
#define MAX_IMAGE 8192
#define MAX_POSITIONS (1 << 24)

typedef struct reader {
    const char *path;
    const char *section; /* "" for the top level, else "text_config." / "vision_config." */
    const json_t *obj;
} reader;

/* An integer key in [lo, hi]; `def` (when has_def) if the key is absent or null. */
static pg_status get_int(const reader *r, const char *key, bool has_def, int64_t def, int64_t lo,
                         int64_t hi, int32_t *out)
{
    const json_t *v = json_object_get(r->obj, key);
    int64_t x;
    if (!v || json_is_null(v)) {
        if (!has_def) {
            return pg__error(PG_ERR_FORMAT, "%s: required key %s%s is missing", r->path,
                             r->section, key);
        }
        x = def;
    } else if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 1e15) {
        x = (int64_t)json_real_value(v); /* 16.0 written by some tools */
    } else {
        return pg__error(PG_ERR_FORMAT, "%s: %s%s must be an integer", r->path, r->section, key);
    }
    if (x < lo || x > hi) {
        return pg__error(PG_ERR_FORMAT, "%s: %s%s = %lld is out of range [%lld, %lld]", r->path,
                         r->section, key, (long long)x, (long long)lo, (long long)hi);
    }
    *out = (int32_t)x;
    return PG_OK;
}

/* A number key; absent -> def; JSON null -> null_value (e.g. "no soft-cap" = 0). */
static pg_status get_float(const reader *r, const char *key, double def, double null_value,
                           double lo, double hi, float *out)
{
    const json_t *v = json_object_get(r->obj, key);
    double x;
    if (!v) {
        x = def;
    } else if (json_is_null(v)) {
        x = null_value;
    } else if (json_is_number(v)) {
        x = json_number_value(v);
    } else {
        return pg__error(PG_ERR_FORMAT, "%s: %s%s must be a number", r->path, r->section, key);
    }
    if (!(x >= lo && x <= hi)) {
        return pg__error(PG_ERR_FORMAT, "%s: %s%s = %g is out of range [%g, %g]", r->path,
                         r->section, key, x, lo, hi);
    }
    *out = (float)x;
    return PG_OK;
}

/* An optional string key that, when present, must be one of `allowed` (NULL-terminated). */
static pg_status check_string(const reader *r, const char *key, const char *const *allowed,
                              pg_status bad_status)
{
    const json_t *v = json_object_get(r->obj, key);
    if (!v || json_is_null(v)) {
        return PG_OK;
    }
    if (!json_is_string(v)) {
        return pg__error(PG_ERR_FORMAT, "%s: %s%s must be a string", r->path, r->section, key);
    }
    for (size_t i = 0; allowed[i]; i++) {
        if (strcmp(json_string_value(v), allowed[i]) == 0) {
            return PG_OK;
        }
    }
    return pg__error(bad_status, "%s: %s%s = \"%s\" is not supported (expected \"%s\")",
                     r->path, r->section, key, json_string_value(v), allowed[0]);
}

/* A special-token id: an integer, or a list whose first entry is used (eos in text_config is
 * [1, 107]); absent -> def. */
static pg_status get_token_id(const reader *r, const char *key, int32_t def, int32_t *out)
{
    const json_t *v = json_object_get(r->obj, key);
    if (json_is_array(v) && json_array_size(v) > 0) {
        v = json_array_get(v, 0);
    }
    if (!v || json_is_null(v)) {
        *out = def;
        return PG_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) >= MAX_VOCAB) {
        return pg__error(PG_ERR_FORMAT, "%s: %s%s is not a valid token id", r->path, r->section,
                         key);
    }
    *out = (int32_t)json_integer_value(v);
    return PG_OK;
}


static pg_status parse_text(pg__text_config *t, const reader *r)
{
    static const char *const gemma2[] = { "gemma2", NULL };
    static const char *const gelu[] = { "gelu_pytorch_tanh", NULL };
    const json_t *mt = json_object_get(r->obj, "model_type");
    if (!json_is_string(mt)) {
        /* transformers falls back to "gemma" (PaliGemma 1) when the key is missing. */
        return pg__error(PG_ERR_UNSUPPORTED,
                         "%s: text_config.model_type is missing (PaliGemma 1 / gemma); only "
                         "PaliGemma 2 (gemma2) is supported",
                         r->path);
    }
    PG__TRY(check_string(r, "model_type", gemma2, PG_ERR_UNSUPPORTED));
    PG__TRY(check_string(r, "hidden_activation", gelu, PG_ERR_UNSUPPORTED));
    const json_t *rs = json_object_get(r->obj, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        return pg__error(PG_ERR_UNSUPPORTED, "%s: text_config.rope_scaling is not supported",
                         r->path);
    }
    if (json_is_true(json_object_get(r->obj, "attention_bias"))) {
        return pg__error(PG_ERR_UNSUPPORTED, "%s: text_config.attention_bias = true is not "
                         "supported (Gemma 2 has no biases)", r->path);
    }
    PG__TRY(get_int(r, "hidden_size", false, 0, 1, MAX_WIDTH, &t->hidden));
    PG__TRY(get_int(r, "intermediate_size", false, 0, 1, MAX_WIDTH * 16, &t->ffn));
    PG__TRY(get_int(r, "num_hidden_layers", false, 0, 1, MAX_LAYERS, &t->layers));
    PG__TRY(get_int(r, "num_attention_heads", true, 8, 1, MAX_HEADS, &t->heads));
    PG__TRY(get_int(r, "num_key_value_heads", false, 0, 1, MAX_HEADS, &t->kv_heads));
    PG__TRY(get_int(r, "head_dim", true, 256, 2, 4096, &t->head_dim));
    PG__TRY(get_float(r, "query_pre_attn_scalar", 256.0, 256.0, 1e-6, 1e9,
                  &t->query_pre_attn_scalar));
    PG__TRY(get_float(r, "attn_logit_softcapping", 50.0, 0.0, 0.0, 1e9, &t->attn_softcap));
    PG__TRY(get_float(r, "final_logit_softcapping", 30.0, 0.0, 0.0, 1e9, &t->final_softcap));
    PG__TRY(get_int(r, "sliding_window", true, 4096, 0, MAX_POSITIONS, &t->sliding_window));
    PG__TRY(get_float(r, "rope_theta", 10000.0, 10000.0, 1.0, 1e12, &t->rope_theta));
    PG__TRY(get_float(r, "rms_norm_eps", 1e-6, 1e-6, 1e-30, 1.0, &t->rms_eps));
    PG__TRY(get_int(r, "vocab_size", false, 0, 1, MAX_VOCAB, &t->vocab));
    PG__TRY(get_int(r, "max_position_embeddings", true, 8192, 1, MAX_POSITIONS,
                &t->max_positions));
    if (t->heads % t->kv_heads != 0) {
        return pg__error(PG_ERR_FORMAT,
                         "%s: text_config.num_attention_heads (%d) is not a multiple of "
                         "num_key_value_heads (%d)",
                         r->path, t->heads, t->kv_heads);
    }
    if (t->head_dim % 2 != 0) {
        return pg__error(PG_ERR_FORMAT, "%s: text_config.head_dim (%d) must be even for RoPE",
                         r->path, t->head_dim);
    }
    if ((int64_t)t->heads * t->head_dim > MAX_WIDTH) {
        return pg__error(PG_ERR_FORMAT, "%s: text_config: heads x head_dim is too large",
                         r->path);
    }
    return PG_OK;
}

static pg_status parse_vision(pg__vision_config *v, const reader *r)
{
    static const char *const siglip[] = { "siglip_vision_model", NULL };
    static const char *const gelu[] = { "gelu_pytorch_tanh", NULL };
    PG__TRY(check_string(r, "model_type", siglip, PG_ERR_UNSUPPORTED));
    PG__TRY(check_string(r, "hidden_act", gelu, PG_ERR_UNSUPPORTED));
    if (json_is_true(json_object_get(r->obj, "vision_use_head"))) {
        return pg__error(PG_ERR_UNSUPPORTED, "%s: vision_config.vision_use_head = true is not "
                         "supported (PaliGemma has no pooling head)", r->path);
    }
    PG__TRY(get_int(r, "hidden_size", false, 0, 1, MAX_WIDTH, &v->hidden));
    PG__TRY(get_int(r, "intermediate_size", false, 0, 1, MAX_WIDTH * 16, &v->ffn));
    PG__TRY(get_int(r, "num_hidden_layers", false, 0, 1, MAX_LAYERS, &v->layers));
    PG__TRY(get_int(r, "num_attention_heads", false, 0, 1, MAX_HEADS, &v->heads));
    PG__TRY(get_int(r, "patch_size", false, 0, 1, 1024, &v->patch));
    PG__TRY(get_int(r, "image_size", true, 224, 1, MAX_IMAGE, &v->image_size));
    PG__TRY(get_float(r, "layer_norm_eps", 1e-6, 1e-6, 1e-30, 1.0, &v->ln_eps));
    if (v->image_size % v->patch != 0) {
        return pg__error(PG_ERR_FORMAT,
                         "%s: vision_config.image_size (%d) is not a multiple of patch_size (%d)",
                         r->path, v->image_size, v->patch);
    }
    if (v->hidden % v->heads != 0) {
        return pg__error(PG_ERR_FORMAT,
                         "%s: vision_config.hidden_size (%d) is not a multiple of "
                         "num_attention_heads (%d)",
                         r->path, v->hidden, v->heads);
    }
    int32_t side = v->image_size / v->patch;
    v->n_tokens = side * side; /* num_positions is ignored (256 on the hub even at 448) */
    return PG_OK;
}

/* The top level: architecture, sub-configs, ids. */
static pg_status parse_root(pg__config *cfg, const json_t *root, const char *path)
{
    static const char *const paligemma[] = { "paligemma", NULL };
    reader top = { path, "", root };
    const json_t *mt = json_object_get(root, "model_type");
    if (!json_is_string(mt)) {
        return pg__error(PG_ERR_FORMAT, "%s: required key model_type is missing", path);
    }
    PG__TRY(check_string(&top, "model_type", paligemma, PG_ERR_UNSUPPORTED));

    const json_t *tc = json_object_get(root, "text_config");
    const json_t *vc = json_object_get(root, "vision_config");
    if (!json_is_object(tc) || !json_is_object(vc)) {
        return pg__error(PG_ERR_FORMAT, "%s: required object %s is missing", path,
                         json_is_object(tc) ? "vision_config" : "text_config");
    }
    reader text = { path, "text_config.", tc };
    reader vision = { path, "vision_config.", vc };
    PG__TRY(parse_text(&cfg->text, &text));
    PG__TRY(parse_vision(&cfg->vision, &vision));

    /* The projector maps vision width -> text width; a stated projection_dim must agree. */
    int32_t proj = cfg->text.hidden;
    PG__TRY(get_int(&top, "projection_dim", true, cfg->text.hidden, 1, MAX_WIDTH, &proj));
    if (proj != cfg->text.hidden) {
        return pg__error(PG_ERR_FORMAT,
                         "%s: projection_dim (%d) differs from text_config.hidden_size (%d)",
                         path, proj, cfg->text.hidden);
    }
    cfg->projection_dim = proj;
    PG__TRY(get_int(&top, "image_token_index", true, 256000, 0, cfg->text.vocab - 1,
                &cfg->image_token_index));
    PG__TRY(get_token_id(&top, "bos_token_id", 2, &cfg->bos_id));
    PG__TRY(get_token_id(&top, "eos_token_id", 1, &cfg->eos_id));
    PG__TRY(get_token_id(&top, "pad_token_id", 0, &cfg->pad_id));
    if (cfg->bos_id >= cfg->text.vocab || cfg->eos_id >= cfg->text.vocab ||
        cfg->pad_id >= cfg->text.vocab) {
        return pg__error(PG_ERR_FORMAT, "%s: a special token id is outside the vocabulary (%d)",
                         path, cfg->text.vocab);
    }
    return PG_OK;
}

pg_status pg__config_parse(pg__config *cfg, const char *json, size_t len, const char *path)
{
    if (!cfg || (!json && len)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "config: NULL argument");
    }
    if (!path) {
        path = "config.json";
    }
    memset(cfg, 0, sizeof *cfg);
    json_error_t jerr;
    json_t *root = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        return pg__error(PG_ERR_FORMAT, "%s: not valid JSON (line %d, column %d: %s)", path,
                         jerr.line, jerr.column, jerr.text);
    }
    pg_status st;
    if (!json_is_object(root)) {
        st = pg__error(PG_ERR_FORMAT, "%s: not a JSON object", path);
    } else {
        st = parse_root(cfg, root, path);
    }
    json_decref(root);
    if (st != PG_OK) {
        memset(cfg, 0, sizeof *cfg);
    }
    return st;
}
