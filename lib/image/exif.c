/*
 * EXIF Orientation (tag 0x0112) from a TIFF block, as Pillow's Image.getexif() reads it for
 * ImageOps.exif_transpose: IFD0 only, value 1..8 stored as SHORT (or LONG) with count 1.
 *
 * Only IFD0 is visited and each of its entries once, so there are no loops to bomb and
 * every read is bounds-checked against the block (the goexif "EXIF bomb" files: huge tag
 * counts, IFD loops, offsets of 0xFFFFFFFF, all end here with "no orientation").
 */
#include "image/image.h"

static uint32_t rd16(const uint8_t *p, int be)
{
    return be ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0];
}

static uint32_t rd32(const uint8_t *p, int be)
{
    return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

enum {
    TIFF_SHORT = 3,
    TIFF_LONG = 4,
    TAG_ORIENTATION = 0x0112
};

int pg__exif_orientation(const uint8_t *tiff, size_t size)
{
    if (!tiff || size < 8) {
        return 0;
    }
    int be;
    if (tiff[0] == 'I' && tiff[1] == 'I') {
        be = 0;
    } else if (tiff[0] == 'M' && tiff[1] == 'M') {
        be = 1;
    } else {
        return 0;
    }
    if (rd16(tiff + 2, be) != 42) {
        return 0;
    }
    uint64_t ifd = rd32(tiff + 4, be);
    if (ifd + 2 > size) {
        return 0;
    }
    /* Pillow keeps the last entry of a repeated tag; a count other than 1 or another type
     * gives a value exif_transpose ignores. */
    int orientation = 0;
    uint32_t count = rd16(tiff + ifd, be);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t e = ifd + 2 + (uint64_t)i * 12;
        if (e + 12 > size) {
            break; /* truncated directory: keep what was read */
        }
        const uint8_t *ent = tiff + e;
        if (rd16(ent, be) != TAG_ORIENTATION) {
            continue;
        }
        uint32_t type = rd16(ent + 2, be), n = rd32(ent + 4, be);
        uint32_t v = 0;
        if (n == 1 && type == TIFF_SHORT) {
            v = rd16(ent + 8, be);
        } else if (n == 1 && type == TIFF_LONG) {
            v = rd32(ent + 8, be);
        }
        orientation = v >= 1 && v <= 8 ? (int)v : 0;
    }
    return orientation;
}
