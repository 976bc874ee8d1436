/* The Gemma 2 decoder layers, final norm and output head (spec §7). */
#include "decoder/decoder.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The feed-forward block runs over at most this many rows at a time: its [rows][ffn]
 * intermediates are the largest activations (a 896 px prompt of 4100 rows would need
 * 300 MB). A 448 px prompt (~1030 rows) fits in one chunk; longer ones are cut into equal
 * chunks (mlp_chunk_rows), since a small last chunk would run the weights through the
 * matmul once more for a few rows (each call streams/packs all of W). */
#define MLP_CHUNK_ROWS 1040

/* Rows per feed-forward chunk for n rows: n split into equal parts of <= MLP_CHUNK_ROWS. */
static int64_t mlp_chunk_rows(int64_t n)
{
    int64_t parts = (n + MLP_CHUNK_ROWS - 1) / MLP_CHUNK_ROWS;
    return parts > 1 ? (n + parts - 1) / parts : n;
}

/* Activations of one forward call over n rows. */
typedef struct dec_scratch {
    float *a;        /* normed input [n][D] */
    float *q, *att;  /* [n][H*hd] */
    float *k, *v;    /* [n][K*hd] */
    float *o;        /* [n][D] */
    float *gate, *up; /* [mlp_chunk_rows(n)][F] */
    int32_t *pos;    /* RoPE positions [n] */
} dec_scratch;

static void scratch_free(dec_scratch *s)
{
    free(s->a);
    free(s->q);
    free(s->att);
    free(s->k);
    free(s->v);
    free(s->o);
    free(s->gate);
    free(s->up);
    free(s->pos);
}

static float *alloc_rows(int64_t n, int64_t width)
{
    size_t count;
    if (!pg__mul_size((size_t)n, (size_t)width, &count)) {
        return NULL;
    }
    return pg__malloc_array(count, sizeof(float));
}

static pg_status scratch_alloc(dec_scratch *s, const pg__text_config *tc, int64_t n)
{
    const int64_t qw = (int64_t)tc->heads * tc->head_dim;
    const int64_t kw = (int64_t)tc->kv_heads * tc->head_dim;
    memset(s, 0, sizeof *s);
    s->a = alloc_rows(n, tc->hidden);
    s->q = alloc_rows(n, qw);
    s->att = alloc_rows(n, qw);
    s->k = alloc_rows(n, kw);
    s->v = alloc_rows(n, kw);
    s->o = alloc_rows(n, tc->hidden);
    const int64_t chunk = mlp_chunk_rows(n);
    s->gate = alloc_rows(chunk, tc->ffn);
    s->up = alloc_rows(chunk, tc->ffn);
    s->pos = pg__malloc_array((size_t)n, sizeof(int32_t));
    if (!s->a || !s->q || !s->att || !s->k || !s->v || !s->o || !s->gate || !s->up ||
        !s->pos) {
        scratch_free(s);
        return pg__error(PG_ERR_OUT_OF_MEMORY, "decoder: out of memory for %lld rows",
                         (long long)n);
    }
    return PG_OK;
}

/* x += RMSNorm_post_attn(Wo . attention(RoPE(q), RoPE(k), v)) with a = RMSNorm_in(x). */
static pg_status attention_block(const pg_model *m, int32_t li, pg__kv_cache *kv, float *x,
                                 int64_t n, int64_t start, int64_t prefix_len, dec_scratch *s)
{
    const pg__text_config *tc = &m->cfg.text;
    const pg__decoder_layer *l = &m->decoder.layers[li];
    pg__backend *be = m->backend;
    const int64_t d = tc->hidden;
    const int64_t qw = (int64_t)tc->heads * tc->head_dim;
    const int64_t kw = (int64_t)tc->kv_heads * tc->head_dim;
    pg_status st;

    st = be->ops->rms_norm(be, s->a, d, x, d, n, d, &l->in_norm, tc->rms_eps);
    if (st == PG_OK) {
        st = be->ops->matmul(be, s->q, qw, s->a, d, n, &l->q_w, NULL);
    }
    if (st == PG_OK) {
        st = be->ops->matmul(be, s->k, kw, s->a, d, n, &l->k_w, NULL);
    }
    if (st == PG_OK) {
        st = be->ops->matmul(be, s->v, kw, s->a, d, n, &l->v_w, NULL);
    }
    if (st == PG_OK) {
        st = be->ops->rope(be, s->q, n, qw, tc->heads, tc->head_dim, s->pos, tc->rope_theta);
    }
    if (st == PG_OK) {
        st = be->ops->rope(be, s->k, n, kw, tc->kv_heads, tc->head_dim, s->pos,
                           tc->rope_theta);
    }
    if (st == PG_OK) {
        st = pg__kv_cache_write(be, kv, li, start, n, s->k, s->v);
    }
    if (st != PG_OK) {
        return st;
    }
    /* Gemma 2: even layers are the sliding-window ones (one-sided window, see pg__attn). */
    const bool sliding = (li % 2) == 0 && tc->sliding_window > 0;
    pg__attn at = {
        .out = s->att, .ld_out = qw, .q = s->q, .ld_q = qw,
        .k = pg__kv_cache_k(kv, li), .v = pg__kv_cache_v(kv, li), .kv_dtype = kv->dtype,
        .kv_head_stride = tc->head_dim, .kv_row_stride = kv->row,
        .n_q = n, .q_start = start, .n_kv = start + n,
        .n_heads = tc->heads, .n_kv_heads = tc->kv_heads, .head_dim = tc->head_dim,
        .scale = 1.0f / sqrtf(tc->query_pre_attn_scalar), .softcap = tc->attn_softcap,
        .prefix_len = prefix_len, .window = sliding ? tc->sliding_window : 0,
    };
    st = be->ops->attention(be, &at);
    if (st == PG_OK) {
        st = be->ops->matmul(be, s->o, d, s->att, qw, n, &l->o_w, NULL);
    }
    if (st == PG_OK) {
        st = be->ops->rms_norm(be, s->o, d, s->o, d, n, d, &l->post_attn_norm, tc->rms_eps);
    }
    if (st == PG_OK) {
        st = be->ops->add(be, x, x, s->o, (size_t)(n * d));
    }
    return st;
}

