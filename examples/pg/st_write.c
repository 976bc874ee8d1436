/* Random-weight checkpoint writer (see st_write.h). Uses only the C library. */
#ifndef _GNU_SOURCE
#    define _GNU_SOURCE
#endif
#include "st_write.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_SHARDS 2
#define VISION_LAYERS 27

typedef struct variant_spec {
    const char *size;
    int hidden, ffn, layers, heads, kv_heads, head_dim, qpas;
    bool write_heads; /* the 3B hub config omits num_attention_heads and head_dim */
} variant_spec;

static const variant_spec sizes[] = {
    { "3b", 2304, 9216, 26, 8, 4, 256, 256, false },
    { "10b", 3584, 14336, 42, 16, 8, 256, 256, true },
    { "28b", 4608, 36864, 46, 32, 16, 128, 144, true },
};

enum kind { MATRIX, BIAS, RMS_NORM, LAYER_NORM };

typedef struct tensor {
    char name[128];
    int ndim;
    int64_t shape[4];
    enum kind kind;
    uint64_t bytes;
    int shard;
    uint64_t begin; /* inside its shard's data buffer */
} tensor;

typedef struct plan {
    tensor *t;
    size_t n, cap;
} plan;

static int add(plan *p, enum kind kind, int ndim, int64_t d0, int64_t d1, int64_t d2,
               int64_t d3, const char *fmt, ...) __attribute__((format(printf, 8, 9)));

static int add(plan *p, enum kind kind, int ndim, int64_t d0, int64_t d1, int64_t d2,
               int64_t d3, const char *fmt, ...)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        tensor *t = realloc(p->t, cap * sizeof *t);
        if (!t) {
            return -1;
        }
        p->t = t;
        p->cap = cap;
    }
    tensor *t = &p->t[p->n++];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    int64_t s[4] = { d0, d1, d2, d3 };
    t->ndim = ndim;
    t->kind = kind;
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = s[i];
        n *= (uint64_t)s[i];
    }
    t->bytes = n * 2;
    return 0;
}

