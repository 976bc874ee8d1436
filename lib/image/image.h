/*
 * image: decoding (libjpeg-turbo, libspng), EXIF orientation, caller pixels, and the
 * preprocessing the vision tower expects (exact Pillow BICUBIC resize, [-1, 1], CHW).
 * struct pg_image is the public opaque handle: decoded 8-bit RGB, immutable.
 *
 * Files of this room:
 *   image.c       public pg_image_* functions, options, format sniffing
 *   pixels.c      image allocation, caller pixel layouts, EXIF orientation transforms
 *   decode_jpeg.c JPEG through the libjpeg(-turbo) API, converted like Pillow convert("RGB")
 *   decode_png.c  PNG through libspng, converted like Pillow convert("RGB")
 *   exif.c        the EXIF (TIFF) Orientation tag, bounds-checked
 *   resize_pil.c  Pillow's BICUBIC resampler, bit-exact
 *   resize_tf.c   TensorFlow's half-pixel bilinear resize (big_vision)
 *   preprocess.c  resize + scale to [-1, 1] + HWC -> CHW
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
pg_status pg__resize_bicubic_pil(
    const uint8_t *src, uint32_t sw, uint32_t sh, uint8_t *dst, uint32_t dw, uint32_t dh);

/* TensorFlow `tf.image.resize(method="bilinear", antialias=False)` (half-pixel centres,
 * float32), then clipped to [0, 255] and truncated to uint8 as big_vision's resize op does. */
pg_status pg__resize_bilinear_tf(
    const uint8_t *src, uint32_t sw, uint32_t sh, uint8_t *dst, uint32_t dw, uint32_t dh);

/* The full preprocessing of pg_image_preprocess into out[3][size][size]. */
pg_status
pg__image_preprocess(const struct pg_image *img, uint32_t size, int32_t method, float *out);

/* ---- internal helpers shared by the files of this room ---- */

/* Effective load options: defaults filled in, limits resolved. */
typedef struct pg__image_limits {
    uint32_t flags;
    uint32_t max_dimension;
    uint64_t max_pixels;
    uint32_t target_size;
} pg__image_limits;

#define PG__IMAGE_DEFAULT_MAX_DIMENSION 65535u
#define PG__IMAGE_DEFAULT_MAX_PIXELS    100000000u
#define PG__IMAGE_DEFAULT_TARGET_SIZE   896u

/* PG_ERR_LIMIT (with a message naming `what`) when w x h breaks the limits, PG_ERR_FORMAT
 * for a zero dimension, else PG_OK. Call before allocating anything of that size. */
pg_status
pg__image_check_size(const pg__image_limits *lim, uint64_t w, uint64_t h, const char *what);

/* A new image with an uninitialised w*h*3 pixel buffer (NULL + error on failure). */
struct pg_image *pg__image_alloc(uint32_t w, uint32_t h);

/* Applies EXIF orientation 2..8 (1 and anything else: unchanged), like Pillow's
 * ImageOps.exif_transpose. May replace img->rgb; on failure the image is unchanged. */
pg_status pg__image_orient(struct pg_image *img, int orientation);

/* The Orientation tag (1..8) of a TIFF/EXIF block, or 0 when absent or unreadable. `tiff`
 * starts at the byte-order mark ("II*\0" / "MM\0*"), i.e. after "Exif\0\0". Never reads
 * outside [tiff, tiff + size), never loops. */
int pg__exif_orientation(const uint8_t *tiff, size_t size);
/* The same; *present (may be NULL) tells whether IFD0 holds a readable Orientation entry at
 * all (Pillow then does not look at XMP), whatever its value. */
int pg__exif_find_orientation(const uint8_t *tiff, size_t size, bool *present);
/* The digit after the first "tiff:Orientation=\"" or "tiff:Orientation>" in XMP text (Pillow's
 * fallback when the EXIF has no Orientation), or -1 when there is none. */
int pg__xmp_orientation(const char *xmp, size_t len);

/* Decoders. `data` is the whole file. On success *out is a new image (EXIF not applied yet);
 * *orientation receives the EXIF Orientation (0 if none). */
pg_status pg__decode_jpeg(const uint8_t *data,
                          size_t size,
                          const pg__image_limits *lim,
                          struct pg_image **out,
                          int *orientation);
pg_status pg__decode_png(const uint8_t *data,
                         size_t size,
                         const pg__image_limits *lim,
                         struct pg_image **out,
                         int *orientation);

#endif /* PG_IMAGE_H */
