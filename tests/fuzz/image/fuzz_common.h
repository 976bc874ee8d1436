/* Shared by the image fuzz targets: decode under small limits, then preprocess. */
#ifndef PG_FUZZ_IMAGE_COMMON_H
#define PG_FUZZ_IMAGE_COMMON_H

#include "paligemma.h"

#include <stdint.h>
#include <stdlib.h>

/* Decodes (limits keep each input fast: 4 Mpixel) and, on success, runs both resamplers to a
 * small size so that the resize code sees every odd shape the decoders produce. */
static inline void pg_fuzz_image(const uint8_t *data, size_t size, uint32_t flags)
{
    pg_image_options o;
    PG_IMAGE_OPTIONS_INIT(&o);
    o.flags = flags;
    o.max_dimension = 8192;
    o.max_pixels = (uint64_t)1 << 22;
    o.target_size = 16;
    pg_image *img = NULL;
    if (pg_image_load_memory(&img, data, size, &o) != PG_OK) {
        return;
    }
    float *out = malloc(3 * 17 * 17 * sizeof *out);
    if (out) {
        pg_image_preprocess(img, 17, PG_RESIZE_BICUBIC_PIL, out, 3 * 17 * 17);
        pg_image_preprocess(img, 17, PG_RESIZE_BILINEAR_TF, out, 3 * 17 * 17);
        free(out);
    }
    pg_image_free(img);
}

#endif
