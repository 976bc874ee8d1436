/*
 * mask/paste: big_vision's placement of a 64x64 mask in the image (segmentation evaluator):
 *
 *   y1, x1, y2, x2 = int(loc / 1023 * side)           (float64, truncation)
 *   mi = PIL.Image.fromarray(m64).resize([x2 - x1, y2 - y1], BILINEAR) > 0.0
 *   mask[y1:y2, x1:x2] = mi
 *
 * Pillow's resampling of a float ("F") image: a triangle filter of support 1, widened by the
 * scale when shrinking (antialiasing); per output pixel the taps between
 * int(center -/+ support + 0.5), weights filter((j - center + 0.5) / filterscale) normalised to
 * sum 1, all in double; a horizontal pass first (only if the width changes) into a float
 * image, then a vertical pass (only if the height changes). The value is rounded to float
 * before the threshold, as the float image holds it. Expression order follows Pillow so that
 * the weights are the same doubles; FP contraction would change them in the last bit.
 */
#include "mask/mask.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#    pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#    pragma GCC optimize("fp-contract=off")
#endif

void pg__mask_box(const int32_t loc[4], uint32_t w, uint32_t h, uint32_t box[4])
{
    /* loc is y_min, x_min, y_max, x_max in 0..1023 (the parser checked), so each value is in
     * [0, side]. */
    box[0] = (uint32_t)((double)loc[1] / 1023.0 * (double)w);
    box[1] = (uint32_t)((double)loc[0] / 1023.0 * (double)h);
    box[2] = (uint32_t)((double)loc[3] / 1023.0 * (double)w);
    box[3] = (uint32_t)((double)loc[2] / 1023.0 * (double)h);
}

/* Filter bank of one axis resized from `in` to `out` samples: output o reads
 * in[lo[o] .. lo[o] + n[o]) with weights k[o * ksize ..]. */
typedef struct bank {
    uint32_t ksize;
    uint32_t *lo, *n;
    double *k;
} bank;

static double triangle(double x)
{
    if (x < 0.0) {
        x = -x;
    }
    return x < 1.0 ? 1.0 - x : 0.0;
}

static pg_status bank_make(uint32_t in, uint32_t out, bank *b)
{
    const double scale = (double)in / (double)out;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = 1.0 * filterscale;
    b->ksize = (uint32_t)ceil(support) * 2 + 1;
    b->lo = pg__malloc_array(out, sizeof *b->lo);
    b->n = pg__malloc_array(out, sizeof *b->n);
    b->k = pg__malloc_array((size_t)out * b->ksize, sizeof *b->k);
    if (!b->lo || !b->n || !b->k) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    for (uint32_t o = 0; o < out; o++) {
        const double center = (o + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        lo = lo < 0 ? 0 : lo;
        hi = hi > (int)in ? (int)in : hi;
        const int n = hi - lo;
        double *k = b->k + (size_t)o * b->ksize, ww = 0.0;
        for (int j = 0; j < n; j++) {
            k[j] = triangle((j + lo - center + 0.5) * ss);
            ww += k[j];
        }
        for (int j = 0; j < n; j++) {
            if (ww != 0.0) {
                k[j] /= ww;
            }
        }
        b->lo[o] = (uint32_t)lo;
        b->n[o] = (uint32_t)(n > 0 ? n : 0);
    }
    return PG_OK;
}

static void bank_free(bank *b)
{
    free(b->lo);
    free(b->n);
    free(b->k);
}

/* One output sample: the weighted sum of `n` inputs `stride` apart, as float. */
static float tap(const bank *b, uint32_t o, const float *src, size_t stride)
{
    const double *k = b->k + (size_t)o * b->ksize;
    double ss = 0.0;
    for (uint32_t j = 0; j < b->n[o]; j++) {
        ss += (double)src[(size_t)(b->lo[o] + j) * stride] * k[j];
    }
    return (float)ss;
}

pg_status pg__mask_paste(const float logits[PG__MASK_SIDE * PG__MASK_SIDE], const uint32_t box[4],
                         uint32_t w, uint32_t h, uint8_t *mask)
{
    const uint32_t S = PG__MASK_SIDE;
    if (box[2] <= box[0] || box[3] <= box[1]) {
        return PG_OK; /* empty after truncation: nothing to paste (big_vision: invalid) */
    }
    const uint32_t bw = box[2] - box[0], bh = box[3] - box[1];
    bank hb = { 0 }, vb = { 0 };
    float *rows = NULL; /* S rows of bw: after the horizontal pass */
    pg_status st = PG_OK;
    if (bw != S) {
        st = bank_make(S, bw, &hb);
    }
    if (!st && bh != S) {
        st = bank_make(S, bh, &vb);
    }
    if (!st && !(rows = pg__malloc_array((size_t)S * bw, sizeof *rows))) {
        st = PG_ERR_OUT_OF_MEMORY;
    }
    if (!st) {
        for (uint32_t y = 0; y < S; y++) {
            for (uint32_t x = 0; x < bw; x++) {
                rows[(size_t)y * bw + x] = bw == S ? logits[y * S + x]
                                                   : tap(&hb, x, logits + (size_t)y * S, 1);
            }
        }
        for (uint32_t y = 0; y < bh; y++) {
            uint8_t *dst = mask + (size_t)(box[1] + y) * w + box[0];
            for (uint32_t x = 0; x < bw; x++) {
                const float v = bh == S ? rows[(size_t)y * bw + x] : tap(&vb, y, rows + x, bw);
                dst[x] = v > 0.0f;
            }
        }
    }
    (void)h;
    free(rows);
    bank_free(&hb);
    bank_free(&vb);
    return st;
}
