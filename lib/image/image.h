/*
 * image: decoding (libjpeg-turbo, libspng), EXIF orientation, caller pixels, and the
 * preprocessing the vision tower expects (exact Pillow BICUBIC resize, [-1, 1], CHW).
 * struct pg_image is the public opaque handle: decoded 8-bit RGB, immutable.
 */
#ifndef PG_IMAGE_H
#define PG_IMAGE_H

#include "core/core.h"

struct pg_image {
    uint32_t width, height;
    uint8_t *rgb; /* width*height*3 bytes, rows packed */
};

/* Resizes 8-bit RGB to dst_w x dst_h with Pillow's BICUBIC (antialiased, fixed-point),
 * bit-exact with Pillow 9.4 `Image.resize(..., BICUBIC)`. dst must hold dst_w*dst_h*3. */
pg_status pg__resize_bicubic_pil(const uint8_t *src, uint32_t sw, uint32_t sh, uint8_t *dst,
                                 uint32_t dw, uint32_t dh);

/* The full preprocessing of pg_image_preprocess into out[3][size][size]. */
pg_status pg__image_preprocess(const struct pg_image *img, uint32_t size, int32_t method,
                               float *out);

#endif /* PG_IMAGE_H */
