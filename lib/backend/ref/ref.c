/*
 * The reference backend: every op written in the most direct way, accumulating in double,
 * on the calling thread. It is the ground truth the CPU backend is tested against, so
 * clarity beats speed everywhere here. It holds no mutable state, so concurrent calls from
 * several threads are safe.
 */
#include "backend/ref/ref.h"

#include "backend/tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* gelu_tanh(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), evaluated as the
 * identical x / (1 + exp(-2u)) so the far negative tail keeps its relative precision. */
static double gelu_tanh_d(double x)
{
    const double c = 0.7978845608028654; /* sqrt(2/pi) */
    double u = c * (x + 0.044715 * x * x * x);
    return x / (1.0 + exp(-2.0 * u));
}

static void ref_destroy(pg__backend *be)
{
    free(be);
}

static pg_status ref_matmul(pg__backend *be, float *y, int64_t ldy, const float *x,
                            int64_t ldx, int64_t m, const pg__tensor *w, const pg__tensor *bias)
{
    (void)be;
    pg_status st = pg__check_matmul(y, ldy, x, ldx, m, w, bias);
    if (st != PG_OK) {
        return st;
    }
    float *row = pg__malloc_array((size_t)w->cols, sizeof *row);
    if (!row) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    /* Outputs are written only after every input element of their column is read, but y
     * may not alias x anyway (documented by the op), so order does not matter. */
    for (int64_t n = 0; n < w->rows; n++) {
        pg__tensor_row_f32(w, n, row);
        double b = bias ? (double)pg__load_f32(bias->data, bias->dtype, (size_t)n) : 0.0;
        for (int64_t i = 0; i < m; i++) {
            const float *xi = x + i * ldx;
            double acc = 0.0;
            for (int64_t k = 0; k < w->cols; k++) {
                acc += (double)xi[k] * (double)row[k];
            }
            y[i * ldy + n] = (float)(acc + b);
        }
    }
    free(row);
    return PG_OK;
}

static pg_status ref_layer_norm(pg__backend *be, float *y, const float *x, int64_t m,
                                int64_t n, const pg__tensor *w, const pg__tensor *b, float eps)
{
    (void)be;
    pg_status st = pg__check_rows(y, n, x, n, m, n, "layer_norm");
    if (st == PG_OK) {
        st = pg__check_vector(w, n, "layer_norm weight");
    }
    if (st == PG_OK) {
        st = pg__check_vector(b, n, "layer_norm bias");
    }
    if (st != PG_OK) {
        return st;
    }
    for (int64_t i = 0; i < m; i++) {
        const float *xi = x + i * n;
        double mean = 0.0, var = 0.0;
        for (int64_t j = 0; j < n; j++) {
            mean += xi[j];
        }
        mean /= (double)n;
        for (int64_t j = 0; j < n; j++) {
            var += ((double)xi[j] - mean) * ((double)xi[j] - mean);
        }
        var /= (double)n;
        double inv = 1.0 / sqrt(var + (double)eps);
        for (int64_t j = 0; j < n; j++) {
            double wj = pg__load_f32(w->data, w->dtype, (size_t)j);
            double bj = pg__load_f32(b->data, b->dtype, (size_t)j);
            y[i * n + j] = (float)(((double)xi[j] - mean) * inv * wj + bj);
        }
    }
    return PG_OK;
}

static pg_status ref_rms_norm(pg__backend *be, float *y, int64_t ldy, const float *x,
                              int64_t ldx, int64_t m, int64_t n, const pg__tensor *w, float eps)
{
    (void)be;
    pg_status st = pg__check_rows(y, ldy, x, ldx, m, n, "rms_norm");
    if (st == PG_OK) {
        st = pg__check_vector(w, n, "rms_norm weight");
    }
    if (st != PG_OK) {
        return st;
    }
    for (int64_t i = 0; i < m; i++) {
        const float *xi = x + i * ldx;
        double ss = 0.0;
        for (int64_t j = 0; j < n; j++) {
            ss += (double)xi[j] * (double)xi[j];
        }
        double inv = 1.0 / sqrt(ss / (double)n + (double)eps);
        for (int64_t j = 0; j < n; j++) {
            double wj = pg__load_f32(w->data, w->dtype, (size_t)j);
            y[i * ldy + j] = (float)((double)xi[j] * inv * (1.0 + wj));
        }
    }
    return PG_OK;
}

