/* Output of masks and boxes for pg segment / pg detect: COCO RLE, PNG files (libspng) and an
 * overlay picture. */
#ifndef PG_CLI_MASK_OUT_H
#define PG_CLI_MASK_OUT_H

#include "paligemma.h"

#include <stddef.h>
#include <stdint.h>

/* COCO's compressed RLE string of a w x h 0/1 mask (row-major input; runs are counted in
 * column-major order starting with zeros, as pycocotools' mask.encode writes them). malloc'd,
 * NULL when out of memory. */
char *pg_cli_rle_string(const uint8_t *mask, uint32_t w, uint32_t h);

/* Writes an 8-bit gray PNG of w x h pixels (0 / 255 for a 0/1 mask when scale is set).
 * Returns 0, or 1 after a message on stderr. */
int pg_cli_write_gray_png(const char *path, const uint8_t *gray, uint32_t w, uint32_t h,
                          int scale);

/* The overlay picture: the image with each object's mask tinted (masks[i] may be NULL, masks
 * may be NULL) and its box outlined, in a colour per object; written as an RGB PNG. Returns 0,
 * or 1 after a message on stderr. */
int pg_cli_write_overlay(const char *path, const pg_image *img, const pg_detections *d,
                         uint8_t *const *masks);

#endif /* PG_CLI_MASK_OUT_H */