/* x += RMSNorm_post_ff(down(gelu_tanh(gate(f)) * up(f))) with f = RMSNorm_pre_ff(x), over
 * the rows in chunks (rows are independent here). */
static pg_status mlp_block(const pg_model *m, int32_t li, float *x, int64_t n, dec_scratch *s)
{
    const pg__text_config *tc = &m->cfg.text;
    const pg__decoder_layer *l = &m->decoder.layers[li];
    pg__backend *be = m->backend;
    const int64_t d = tc->hidden;
    const int64_t f = tc->ffn;
    pg_status st = be->ops->rms_norm(be, s->a, d, x, d, n, d, &l->pre_ff_norm, tc->rms_eps);

    const int64_t chunk = mlp_chunk_rows(n);
    for (int64_t r0 = 0; r0 < n && st == PG_OK; r0 += chunk) {
        const int64_t rows = n - r0 < chunk ? n - r0 : chunk;
        const float *a = s->a + r0 * d;
        float *o = s->o + r0 * d;
        st = be->ops->matmul(be, s->gate, f, a, d, rows, &l->gate_w, NULL);
        if (st == PG_OK) {
            st = be->ops->matmul(be, s->up, f, a, d, rows, &l->up_w, NULL);
        }
        if (st == PG_OK) {
            st = be->ops->geglu(be, s->gate, s->gate, s->up, (size_t)(rows * f));
        }
        if (st == PG_OK) {
            st = be->ops->matmul(be, o, d, s->gate, f, rows, &l->down_w, NULL);
        }
    }
    if (st == PG_OK) {
        st = be->ops->rms_norm(be, s->o, d, s->o, d, n, d, &l->post_ff_norm, tc->rms_eps);
    }
    if (st == PG_OK) {
        st = be->ops->add(be, x, x, s->o, (size_t)(n * d));
    }
    return st;
}

/* Final RMSNorm of the last n_logits rows, tied head, final soft-cap. */
static pg_status head(const pg_model *m, const float *x, int64_t n, float *logits,
                      int64_t n_logits, float *final_norm, dec_scratch *s)
{
    const pg__text_config *tc = &m->cfg.text;
    pg__backend *be = m->backend;
    const int64_t d = tc->hidden;
    const float *rows = x + (n - n_logits) * d;
    pg_status st;

    st = be->ops->rms_norm(be, s->a, d, rows, d, n_logits, d, &m->decoder.final_norm,
                           tc->rms_eps);
    if (st == PG_OK && final_norm) {
        memcpy(final_norm + (n - n_logits) * d, s->a, (size_t)(n_logits * d) * sizeof(float));
    }
    if (st != PG_OK || !logits) {
        return st;
    }
    st = be->ops->matmul(be, logits, tc->vocab, s->a, d, n_logits, &m->decoder.lm_head, NULL);
    if (st == PG_OK && tc->final_softcap > 0.0f) {
        st = be->ops->softcap(be, logits, logits, tc->final_softcap,
                              (size_t)n_logits * (size_t)tc->vocab);
    }
    return st;
}

pg_status pg__decoder_forward(const pg_model *m, pg__kv_cache *kv, float *x, int64_t n,
                              int64_t start, int64_t prefix_len, float *logits,
                              int64_t n_logits, const pg__decoder_trace *trace,
                              atomic_int *interrupt)
{
    const pg__text_config *tc = &m->cfg.text;
    const size_t nd = (size_t)n * (size_t)tc->hidden;
    dec_scratch s;
    pg_status st;

    if (n <= 0 || start < 0 || start > kv->n_ctx - n) {
        return pg__error(PG_ERR_LIMIT, "decoder: %lld tokens at %lld do not fit the context "
                         "of %lld", (long long)n, (long long)start, (long long)kv->n_ctx);
    }
    if (n_logits < 0 || n_logits > n) {
        return pg__error(PG_ERR_INTERNAL, "decoder: bad logits row count %lld",
                         (long long)n_logits);
    }
    st = scratch_alloc(&s, tc, n);
    if (st != PG_OK) {
        return st;
    }
    for (int64_t r = 0; r < n; r++) {
        s.pos[r] = (int32_t)(start + r + 1); /* transformers: position_ids = cache_position+1 */
    }
    for (int32_t li = 0; li < tc->layers && st == PG_OK; li++) {
        if (interrupt && atomic_load(interrupt)) {
            st = pg__error(PG_ERR_CANCELLED, "interrupted in decoder layer %d", (int)li);
            break;
        }
        st = attention_block(m, li, kv, x, n, start, prefix_len, &s);
        if (st == PG_OK) {
            st = mlp_block(m, li, x, n, &s);
        }
        if (st == PG_OK && trace && trace->layer_out) {
            memcpy(trace->layer_out + (size_t)li * nd, x, nd * sizeof(float));
        }
    }
    if (st == PG_OK && trace && trace->final_norm) {
        st = head(m, x, n, NULL, n, trace->final_norm, &s);
    }
    if (st == PG_OK && logits && n_logits > 0) {
        st = head(m, x, n, logits, n_logits, NULL, &s);
    }
    scratch_free(&s);
    return st;
}
