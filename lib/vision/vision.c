/* The SigLIP vision tower (spec §4): patch embedding as a matmul, learned positions,
 * pre-LN encoder layers, post-LN. All arithmetic goes through the backend ops. */
#include "vision/vision.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Scratch activations for one forward pass. */
typedef struct vision_scratch {
    float *h;    /* residual stream [N][D] */
    float *a;    /* normed input [N][D] */
    float *q, *k, *v, *att; /* [N][D] each */
    float *ff;   /* [N][F] */
    float *patches; /* [N][3*P*P] */
    int32_t *ids;   /* 0..N-1 for the position table lookup */
} vision_scratch;

void pg__vision_patchify(const float *pixels, int32_t image_size, int32_t patch, float *rows)
{
    const int32_t g = image_size / patch;
    const size_t plane = (size_t)image_size * (size_t)image_size;
    const size_t row_len = (size_t)3 * (size_t)patch * (size_t)patch;
    for (int32_t py = 0; py < g; py++) {
        for (int32_t px = 0; px < g; px++) {
            float *dst = rows + ((size_t)py * (size_t)g + (size_t)px) * row_len;
            for (int32_t c = 0; c < 3; c++) {
                for (int32_t ky = 0; ky < patch; ky++) {
                    const float *src = pixels + (size_t)c * plane +
                                       ((size_t)py * (size_t)patch + (size_t)ky) *
                                           (size_t)image_size +
                                       (size_t)px * (size_t)patch;
                    memcpy(dst, src, (size_t)patch * sizeof *dst);
                    dst += patch;
                }
            }
        }
    }
}

static void scratch_free(vision_scratch *s)
{
    free(s->h);
    free(s->a);
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->att);
    free(s->ff);
    free(s->patches);
    free(s->ids);
}

static pg_status scratch_alloc(vision_scratch *s, const pg__vision_config *vc)
{
    const size_t n = (size_t)vc->n_tokens;
    const size_t d = (size_t)vc->hidden;
    size_t nd, nf, np;
    memset(s, 0, sizeof *s);
    if (!pg__mul_size(n, d, &nd) || !pg__mul_size(n, (size_t)vc->ffn, &nf) ||
        !pg__mul_size(n, (size_t)3 * (size_t)vc->patch * (size_t)vc->patch, &np)) {
        return pg__error(PG_ERR_LIMIT, "vision tower: activation size overflows");
    }
    s->h = pg__malloc_array(nd, sizeof(float));
    s->a = pg__malloc_array(nd, sizeof(float));
    s->q = pg__malloc_array(nd, sizeof(float));
    s->k = pg__malloc_array(nd, sizeof(float));
    s->v = pg__malloc_array(nd, sizeof(float));
    s->att = pg__malloc_array(nd, sizeof(float));
    s->ff = pg__malloc_array(nf, sizeof(float));
    s->patches = pg__malloc_array(np, sizeof(float));
    s->ids = pg__malloc_array(n, sizeof(int32_t));
    if (!s->h || !s->a || !s->q || !s->k || !s->v || !s->att || !s->ff || !s->patches ||
        !s->ids) {
        scratch_free(s);
        return pg__error(PG_ERR_OUT_OF_MEMORY, "vision tower: out of memory for activations");
    }
    return PG_OK;
}

/* h = patch_conv(pixels) + pos: the conv is a matmul over flattened 14x14x3 patches. */
static pg_status embed_patches(const pg_model *m, const float *pixels, vision_scratch *s)
{
    const pg__vision_config *vc = &m->cfg.vision;
    const pg__vision_weights *w = &m->vision;
    pg__backend *be = m->backend;
    const int64_t n = vc->n_tokens;
    const int64_t d = vc->hidden;
    pg_status st;

    pg__vision_patchify(pixels, vc->image_size, vc->patch, s->patches);
    st = be->ops->matmul(be, s->h, d, s->patches, w->patch_w.cols, n, &w->patch_w, &w->patch_b);
    if (st != PG_OK) {
        return st;
    }
    for (int64_t i = 0; i < n; i++) {
        s->ids[i] = (int32_t)i;
    }
    st = be->ops->get_rows(be, s->a, &w->pos, s->ids, n);
    if (st != PG_OK) {
        return st;
    }
    return be->ops->add(be, s->h, s->h, s->a, (size_t)(n * d));
}

