/*
 * Loading the tiny fixture checkpoints (tests/data/models, copied from
 * ../shared/fixtures/models/checkpoints): config numbers, variant, parameter count (checked
 * against the fixture's own checkpoint_manifest.json), dtype, and that the weight slots of
 * model.h point at the right bytes (the bf16 and f32 files hold the same values).
 */
#include "harness.h"
#include "io/safetensors.h"
#include "model/model.h"

#include <jansson.h>

typedef struct expect {
    const char *config;
    uint32_t text_hidden, text_ffn, text_layers, text_heads, text_kv, head_dim;
    uint32_t vision_hidden, vision_ffn, vision_layers, vision_heads, image_size, image_tokens;
    uint32_t vocab;
} expect;

static const expect fixtures[] = {
    { "tiny", 96, 384, 3, 4, 2, 16, 48, 176, 2, 4, 56, 16, 2240 },
    { "tiny_b", 72, 160, 4, 6, 1, 24, 40, 136, 3, 5, 70, 25, 2240 },
};

/* Sum of the element counts listed in checkpoint_manifest.json (independent of the loader). */
static uint64_t manifest_params(const char *config)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s/checkpoint_manifest.json", config);
    json_error_t err;
    json_t *root = json_load_file(pg_test_path(pg_test_data_dir(), rel), 0, &err);
    if (!root) {
        fprintf(stderr, "cannot read %s: %s\n", rel, err.text);
        return 0;
    }
    uint64_t total = 0;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(root, "tensors"), i, t) {
        uint64_t n = 1;
        size_t k;
        json_t *d;
        json_array_foreach(json_object_get(t, "shape"), k, d) {
            n *= (uint64_t)json_integer_value(d);
        }
        total += n;
    }
    json_decref(root);
    return total;
}

static pg_model *load(const char *config, const char *dtype)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s/%s", config, dtype);
    pg_model_options o;
    PG_MODEL_OPTIONS_INIT(&o);
    o.backend = "ref";
    o.n_threads = 1;
    pg_model *m = NULL;
    CHECK_OK(pg_model_load(&m, pg_test_path(pg_test_data_dir(), rel), &o));
    return m;
}

static void check_info(const pg_model *m, const expect *e, int32_t dtype, size_t elem)
{
    pg_model_info info = { .struct_size = sizeof info };
    CHECK_OK(pg_model_get_info(m, &info));
    CHECK_EQ_INT(info.text_hidden, e->text_hidden);
    CHECK_EQ_INT(info.text_ffn, e->text_ffn);
    CHECK_EQ_INT(info.text_layers, e->text_layers);
    CHECK_EQ_INT(info.text_heads, e->text_heads);
    CHECK_EQ_INT(info.text_kv_heads, e->text_kv);
    CHECK_EQ_INT(info.text_head_dim, e->head_dim);
    CHECK_EQ_INT(info.vision_hidden, e->vision_hidden);
    CHECK_EQ_INT(info.vision_ffn, e->vision_ffn);
    CHECK_EQ_INT(info.vision_layers, e->vision_layers);
    CHECK_EQ_INT(info.vision_heads, e->vision_heads);
    CHECK_EQ_INT(info.image_size, e->image_size);
    CHECK_EQ_INT(info.patch_size, 14);
    CHECK_EQ_INT(info.image_tokens, e->image_tokens);
    CHECK_EQ_INT(info.vocab_size, e->vocab);
    CHECK_EQ_INT(info.sliding_window, 4096);
    CHECK_EQ_INT(info.weight_dtype, dtype);
    uint64_t params = manifest_params(e->config);
    CHECK(params > 0);
    CHECK_EQ_INT(info.n_params, params);
    CHECK_EQ_INT(info.weight_bytes, params * elem);
    CHECK(info.variant && strcmp(info.variant, "custom") == 0);
}

/* Element i of a typed tensor as float. */
static float elem_at(const pg__tensor *t, size_t i)
{
    switch (t->dtype) {
    case PG__F32: return ((const float *)t->data)[i];
    case PG__BF16: return pg__bf16_to_f32(((const uint16_t *)t->data)[i]);
    case PG__F16: return pg__f16_to_f32(((const uint16_t *)t->data)[i]);
    default: return NAN;
    }
}

/* Same shape, same values: the bf16 and f32 fixtures store identical numbers. */
static void check_same(const pg__tensor *a, const pg__tensor *b)
{
    CHECK_EQ_INT(a->rows, b->rows);
    CHECK_EQ_INT(a->cols, b->cols);
    size_t n = (size_t)(a->rows * a->cols), bad = 0;
    for (size_t i = 0; i < n; i++) {
        bad += elem_at(a, i) != elem_at(b, i);
    }
    CHECK_MSG(bad == 0, "%s: %zu of %zu values differ", a->name, bad, n);
}

/* The slots point into the mapped file at exactly the named tensor's bytes. */
static void check_slot(const pg_model *m, const pg__tensor *t, const char *name)
{
    const pg__st_tensor *st = NULL;
    for (size_t i = 0; i < m->n_files && !st; i++) {
        st = pg__st_find(m->files[i], name);
    }
    CHECK_MSG(st != NULL, "%s not found in the files", name);
    if (st) {
        CHECK(t->data == st->data);
        CHECK(t->name && strcmp(t->name, name) == 0);
    }
}

