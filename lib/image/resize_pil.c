/*
 * Pillow's BICUBIC resampler (PIL/libImaging/Resample.c, Pillow 9.4), reproduced bit for bit:
 *
 *  - Keys cubic kernel with a = -0.5 and support 2, widened by the scale factor when
 *    shrinking (antialiasing); weights computed in double, normalised to sum 1, then turned
 *    into 22-bit fixed point with round-half-away-from-zero;
 *  - horizontal pass first (only if the width changes), then vertical (only if the height
 *    changes), each pass writing uint8: acc = 2^21 + sum(in * coef), out = clamp(acc >> 22).
 *
 * The double arithmetic below keeps Pillow's evaluation order. It must not be contracted into
 * FMA instructions (that would change weights in the last bit and so some rounded
 * coefficients): GCC does not contract under -std=c11, and for clang the pragma below says so.
 */
#include "image/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#    pragma STDC FP_CONTRACT OFF
#endif

#define PIL_PRECISION_BITS 22 /* 32 - 8 - 2 */

/* Pillow's bicubic_filter with a = -0.5, same operation order. */
static double bicubic_kernel(double x)
{
    const double a = -0.5;
    if (x < 0.0) {
        x = -x;
    }
    if (x < 1.0) {
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    }
    if (x < 2.0) {
        return (((x - 5) * x + 8) * x - 4) * a;
    }
    return 0.0;
}

/* Fixed-point filter bank of one axis: output o reads in[lo[o] .. lo[o]+n[o]) weighted by
 * coef[o*ksize + j]. */
typedef struct pil_coeffs {
    int32_t *coef;
    uint32_t *lo;
    uint32_t *n;
    uint32_t ksize;
} pil_coeffs;

static void coeffs_free(pil_coeffs *c)
{
    free(c->coef);
    free(c->lo);
    free(c->n);
    memset(c, 0, sizeof *c);
}

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc for in_size -> out_size. */
static pg_status coeffs_build(uint32_t in_size, uint32_t out_size, pil_coeffs *c)
{
    memset(c, 0, sizeof *c);
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    /* support <= 2 * 2^32, so ksize fits easily in uint64; callers keep sizes far smaller. */
    double ks = ceil(support) * 2 + 1;
    if (ks > 4294967295.0) {
        return pg__error(PG_ERR_LIMIT, "resize: filter too large");
    }
    c->ksize = (uint32_t)ks;
    double *w = pg__malloc_array(c->ksize, sizeof *w);
    c->coef = pg__malloc_array((size_t)out_size * c->ksize, sizeof *c->coef);
    c->lo = pg__malloc_array(out_size, sizeof *c->lo);
    c->n = pg__malloc_array(out_size, sizeof *c->n);
    if (!w || !c->coef || !c->lo || !c->n) {
        free(w);
        coeffs_free(c);
        return PG_ERR_OUT_OF_MEMORY;
    }
    double ss = 1.0 / filterscale;
    for (uint32_t o = 0; o < out_size; o++) {
        double center = (o + 0.5) * scale;
        /* (int) truncates toward zero exactly like Pillow's cast; clamp afterwards. */
        double fmin = center - support + 0.5;
        double fmax = center + support + 0.5;
        int64_t xmin = fmin < 0 ? 0 : (int64_t)fmin;
        int64_t xmax = (int64_t)fmax;
        if (xmax > (int64_t)in_size) {
            xmax = in_size;
        }
        int64_t n = xmax - xmin;
        if (n < 0) {
            n = 0;
        }
        if (n > (int64_t)c->ksize) { /* impossible by construction; never write out of bounds */
            n = c->ksize;
        }
        double ww = 0.0;
        for (int64_t x = 0; x < n; x++) {
            double v = bicubic_kernel(((double)x + (double)xmin - center + 0.5) * ss);
            w[x] = v;
            ww += v;
        }
        int32_t *k = c->coef + (size_t)o * c->ksize;
        for (int64_t x = 0; x < n; x++) {
            double v = ww != 0.0 ? w[x] / ww : w[x];
            v *= (double)(1 << PIL_PRECISION_BITS);
            k[x] = v < 0 ? (int32_t)(-0.5 + v) : (int32_t)(0.5 + v);
        }
        for (int64_t x = n; x < (int64_t)c->ksize; x++) {
            k[x] = 0;
        }
        c->lo[o] = (uint32_t)xmin;
        c->n[o] = (uint32_t)n;
    }
    free(w);
    return PG_OK;
}

static inline uint8_t clip8(int32_t acc)
{
    if (acc >= (1 << PIL_PRECISION_BITS << 8)) {
        return 255;
    }
    if (acc <= 0) {
        return 0;
    }
    return (uint8_t)(acc >> PIL_PRECISION_BITS);
}