static pg_status ref_gelu_tanh(pg__backend *be, float *y, const float *x, size_t n)
{
    (void)be;
    pg_status st = pg__check_elementwise(y, x, x, n, "gelu_tanh");
    for (size_t i = 0; st == PG_OK && i < n; i++) {
        y[i] = (float)gelu_tanh_d(x[i]);
    }
    return st;
}

static pg_status ref_geglu(pg__backend *be, float *y, const float *gate, const float *up,
                           size_t n)
{
    (void)be;
    pg_status st = pg__check_elementwise(y, gate, up, n, "geglu");
    for (size_t i = 0; st == PG_OK && i < n; i++) {
        y[i] = (float)(gelu_tanh_d(gate[i]) * (double)up[i]);
    }
    return st;
}

static pg_status ref_add(pg__backend *be, float *y, const float *a, const float *b, size_t n)
{
    (void)be;
    pg_status st = pg__check_elementwise(y, a, b, n, "add");
    for (size_t i = 0; st == PG_OK && i < n; i++) {
        y[i] = a[i] + b[i];
    }
    return st;
}

static pg_status ref_scale(pg__backend *be, float *y, const float *x, float s, size_t n)
{
    (void)be;
    pg_status st = pg__check_elementwise(y, x, x, n, "scale");
    for (size_t i = 0; st == PG_OK && i < n; i++) {
        y[i] = x[i] * s;
    }
    return st;
}

static pg_status ref_softcap(pg__backend *be, float *y, const float *x, float cap, size_t n)
{
    (void)be;
    pg_status st = pg__check_elementwise(y, x, x, n, "softcap");
    if (st == PG_OK && !(cap > 0.0f)) {
        st = pg__error(PG_ERR_INVALID_ARGUMENT, "softcap: cap %g must be positive", (double)cap);
    }
    for (size_t i = 0; st == PG_OK && i < n; i++) {
        y[i] = (float)((double)cap * tanh((double)x[i] / (double)cap));
    }
    return st;
}

static pg_status ref_rope(pg__backend *be, float *x, int64_t m, int64_t ld, int32_t n_heads,
                          int32_t head_dim, const int32_t *pos, float theta)
{
    (void)be;
    pg_status st = pg__check_rope(x, m, ld, n_heads, head_dim, pos);
    if (st != PG_OK) {
        return st;
    }
    int32_t half = head_dim / 2;
    for (int64_t r = 0; r < m; r++) {
        for (int32_t h = 0; h < n_heads; h++) {
            float *v = x + r * ld + (int64_t)h * head_dim;
            for (int32_t i = 0; i < half; i++) {
                double inv_freq = pow((double)theta, -2.0 * i / (double)head_dim);
                double ang = (double)pos[r] * inv_freq;
                double c = cos(ang), s = sin(ang);
                double x0 = v[i], x1 = v[i + half];
                v[i] = (float)(x0 * c - x1 * s);
                v[i + half] = (float)(x1 * c + x0 * s);
            }
        }
    }
    return PG_OK;
}