static void check_structs(const pg_model *m, const expect *e)
{
    const pg__decoder_weights *d = &m->decoder;
    const pg__vision_weights *v = &m->vision;
    int64_t q = (int64_t)e->text_heads * e->head_dim, kv = (int64_t)e->text_kv * e->head_dim;
    CHECK_EQ_INT(d->embed.rows, e->vocab);
    CHECK_EQ_INT(d->embed.cols, e->text_hidden);
    CHECK(d->lm_head.data == d->embed.data); /* tied: no lm_head stored */
    CHECK_EQ_INT(d->layers[0].q_w.rows, q);
    CHECK_EQ_INT(d->layers[0].k_w.rows, kv);
    CHECK_EQ_INT(d->layers[0].o_w.cols, q);
    CHECK_EQ_INT(d->layers[0].down_w.cols, e->text_ffn);
    CHECK_EQ_INT(d->final_norm.rows, 1);
    CHECK_EQ_INT(d->final_norm.cols, e->text_hidden);
    CHECK_EQ_INT(v->patch_w.ndim, 4);
    CHECK_EQ_INT(v->patch_w.rows, e->vision_hidden);
    CHECK_EQ_INT(v->patch_w.cols, 3 * 14 * 14);
    CHECK_EQ_INT(v->pos.rows, e->image_tokens);
    CHECK_EQ_INT(m->projector.w.rows, e->text_hidden);
    CHECK_EQ_INT(m->projector.w.cols, e->vision_hidden);
    check_slot(m, &d->layers[e->text_layers - 1].up_w,
               e->text_layers == 3 ? "language_model.model.layers.2.mlp.up_proj.weight"
                                   : "language_model.model.layers.3.mlp.up_proj.weight");
    check_slot(m, &v->layers[1].fc2_b,
               "vision_tower.vision_model.encoder.layers.1.mlp.fc2.bias");
    check_slot(m, &m->projector.b, "multi_modal_projector.linear.bias");
    check_slot(m, &d->layers[0].post_ff_norm,
               "language_model.model.layers.0.post_feedforward_layernorm.weight");
}

static void test_fixture(const expect *e)
{
    pg_model *bf = load(e->config, "bf16");
    pg_model *f32 = load(e->config, "f32");
    if (!bf || !f32) {
        pg_model_free(bf);
        pg_model_free(f32);
        return;
    }
    check_info(bf, e, PG_DTYPE_BF16, 2);
    check_info(f32, e, PG_DTYPE_F32, 4);
    check_structs(bf, e);
    check_structs(f32, e);
    CHECK(bf->backend != NULL);
    check_same(&bf->decoder.embed, &f32->decoder.embed);
    check_same(&bf->vision.patch_w, &f32->vision.patch_w);
    check_same(&bf->decoder.layers[1].gate_w, &f32->decoder.layers[1].gate_w);
    check_same(&bf->vision.layers[0].q_b, &f32->vision.layers[0].q_b);
    /* the fixtures ship tokenizer files, so the model has a tokenizer */
    CHECK(pg_model_tokenizer(bf) != NULL);
    pg_model_free(bf);
    pg_model_free(f32);
}

/* A session-style extra reference keeps the model alive after pg_model_free. */
static void test_refcount(void)
{
    pg_model *m = load("tiny", "bf16");
    if (!m) {
        return;
    }
    pg__model_ref(m);
    pg_model_free(m);
    CHECK_EQ_INT(m->decoder.embed.rows, 2240); /* still valid (ASan would complain) */
    pg__model_unref(m);
    pg_model_free(NULL);
}

/* Tokenizer-only: config and tokenizer, no weights mapped, no backend. */
static void test_tokenizer_only(void)
{
    pg_model_options o;
    PG_MODEL_OPTIONS_INIT(&o);
    o.flags = PG_MODEL_TOKENIZER_ONLY;
    pg_model *m = NULL;
    CHECK_OK(pg_model_load(&m, pg_test_path(pg_test_data_dir(), "models/tiny/bf16"), &o));
    if (!m) {
        return;
    }
    CHECK_EQ_INT(m->n_files, 0);
    CHECK(m->backend == NULL);
    CHECK(pg_model_tokenizer(m) != NULL);
    pg_model_info info = { .struct_size = sizeof info };
    CHECK_OK(pg_model_get_info(m, &info));
    CHECK_EQ_INT(info.n_params, manifest_params("tiny"));
    CHECK_EQ_INT(info.weight_bytes, 0);
    CHECK_EQ_INT(info.image_tokens, 16);
    pg_model_free(m);
}

/* An older caller's smaller info struct is filled only as far as it reaches. */
static void test_info_sizes(void)
{
    pg_model *m = load("tiny_b", "bf16");
    if (!m) {
        return;
    }
    struct {
        pg_model_info info;
        uint32_t canary;
    } small;
    memset(&small, 0xab, sizeof small);
    small.info.struct_size = offsetof(pg_model_info, patch_size);
    CHECK_OK(pg_model_get_info(m, &small.info));
    CHECK_EQ_INT(small.info.image_size, 70);
    CHECK_EQ_INT(small.info.patch_size, 0xabababab); /* beyond its struct_size: untouched */
    pg_model_info bad = { .struct_size = 3 };
    CHECK_EQ_INT(pg_model_get_info(m, &bad), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_model_get_info(NULL, &bad), PG_ERR_INVALID_ARGUMENT);
    CHECK(pg_model_tokenizer(NULL) == NULL);
    pg_model_free(m);
}

int main(void)
{
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        test_fixture(&fixtures[i]);
    }
    test_refcount();
    test_tokenizer_only();
    test_info_sizes();
    return pg_test_finish();
}