/* The hub's tensor list (spec §2.3), vision tower first as in the hub shards. */
static int make_plan(plan *p, const variant_spec *v, int image, int text_layers,
                     int vision_layers)
{
    const int64_t D = v->hidden, F = v->ffn, Q = (int64_t)v->heads * v->head_dim;
    const int64_t KV = (int64_t)v->kv_heads * v->head_dim, VD = 1152, VF = 4304;
    const int64_t N = (int64_t)(image / 14) * (image / 14), V = 257216;
    const char *vp = "vision_tower.vision_model.";
    int rc = 0;
    rc |= add(p, MATRIX, 4, VD, 3, 14, 14, "%sembeddings.patch_embedding.weight", vp);
    rc |= add(p, BIAS, 1, VD, 0, 0, 0, "%sembeddings.patch_embedding.bias", vp);
    rc |= add(p, MATRIX, 2, N, VD, 0, 0, "%sembeddings.position_embedding.weight", vp);
    for (int i = 0; i < vision_layers && rc == 0; i++) {
        static const char *const proj[] = { "q_proj", "k_proj", "v_proj", "out_proj" };
        for (int k = 0; k < 4; k++) {
            rc |= add(p, MATRIX, 2, VD, VD, 0, 0, "%sencoder.layers.%d.self_attn.%s.weight", vp,
                      i, proj[k]);
            rc |= add(p, BIAS, 1, VD, 0, 0, 0, "%sencoder.layers.%d.self_attn.%s.bias", vp, i,
                      proj[k]);
        }
        rc |= add(p, LAYER_NORM, 1, VD, 0, 0, 0, "%sencoder.layers.%d.layer_norm1.weight", vp, i);
        rc |= add(p, BIAS, 1, VD, 0, 0, 0, "%sencoder.layers.%d.layer_norm1.bias", vp, i);
        rc |= add(p, LAYER_NORM, 1, VD, 0, 0, 0, "%sencoder.layers.%d.layer_norm2.weight", vp, i);
        rc |= add(p, BIAS, 1, VD, 0, 0, 0, "%sencoder.layers.%d.layer_norm2.bias", vp, i);
        rc |= add(p, MATRIX, 2, VF, VD, 0, 0, "%sencoder.layers.%d.mlp.fc1.weight", vp, i);
        rc |= add(p, BIAS, 1, VF, 0, 0, 0, "%sencoder.layers.%d.mlp.fc1.bias", vp, i);
        rc |= add(p, MATRIX, 2, VD, VF, 0, 0, "%sencoder.layers.%d.mlp.fc2.weight", vp, i);
        rc |= add(p, BIAS, 1, VD, 0, 0, 0, "%sencoder.layers.%d.mlp.fc2.bias", vp, i);
    }
    rc |= add(p, LAYER_NORM, 1, VD, 0, 0, 0, "%spost_layernorm.weight", vp);
    rc |= add(p, BIAS, 1, VD, 0, 0, 0, "%spost_layernorm.bias", vp);
    rc |= add(p, MATRIX, 2, D, VD, 0, 0, "multi_modal_projector.linear.weight");
    rc |= add(p, BIAS, 1, D, 0, 0, 0, "multi_modal_projector.linear.bias");
    const char *tp = "language_model.model.";
    rc |= add(p, MATRIX, 2, V, D, 0, 0, "%sembed_tokens.weight", tp);
    for (int i = 0; i < text_layers && rc == 0; i++) {
        rc |= add(p, RMS_NORM, 1, D, 0, 0, 0, "%slayers.%d.input_layernorm.weight", tp, i);
        rc |= add(p, MATRIX, 2, Q, D, 0, 0, "%slayers.%d.self_attn.q_proj.weight", tp, i);
        rc |= add(p, MATRIX, 2, KV, D, 0, 0, "%slayers.%d.self_attn.k_proj.weight", tp, i);
        rc |= add(p, MATRIX, 2, KV, D, 0, 0, "%slayers.%d.self_attn.v_proj.weight", tp, i);
        rc |= add(p, MATRIX, 2, D, Q, 0, 0, "%slayers.%d.self_attn.o_proj.weight", tp, i);
        rc |= add(p, RMS_NORM, 1, D, 0, 0, 0, "%slayers.%d.post_attention_layernorm.weight", tp,
                  i);
        rc |= add(p, RMS_NORM, 1, D, 0, 0, 0, "%slayers.%d.pre_feedforward_layernorm.weight", tp,
                  i);
        rc |= add(p, MATRIX, 2, F, D, 0, 0, "%slayers.%d.mlp.gate_proj.weight", tp, i);
        rc |= add(p, MATRIX, 2, F, D, 0, 0, "%slayers.%d.mlp.up_proj.weight", tp, i);
        rc |= add(p, MATRIX, 2, D, F, 0, 0, "%slayers.%d.mlp.down_proj.weight", tp, i);
        rc |= add(p, RMS_NORM, 1, D, 0, 0, 0, "%slayers.%d.post_feedforward_layernorm.weight",
                  tp, i);
    }
    rc |= add(p, RMS_NORM, 1, D, 0, 0, 0, "%snorm.weight", tp);
    return rc;
}

/* Splits the tensors (in order) into N_SHARDS shards of about equal size. */
static void assign_shards(plan *p, uint64_t shard_data[N_SHARDS])
{
    uint64_t total = 0;
    for (size_t i = 0; i < p->n; i++) {
        total += p->t[i].bytes;
    }
    uint64_t acc = 0;
    memset(shard_data, 0, N_SHARDS * sizeof *shard_data);
    for (size_t i = 0; i < p->n; i++) {
        tensor *t = &p->t[i];
        int s = (int)(acc * N_SHARDS / (total ? total : 1));
        t->shard = s < N_SHARDS ? s : N_SHARDS - 1;
        t->begin = shard_data[t->shard];
        shard_data[t->shard] += t->bytes;
        acc += t->bytes;
    }
}

static void shard_name(char *buf, size_t cap, int s)
{
    snprintf(buf, cap, "model-%05d-of-%05d.safetensors", s + 1, N_SHARDS);
}

/* ---- random values ---- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* 65536 standard normal samples (Box-Muller), indexed by 16 random bits: four values per
 * 64-bit random number keeps gigabytes of output fast. */
static float normal_table[65536];

static void init_normal_table(uint64_t seed)
{
    uint64_t s = seed ^ 0x5851f42d4c957f2du;
    for (int i = 0; i < 65536; i += 2) {
        double u1 = ((double)(splitmix(&s) >> 11) + 1.0) / 9007199254740993.0;
        double u2 = (double)(splitmix(&s) >> 11) / 9007199254740992.0;
        double r = sqrt(-2.0 * log(u1));
        normal_table[i] = (float)(r * cos(2 * M_PI * u2));
        normal_table[i + 1] = (float)(r * sin(2 * M_PI * u2));
    }
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 1099511628211u;
    }
    return h;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Streams the tensor's random bf16 values to fd. */
