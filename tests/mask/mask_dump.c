/*
 * mask_dump NPZ WIDTH HEIGHT TEXT OUT_PREFIX: the test_mask.py helper. Parses TEXT (a segment
 * answer) for a WIDTH x HEIGHT image through the public API, decodes every object's mask with
 * the decoder of NPZ and writes, per object i: OUT_PREFIX.i.logits (4096 float32),
 * OUT_PREFIX.i.mask (WIDTH*HEIGHT bytes) and OUT_PREFIX.i.box (text: x0 y0 x1 y1). Prints the
 * number of objects; exit 1 (with the message) on any failure.
 */
#include "paligemma.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int write_file(const char *prefix, size_t i, const char *ext, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.%zu.%s", prefix, i, ext);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(p, 1, n, f) == n;
    if (f && fclose(f) != 0) {
        ok = 0;
    }
    if (!ok) {
        fprintf(stderr, "cannot write %s\n", path);
    }
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: mask_dump NPZ WIDTH HEIGHT TEXT OUT_PREFIX\n");
        return 2;
    }
    const uint32_t w = (uint32_t)strtoul(argv[2], NULL, 10), h = (uint32_t)strtoul(argv[3], NULL, 10);
    pg_mask_decoder *dec = NULL;
    pg_detections *d = NULL;
    if (pg_mask_decoder_load(&dec, argv[1]) != PG_OK ||
        pg_detections_parse(&d, argv[4], strlen(argv[4]), w, h) != PG_OK) {
        fprintf(stderr, "%s\n", pg_last_error());
        pg_mask_decoder_free(dec);
        return 1;
    }
    int rc = 0;
    float logits[PG_MASK_SIDE * PG_MASK_SIDE];
    uint8_t *mask = malloc((size_t)w * h);
    for (size_t i = 0; i < pg_detections_count(d) && !rc && mask; i++) {
        uint32_t box[4];
        char line[128];
        if (pg_detections_mask(d, i, dec, logits, mask, (size_t)w * h, box) != PG_OK) {
            fprintf(stderr, "object %zu: %s\n", i, pg_last_error());
            rc = 1;
            break;
        }
        int n = snprintf(line, sizeof line, "%u %u %u %u\n", box[0], box[1], box[2], box[3]);
        rc = write_file(argv[5], i, "logits", logits, sizeof logits) ||
             write_file(argv[5], i, "mask", mask, (size_t)w * h) ||
             write_file(argv[5], i, "box", line, (size_t)n);
    }
    if (!mask) {
        rc = 1;
    }
    printf("%zu\n", pg_detections_count(d));
    free(mask);
    pg_detections_free(d);
    pg_mask_decoder_free(dec);
    return rc;
}
