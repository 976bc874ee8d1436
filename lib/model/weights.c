/*
 * Tensor names -> the weight structs of model.h (spec §2.3-2.4).
 *
 * Every stored tensor is entered in a table under its canonical name (the spelling of the
 * files on the hub: language_model.model.*, vision_tower.vision_model.*,
 * multi_modal_projector.*, language_model.lm_head.*); the newer transformers spelling
 * (model.language_model.*, model.vision_tower.*, model.multi_modal_projector.*, lm_head.*)
 * is rewritten to it, so both are accepted and a tensor stored in both spellings is a
 * duplicate. Then each slot the configuration needs is bound by name with its exact shape,
 * and whatever is left unbound is an error (an extra tensor means the file is not the model
 * the config describes).
 */
#include "io/safetensors.h"
#include "model/loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *canon;                /* canonical name (owned) */
    const pg__st_tensor *t;     /* the stored tensor */
    const pg__st_file *file;
    bool used;
} entry;

typedef struct binder {
    pg_model *m;
    const char *dir;
    entry *e;
    size_t n;
    bool dry;                   /* no files: fill shapes only (tokenizer-only load) */
    uint64_t n_params;
} binder;

static const struct {
    const char *from, *to;
} spellings[] = {
    { "model.language_model.", "language_model.model." },
    { "model.vision_tower.", "vision_tower." },
    { "model.multi_modal_projector.", "multi_modal_projector." },
    { "lm_head.", "language_model.lm_head." },
};

static char *canonical_name(const char *name)
{
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        size_t n = strlen(spellings[i].from);
        if (strncmp(name, spellings[i].from, n) == 0) {
            size_t a = strlen(spellings[i].to), b = strlen(name + n);
            char *s = pg__malloc(a + b + 1);
            if (s) {
                memcpy(s, spellings[i].to, a);
                memcpy(s + a, name + n, b + 1);
            }
            return s;
        }
    }
    return pg__strdup(name);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->canon, ((const entry *)b)->canon);
}

static void free_table(binder *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->e[i].canon);
    }
    free(b->e);
}

/* All tensors of all files, sorted by canonical name; duplicates rejected. */
static pg_status build_table(binder *b)
{
    const pg_model *m = b->m;
    size_t total = 0;
    for (size_t i = 0; i < m->n_files; i++) {
        total += m->files[i]->n_tensors;
    }
    b->e = pg__calloc(total ? total : 1, sizeof *b->e);
    if (!b->e) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    for (size_t i = 0; i < m->n_files; i++) {
        for (size_t j = 0; j < m->files[i]->n_tensors; j++) {
            entry *e = &b->e[b->n];
            e->t = &m->files[i]->tensors[j];
            e->file = m->files[i];
            e->canon = canonical_name(e->t->name);
            if (!e->canon) {
                return PG_ERR_OUT_OF_MEMORY;
            }
            b->n++;
        }
    }
    qsort(b->e, b->n, sizeof *b->e, cmp_entry);
    for (size_t i = 1; i < b->n; i++) {
        if (strcmp(b->e[i - 1].canon, b->e[i].canon) == 0) {
            return pg__error(PG_ERR_FORMAT, "tensor '%s' is stored twice: as '%s' in %s and as "
                             "'%s' in %s",
                             b->e[i].canon, b->e[i - 1].t->name, b->e[i - 1].file->path,
                             b->e[i].t->name, b->e[i].file->path);
        }
    }
    return PG_OK;
}

static entry *lookup(binder *b, const char *canon)
{
    entry key = { .canon = (char *)canon };
    return bsearch(&key, b->e, b->n, sizeof *b->e, cmp_entry);
}