static int write_tensor_data(int fd, const tensor *t, uint64_t seed, uint16_t *buf,
                             size_t buf_elems)
{
    static uint16_t lut[65536];
    float scale = t->kind == BIAS ? 0.002f : 0.02f;
    float offset = t->kind == LAYER_NORM ? 1.0f : 0.0f;
    for (int i = 0; i < 65536; i++) {
        lut[i] = to_bf16(offset + scale * normal_table[i]);
    }
    uint64_t s = seed ^ name_hash(t->name);
    uint64_t left = t->bytes / 2;
    while (left > 0) {
        size_t n = left < buf_elems ? (size_t)left : buf_elems;
        for (size_t i = 0; i < n; i += 4) {
            uint64_t r = splitmix(&s);
            for (size_t k = 0; k < 4 && i + k < n; k++) {
                buf[i + k] = lut[(r >> (16 * k)) & 0xffff];
            }
        }
        if (write_all(fd, buf, n * 2) != 0) {
            return -1;
        }
        left -= n;
    }
    return 0;
}

/* Appends printf output to a growing string. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool failed;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static void sb_shape(sbuf *b, const tensor *t)
{
    sb_printf(b, "[");
    for (int i = 0; i < t->ndim; i++) {
        sb_printf(b, "%s%lld", i ? "," : "", (long long)t->shape[i]);
    }
    sb_printf(b, "]");
}

static int write_shard(const char *dir, const plan *p, int shard, uint64_t seed)
{
    sbuf h = { 0 };
    sb_printf(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < p->n; i++) {
        const tensor *t = &p->t[i];
        if (t->shard != shard) {
            continue;
        }
        sb_printf(&h, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":", t->name);
        sb_shape(&h, t);
        sb_printf(&h, ",\"data_offsets\":[%llu,%llu]}", (unsigned long long)t->begin,
                  (unsigned long long)(t->begin + t->bytes));
    }
    sb_printf(&h, "}");
    while (!h.failed && h.len % 8 != 0) { /* the data buffer starts 8-byte aligned */
        sb_printf(&h, " ");
    }
    char name[64], path[4096];
    shard_name(name, sizeof name, shard);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = h.failed ? -1 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t buf_elems = (size_t)1 << 21;
    uint16_t *buf = fd >= 0 ? malloc(buf_elems * 2) : NULL;
    int rc = buf ? 0 : -1;
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) {
        len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    }
    if (rc == 0) {
        rc = write_all(fd, len8, 8) | write_all(fd, h.s, h.len);
    }
    for (size_t i = 0; i < p->n && rc == 0; i++) {
        if (p->t[i].shard == shard) {
            rc = write_tensor_data(fd, &p->t[i], seed, buf, buf_elems);
        }
    }
    if (rc == 0) {
        /* make the pages clean, then drop them: the checkpoint does not occupy the page
         * cache, and a benchmark that loads it starts cold */
        rc = fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    }
    if (fd >= 0 && close(fd) != 0) {
        rc = -1;
    }
    if (rc != 0) {
        fprintf(stderr, "st_write: cannot write %s: %s\n", path, strerror(errno));
    }
    free(buf);
    free(h.s);
    return rc;
}

static int write_text(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    int rc = f && fputs(text, f) >= 0 ? 0 : -1;
    if (f && fclose(f) != 0) {
        rc = -1;
    }
    if (rc != 0) {
        fprintf(stderr, "st_write: cannot write %s\n", path);
    }
    return rc;
}

