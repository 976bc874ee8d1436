/*
 * Masks and boxes out of the pg tool: COCO RLE strings, gray PNG masks and an overlay picture
 * (mask_out.h).
 *
 * COCO RLE (pycocotools): the mask is read column by column (Fortran order); counts are the
 * lengths of alternating runs, the first of zeros (0 when the first pixel is set). The string
 * form stores each count, from the third on as the difference to the count two before, in
 * 5-bit groups, least significant first, each group + 48 as a character, with 0x20 set when
 * more groups follow; the last group's bit 0x10 is the sign.
 */
#include "mask_out.h"

#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Run lengths in column-major order (first run: zeros); *n receives their number. */
static uint32_t *rle_counts(const uint8_t *mask, uint32_t w, uint32_t h, size_t *n)
{
    const size_t total = (size_t)w * h;
    uint32_t *c = malloc((total + 1) * sizeof *c);
    if (!c) {
        return NULL;
    }
    size_t k = 0;
    uint8_t cur = 0;
    uint32_t run = 0;
    for (uint32_t x = 0; x < w; x++) {
        for (uint32_t y = 0; y < h; y++) {
            const uint8_t v = mask[(size_t)y * w + x] ? 1 : 0;
            if (v != cur) {
                c[k++] = run;
                run = 0;
                cur = v;
            }
            run++;
        }
    }
    c[k++] = run;
    *n = k;
    return c;
}

char *pg_cli_rle_string(const uint8_t *mask, uint32_t w, uint32_t h)
{
    size_t n = 0;
    uint32_t *c = rle_counts(mask, w, h, &n);
    char *s = c ? malloc(n * 7 + 1) : NULL; /* a 33-bit signed delta needs at most 7 groups */
    if (!s) {
        free(c);
        return NULL;
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        long long x = c[i];
        if (i > 2) {
            x -= (long long)c[i - 2];
        }
        for (int more = 1; more;) {
            long long g = x & 0x1f;
            x >>= 5; /* arithmetic shift: floor division, as Python's >> */
            more = (g & 0x10) ? x != -1 : x != 0;
            if (more) {
                g |= 0x20;
            }
            s[len++] = (char)(g + 48);
        }
    }
    s[len] = '\0';
    free(c);
    return s;
}

static int write_png(const char *path, const uint8_t *pixels, uint32_t w, uint32_t h,
                     int color_type, size_t bytes)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "pg: cannot write %s\n", path);
        return 1;
    }
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    struct spng_ihdr ihdr = { .width = w, .height = h, .bit_depth = 8,
                              .color_type = (uint8_t)color_type };
    int err = ctx ? spng_set_png_file(ctx, f) : SPNG_EMEM;
    if (!err) {
        err = spng_set_ihdr(ctx, &ihdr);
    }
    if (!err) {
        err = spng_encode_image(ctx, pixels, bytes, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    }
    spng_ctx_free(ctx);
    if (fclose(f) != 0 && !err) {
        err = SPNG_IO_ERROR;
    }
    if (err) {
        fprintf(stderr, "pg: %s: %s\n", path, spng_strerror(err));
        return 1;
    }
    return 0;
}

int pg_cli_write_gray_png(const char *path, const uint8_t *gray, uint32_t w, uint32_t h,
                          int scale)
{
    const size_t n = (size_t)w * h;
    uint8_t *px = malloc(n ? n : 1);
    if (!px) {
        fprintf(stderr, "pg: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        px[i] = scale ? (gray[i] ? 255 : 0) : gray[i];
    }
    int rc = write_png(path, px, w, h, SPNG_COLOR_TYPE_GRAYSCALE, n);
    free(px);
    return rc;
}

/* Distinct, saturated colours, one per object (cycled). */
static const uint8_t palette[8][3] = {
    { 230, 25, 75 }, { 60, 180, 75 }, { 0, 130, 200 }, { 245, 130, 48 },
    { 145, 30, 180 }, { 70, 240, 240 }, { 240, 50, 230 }, { 255, 225, 25 },
};

static void put(uint8_t *px, uint32_t w, uint32_t h, long x, long y, const uint8_t *c)
{
    if (x >= 0 && y >= 0 && x < (long)w && y < (long)h) {
        memcpy(px + ((size_t)y * w + (size_t)x) * 3, c, 3);
    }
}

/* A rectangle outline, `t` pixels thick inside the box. */
static void outline(uint8_t *px, uint32_t w, uint32_t h, const pg_detection_info *o,
                    const uint8_t *c)
{
    const long x0 = (long)o->x_min, y0 = (long)o->y_min;
    const long x1 = (long)o->x_max - 1, y1 = (long)o->y_max - 1;
    const long t = (w > 400 || h > 400) ? 3 : 1;
    for (long k = 0; k < t; k++) {
        for (long x = x0; x <= x1; x++) {
            put(px, w, h, x, y0 + k, c);
            put(px, w, h, x, y1 - k, c);
        }
        for (long y = y0; y <= y1; y++) {
            put(px, w, h, x0 + k, y, c);
            put(px, w, h, x1 - k, y, c);
        }
    }
}

int pg_cli_write_overlay(const char *path, const pg_image *img, const pg_detections *d,
                         uint8_t *const *masks)
{
    const uint32_t w = pg_image_width(img), h = pg_image_height(img);
    const size_t n = (size_t)w * h * 3;
    uint8_t *px = malloc(n);
    if (!px) {
        fprintf(stderr, "pg: out of memory\n");
        return 1;
    }
    memcpy(px, pg_image_pixels(img), n);
    for (size_t i = 0; i < pg_detections_count(d); i++) {
        const uint8_t *c = palette[i % 8];
        if (masks && masks[i]) { /* half-transparent tint */
            for (size_t p = 0; p < (size_t)w * h; p++) {
                for (int k = 0; masks[i][p] && k < 3; k++) {
                    px[p * 3 + (size_t)k] = (uint8_t)((px[p * 3 + (size_t)k] + c[k]) / 2);
                }
            }
        }
    }
    for (size_t i = 0; i < pg_detections_count(d); i++) { /* outlines on top of every tint */
        pg_detection_info o = { .struct_size = sizeof o };
        if (pg_detections_get(d, i, &o) == PG_OK) {
            outline(px, w, h, &o, palette[i % 8]);
        }
    }
    int rc = write_png(path, px, w, h, SPNG_COLOR_TYPE_TRUECOLOR, n);
    free(px);
    return rc;
}