/* h += out_proj(MHA(LN1(h))) with full bidirectional attention. */
static pg_status attention_block(const pg_model *m, const pg__vision_layer *l, vision_scratch *s)
{
    const pg__vision_config *vc = &m->cfg.vision;
    pg__backend *be = m->backend;
    const int64_t n = vc->n_tokens;
    const int64_t d = vc->hidden;
    const int32_t hd = vc->hidden / vc->heads;
    pg_status st;

    st = be->ops->layer_norm(be, s->a, s->h, n, d, &l->ln1_w, &l->ln1_b, vc->ln_eps);
    if (st == PG_OK) {
        st = be->ops->matmul(be, s->q, d, s->a, d, n, &l->q_w, &l->q_b);
    }
    if (st == PG_OK) {
        st = be->ops->matmul(be, s->k, d, s->a, d, n, &l->k_w, &l->k_b);
    }
    if (st == PG_OK) {
        st = be->ops->matmul(be, s->v, d, s->a, d, n, &l->v_w, &l->v_b);
    }
    if (st != PG_OK) {
        return st;
    }
    pg__attn at = {
        .out = s->att, .ld_out = d, .q = s->q, .ld_q = d, .k = s->k, .v = s->v,
        .kv_dtype = PG__F32, .kv_head_stride = hd, .kv_row_stride = d,
        .n_q = n, .q_start = 0, .n_kv = n,
        .n_heads = vc->heads, .n_kv_heads = vc->heads, .head_dim = hd,
        .scale = 1.0f / sqrtf((float)hd), .softcap = 0.0f,
        .prefix_len = n, .window = 0,
    };
    st = be->ops->attention(be, &at);
    if (st == PG_OK) {
        st = be->ops->matmul(be, s->a, d, s->att, d, n, &l->o_w, &l->o_b);
    }
    if (st == PG_OK) {
        st = be->ops->add(be, s->h, s->h, s->a, (size_t)(n * d));
    }
    return st;
}

/* h += fc2(gelu_tanh(fc1(LN2(h)))). */
static pg_status mlp_block(const pg_model *m, const pg__vision_layer *l, vision_scratch *s)
{
    const pg__vision_config *vc = &m->cfg.vision;
    pg__backend *be = m->backend;
    const int64_t n = vc->n_tokens;
    const int64_t d = vc->hidden;
    const int64_t f = vc->ffn;
    pg_status st;

    st = be->ops->layer_norm(be, s->a, s->h, n, d, &l->ln2_w, &l->ln2_b, vc->ln_eps);
    if (st == PG_OK) {
        st = be->ops->matmul(be, s->ff, f, s->a, d, n, &l->fc1_w, &l->fc1_b);
    }
    if (st == PG_OK) {
        st = be->ops->gelu_tanh(be, s->ff, s->ff, (size_t)(n * f));
    }
    if (st == PG_OK) {
        st = be->ops->matmul(be, s->a, d, s->ff, f, n, &l->fc2_w, &l->fc2_b);
    }
    if (st == PG_OK) {
        st = be->ops->add(be, s->h, s->h, s->a, (size_t)(n * d));
    }
    return st;
}

/* The tower in steps: the patch embedding, then one encoder layer per step, then the
 * post-LayerNorm with the last layer. A batch interleaves these steps with other sessions'
 * decoding; pg__vision_forward runs them all. */
struct pg__vision_job {
    const pg_model *m;
    const float *pixels;
    vision_scratch s;
    int32_t next; /* 0: embedding; 1..layers: encoder layer next-1; layers+1: done */
};

pg_status pg__vision_job_new(pg__vision_job **out, const pg_model *m, const float *pixels)
{
    *out = NULL;
    pg__vision_job *j = pg__calloc(1, sizeof *j);
    if (!j) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "vision tower: out of memory");
    }
    pg_status st = scratch_alloc(&j->s, &m->cfg.vision);
    if (st != PG_OK) {
        free(j);
        return st;
    }
    j->m = m;
    j->pixels = pixels;
    *out = j;
    return PG_OK;
}

void pg__vision_job_free(pg__vision_job *j)
{
    if (j) {
        scratch_free(&j->s);
        free(j);
    }
}

int32_t pg__vision_job_steps(const pg_model *m)
{
    return m->cfg.vision.layers + 1;
}

pg_status pg__vision_job_step(pg__vision_job *j, float *out, float *hidden_states, bool *done)
{
    const pg_model *m = j->m;
    const pg__vision_config *vc = &m->cfg.vision;
    const size_t nd = (size_t)vc->n_tokens * (size_t)vc->hidden;
    pg_status st;
    *done = false;
    if (j->next > vc->layers) {
        return pg__error(PG_ERR_INTERNAL, "vision tower: step after the last layer");
    }
    if (j->next == 0) {
        st = embed_patches(m, j->pixels, &j->s);
    } else {
        const pg__vision_layer *l = &m->vision.layers[j->next - 1];
        st = attention_block(m, l, &j->s);
        if (st == PG_OK) {
            st = mlp_block(m, l, &j->s);
        }
    }
    if (st == PG_OK && hidden_states) {
        memcpy(hidden_states + (size_t)j->next * nd, j->s.h, nd * sizeof(float));
    }
    if (st != PG_OK) {
        return st;
    }
    if (++j->next <= vc->layers) {
        return PG_OK;
    }
    *done = true;
    return m->backend->ops->layer_norm(m->backend, out, j->s.h, vc->n_tokens, vc->hidden,
                                       &m->vision.post_ln_w, &m->vision.post_ln_b, vc->ln_eps);
}

pg_status pg__vision_forward(const pg_model *m, const float *pixels, float *out,
                             float *hidden_states, atomic_int *interrupt)
{
    pg__vision_job *j;
    pg_status st = pg__vision_job_new(&j, m, pixels);
    bool done = false;
    while (st == PG_OK && !done) {
        if (interrupt && atomic_load(interrupt)) {
            st = pg__error(PG_ERR_CANCELLED, "interrupted in the vision tower");
            break;
        }
        st = pg__vision_job_step(j, out, hidden_states, &done);
    }
    pg__vision_job_free(j);
    return st;
}