/* config.json as on the hub (spec §1.2): only the non-default text fields are listed. */
static int write_config(const char *dir, const variant_spec *v, int image, int text_layers,
                        int vision_layers)
{
    int n_img = (image / 14) * (image / 14);
    sbuf b = { 0 };
    sb_printf(&b,
              "{\n  \"_vocab_size\": 257152,\n  \"architectures\": "
              "[\"PaliGemmaForConditionalGeneration\"],\n  \"bos_token_id\": 2,\n"
              "  \"eos_token_id\": 1,\n  \"hidden_size\": 2048,\n"
              "  \"image_token_index\": 257152,\n  \"model_type\": \"paligemma\",\n"
              "  \"num_hidden_layers\": %d,\n  \"pad_token_id\": 0,\n"
              "  \"projection_dim\": %d,\n  \"text_config\": {\n"
              "    \"architectures\": [\"Gemma2ForCausalLM\"],\n"
              "    \"attn_logit_softcapping\": 50.0,\n    \"cache_implementation\": \"hybrid\",\n"
              "    \"eos_token_id\": [1, 107],\n    \"final_logit_softcapping\": 30.0,\n",
              text_layers, v->hidden);
    if (v->write_heads) {
        sb_printf(&b, "    \"head_dim\": %d,\n", v->head_dim);
    }
    sb_printf(&b,
              "    \"hidden_act\": \"gelu_pytorch_tanh\",\n"
              "    \"hidden_activation\": \"gelu_pytorch_tanh\",\n    \"hidden_size\": %d,\n"
              "    \"intermediate_size\": %d,\n    \"model_type\": \"gemma2\",\n",
              v->hidden, v->ffn);
    if (v->write_heads) {
        sb_printf(&b, "    \"num_attention_heads\": %d,\n", v->heads);
    }
    sb_printf(&b,
              "    \"num_hidden_layers\": %d,\n    \"num_image_tokens\": %d,\n"
              "    \"num_key_value_heads\": %d,\n    \"query_pre_attn_scalar\": %d,\n"
              "    \"sliding_window\": 4096,\n    \"torch_dtype\": \"bfloat16\",\n"
              "    \"vocab_size\": 257216\n  },\n  \"torch_dtype\": \"bfloat16\",\n"
              "  \"transformers_version\": \"4.47.0.dev0\",\n  \"vision_config\": {\n"
              "    \"hidden_size\": 1152,\n",
              text_layers, n_img, v->kv_heads, v->qpas);
    if (image != 224) {
        sb_printf(&b, "    \"image_size\": %d,\n", image);
    }
    sb_printf(&b,
              "    \"intermediate_size\": 4304,\n    \"model_type\": \"siglip_vision_model\",\n"
              "    \"num_attention_heads\": 16,\n    \"num_hidden_layers\": %d,\n"
              "    \"num_image_tokens\": %d,\n    \"num_positions\": 256,\n"
              "    \"patch_size\": 14,\n    \"projection_dim\": %d,\n"
              "    \"torch_dtype\": \"bfloat16\",\n    \"vision_use_head\": false\n  }\n}\n",
              vision_layers, n_img, v->hidden);
    int rc = b.failed ? -1 : write_text(dir, "config.json", b.s);
    free(b.s);
    return rc;
}

static int write_index(const char *dir, const plan *p, uint64_t total)
{
    sbuf b = { 0 };
    sb_printf(&b, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {",
              (unsigned long long)total);
    for (size_t i = 0; i < p->n; i++) {
        char name[64];
        shard_name(name, sizeof name, p->t[i].shard);
        sb_printf(&b, "%s\n    \"%s\": \"%s\"", i ? "," : "", p->t[i].name, name);
    }
    sb_printf(&b, "\n  }\n}\n");
    int rc = b.failed ? -1 : write_text(dir, "model.safetensors.index.json", b.s);
    free(b.s);
    return rc;
}

int pg_write_random_checkpoint(const char *dir, const char *variant, int n_layers_override,
                               uint64_t seed)
{
    if (!dir || !variant || n_layers_override < 0) {
        fprintf(stderr, "st_write: bad arguments\n");
        return -1;
    }
    const variant_spec *v = NULL;
    int image = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = strlen(sizes[i].size);
        if (strncmp(variant, sizes[i].size, n) == 0 && variant[n] == '-') {
            v = &sizes[i];
            image = atoi(variant + n + 1);
        }
    }
    if (!v || (image != 224 && image != 448 && image != 896)) {
        fprintf(stderr, "st_write: unknown variant '%s' (3b|10b|28b-224|448|896)\n", variant);
        return -1;
    }
    int text_layers = n_layers_override > 0 ? n_layers_override : v->layers;
    int vision_layers = n_layers_override > 0 && n_layers_override < VISION_LAYERS
                            ? n_layers_override
                            : VISION_LAYERS;
    plan p = { 0 };
    uint64_t shard_data[N_SHARDS];
    int rc = make_plan(&p, v, image, text_layers, vision_layers);
    if (rc != 0) {
        fprintf(stderr, "st_write: out of memory\n");
    }
    init_normal_table(seed);
    if (rc == 0) {
        assign_shards(&p, shard_data);
        rc = write_config(dir, v, image, text_layers, vision_layers);
    }
    for (int s = 0; s < N_SHARDS && rc == 0; s++) {
        rc = write_shard(dir, &p, s, seed);
    }
    if (rc == 0) {
        rc = write_index(dir, &p, shard_data[0] + shard_data[1]);
    }
    free(p.t);
    return rc;
}
