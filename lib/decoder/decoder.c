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

/* Activations of a forward call over up to `cap` rows. */
struct pg__decoder_scratch {
    int64_t cap;      /* rows */
    float *a;         /* normed input [cap][D] */
    float *q, *att;   /* [cap][H*hd] */
    float *k, *v;     /* [cap][K*hd] */
    float *o;         /* [cap][D] */
    float *gate, *up; /* [mlp_chunk_rows(cap)][F] */
    int32_t *pos;     /* RoPE positions [cap] */
};

void pg__decoder_scratch_free(pg__decoder_scratch *s)
{
    if (!s) {
        return;
    }
    free(s->a);
    free(s->q);
    free(s->att);
    free(s->k);
    free(s->v);
    free(s->o);
    free(s->gate);
    free(s->up);
    free(s->pos);
    free(s);
}

static float *alloc_rows(int64_t n, int64_t width)
{
    size_t count;
    if (!pg__mul_size((size_t)n, (size_t)width, &count)) {
        return NULL;
    }
    return pg__malloc_array(count, sizeof(float));
}

pg_status pg__decoder_scratch_new(pg__decoder_scratch **out, const pg_model *m, int64_t n)
{
    const pg__text_config *tc = &m->cfg.text;
    const int64_t qw = (int64_t)tc->heads * tc->head_dim;
    const int64_t kw = (int64_t)tc->kv_heads * tc->head_dim;
    *out = NULL;
    pg__decoder_scratch *s = pg__calloc(1, sizeof *s);
    if (!s || n <= 0) {
        free(s);
        return pg__error(n <= 0 ? PG_ERR_INTERNAL : PG_ERR_OUT_OF_MEMORY,
                         "decoder: no scratch for %lld rows", (long long)n);
    }
    s->cap = n;
    s->a = alloc_rows(n, tc->hidden);
    s->q = alloc_rows(n, qw);
    s->att = alloc_rows(n, qw);
    s->k = alloc_rows(n, kw);
    s->v = alloc_rows(n, kw);
    s->o = alloc_rows(n, tc->hidden);
    /* mlp_chunk_rows(rows) never exceeds min(rows, MLP_CHUNK_ROWS) */
    const int64_t chunk = n < MLP_CHUNK_ROWS ? n : MLP_CHUNK_ROWS;
    s->gate = alloc_rows(chunk, tc->ffn);
    s->up = alloc_rows(chunk, tc->ffn);
    s->pos = pg__malloc_array((size_t)n, sizeof(int32_t));
    if (!s->a || !s->q || !s->att || !s->k || !s->v || !s->o || !s->gate || !s->up ||
        !s->pos) {
        pg__decoder_scratch_free(s);
        return pg__error(PG_ERR_OUT_OF_MEMORY, "decoder: out of memory for %lld rows",
                         (long long)n);
    }
    *out = s;
    return PG_OK;
}

/* The sequences' keys and values into their caches, then attention per sequence. */
static pg_status attend(const pg_model *m, int32_t li, const pg__decoder_seq *seqs,
                        int32_t n_seqs, pg__decoder_scratch *s)
{
    const pg__text_config *tc = &m->cfg.text;
    pg__backend *be = m->backend;
    const int64_t qw = (int64_t)tc->heads * tc->head_dim;
    const int64_t kw = (int64_t)tc->kv_heads * tc->head_dim;
    /* Gemma 2: even layers are the sliding-window ones (one-sided window, see pg__attn). */
    const bool sliding = (li % 2) == 0 && tc->sliding_window > 0;
    pg_status st = PG_OK;
    int64_t r0 = 0;
    for (int32_t i = 0; i < n_seqs && st == PG_OK; r0 += seqs[i].n, i++) {
        const pg__decoder_seq *q = &seqs[i];
        st = pg__kv_cache_write(be, q->kv, li, q->start, q->n, s->k + r0 * kw, s->v + r0 * kw);
        if (st != PG_OK) {
            break;
        }
        pg__attn at = {
            .out = s->att + r0 * qw, .ld_out = qw, .q = s->q + r0 * qw, .ld_q = qw,
            .k = pg__kv_cache_k(q->kv, li), .v = pg__kv_cache_v(q->kv, li),
            .kv_dtype = q->kv->dtype, .kv_head_stride = tc->head_dim,
            .kv_row_stride = q->kv->row,
            .n_q = q->n, .q_start = q->start, .n_kv = q->start + q->n,
            .n_heads = tc->heads, .n_kv_heads = tc->kv_heads, .head_dim = tc->head_dim,
            .scale = 1.0f / sqrtf(tc->query_pre_attn_scalar), .softcap = tc->attn_softcap,
            .prefix_len = q->prefix_len, .window = sliding ? tc->sliding_window : 0,
        };
        st = be->ops->attention(be, &at);
    }
    return st;
}

/* x += RMSNorm_post_attn(Wo . attention(RoPE(q), RoPE(k), v)) with a = RMSNorm_in(x). */
static pg_status attention_block(const pg_model *m, int32_t li, const pg__decoder_seq *seqs,
                                 int32_t n_seqs, float *x, int64_t n, pg__decoder_scratch *s)
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
        st = attend(m, li, seqs, n_seqs, s);
    }
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
static pg_status mlp_block(const pg_model *m, int32_t li, float *x, int64_t n,
                           pg__decoder_scratch *s)
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

