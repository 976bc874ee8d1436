/*
 * backend/tensor: argument checks and element access shared by every backend, so that the
 * reference and the CPU backend reject exactly the same inputs with the same messages.
 */
#ifndef PG_BACKEND_TENSOR_H
#define PG_BACKEND_TENSOR_H

#include "backend/backend.h"

/* True for the plain element types (F32, F16, BF16). */
bool pg__dtype_is_plain(pg__dtype dt);
/* True for every dtype the backend knows. */
bool pg__dtype_is_valid(pg__dtype dt);

/* Element i of a plain-typed buffer as float. */
static inline float pg__load_f32(const void *base, pg__dtype dt, size_t i)
{
    switch (dt) {
    case PG__F16:
        return pg__f16_to_f32(((const uint16_t *)base)[i]);
    case PG__BF16:
        return pg__bf16_to_f32(((const uint16_t *)base)[i]);
    default:
        return ((const float *)base)[i];
    }
}

/* Row `row` of any weight (plain or quantized) as cols floats. */
void pg__tensor_row_f32(const pg__tensor *w, int64_t row, float *out);

/* Checks for the matmul op: x has m rows of w->cols (stride ldx), y has m rows of w->rows
 * (stride ldy); bias, if any, is a plain vector of w->rows elements. */
pg_status pg__check_matmul(const float *y, int64_t ldy, const float *x, int64_t ldx,
                           int64_t m, const pg__tensor *w, const pg__tensor *bias);
/* A plain-typed vector of exactly n elements (norm weights and biases); `what` names it. */
pg_status pg__check_vector(const pg__tensor *v, int64_t n, const char *what);
/* Checks an attention description (pointers, sizes, head counts, kv dtype, mask fields). */
pg_status pg__check_attn(const pg__attn *a);
/* Checks for the rope op. */
pg_status pg__check_rope(const float *x, int64_t m, int64_t ld, int32_t n_heads,
                         int32_t head_dim, const int32_t *pos);
/* Checks for get_rows: ids within [0, w->rows). */
pg_status pg__check_get_rows(const float *y, const pg__tensor *w, const int32_t *ids,
                             int64_t n);
/* Checks for convert: dt plain, pointers non-NULL when n > 0. */
pg_status pg__check_convert(const void *dst, pg__dtype dt, const float *src, size_t n);
/* Checks for row-wise norms: m, n positive sizes, strides >= n. */
pg_status pg__check_rows(const float *y, int64_t ldy, const float *x, int64_t ldx, int64_t m,
                         int64_t n, const char *op);
/* Checks elementwise ops: non-NULL pointers when n > 0. */
pg_status pg__check_elementwise(const float *y, const float *a, const float *b, size_t n,
                                const char *op);

/* Whether query at absolute index i sees key j (the pg__attn mask rule). */
static inline bool pg__attn_visible(const pg__attn *a, int64_t i, int64_t j)
{
    return (j < a->prefix_len || j <= i) && (a->window == 0 || i - j < a->window);
}

#endif
