/* Argument checks and element access shared by the backends (see tensor.h). */
#include "backend/tensor.h"

#include "backend/quant.h"

bool pg__dtype_is_plain(pg__dtype dt)
{
    return dt == PG__F32 || dt == PG__F16 || dt == PG__BF16;
}

bool pg__dtype_is_valid(pg__dtype dt)
{
    return pg__dtype_is_plain(dt) || dt == PG__Q8 || dt == PG__Q4;
}

void pg__tensor_row_f32(const pg__tensor *w, int64_t row, float *out)
{
    if (!pg__dtype_is_plain(w->dtype)) {
        pg__dequantize_row(w, row, out);
        return;
    }
    size_t base = (size_t)row * (size_t)w->cols;
    for (int64_t c = 0; c < w->cols; c++) {
        out[c] = pg__load_f32(w->data, w->dtype, base + (size_t)c);
    }
}

static const char *tname(const pg__tensor *w)
{
    return w && w->name ? w->name : "(unnamed)";
}

/* A weight matrix: known dtype, positive shape, data present. */
static pg_status check_matrix(const pg__tensor *w, const char *op)
{
    if (!w) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "%s: NULL weight", op);
    }
    if (!pg__dtype_is_valid(w->dtype)) {
        return pg__error(PG_ERR_UNSUPPORTED, "%s: weight %s has unknown dtype %d", op,
                         tname(w), (int)w->dtype);
    }
    if (w->rows <= 0 || w->cols <= 0 || !w->data) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "%s: weight %s is empty (%lld x %lld)", op,
                         tname(w), (long long)w->rows, (long long)w->cols);
    }
    return PG_OK;
}

pg_status pg__check_vector(const pg__tensor *v, int64_t n, const char *what)
{
    if (!v) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "%s: NULL tensor", what);
    }
    if (!pg__dtype_is_plain(v->dtype)) {
        return pg__error(PG_ERR_UNSUPPORTED, "%s: %s must be f32/f16/bf16, not %s", what,
                         tname(v), pg__dtype_name(v->dtype));
    }
    if (!v->data || v->rows < 0 || v->cols < 0 || v->rows * v->cols != n) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "%s: %s has %lld x %lld elements, need %lld",
                         what, tname(v), (long long)v->rows, (long long)v->cols, (long long)n);
    }
    return PG_OK;
}

pg_status pg__check_matmul(const float *y, int64_t ldy, const float *x, int64_t ldx,
                           int64_t m, const pg__tensor *w, const pg__tensor *bias)
{
    pg_status st = check_matrix(w, "matmul");
    if (st != PG_OK) {
        return st;
    }
    if (m < 0 || !y || !x) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "matmul %s: bad input (m=%lld, x=%p, y=%p)",
                         tname(w), (long long)m, (const void *)x, (const void *)y);
    }
    if (ldx < w->cols || ldy < w->rows) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "matmul %s: strides ldx=%lld ldy=%lld below k=%lld n=%lld", tname(w),
                         (long long)ldx, (long long)ldy, (long long)w->cols,
                         (long long)w->rows);
    }
    if (bias) {
        return pg__check_vector(bias, w->rows, "matmul bias");
    }
    return PG_OK;
}

pg_status pg__check_attn(const pg__attn *a)
{
    if (!a || !a->out || !a->q || !a->k || !a->v) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "attention: NULL pointer");
    }
    if (!pg__dtype_is_plain(a->kv_dtype)) {
        return pg__error(PG_ERR_UNSUPPORTED, "attention: kv dtype %s (need f32, f16, bf16)",
                         pg__dtype_name(a->kv_dtype));
    }
    if (a->n_heads <= 0 || a->n_kv_heads <= 0 || a->head_dim <= 0 ||
        a->n_heads % a->n_kv_heads != 0) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "attention: bad heads (n_heads=%d, n_kv_heads=%d, head_dim=%d)",
                         (int)a->n_heads, (int)a->n_kv_heads, (int)a->head_dim);
    }
    int64_t width = (int64_t)a->n_heads * a->head_dim;
    if (a->n_q < 0 || a->n_kv < 0 || a->q_start < 0 || a->ld_q < width || a->ld_out < width ||
        a->kv_row_stride < a->head_dim || a->kv_head_stride < 0 || a->prefix_len < 0 ||
        a->window < 0 || !(a->softcap >= 0.0f) || !(a->scale == a->scale)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "attention: bad sizes (n_q=%lld q_start=%lld n_kv=%lld ld_q=%lld "
                         "ld_out=%lld kv_row_stride=%lld)",
                         (long long)a->n_q, (long long)a->q_start, (long long)a->n_kv,
                         (long long)a->ld_q, (long long)a->ld_out, (long long)a->kv_row_stride);
    }
    return PG_OK;
}

pg_status pg__check_rope(const float *x, int64_t m, int64_t ld, int32_t n_heads,
                         int32_t head_dim, const int32_t *pos)
{
    if (m < 0 || n_heads <= 0 || head_dim <= 0 || head_dim % 2 != 0 ||
        ld < (int64_t)n_heads * head_dim || (m > 0 && (!x || !pos))) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "rope: bad arguments (m=%lld ld=%lld heads=%d head_dim=%d)",
                         (long long)m, (long long)ld, (int)n_heads, (int)head_dim);
    }
    return PG_OK;
}

pg_status pg__check_get_rows(const float *y, const pg__tensor *w, const int32_t *ids,
                             int64_t n)
{
    pg_status st = check_matrix(w, "get_rows");
    if (st != PG_OK) {
        return st;
    }
    if (n < 0 || (n > 0 && (!y || !ids))) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "get_rows %s: bad arguments (n=%lld)",
                         tname(w), (long long)n);
    }
    for (int64_t r = 0; r < n; r++) {
        if (ids[r] < 0 || ids[r] >= w->rows) {
            return pg__error(PG_ERR_INVALID_ARGUMENT, "get_rows %s: id %d out of [0, %lld)",
                             tname(w), (int)ids[r], (long long)w->rows);
        }
    }
    return PG_OK;
}

pg_status pg__check_convert(const void *dst, pg__dtype dt, const float *src, size_t n)
{
    if (!pg__dtype_is_plain(dt)) {
        return pg__error(PG_ERR_UNSUPPORTED, "convert: target dtype %s (need f32, f16, bf16)",
                         pg__dtype_name(dt));
    }
    if (n > 0 && (!dst || !src)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "convert: NULL pointer");
    }
    return PG_OK;
}

pg_status pg__check_rows(const float *y, int64_t ldy, const float *x, int64_t ldx, int64_t m,
                         int64_t n, const char *op)
{
    if (m < 0 || n <= 0 || ldx < n || ldy < n || (m > 0 && (!x || !y))) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "%s: bad arguments (m=%lld n=%lld ldx=%lld ldy=%lld)", op,
                         (long long)m, (long long)n, (long long)ldx, (long long)ldy);
    }
    return PG_OK;
}

pg_status pg__check_elementwise(const float *y, const float *a, const float *b, size_t n,
                                const char *op)
{
    if (n > 0 && (!y || !a || !b)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "%s: NULL pointer", op);
    }
    return PG_OK;
}
