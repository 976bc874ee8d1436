/*
 * TensorFlow's bilinear resize with half-pixel centres and no antialiasing
 * (`tf.image.resize(method="bilinear", antialias=False)`, TF's resize_bilinear_op.cc), as
 * big_vision's `resize` op uses it, including its final clip to [0, 255] and truncating cast
 * to uint8. All arithmetic is float32 in TensorFlow's order.
 */
#include "image/image.h"

#include <math.h>
#include <stdlib.h>

typedef struct tf_lerp {
    uint32_t lower, upper;
    float frac;
} tf_lerp;

/* Per output index: the two source indices and the weight of the upper one. */
static void tf_weights(uint32_t in_size, uint32_t out_size, tf_lerp *w)
{
    const float scale = (float)in_size / (float)out_size;
    for (uint32_t o = 0; o < out_size; o++) {
        const float in = ((float)o + 0.5f) * scale - 0.5f;
        const float in_f = floorf(in);
        int64_t lo = (int64_t)in_f, hi = (int64_t)ceilf(in);
        w[o].lower = lo < 0 ? 0 : (uint32_t)lo;
        w[o].upper = hi > (int64_t)in_size - 1 ? in_size - 1 : (uint32_t)(hi < 0 ? 0 : hi);
        w[o].frac = in - in_f;
    }
}

static uint8_t to_u8_trunc(float v)
{
    if (!(v > 0.0f)) { /* also NaN, which cannot occur here */
        return 0;
    }
    if (v >= 255.0f) {
        return 255;
    }
    return (uint8_t)v; /* truncation toward zero, like tf.cast */
}

pg_status pg__resize_bilinear_tf(
    const uint8_t *src, uint32_t sw, uint32_t sh, uint8_t *dst, uint32_t dw, uint32_t dh)
{
    if (!src || !dst || sw == 0 || sh == 0 || dw == 0 || dh == 0) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "resize: empty image or NULL buffer");
    }
    tf_lerp *xs = pg__malloc_array(dw, sizeof *xs);
    tf_lerp *ys = pg__malloc_array(dh, sizeof *ys);
    if (!xs || !ys) {
        free(xs);
        free(ys);
        return PG_ERR_OUT_OF_MEMORY;
    }
    tf_weights(sw, dw, xs);
    tf_weights(sh, dh, ys);
    const size_t sstride = (size_t)sw * 3;
    for (uint32_t y = 0; y < dh; y++) {
        const uint8_t *top = src + (size_t)ys[y].lower * sstride;
        const uint8_t *bot = src + (size_t)ys[y].upper * sstride;
        const float yl = ys[y].frac;
        uint8_t *d = dst + (size_t)y * dw * 3;
        for (uint32_t x = 0; x < dw; x++) {
            const size_t l = (size_t)xs[x].lower * 3, r = (size_t)xs[x].upper * 3;
            const float xl = xs[x].frac;
            for (int c = 0; c < 3; c++) {
                const float tl = top[l + c], tr = top[r + c];
                const float bl = bot[l + c], br = bot[r + c];
                const float t = tl + (tr - tl) * xl;
                const float b = bl + (br - bl) * xl;
                d[3 * x + c] = to_u8_trunc(t + (b - t) * yl);
            }
        }
    }
    free(xs);
    free(ys);
    return PG_OK;
}
