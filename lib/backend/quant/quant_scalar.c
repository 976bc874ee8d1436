/*
 * backend/quant/quant_scalar: the portable variant of the quantized kernels (no SIMD
 * assumptions); the ground truth the SIMD variants are tested against, and what runs on
 * CPUs without AVX2. Integer dot products per block are exact here.
 */
#include "backend/quant/quant_kernels.h"

#include "core/core.h"

#include <string.h>

static int round_clamp127(float v)
{
    int q = (int)(v + (v >= 0.0f ? 0.5f : -0.5f));
    return q > 127 ? 127 : (q < -127 ? -127 : q);
}

void pg__quantize_x_generic(const float *x, int64_t cols, int64_t npair, int64_t ns,
                            int8_t *q, float *d, float *c, int32_t *s)
{
    for (int64_t p = 0; p < npair; p++) {
        for (int half = 0; half < 2; half++) {
            int64_t b = 2 * p + half, k0 = b * 32;
            float amax = 0.0f;
            for (int j = 0; j < 32 && k0 + j < cols; j++) {
                float a = x[k0 + j] < 0 ? -x[k0 + j] : x[k0 + j];
                amax = a > amax ? a : amax;
            }
            float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
            int sum = 0;
            for (int j = 0; j < 32; j++) {
                int qi = k0 + j < cols ? round_clamp127(x[k0 + j] * inv) : 0;
                q[p * 64 + pg__qpos(half, j)] = (int8_t)qi;
                sum += qi;
            }
            d[b] = amax / 127.0f;
            c[b] = d[b] * (float)sum;
            s[b] = sum;
        }
    }
    for (int64_t b = 2 * npair; b < ns; b++) {
        d[b] = 0.0f;
        c[b] = 0.0f;
        s[b] = 0;
    }
}

void pg__widen_scales_generic(const uint16_t *src, int64_t n, float *dst)
{
    for (int64_t i = 0; i < n; i++) {
        dst[i] = pg__f16_to_f32(src[i]);
    }
}

/* Weight value (signed) at interleaved position P of pair p of a Q8 / Q4 row. */
static int q8_at(const uint8_t *row, int64_t p, int P)
{
    return (int)row[p * 64 + P] - 128;
}

static int q4_at(const uint8_t *row, int64_t p, int P)
{
    uint8_t byte = row[p * 32 + (P & 31)];
    return (int)(P < 32 ? byte & 0x0f : byte >> 4) - 8;
}

static float dot_row(const int8_t *xq, const float *xd, const uint8_t *wq, const float *ws,
                     int64_t npair, int (*at)(const uint8_t *, int64_t, int))
{
    float acc = 0.0f;
    for (int64_t p = 0; p < npair; p++) {
        int32_t dot[2] = { 0, 0 };
        for (int P = 0; P < 64; P++) {
            dot[(P >> 2) & 1] += at(wq, p, P) * (int32_t)xq[p * 64 + P];
        }
        acc += xd[2 * p] * ws[2 * p] * (float)dot[0];
        acc += xd[2 * p + 1] * ws[2 * p + 1] * (float)dot[1];
    }
    return acc;
}

static void tile_q8(const pg__qx *x, const pg__qw *w, int64_t npair, int64_t ns, int R, int C,
                    float *y, int64_t ldy)
{
    (void)ns;
    for (int r = 0; r < R; r++) {
        for (int c = 0; c < C; c++) {
            y[r * ldy + c] = dot_row(x->q + (size_t)r * x->q_stride, x->d + (size_t)r * x->s_stride,
                                     w->q + (size_t)c * w->q_stride,
                                     w->s + (size_t)c * w->s_stride, npair, q8_at);
        }
    }
}

static void tile_q4(const pg__qx *x, const pg__qw *w, int64_t npair, int64_t ns, int R, int C,
                    float *y, int64_t ldy)
{
    (void)ns;
    for (int r = 0; r < R; r++) {
        for (int c = 0; c < C; c++) {
            y[r * ldy + c] = dot_row(x->q + (size_t)r * x->q_stride, x->d + (size_t)r * x->s_stride,
                                     w->q + (size_t)c * w->q_stride,
                                     w->s + (size_t)c * w->s_stride, npair, q4_at);
        }
    }
}

const pg__qkernels *pg__qkernels_scalar(void)
{
    static const pg__qkernels k = { "scalar", 4, 4, pg__quantize_x_generic,
                                    pg__widen_scales_generic, tile_q8, tile_q4, NULL, NULL,
                                    NULL };
    return &k;
}