/* Horizontal pass over `rows` rows of RGB: src row width sw, dst row width dw. */
static void pass_horizontal(
    const uint8_t *src, uint32_t sw, uint8_t *dst, uint32_t dw, uint32_t rows, const pil_coeffs *c)
{
    const size_t sstride = (size_t)sw * 3, dstride = (size_t)dw * 3;
    for (uint32_t y = 0; y < rows; y++) {
        const uint8_t *s = src + (size_t)y * sstride;
        uint8_t *d = dst + (size_t)y * dstride;
        for (uint32_t o = 0; o < dw; o++) {
            const int32_t *k = c->coef + (size_t)o * c->ksize;
            const uint8_t *p = s + (size_t)c->lo[o] * 3;
            int32_t r = 1 << (PIL_PRECISION_BITS - 1), g = r, b = r;
            for (uint32_t j = 0, n = c->n[o]; j < n; j++) {
                r += p[3 * j + 0] * k[j];
                g += p[3 * j + 1] * k[j];
                b += p[3 * j + 2] * k[j];
            }
            d[3 * o + 0] = clip8(r);
            d[3 * o + 1] = clip8(g);
            d[3 * o + 2] = clip8(b);
        }
    }
}

/* Vertical pass: every output row is a weighted sum of whole input rows, so the inner loop
 * runs over contiguous bytes (the compiler vectorises it; results are exact integers). */
static void pass_vertical(const uint8_t *src,
                          uint32_t width,
                          uint8_t *dst,
                          uint32_t dh,
                          const pil_coeffs *c,
                          int32_t *acc)
{
    const size_t len = (size_t)width * 3;
    for (uint32_t o = 0; o < dh; o++) {
        const int32_t *k = c->coef + (size_t)o * c->ksize;
        for (size_t x = 0; x < len; x++) {
            acc[x] = 1 << (PIL_PRECISION_BITS - 1);
        }
        for (uint32_t j = 0, n = c->n[o]; j < n; j++) {
            const uint8_t *s = src + (size_t)(c->lo[o] + j) * len;
            const int32_t kj = k[j];
            for (size_t x = 0; x < len; x++) {
                acc[x] += s[x] * kj;
            }
        }
        uint8_t *d = dst + (size_t)o * len;
        for (size_t x = 0; x < len; x++) {
            d[x] = clip8(acc[x]);
        }
    }
}

pg_status pg__resize_bicubic_pil(
    const uint8_t *src, uint32_t sw, uint32_t sh, uint8_t *dst, uint32_t dw, uint32_t dh)
{
    if (!src || !dst || sw == 0 || sh == 0 || dw == 0 || dh == 0) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "resize: empty image or NULL buffer");
    }
    size_t dst_bytes;
    if (!pg__mul_size((size_t)dw * 3, dh, &dst_bytes)) {
        return pg__error(PG_ERR_LIMIT, "resize: output too large");
    }
    if (sw == dw && sh == dh) {
        memcpy(dst, src, dst_bytes);
        return PG_OK;
    }
    pil_coeffs ch = { 0 }, cv = { 0 };
    pg_status st = PG_OK;
    uint8_t *tmp = NULL;
    int32_t *acc = NULL;
    if (sw != dw && (st = coeffs_build(sw, dw, &ch)) != PG_OK) {
        goto done;
    }
    if (sh != dh && (st = coeffs_build(sh, dh, &cv)) != PG_OK) {
        goto done;
    }
    if (sh == dh) { /* horizontal only */
        pass_horizontal(src, sw, dst, dw, sh, &ch);
        goto done;
    }
    acc = pg__malloc_array((size_t)dw * 3, sizeof *acc);
    if (!acc) {
        st = PG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    if (sw == dw) { /* vertical only */
        pass_vertical(src, sw, dst, dh, &cv, acc);
        goto done;
    }
    /* Both passes. Like Pillow, the horizontal pass only produces the input rows the
     * vertical pass reads: [lo[0], lo[dh-1] + n[dh-1]). */
    uint32_t first = cv.lo[0], last = cv.lo[dh - 1] + cv.n[dh - 1];
    if (last <= first) {
        last = first + 1 <= sh ? first + 1 : sh;
    }
    size_t tmp_bytes;
    if (!pg__mul_size((size_t)dw * 3, (size_t)(last - first), &tmp_bytes)) {
        st = pg__error(PG_ERR_LIMIT, "resize: intermediate too large");
        goto done;
    }
    tmp = pg__malloc(tmp_bytes ? tmp_bytes : 1);
    if (!tmp) {
        st = PG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    pass_horizontal(src + (size_t)first * sw * 3, sw, tmp, dw, last - first, &ch);
    for (uint32_t o = 0; o < dh; o++) {
        cv.lo[o] -= first;
    }
    pass_vertical(tmp, dw, dst, dh, &cv, acc);
done:
    free(tmp);
    free(acc);
    coeffs_free(&ch);
    coeffs_free(&cv);
    return st;
}
