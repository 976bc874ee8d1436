/*
 * Model input from an image: resize to size x size, map uint8 to [-1, 1], planar CHW.
 *
 * Pillow path (Hugging Face): x = float32(float64(v) * (1/255)); x = (x - 0.5f) / 0.5f.
 * TF path (big_vision value_range(-1, 1)): x = -1 + (float32(v) / 255) * 2.
 * Both are functions of the byte alone, so a 256-entry table gives exact results.
 */
#include "image/image.h"

#include <stdlib.h>

static void lut_pil(float lut[256])
{
    for (int v = 0; v < 256; v++) {
        float x = (float)((double)v * (1.0 / 255.0));
        lut[v] = (x - 0.5f) / 0.5f;
    }
}

static void lut_tf(float lut[256])
{
    for (int v = 0; v < 256; v++) {
        lut[v] = -1.0f + ((float)v / 255.0f) * 2.0f;
    }
}

pg_status
pg__image_preprocess(const struct pg_image *img, uint32_t size, int32_t method, float *out)
{
    if (!img || !img->rgb || !out) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "image preprocess: NULL argument");
    }
    if (size == 0 || size > 16384) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "image preprocess: size %u is out of range (1..16384)", size);
    }
    if (method != PG_RESIZE_BICUBIC_PIL && method != PG_RESIZE_BILINEAR_TF) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "image preprocess: unknown resize method %d",
                         (int)method);
    }
    const size_t plane = (size_t)size * size;
    const uint8_t *px = img->rgb;
    uint8_t *resized = NULL;
    if (img->width != size || img->height != size) {
        resized = pg__malloc_array(plane, 3);
        if (!resized) {
            return PG_ERR_OUT_OF_MEMORY;
        }
        pg_status st =
            method == PG_RESIZE_BICUBIC_PIL
                ? pg__resize_bicubic_pil(img->rgb, img->width, img->height, resized, size, size)
                : pg__resize_bilinear_tf(img->rgb, img->width, img->height, resized, size, size);
        if (st != PG_OK) {
            free(resized);
            return st;
        }
        px = resized;
    }
    float lut[256];
    if (method == PG_RESIZE_BICUBIC_PIL) {
        lut_pil(lut);
    } else {
        lut_tf(lut);
    }
    float *r = out, *g = out + plane, *b = out + 2 * plane;
    for (size_t i = 0; i < plane; i++) {
        r[i] = lut[px[3 * i + 0]];
        g[i] = lut[px[3 * i + 1]];
        b[i] = lut[px[3 * i + 2]];
    }
    free(resized);
    return PG_OK;
}