/* Final RMSNorm of the last n_out rows into s->a (and final_norm, if given). */
static pg_status final_norm_rows(const pg_model *m, const float *x, int64_t n, int64_t n_out,
                                 float *final_norm, pg__decoder_scratch *s)
{
    const pg__text_config *tc = &m->cfg.text;
    pg__backend *be = m->backend;
    const int64_t d = tc->hidden;
    pg_status st = be->ops->rms_norm(be, s->a, d, x + (n - n_out) * d, d, n_out, d,
                                     &m->decoder.final_norm, tc->rms_eps);
    if (st == PG_OK && final_norm) {
        memcpy(final_norm + (n - n_out) * d, s->a, (size_t)(n_out * d) * sizeof(float));
    }
    return st;
}

pg_status pg__decoder_head(const pg_model *m, const float *x, int64_t n, float *logits,
                           int64_t n_logits, pg__decoder_scratch *s)
{
    const pg__text_config *tc = &m->cfg.text;
    pg__backend *be = m->backend;
    if (n_logits <= 0 || n_logits > n || n_logits > s->cap) {
        return pg__error(PG_ERR_INTERNAL, "decoder: bad logits row count %lld of %lld",
                         (long long)n_logits, (long long)n);
    }
    pg_status st = final_norm_rows(m, x, n, n_logits, NULL, s);
    if (st == PG_OK) {
        st = be->ops->matmul(be, logits, tc->vocab, s->a, tc->hidden, n_logits,
                             &m->decoder.lm_head, NULL);
    }
    if (st == PG_OK && tc->final_softcap > 0.0f) {
        st = be->ops->softcap(be, logits, logits, tc->final_softcap,
                              (size_t)n_logits * (size_t)tc->vocab);
    }
    return st;
}

/* Rows in all sequences, after checking that each fits its cache; -1 on a bad one. */
static int64_t seq_rows(const pg__decoder_seq *seqs, int32_t n_seqs)
{
    int64_t n = 0;
    for (int32_t i = 0; i < n_seqs; i++) {
        const pg__decoder_seq *q = &seqs[i];
        if (q->n <= 0 || q->start < 0 || q->start > q->kv->n_ctx - q->n) {
            pg__error(PG_ERR_LIMIT, "decoder: %lld tokens at %lld do not fit the context of "
                      "%lld", (long long)q->n, (long long)q->start, (long long)q->kv->n_ctx);
            return -1;
        }
        n += q->n;
    }
    return n;
}

pg_status pg__decoder_layers(const pg_model *m, const pg__decoder_seq *seqs, int32_t n_seqs,
                             float *x, int32_t l0, int32_t l1, pg__decoder_scratch *s,
                             const pg__decoder_trace *trace, atomic_int *interrupt)
{
    const pg__text_config *tc = &m->cfg.text;
    const int64_t n = seq_rows(seqs, n_seqs);
    if (n < 0) {
        return PG_ERR_LIMIT;
    }
    if (n == 0 || n > s->cap || l0 < 0 || l1 > tc->layers || l0 > l1) {
        return pg__error(PG_ERR_INTERNAL, "decoder: %lld rows (room for %lld), layers %d..%d",
                         (long long)n, (long long)s->cap, (int)l0, (int)l1);
    }
    const size_t nd = (size_t)n * (size_t)tc->hidden;
    int64_t r = 0;
    for (int32_t i = 0; i < n_seqs; i++) {
        for (int64_t j = 0; j < seqs[i].n; j++) {
            /* transformers: position_ids = cache_position + 1 */
            s->pos[r++] = (int32_t)(seqs[i].start + j + 1);
        }
    }
    pg_status st = PG_OK;
    for (int32_t li = l0; li < l1 && st == PG_OK; li++) {
        if (interrupt && atomic_load(interrupt)) {
            st = pg__error(PG_ERR_CANCELLED, "interrupted in decoder layer %d", (int)li);
            break;
        }
        st = attention_block(m, li, seqs, n_seqs, x, n, s);
        if (st == PG_OK) {
            st = mlp_block(m, li, x, n, s);
        }
        if (st == PG_OK && trace && trace->layer_out) {
            memcpy(trace->layer_out + (size_t)li * nd, x, nd * sizeof(float));
        }
    }
    return st;
}

pg_status pg__decoder_forward(const pg_model *m, pg__kv_cache *kv, float *x, int64_t n,
                              int64_t start, int64_t prefix_len, float *logits,
                              int64_t n_logits, const pg__decoder_trace *trace,
                              atomic_int *interrupt)
{
    const pg__decoder_seq seq = {.kv = kv, .start = start, .n = n, .prefix_len = prefix_len};
    pg__decoder_scratch *s;
    if (n <= 0 || start < 0 || start > kv->n_ctx - n) {
        return pg__error(PG_ERR_LIMIT, "decoder: %lld tokens at %lld do not fit the context "
                         "of %lld", (long long)n, (long long)start, (long long)kv->n_ctx);
    }
    if (n_logits < 0 || n_logits > n) {
        return pg__error(PG_ERR_INTERNAL, "decoder: bad logits row count %lld",
                         (long long)n_logits);
    }
    pg_status st = pg__decoder_scratch_new(&s, m, n);
    if (st != PG_OK) {
        return st;
    }
    st = pg__decoder_layers(m, &seq, 1, x, 0, m->cfg.text.layers, s, trace, interrupt);
    if (st == PG_OK && trace && trace->final_norm) {
        st = final_norm_rows(m, x, n, n, trace->final_norm, s);
    }
    if (st == PG_OK && logits && n_logits > 0) {
        st = pg__decoder_head(m, x, n, logits, n_logits, s);
    }
    pg__decoder_scratch_free(s);
    return st;
}