static void format_shape(char *buf, size_t cap, int32_t ndim, const int64_t *shape)
{
    size_t k = 0;
    k += (size_t)snprintf(buf, cap, "[");
    for (int32_t i = 0; i < ndim && k < cap; i++) {
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    if (k < cap) {
        snprintf(buf + k, cap - k, "]");
    }
}

static bool supported_dtype(pg__st_dtype dt, pg__dtype *out)
{
    switch (dt) {
    case PG__ST_F32: *out = PG__F32; return true;
    case PG__ST_F16: *out = PG__F16; return true;
    case PG__ST_BF16: *out = PG__BF16; return true;
    default: return false;
    }
}

/* Sets the shape fields of a slot: rows = ne[0], cols = the rest (1-D: 1 x ne[0]). */
static void set_shape(pg__tensor *dst, int32_t ndim, const int64_t *shape)
{
    dst->ndim = ndim;
    int64_t rest = 1;
    for (int32_t i = 0; i < 4; i++) {
        dst->ne[i] = i < ndim ? shape[i] : 0;
        if (i > 0 && i < ndim) {
            rest *= shape[i];
        }
    }
    dst->rows = ndim == 1 ? 1 : shape[0];
    dst->cols = ndim == 1 ? shape[0] : rest;
}

/*
 * Binds the slot `dst` to the tensor with canonical name `name`, which must have exactly
 * the shape [d0, d1, ...] (ndim entries) and a dtype the backend reads. Optional slots that
 * are absent are left zeroed (data NULL) and give PG_OK.
 */
static pg_status bind(binder *b, pg__tensor *dst, bool required, const char *name, int32_t ndim,
                      int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    const int64_t want[4] = { d0, d1, d2, d3 };
    if (b->dry) {
        set_shape(dst, ndim, want);
        dst->dtype = PG__BF16;
        if (required) {
            b->n_params += (uint64_t)(dst->rows * dst->cols);
        }
        return PG_OK;
    }
    entry *e = lookup(b, name);
    if (!e) {
        if (!required) {
            return PG_OK;
        }
        return pg__error(PG_ERR_NOT_FOUND, "%s: tensor '%s' is missing from the checkpoint",
                         b->dir, name);
    }
    e->used = true;
    const pg__st_tensor *t = e->t;
    bool same = t->ndim == ndim;
    for (int32_t i = 0; same && i < ndim; i++) {
        same = t->shape[i] == want[i];
    }
    if (!same) {
        char got[128], need[128];
        format_shape(got, sizeof got, t->ndim, t->shape);
        format_shape(need, sizeof need, ndim, want);
        return pg__error(PG_ERR_FORMAT, "%s: tensor '%s' has shape %s but the config needs %s",
                         e->file->path, t->name, got, need);
    }
    if (!supported_dtype(t->dtype, &dst->dtype)) {
        return pg__error(PG_ERR_UNSUPPORTED,
                         "%s: tensor '%s' has dtype %s (supported: BF16, F16, F32)",
                         e->file->path, t->name, pg__st_dtype_name(t->dtype));
    }
    set_shape(dst, ndim, want);
    dst->data = t->data;
    dst->name = t->name;
    b->n_params += t->n_elements;
    return PG_OK;
}


/* Name buffer helper: prefix + formatted rest. */
#define NAME(buf, ...) (snprintf((buf), sizeof(buf), __VA_ARGS__), (buf))

static pg_status bind_vision(binder *b)
{
    const pg__vision_config *c = &b->m->cfg.vision;
    pg__vision_weights *w = &b->m->vision;
    const int64_t D = c->hidden, F = c->ffn, P = c->patch;
    const char *pre = "vision_tower.vision_model.";
    char n[256];
    PG__TRY(bind(b, &w->patch_w, true, NAME(n, "%sembeddings.patch_embedding.weight", pre), 4, D, 3,
             P, P));
    PG__TRY(bind(b, &w->patch_b, true, NAME(n, "%sembeddings.patch_embedding.bias", pre), 1, D, 0,
             0, 0));
    PG__TRY(bind(b, &w->pos, true, NAME(n, "%sembeddings.position_embedding.weight", pre), 2,
             c->n_tokens, D, 0, 0));
    for (int32_t i = 0; i < c->layers; i++) {
        pg__vision_layer *l = &w->layers[i];
        static const char *const proj[4] = { "q_proj", "k_proj", "v_proj", "out_proj" };
        pg__tensor *pw[4] = { &l->q_w, &l->k_w, &l->v_w, &l->o_w };
        pg__tensor *pb[4] = { &l->q_b, &l->k_b, &l->v_b, &l->o_b };
        char base[128];
        snprintf(base, sizeof base, "%sencoder.layers.%d.", pre, (int)i);
        PG__TRY(bind(b, &l->ln1_w, true, NAME(n, "%slayer_norm1.weight", base), 1, D, 0, 0, 0));
        PG__TRY(bind(b, &l->ln1_b, true, NAME(n, "%slayer_norm1.bias", base), 1, D, 0, 0, 0));
        for (int k = 0; k < 4; k++) {
            PG__TRY(bind(b, pw[k], true, NAME(n, "%sself_attn.%s.weight", base, proj[k]), 2, D, D, 0,
                     0));
            PG__TRY(bind(b, pb[k], true, NAME(n, "%sself_attn.%s.bias", base, proj[k]), 1, D, 0, 0,
                     0));
        }
        PG__TRY(bind(b, &l->ln2_w, true, NAME(n, "%slayer_norm2.weight", base), 1, D, 0, 0, 0));
        PG__TRY(bind(b, &l->ln2_b, true, NAME(n, "%slayer_norm2.bias", base), 1, D, 0, 0, 0));
        PG__TRY(bind(b, &l->fc1_w, true, NAME(n, "%smlp.fc1.weight", base), 2, F, D, 0, 0));
        PG__TRY(bind(b, &l->fc1_b, true, NAME(n, "%smlp.fc1.bias", base), 1, F, 0, 0, 0));
        PG__TRY(bind(b, &l->fc2_w, true, NAME(n, "%smlp.fc2.weight", base), 2, D, F, 0, 0));
        PG__TRY(bind(b, &l->fc2_b, true, NAME(n, "%smlp.fc2.bias", base), 1, D, 0, 0, 0));
    }
    PG__TRY(bind(b, &w->post_ln_w, true, NAME(n, "%spost_layernorm.weight", pre), 1, D, 0, 0, 0));
    PG__TRY(bind(b, &w->post_ln_b, true, NAME(n, "%spost_layernorm.bias", pre), 1, D, 0, 0, 0));
    return PG_OK;
}

static pg_status bind_projector(binder *b)
{
    const pg__config *c = &b->m->cfg;
    pg__projector_weights *w = &b->m->projector;
    PG__TRY(bind(b, &w->w, true, "multi_modal_projector.linear.weight", 2, c->text.hidden,
             c->vision.hidden, 0, 0));
    PG__TRY(bind(b, &w->b, true, "multi_modal_projector.linear.bias", 1, c->text.hidden, 0, 0, 0));
    return PG_OK;
}

static pg_status bind_decoder(binder *b)
{
    const pg__text_config *c = &b->m->cfg.text;
    pg__decoder_weights *w = &b->m->decoder;
    const int64_t D = c->hidden, F = c->ffn, V = c->vocab;
    const int64_t Q = (int64_t)c->heads * c->head_dim, KV = (int64_t)c->kv_heads * c->head_dim;
    const char *pre = "language_model.model.";
    char n[256], base[128];
    PG__TRY(bind(b, &w->embed, true, NAME(n, "%sembed_tokens.weight", pre), 2, V, D, 0, 0));
    for (int32_t i = 0; i < c->layers; i++) {
        pg__decoder_layer *l = &w->layers[i];
        snprintf(base, sizeof base, "%slayers.%d.", pre, (int)i);
        PG__TRY(bind(b, &l->in_norm, true, NAME(n, "%sinput_layernorm.weight", base), 1, D, 0, 0, 0));
        PG__TRY(bind(b, &l->q_w, true, NAME(n, "%sself_attn.q_proj.weight", base), 2, Q, D, 0, 0));
        PG__TRY(bind(b, &l->k_w, true, NAME(n, "%sself_attn.k_proj.weight", base), 2, KV, D, 0, 0));
        PG__TRY(bind(b, &l->v_w, true, NAME(n, "%sself_attn.v_proj.weight", base), 2, KV, D, 0, 0));
        PG__TRY(bind(b, &l->o_w, true, NAME(n, "%sself_attn.o_proj.weight", base), 2, D, Q, 0, 0));
        PG__TRY(bind(b, &l->post_attn_norm, true,
                 NAME(n, "%spost_attention_layernorm.weight", base), 1, D, 0, 0, 0));
        PG__TRY(bind(b, &l->pre_ff_norm, true, NAME(n, "%spre_feedforward_layernorm.weight", base),
                 1, D, 0, 0, 0));
        PG__TRY(bind(b, &l->gate_w, true, NAME(n, "%smlp.gate_proj.weight", base), 2, F, D, 0, 0));
        PG__TRY(bind(b, &l->up_w, true, NAME(n, "%smlp.up_proj.weight", base), 2, F, D, 0, 0));
        PG__TRY(bind(b, &l->down_w, true, NAME(n, "%smlp.down_proj.weight", base), 2, D, F, 0, 0));
        PG__TRY(bind(b, &l->post_ff_norm, true,
                 NAME(n, "%spost_feedforward_layernorm.weight", base), 1, D, 0, 0, 0));
    }
    PG__TRY(bind(b, &w->final_norm, true, NAME(n, "%snorm.weight", pre), 1, D, 0, 0, 0));
    /* A separate output head is optional (the hub files tie it to the embedding). */
    PG__TRY(bind(b, &w->lm_head, false, "language_model.lm_head.weight", 2, V, D, 0, 0));
    if (!w->lm_head.data) {
        w->lm_head = w->embed;
    }
    return PG_OK;
}

/* Every stored tensor must have been bound. */
static pg_status check_all_used(const binder *b)
{
    for (size_t i = 0; i < b->n; i++) {
        if (!b->e[i].used) {
            return pg__error(PG_ERR_FORMAT,
                             "%s: unexpected tensor '%s' (not part of the model the config "
                             "describes)",
                             b->e[i].file->path, b->e[i].t->name);
        }
    }
    return PG_OK;
}

pg_status pg__model_bind_weights(pg_model *m, const char *dir)
{
    binder b = { .m = m, .dir = dir, .dry = m->n_files == 0 };
    m->vision.layers = pg__calloc((size_t)m->cfg.vision.layers, sizeof *m->vision.layers);
    m->decoder.layers = pg__calloc((size_t)m->cfg.text.layers, sizeof *m->decoder.layers);
    if (!m->vision.layers || !m->decoder.layers) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    pg_status st = b.dry ? PG_OK : build_table(&b);
    if (st == PG_OK) {
        st = bind_vision(&b);
    }
    if (st == PG_OK) {
        st = bind_projector(&b);
    }
    if (st == PG_OK) {
        st = bind_decoder(&b);
    }
    if (st == PG_OK && !b.dry) {
        st = check_all_used(&b);
    }
    m->n_params = b.n_params;
    free_table(&b);
    return st;
}

static pg_status visit(pg__tensor_visit_fn fn, void *user, pg__tensor *t, bool matmul)
{
    return fn(user, t, matmul);
}

pg_status pg__model_foreach_tensor(pg_model *m, pg__tensor_visit_fn fn, void *user)
{
    pg__vision_weights *v = &m->vision;
    PG__TRY(visit(fn, user, &v->patch_w, false));
    PG__TRY(visit(fn, user, &v->patch_b, false));
    PG__TRY(visit(fn, user, &v->pos, false));
    for (int32_t i = 0; i < m->cfg.vision.layers; i++) {
        pg__vision_layer *l = &v->layers[i];
        pg__tensor *mats[] = { &l->q_w, &l->k_w, &l->v_w, &l->o_w, &l->fc1_w, &l->fc2_w };
        pg__tensor *vecs[] = { &l->ln1_w, &l->ln1_b, &l->q_b,   &l->k_b,   &l->v_b,
                               &l->o_b,   &l->ln2_w, &l->ln2_b, &l->fc1_b, &l->fc2_b };
        for (size_t k = 0; k < sizeof mats / sizeof mats[0]; k++) {
            PG__TRY(visit(fn, user, mats[k], true));
        }
        for (size_t k = 0; k < sizeof vecs / sizeof vecs[0]; k++) {
            PG__TRY(visit(fn, user, vecs[k], false));
        }
    }
    PG__TRY(visit(fn, user, &v->post_ln_w, false));
    PG__TRY(visit(fn, user, &v->post_ln_b, false));
    PG__TRY(visit(fn, user, &m->projector.w, true));
    PG__TRY(visit(fn, user, &m->projector.b, false));
    pg__decoder_weights *d = &m->decoder;
    /* The embedding is read row by row (get_rows), so it stays as stored; a separate or
     * tied output head is a matmul weight of its own. */
    PG__TRY(visit(fn, user, &d->embed, false));
    for (int32_t i = 0; i < m->cfg.text.layers; i++) {
        pg__decoder_layer *l = &d->layers[i];
        pg__tensor *mats[] = { &l->q_w, &l->k_w, &l->v_w, &l->o_w,
                               &l->gate_w, &l->up_w, &l->down_w };
        pg__tensor *vecs[] = { &l->in_norm, &l->post_attn_norm, &l->pre_ff_norm,
                               &l->post_ff_norm };
        for (size_t k = 0; k < sizeof mats / sizeof mats[0]; k++) {
            PG__TRY(visit(fn, user, mats[k], true));
        }
        for (size_t k = 0; k < sizeof vecs / sizeof vecs[0]; k++) {
            PG__TRY(visit(fn, user, vecs[k], false));
        }
    }
    PG__TRY(visit(fn, user, &d->final_norm, false));
    PG__TRY(visit(fn, user, &d->lm_head, true));
    return PG_OK;
}
