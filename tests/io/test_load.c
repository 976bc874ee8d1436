/*
 * Loading the tiny fixture checkpoints (tests/data/models, copied from
 * ../shared/fixtures/models/checkpoints): config numbers, variant, parameter count (checked
 * against the fixture's own checkpoint_manifest.json), dtype, and that the weight slots of
 * model.h point at the right bytes (the bf16 and f32 files hold the same values).
 */
#include "harness.h"
#include "backend/quant.h"
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
    /* Freeing the model's tokenizer by mistake is ignored (the model frees it, once). */
    pg_tokenizer_free((pg_tokenizer *)(uintptr_t)pg_model_tokenizer(m));
    CHECK_EQ_INT(pg_tokenizer_special_id(pg_model_tokenizer(m), PG_TOKEN_BOS), 2);
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
    /* A newer caller's larger struct: the fields this library does not know come back 0. */
    struct {
        pg_model_info info;
        uint64_t newer[2];
    } big;
    memset(&big, 0xab, sizeof big);
    big.info.struct_size = sizeof big;
    CHECK_OK(pg_model_get_info(m, &big.info));
    CHECK_EQ_INT(big.info.struct_size, sizeof big);
    CHECK_EQ_INT(big.info.image_size, 70);
    CHECK(big.newer[0] == 0 && big.newer[1] == 0);
    pg_model_info bad = { .struct_size = 3 };
    CHECK_EQ_INT(pg_model_get_info(m, &bad), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_model_get_info(NULL, &bad), PG_ERR_INVALID_ARGUMENT);
    CHECK(pg_model_tokenizer(NULL) == NULL);
    pg_model_free(m);
}

/* max |dequantized - original| over a row, against one quantization step of the row's
 * largest value (the rounding error is at most half a step, plus f16 rounding of the scale). */
static void check_quant_row(const pg__tensor *q, const pg__tensor *orig, int64_t row,
                            float levels)
{
    size_t n = (size_t)orig->cols;
    float *deq = malloc(n * sizeof *deq);
    pg__dequantize_row(q, row, deq);
    double err = 0, amax = 0;
    for (size_t i = 0; i < n; i++) {
        double o = elem_at(orig, (size_t)row * n + i);
        err = fmax(err, fabs(deq[i] - o));
        amax = fmax(amax, fabs(o));
    }
    CHECK_MSG(err <= amax / levels, "%s row %lld: error %g > step %g", orig->name,
              (long long)row, err, amax / levels);
    free(deq);
}

/* weight_dtype Q8/Q4: the matmul weights (and a quantized copy of the tied head) are owned
 * by the model, everything else stays mapped as stored. */
static void test_quantized(int32_t dt, float levels)
{
    const char *dir = pg_test_path(pg_test_data_dir(), "models/tiny_b/bf16");
    pg_model *ref = load("tiny_b", "bf16");
    pg_model_options o;
    PG_MODEL_OPTIONS_INIT(&o);
    o.backend = "ref";
    o.n_threads = 2;
    o.weight_dtype = dt;
    pg_model *m = NULL;
    CHECK_OK(pg_model_load(&m, dir, &o));
    if (!m || !ref) {
        pg_model_free(m);
        pg_model_free(ref);
        return;
    }
    const pg__decoder_weights *d = &m->decoder;
    CHECK_EQ_INT(d->layers[0].q_w.dtype, dt);
    CHECK_EQ_INT(d->layers[3].down_w.dtype, dt);
    CHECK_EQ_INT(m->vision.layers[2].fc2_w.dtype, dt);
    CHECK_EQ_INT(m->projector.w.dtype, dt);
    CHECK_EQ_INT(d->lm_head.dtype, dt);
    CHECK_EQ_INT(d->embed.dtype, PG__BF16);
    CHECK(d->embed.data == ref->decoder.embed.data || d->embed.data != NULL);
    CHECK_EQ_INT(d->final_norm.dtype, PG__BF16);
    CHECK_EQ_INT(m->vision.patch_w.dtype, PG__BF16);
    CHECK_EQ_INT(m->vision.layers[0].q_b.dtype, PG__BF16);
    CHECK(m->owned != NULL);
    pg_model_info info = { .struct_size = sizeof info };
    CHECK_OK(pg_model_get_info(m, &info));
    CHECK_EQ_INT(info.weight_dtype, dt);
    CHECK_EQ_INT(info.n_params, manifest_params("tiny_b"));
    /* bytes: the bf16 file minus the quantized matrices, plus their quantized sizes, plus the
     * quantized copy of the tied output head */
    uint64_t want = manifest_params("tiny_b") * 2;
    const pg__config *c = &m->cfg;
    int64_t D = c->text.hidden, F = c->text.ffn, Q = (int64_t)c->text.heads * c->text.head_dim;
    int64_t KV = (int64_t)c->text.kv_heads * c->text.head_dim;
    int64_t VD = c->vision.hidden, VF = c->vision.ffn;
    const int64_t mats[][2] = { { Q, D }, { KV, D }, { KV, D }, { D, Q },
                                { F, D }, { F, D }, { D, F } };
    for (int l = 0; l < c->text.layers; l++) {
        for (int k = 0; k < 7; k++) {
            want += pg__quant_size((pg__dtype)dt, mats[k][0], mats[k][1]) -
                    (uint64_t)(mats[k][0] * mats[k][1] * 2);
        }
    }
    const int64_t vm[][2] = { { VD, VD }, { VD, VD }, { VD, VD }, { VD, VD }, { VF, VD },
                              { VD, VF } };
    for (int l = 0; l < c->vision.layers; l++) {
        for (int k = 0; k < 6; k++) {
            want += pg__quant_size((pg__dtype)dt, vm[k][0], vm[k][1]) -
                    (uint64_t)(vm[k][0] * vm[k][1] * 2);
        }
    }
    want += pg__quant_size((pg__dtype)dt, D, VD) - (uint64_t)(D * VD * 2);
    want += pg__quant_size((pg__dtype)dt, c->text.vocab, D);
    CHECK_EQ_INT(info.weight_bytes, want);
    for (int64_t r = 0; r < 5; r++) {
        check_quant_row(&d->layers[0].q_w, &ref->decoder.layers[0].q_w, r * 7, levels);
        check_quant_row(&m->vision.layers[2].fc2_w, &ref->vision.layers[2].fc2_w, r, levels);
        check_quant_row(&d->lm_head, &ref->decoder.embed, r * 400, levels);
    }
    pg_model_free(m);
    pg_model_free(ref);
}

int main(void)
{
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) {
        test_fixture(&fixtures[i]);
    }
    test_refcount();
    test_tokenizer_only();
    test_info_sizes();
    test_quantized(PG_DTYPE_Q8, 127.0f);
    test_quantized(PG_DTYPE_Q4, 7.0f);
    return pg_test_finish();
}
