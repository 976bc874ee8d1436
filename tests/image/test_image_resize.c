/*
 * Differential test of the exact Pillow BICUBIC resize: the library's blocked, vectorised
 * implementation (AVX2 clone where available), the same source built without the clones
 * (PG_NO_CLONES: the portable path), and a plain reference written here in Pillow's own loop
 * order (Resample.c: per output pixel, horizontal pass over all rows, then vertical) must give
 * identical bytes on random images over many size pairs: up, down, mixed, 1-pixel sides,
 * extreme aspect ratios, and sizes around the 32-row / 96-lane blocks.
 */
#include "harness.h"
#include "image/image.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The library's resize_pil.c again, as a private copy without target clones. */
#define PG_NO_CLONES           1
#define pg__resize_bicubic_pil resize_portable
pg_status resize_portable(
    const uint8_t *src, uint32_t sw, uint32_t sh, uint8_t *dst, uint32_t dw, uint32_t dh);
#include "../../lib/image/resize_pil.c"
#undef pg__resize_bicubic_pil

static double ref_kernel(double x)
{
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) {
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    }
    if (x < 2.0) {
        return (((x - 5) * x + 8) * x - 4) * a;
    }
    return 0.0;
}

/* One axis of Pillow's resampling, for `lines` lines of `n_in` samples spaced `step` apart. */
static void ref_axis(const uint8_t *in,
                     uint8_t *out,
                     uint32_t n_in,
                     uint32_t n_out,
                     size_t lines,
                     size_t in_line,
                     size_t out_line,
                     size_t step)
{
    double scale = (double)n_in / n_out, fs = scale < 1 ? 1 : scale, support = 2 * fs;
    for (uint32_t o = 0; o < n_out; o++) {
        double center = (o + 0.5) * scale, w[4096], ww = 0;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        xmin = xmin < 0 ? 0 : xmin;
        xmax = xmax > (int)n_in ? (int)n_in : xmax;
        int32_t k[4096];
        for (int x = 0; x < xmax - xmin; x++) {
            w[x] = ref_kernel((x + xmin - center + 0.5) / fs);
            ww += w[x];
        }
        for (int x = 0; x < xmax - xmin; x++) {
            double v = (ww != 0.0 ? w[x] / ww : w[x]) * (1 << 22);
            k[x] = v < 0 ? (int32_t)(-0.5 + v) : (int32_t)(0.5 + v);
        }
        for (size_t l = 0; l < lines; l++) {
            int32_t acc = 1 << 21;
            for (int x = 0; x < xmax - xmin; x++) {
                acc += in[l * in_line + (size_t)(xmin + x) * step] * k[x];
            }
            out[l * out_line + (size_t)o * step] = acc <= 0         ? 0
                                                   : acc >= 1 << 30 ? 255
                                                                    : (uint8_t)(acc >> 22);
        }
    }
}

static void
ref_resize(const uint8_t *src, uint32_t sw, uint32_t sh, uint8_t *dst, uint32_t dw, uint32_t dh)
{
    uint8_t *tmp = malloc((size_t)dw * sh * 3);
    const uint8_t *h = src;
    if (sw != dw) { /* each (row, channel) is a line along x with step 3 */
        for (int c = 0; c < 3; c++) {
            ref_axis(src + c, tmp + c, sw, dw, sh, (size_t)sw * 3, (size_t)dw * 3, 3);
        }
        h = tmp;
    }
    if (sh != dh) { /* each column byte is a line along y with step dw*3 */
        ref_axis(h, dst, sh, dh, (size_t)dw * 3, 1, 1, (size_t)dw * 3);
    } else {
        memcpy(dst, h, (size_t)dw * dh * 3);
    }
    free(tmp);
}

static uint32_t rng = 2463534242u;
static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static void check(uint32_t sw, uint32_t sh, uint32_t dw, uint32_t dh)
{
    size_t sn = (size_t)sw * sh * 3, dn = (size_t)dw * dh * 3;
    uint8_t *src = malloc(sn), *a = malloc(dn), *b = malloc(dn), *r = malloc(dn);
    int smooth = next() & 1; /* noise stresses clipping, gradients the rounding */
    for (size_t i = 0; i < sn; i++) {
        src[i] = smooth ? (uint8_t)((i / 3 % sw) * 255 / (sw > 1 ? sw - 1 : 1) + (next() & 3))
                        : (uint8_t)next();
    }
    CHECK_OK(pg__resize_bicubic_pil(src, sw, sh, a, dw, dh));
    CHECK_OK(resize_portable(src, sw, sh, b, dw, dh));
    ref_resize(src, sw, sh, r, dw, dh);
    CHECK_MSG(memcmp(a, r, dn) == 0, "%ux%u -> %ux%u: library != Pillow-order reference", sw, sh,
              dw, dh);
    CHECK_MSG(memcmp(b, r, dn) == 0, "%ux%u -> %ux%u: portable path != reference", sw, sh, dw, dh);
    free(src);
    free(a);
    free(b);
    free(r);
}

int main(void)
{
    static const uint32_t fixed[][4] = {
        { 1, 1, 1, 1 },           { 1, 1, 17, 5 },      { 300, 1, 7, 3 },       { 1, 300, 3, 7 },
        { 97, 61, 224, 224 },     { 451, 300, 56, 56 }, { 600, 400, 70, 70 },   { 33, 32, 31, 97 },
        { 3000, 20, 224, 224 },   { 2, 3, 224, 224 },   { 640, 427, 448, 448 }, { 95, 96, 97, 98 },
        { 1000, 1000, 999, 1001 }
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        check(fixed[i][0], fixed[i][1], fixed[i][2], fixed[i][3]);
    }
    for (int i = 0; i < 150; i++) {
        uint32_t sw = 1 + next() % 300, sh = 1 + next() % 300;
        uint32_t dw = 1 + next() % 200, dh = 1 + next() % 200;
        check(sw, sh, dw, dh);
    }
    return pg_test_finish();
}
