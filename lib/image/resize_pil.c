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
 * coefficients); the pragmas below say so to GCC and clang whatever the build flags.
 */
#include "image/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#    pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#    pragma GCC optimize("fp-contract=off") /* also under -std=gnu11 -march=native */
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

/*
 * Speed without changing a bit: both passes are written as "weighted sum of whole rows",
 * whose inner loops run over a fixed number of contiguous lanes, so the compiler turns them
 * into SIMD integer multiply-adds (the same int32 arithmetic as Pillow, lane by lane). On
 * x86-64 an AVX2 clone is picked at run time (GCC/clang target_clones, glibc ifunc).
 */
/* No clones under ThreadSanitizer: it instruments the ifunc resolver, which runs before the
 * TSan runtime is ready. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__GLIBC__) && !defined(PG_NO_CLONES) && \
    !defined(__SANITIZE_THREAD__)
#    define PG__SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#    define PG__SIMD_CLONES
#endif

#if defined(__GNUC__)
#    define PG__ALWAYS_INLINE __attribute__((always_inline))
#else
#    define PG__ALWAYS_INLINE
#endif

/* Lanes per block: 32 rows x 3 channels (horizontal pass) or 96 bytes of a row (vertical). */
#define LANES 96
#define HROWS (LANES / 3)

/* acc[0..LANES) = 2^21 + sum_j rows[j*step + i] * k[j]; written to out as uint8. */
PG__ALWAYS_INLINE static inline void
dot_lanes(const uint8_t *rows, size_t step, const int32_t *k, uint32_t n, uint8_t out[LANES])
{
    int32_t acc[LANES];
    for (int i = 0; i < LANES; i++) {
        acc[i] = 1 << (PIL_PRECISION_BITS - 1);
    }
    for (uint32_t j = 0; j < n; j++) {
        const uint8_t *s = rows + (size_t)j * step;
        const int32_t kj = k[j];
        for (int i = 0; i < LANES; i++) {
            acc[i] += s[i] * kj;
        }
    }
    for (int i = 0; i < LANES; i++) {
        out[i] = clip8(acc[i]);
    }
}

/*
 * Horizontal pass over `rows` rows of RGB (src row width sw -> dst row width dw). Blocks of
 * HROWS rows are transposed so that input column x becomes one line of LANES bytes
 * (row-major r*3 + channel); each output column is then a dot_lanes over n such lines.
 */
PG__SIMD_CLONES
static void pass_horizontal(const uint8_t *src,
                            uint32_t sw,
                            uint8_t *dst,
                            uint32_t dw,
                            uint32_t rows,
                            const pil_coeffs *c,
                            uint8_t *t /* sw * LANES bytes */,
                            uint8_t *tout /* dw * LANES bytes */)
{
    const size_t sstride = (size_t)sw * 3, dstride = (size_t)dw * 3;
    for (uint32_t y0 = 0; y0 < rows; y0 += HROWS) {
        const uint32_t nr = rows - y0 < HROWS ? rows - y0 : HROWS;
        if (nr < HROWS) {
            memset(t, 0, (size_t)sw * LANES); /* unused lanes of the last block */
        }
        for (uint32_t r = 0; r < nr; r++) {
            const uint8_t *s = src + (size_t)(y0 + r) * sstride;
            uint8_t *tt = t + (size_t)r * 3;
            for (uint32_t x = 0; x < sw; x++) {
                memcpy(tt + (size_t)x * LANES, s + (size_t)x * 3, 3);
            }
        }
        for (uint32_t o = 0; o < dw; o++) {
            dot_lanes(t + (size_t)c->lo[o] * LANES, LANES, c->coef + (size_t)o * c->ksize, c->n[o],
                      tout + (size_t)o * LANES);
        }
        for (uint32_t r = 0; r < nr; r++) {
            uint8_t *d = dst + (size_t)(y0 + r) * dstride;
            const uint8_t *s = tout + (size_t)r * 3;
            for (uint32_t o = 0; o < dw; o++) {
                memcpy(d + (size_t)o * 3, s + (size_t)o * LANES, 3);
            }
        }
    }
}

/* Vertical pass: output row o is a weighted sum of input rows lo[o] .. lo[o]+n[o). */
PG__SIMD_CLONES
static void
pass_vertical(const uint8_t *src, uint32_t width, uint8_t *dst, uint32_t dh, const pil_coeffs *c)
{
    const size_t len = (size_t)width * 3;
    const size_t full = len - len % LANES;
    for (uint32_t o = 0; o < dh; o++) {
        const int32_t *k = c->coef + (size_t)o * c->ksize;
        const uint8_t *s = src + (size_t)c->lo[o] * len;
        uint8_t *d = dst + (size_t)o * len;
        for (size_t x = 0; x < full; x += LANES) {
            dot_lanes(s + x, len, k, c->n[o], d + x);
        }
        for (size_t x = full; x < len; x++) { /* the last < LANES bytes */
            int32_t acc = 1 << (PIL_PRECISION_BITS - 1);
            for (uint32_t j = 0; j < c->n[o]; j++) {
                acc += s[(size_t)j * len + x] * k[j];
            }
            d[x] = clip8(acc);
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
    uint8_t *tmp = NULL, *lanes = NULL;
    if (sw != dw && (st = coeffs_build(sw, dw, &ch)) != PG_OK) {
        goto done;
    }
    if (sh != dh && (st = coeffs_build(sh, dh, &cv)) != PG_OK) {
        goto done;
    }
    if (sw == dw) { /* vertical only */
        pass_vertical(src, sw, dst, dh, &cv);
        goto done;
    }
    lanes = pg__malloc_array((size_t)sw + dw, LANES);
    if (!lanes) {
        st = PG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    if (sh == dh) { /* horizontal only */
        pass_horizontal(src, sw, dst, dw, sh, &ch, lanes, lanes + (size_t)sw * LANES);
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
    pass_horizontal(src + (size_t)first * sw * 3, sw, tmp, dw, last - first, &ch, lanes,
                    lanes + (size_t)sw * LANES);
    for (uint32_t o = 0; o < dh; o++) {
        cv.lo[o] -= first;
    }
    pass_vertical(tmp, dw, dst, dh, &cv);
done:
    free(tmp);
    free(lanes);
    coeffs_free(&ch);
    coeffs_free(&cv);
    return st;
}
