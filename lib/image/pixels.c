/*
 * Pixel buffers: allocation under limits, caller pixel layouts (RGB/RGBA/BGR/BGRA/gray with
 * a row stride) converted to packed RGB, and the eight EXIF orientations.
 */
#include "image/image.h"

#include <stdlib.h>
#include <string.h>

pg_status
pg__image_check_size(const pg__image_limits *lim, uint64_t w, uint64_t h, const char *what)
{
    if (w == 0 || h == 0) {
        return pg__error(PG_ERR_FORMAT, "%s: image has a zero dimension (%llux%llu)", what,
                         (unsigned long long)w, (unsigned long long)h);
    }
    if (w > lim->max_dimension || h > lim->max_dimension) {
        return pg__error(PG_ERR_LIMIT, "%s: %llux%llu exceeds the maximum dimension %u", what,
                         (unsigned long long)w, (unsigned long long)h, lim->max_dimension);
    }
    /* w, h < 2^32, so the product fits in 64 bits. */
    if (w * h > lim->max_pixels) {
        return pg__error(PG_ERR_LIMIT, "%s: %llux%llu = %llu pixels exceeds the limit of %llu",
                         what, (unsigned long long)w, (unsigned long long)h,
                         (unsigned long long)(w * h), (unsigned long long)lim->max_pixels);
    }
    return PG_OK;
}

struct pg_image *pg__image_alloc(uint32_t w, uint32_t h)
{
    size_t row, bytes;
    if (!pg__mul_size(w, 3, &row) || !pg__mul_size(row, h, &bytes) || bytes == 0) {
        pg__error(PG_ERR_LIMIT, "image of %ux%u is too large for this platform", w, h);
        return NULL;
    }
    struct pg_image *img = pg__calloc(1, sizeof *img);
    if (!img) {
        return NULL;
    }
    img->rgb = pg__malloc(bytes);
    if (!img->rgb) {
        free(img);
        return NULL;
    }
    img->width = w;
    img->height = h;
    return img;
}

/*
 * Source coordinates of output pixel (x, y) for Pillow's exif_transpose methods:
 * 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270,
 * 7 TRANSVERSE, 8 ROTATE_90 (Pillow rotates counter-clockwise). w, h: source size.
 */
static void
orient_source(int o, uint32_t w, uint32_t h, uint32_t x, uint32_t y, uint32_t *sx, uint32_t *sy)
{
    switch (o) {
    case 2:
        *sx = w - 1 - x;
        *sy = y;
        break;
    case 3:
        *sx = w - 1 - x;
        *sy = h - 1 - y;
        break;
    case 4:
        *sx = x;
        *sy = h - 1 - y;
        break;
    case 5:
        *sx = y;
        *sy = x;
        break;
    case 6:
        *sx = y;
        *sy = h - 1 - x;
        break;
    case 7:
        *sx = w - 1 - y;
        *sy = h - 1 - x;
        break;
    case 8:
        *sx = w - 1 - y;
        *sy = x;
        break;
    default:
        *sx = x;
        *sy = y;
        break;
    }
}

pg_status pg__image_orient(struct pg_image *img, int orientation)
{
    if (orientation < 2 || orientation > 8) {
        return PG_OK;
    }
    const uint32_t w = img->width, h = img->height;
    const int swap = orientation >= 5;
    const uint32_t ow = swap ? h : w, oh = swap ? w : h;
    uint8_t *dst = pg__malloc_array((size_t)w * h, 3);
    if (!dst) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    for (uint32_t y = 0; y < oh; y++) {
        uint8_t *d = dst + (size_t)y * ow * 3;
        for (uint32_t x = 0; x < ow; x++) {
            uint32_t sx, sy;
            orient_source(orientation, w, h, x, y, &sx, &sy);
            memcpy(d + (size_t)x * 3, img->rgb + ((size_t)sy * w + sx) * 3, 3);
        }
    }
    free(img->rgb);
    img->rgb = dst;
    img->width = ow;
    img->height = oh;
    return PG_OK;
}