/* One query row of one head: scores over the visible keys, softmax, weighted sum. */
static void ref_attn_row(const pg__attn *a, int64_t qi, int32_t h, double *scores)
{
    int32_t group = a->n_heads / a->n_kv_heads;
    int32_t kvh = h / group;
    const float *q = a->q + qi * a->ld_q + (int64_t)h * a->head_dim;
    float *out = a->out + qi * a->ld_out + (int64_t)h * a->head_dim;
    int64_t abs_i = a->q_start + qi;
    size_t kbase = (size_t)kvh * (size_t)a->kv_head_stride;
    double maxs = -INFINITY;
    for (int64_t j = 0; j < a->n_kv; j++) {
        if (!pg__attn_visible(a, abs_i, j)) {
            scores[j] = -INFINITY;
            continue;
        }
        size_t off = kbase + (size_t)j * (size_t)a->kv_row_stride;
        double s = 0.0;
        for (int32_t d = 0; d < a->head_dim; d++) {
            s += (double)q[d] * (double)pg__load_f32(a->k, a->kv_dtype, off + (size_t)d);
        }
        s *= (double)a->scale;
        if (a->softcap > 0.0f) {
            s = (double)a->softcap * tanh(s / (double)a->softcap);
        }
        scores[j] = s;
        maxs = s > maxs ? s : maxs;
    }
    for (int32_t d = 0; d < a->head_dim; d++) {
        out[d] = 0.0f;
    }
    if (maxs == -INFINITY) { /* no visible key: the output row is zero */
        return;
    }
    double sum = 0.0;
    for (int64_t j = 0; j < a->n_kv; j++) {
        scores[j] = scores[j] == -INFINITY ? 0.0 : exp(scores[j] - maxs);
        sum += scores[j];
    }
    for (int32_t d = 0; d < a->head_dim; d++) {
        double acc = 0.0;
        for (int64_t j = 0; j < a->n_kv; j++) {
            if (scores[j] != 0.0) {
                size_t off = kbase + (size_t)j * (size_t)a->kv_row_stride + (size_t)d;
                acc += scores[j] * (double)pg__load_f32(a->v, a->kv_dtype, off);
            }
        }
        out[d] = (float)(acc / sum);
    }
}

static pg_status ref_attention(pg__backend *be, const pg__attn *a)
{
    (void)be;
    pg_status st = pg__check_attn(a);
    if (st != PG_OK) {
        return st;
    }
    double *scores = pg__malloc_array((size_t)(a->n_kv > 0 ? a->n_kv : 1), sizeof *scores);
    if (!scores) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    for (int64_t qi = 0; qi < a->n_q; qi++) {
        for (int32_t h = 0; h < a->n_heads; h++) {
            ref_attn_row(a, qi, h, scores);
        }
    }
    free(scores);
    return PG_OK;
}

static pg_status ref_get_rows(pg__backend *be, float *y, const pg__tensor *w,
                              const int32_t *ids, int64_t n)
{
    (void)be;
    pg_status st = pg__check_get_rows(y, w, ids, n);
    for (int64_t r = 0; st == PG_OK && r < n; r++) {
        pg__tensor_row_f32(w, ids[r], y + r * w->cols);
    }
    return st;
}

static pg_status ref_convert(pg__backend *be, void *dst, pg__dtype dt, const float *src,
                             size_t n)
{
    (void)be;
    pg_status st = pg__check_convert(dst, dt, src, n);
    if (st != PG_OK) {
        return st;
    }
    for (size_t i = 0; i < n; i++) {
        switch (dt) {
        case PG__F16:
            ((uint16_t *)dst)[i] = pg__f32_to_f16(src[i]);
            break;
        case PG__BF16:
            ((uint16_t *)dst)[i] = pg__f32_to_bf16(src[i]);
            break;
        default:
            ((float *)dst)[i] = src[i];
            break;
        }
    }
    return PG_OK;
}

static const pg__backend_ops ref_ops = {
    .name = "ref",
    .destroy = ref_destroy,
    .matmul = ref_matmul,
    .layer_norm = ref_layer_norm,
    .rms_norm = ref_rms_norm,
    .gelu_tanh = ref_gelu_tanh,
    .geglu = ref_geglu,
    .add = ref_add,
    .scale = ref_scale,
    .softcap = ref_softcap,
    .rope = ref_rope,
    .attention = ref_attention,
    .get_rows = ref_get_rows,
    .convert = ref_convert,
};

pg_status pg__ref_backend_create(pg__backend **out, int32_t n_threads)
{
    pg__backend *be = pg__calloc(1, sizeof *be);
    if (!be) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    be->ops = &ref_ops;
    be->n_threads = n_threads > 0 ? n_threads : 1;
    *out = be;
    return PG_OK;
}
