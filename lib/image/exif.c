/*
 * EXIF Orientation (tag 0x0112) from a TIFF block, as Pillow's Image.getexif() reads it for
 * ImageOps.exif_transpose: IFD0 only; integer types; the first value; the last entry.
 *
 * Only IFD0 is visited and each of its entries once, so there are no loops to bomb and
 * every read is bounds-checked against the block (the goexif "EXIF bomb" files: huge tag
 * counts, IFD loops, offsets of 0xFFFFFFFF, all end here with "no orientation").
 */
#include "image/image.h"

#include <string.h>

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
    TAG_ORIENTATION = 0x0112
};

/* Bytes per value of TIFF field types 1..13 (0: unknown type, which Pillow skips). */
static uint32_t type_size(uint32_t type)
{
    static const uint8_t sizes[14] = { 0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4 };
    return type < 14 ? sizes[type] : 0;
}

/*
 * The value of one Orientation entry as Pillow's exif.get(0x0112) ends up seeing it:
 *   1..8  an integer field (SHORT, LONG, SSHORT, SLONG); with count > 1 Pillow warns and
 *         keeps the first value;
 *   0     a value exif_transpose ignores (count 0, bytes, text, out of range);
 *   -1    an entry Pillow skips altogether (unknown type, data outside the block), so an
 *         earlier entry stays in force.
 */
static int entry_orientation(const uint8_t *tiff, size_t size, const uint8_t *ent, int be)
{
    uint32_t type = rd16(ent + 2, be), count = rd32(ent + 4, be);
    uint32_t unit = type_size(type);
    if (unit == 0) {
        return -1;
    }
    uint64_t bytes = (uint64_t)unit * count;
    const uint8_t *val = ent + 8;
    if (bytes > 4) {
        uint64_t off = rd32(ent + 8, be);
        if (off + bytes > size) {
            return -1;
        }
        val = tiff + off;
    }
    if (count == 0) {
        return 0;
    }
    int64_t v;
    switch (type) {
    case 3:
        v = rd16(val, be);
        break; /* SHORT */
    case 4:
        v = rd32(val, be);
        break; /* LONG */
    case 8:
        v = (int16_t)(uint16_t)rd16(val, be);
        break; /* SSHORT */
    case 9:
        v = (int32_t)rd32(val, be);
        break; /* SLONG */
    default:
        return 0; /* BYTE/UNDEFINED give bytes, ASCII text: ignored by exif_transpose */
    }
    return v >= 1 && v <= 8 ? (int)v : 0;
}

int pg__exif_orientation(const uint8_t *tiff, size_t size)
{
    return pg__exif_find_orientation(tiff, size, NULL);
}

int pg__exif_find_orientation(const uint8_t *tiff, size_t size, bool *present)
{
    if (present) {
        *present = false;
    }
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
    /* Pillow keeps the last readable entry of a repeated tag. */
    int orientation = 0;
    uint32_t count = rd16(tiff + ifd, be);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t e = ifd + 2 + (uint64_t)i * 12;
        if (e + 12 > size) {
            break; /* truncated directory: Pillow keeps what it read */
        }
        const uint8_t *ent = tiff + e;
        if (rd16(ent, be) != TAG_ORIENTATION) {
            continue;
        }
        int v = entry_orientation(tiff, size, ent, be);
        if (v >= 0) {
            orientation = v;
            if (present) {
                *present = true;
            }
        }
    }
    return orientation;
}

int pg__xmp_orientation(const char *xmp, size_t len)
{
    /* Pillow: re.search(r'tiff:Orientation(="|>)([0-9])', xmp) -> int(digit). */
    static const char key[] = "tiff:Orientation";
    const size_t klen = sizeof key - 1;
    for (size_t i = 0; xmp && i + klen < len; i++) {
        if (memcmp(xmp + i, key, klen) != 0) {
            continue;
        }
        const char *p = xmp + i + klen;
        size_t left = len - i - klen;
        if (left >= 3 && p[0] == '=' && p[1] == '"' && p[2] >= '0' && p[2] <= '9') {
            return p[2] - '0';
        }
        if (left >= 2 && p[0] == '>' && p[1] >= '0' && p[1] <= '9') {
            return p[1] - '0';
        }
    }
    return -1;
}
