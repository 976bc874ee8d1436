/*
 * PNG through libspng, converted to 8-bit RGB exactly as Pillow 9.4 opens the file and then
 * calls convert("RGB"):
 *   gray 1-bit     mode "1"  -> 0 / 255
 *   gray 2/4-bit   mode "L"  -> v * 0x55 / v * 0x11 (bit replication)
 *   gray 16-bit    mode "I"  -> clamp(v, 0, 255)  (Pillow's i2rgb clamps; it does not scale)
 *   RGB/RGBA/LA 16 high byte of each sample (Pillow's ;16B unpackers)
 *   palette        expanded through PLTE; indices past the PLTE entries read Pillow's
 *                  default grayscale ramp (i, i, i)
 *   alpha, tRNS    ignored (no compositing)
 * Gamma and colour chunks are ignored, like Pillow. The orientation comes from where Pillow's
 * getexif() finds it: eXIf, ImageMagick's raw EXIF profile text, or XMP.
 */
#include "image/image.h"

#include <spng.h>
#include <stdlib.h>
#include <string.h>

/* Ancillary chunk memory is capped so that a file cannot make libspng cache gigabytes. */
#define PNG_CHUNK_LIMIT ((size_t)64 << 20)

typedef struct png_job {
    struct spng_ihdr ihdr;
    uint8_t palette[256][3];
} png_job;

/* Sample `i` of a packed row of `bits`-bit samples (bits = 1, 2, 4, 8). */
static inline uint32_t packed_sample(const uint8_t *row, uint32_t i, uint32_t bits)
{
    if (bits == 8) {
        return row[i];
    }
    uint32_t per_byte = 8 / bits, mask = (1u << bits) - 1;
    uint32_t shift = 8 - bits - (i % per_byte) * bits;
    return (row[i / per_byte] >> shift) & mask;
}

/* 16-bit sample i of a row in host byte order (memcpy: no alignment or aliasing concerns). */
static inline uint32_t sample16(const uint8_t *row, size_t i)
{
    uint16_t v;
    memcpy(&v, row + 2 * i, 2);
    return v;
}

/* Converts one decoded row (SPNG_FMT_PNG: packed low depths, host-endian 16-bit). */
static void convert_row(const png_job *j, const uint8_t *s, uint8_t *d, uint32_t w)
{
    const uint32_t bits = j->ihdr.bit_depth;
    switch (j->ihdr.color_type) {
    case SPNG_COLOR_TYPE_GRAYSCALE:
        for (uint32_t x = 0; x < w; x++, d += 3) {
            uint32_t v;
            if (bits == 16) {
                v = sample16(s, x) > 255 ? 255 : sample16(s, x);
            } else {
                v = packed_sample(s, x, bits);
                v = bits == 1 ? v * 255 : bits == 2 ? v * 0x55 : bits == 4 ? v * 0x11 : v;
            }
            d[0] = d[1] = d[2] = (uint8_t)v;
        }
        break;
    case SPNG_COLOR_TYPE_TRUECOLOR:
        for (uint32_t x = 0; x < w; x++, d += 3) {
            for (int c = 0; c < 3; c++) {
                d[c] = bits == 16 ? (uint8_t)(sample16(s, 3 * (size_t)x + c) >> 8) : s[3 * x + c];
            }
        }
        break;
    case SPNG_COLOR_TYPE_INDEXED:
        for (uint32_t x = 0; x < w; x++, d += 3) {
            memcpy(d, j->palette[packed_sample(s, x, bits)], 3);
        }
        break;
    case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA:
        for (uint32_t x = 0; x < w; x++, d += 3) {
            d[0] = d[1] = d[2] = bits == 16 ? (uint8_t)(sample16(s, 2 * (size_t)x) >> 8) : s[2 * x];
        }
        break;
    default: /* SPNG_COLOR_TYPE_TRUECOLOR_ALPHA */
        for (uint32_t x = 0; x < w; x++, d += 3) {
            for (int c = 0; c < 3; c++) {
                d[c] = bits == 16 ? (uint8_t)(sample16(s, 4 * (size_t)x + c) >> 8) : s[4 * x + c];
            }
        }
        break;
    }
}

static pg_status spng_fail(int err, const char *what)
{
    return pg__error(PG_ERR_FORMAT, "PNG: %s: %s", what, spng_strerror(err));
}

static void load_palette(spng_ctx *ctx, png_job *j)
{
    for (int i = 0; i < 256; i++) { /* Pillow's default palette: a grayscale ramp */
        j->palette[i][0] = j->palette[i][1] = j->palette[i][2] = (uint8_t)i;
    }
    struct spng_plte plte;
    if (spng_get_plte(ctx, &plte) == 0) {
        for (uint32_t i = 0; i < plte.n_entries && i < 256; i++) {
            j->palette[i][0] = plte.entries[i].red;
            j->palette[i][1] = plte.entries[i].green;
            j->palette[i][2] = plte.entries[i].blue;
        }
    }
}

/* Decodes all rows into img. Non-interlaced rows are converted one at a time; interlaced
 * images need the whole raw image because each pass revisits every row. */
static pg_status decode_rows(spng_ctx *ctx, png_job *j, struct pg_image *img)
{
    size_t raw_size;
    int err = spng_decoded_image_size(ctx, SPNG_FMT_PNG, &raw_size);
    if (err) {
        return spng_fail(err, "size");
    }
    const size_t raw_row = raw_size / img->height;
    const int interlaced = j->ihdr.interlace_method != 0;
    /* Zeroed: for depths below 8, libspng ORs each Adam7 pass's bits into the row. */
    uint8_t *raw = pg__calloc(interlaced ? raw_size : raw_row, 1);
    if (!raw) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    err = spng_decode_image(ctx, NULL, 0, SPNG_FMT_PNG, SPNG_DECODE_PROGRESSIVE);
    struct spng_row_info ri;
    while (!err) {
        err = spng_get_row_info(ctx, &ri);
        if (err) {
            break;
        }
        if (ri.row_num >= img->height) {
            err = SPNG_EINTERNAL;
            break;
        }
        uint8_t *row = interlaced ? raw + (size_t)ri.row_num * raw_row : raw;
        err = spng_decode_row(ctx, row, raw_row);
        if ((err == 0 || err == SPNG_EOI) && !interlaced) {
            convert_row(j, row, img->rgb + (size_t)ri.row_num * img->width * 3, img->width);
        }
    }
    if (err != SPNG_EOI) {
        free(raw);
        return spng_fail(err, "decode");
    }
    if (interlaced) {
        for (uint32_t y = 0; y < img->height; y++) {
            convert_row(j, raw + (size_t)y * raw_row, img->rgb + (size_t)y * img->width * 3,
                        img->width);
        }
    }
    free(raw);
    return PG_OK;
}

/* The TIFF block of an EXIF buffer, without the optional "Exif\0\0" prefix. */
static int exif_block_orientation(const uint8_t *d, size_t n, bool *present)
{
    if (n >= 6 && memcmp(d, "Exif\0\0", 6) == 0) {
        d += 6;
        n -= 6;
    }
    return pg__exif_find_orientation(d, n, present);
}

/* ImageMagick's "Raw profile type exif" text: "\nexif\n   <len>\n<hex lines>". Pillow joins
 * the lines after the third "\n" and reads them with bytes.fromhex (which skips whitespace
 * between bytes). */
static int raw_profile_orientation(const char *t, size_t n, bool *present)
{
    size_t i = 0;
    for (int nl = 0; nl < 3; i++) {
        if (i >= n) {
            return 0;
        }
        nl += t[i] == '\n';
    }
    uint8_t *bin = pg__malloc(n / 2 + 1);
    if (!bin) {
        return 0;
    }
    size_t len = 0;
    int hi = -1, ok = 1;
    for (; i < n && ok; i++) {
        char c = t[i];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (c == '\n') {
            continue; /* Pillow removes the line breaks before decoding */
        }
        if (v < 0) {
            ok = c == ' ' || c == '\r' || c == '\t' || c == '\v' || c == '\f';
            ok = ok && hi < 0; /* other whitespace between two digits of a byte is invalid */
        } else if (hi < 0) {
            hi = v;
        } else {
            bin[len++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    /* Pillow raises on bad hex (and load_image fails); here the profile is just ignored. */
    int o = ok && hi < 0 ? exif_block_orientation(bin, len, present) : 0;
    free(bin);
    return o;
}

/*
 * The orientation exif_transpose sees for a PNG (Pillow 9.4 getexif): the eXIf chunk, else the
 * last "Raw profile type exif" text chunk; when neither has an Orientation entry, the last
 * "XML:com.adobe.xmp" text's tiff:Orientation. Chunks after the image data count too.
 */
static int png_orientation(spng_ctx *ctx)
{
    bool present = false;
    int o = 0;
    struct spng_exif exif;
    uint32_t n_text = 0;
    struct spng_text *text = NULL;
    if (spng_get_text(ctx, NULL, &n_text) == 0 && n_text > 0) {
        text = pg__malloc_array(n_text, sizeof *text);
        if (text && spng_get_text(ctx, text, &n_text) != 0) {
            n_text = 0;
        }
    }
    if (!text) {
        n_text = 0;
    }
    const struct spng_text *raw = NULL, *xmp = NULL;
    for (uint32_t i = 0; i < n_text; i++) {
        if (!text[i].text) {
            continue;
        }
        if (strcmp(text[i].keyword, "Raw profile type exif") == 0) {
            raw = &text[i];
        } else if (strcmp(text[i].keyword, "XML:com.adobe.xmp") == 0) {
            xmp = &text[i];
        }
    }
    if (spng_get_exif(ctx, &exif) == 0 && exif.data) {
        o = exif_block_orientation((const uint8_t *)exif.data, exif.length, &present);
    } else if (raw) {
        o = raw_profile_orientation(raw->text, raw->length, &present);
    }
    if (!present && xmp) {
        int x = pg__xmp_orientation(xmp->text, xmp->length);
        o = x >= 1 && x <= 8 ? x : 0;
    }
    free(text);
    return o;
}

pg_status pg__decode_png(const uint8_t *data,
                         size_t size,
                         const pg__image_limits *lim,
                         struct pg_image **out,
                         int *orientation)
{
    *out = NULL;
    *orientation = 0;
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "PNG: cannot create a decoder");
    }
    png_job j;
    struct pg_image *img = NULL;
    pg_status st = PG_OK;
    int err = spng_set_chunk_limits(ctx, PNG_CHUNK_LIMIT, PNG_CHUNK_LIMIT);
    if (!err) {
        err = spng_set_png_buffer(ctx, data, size);
    }
    if (!err) {
        err = spng_get_ihdr(ctx, &j.ihdr);
    }
    if (err) {
        st = spng_fail(err, "header");
        goto done;
    }
    st = pg__image_check_size(lim, j.ihdr.width, j.ihdr.height, "PNG");
    if (st != PG_OK) {
        goto done;
    }
    if (j.ihdr.color_type == SPNG_COLOR_TYPE_INDEXED) {
        load_palette(ctx, &j);
    }
    img = pg__image_alloc(j.ihdr.width, j.ihdr.height);
    if (!img) {
        st = PG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    st = decode_rows(ctx, &j, img);
    if (st == PG_OK) {
        *orientation = png_orientation(ctx);
    }
done:
    spng_ctx_free(ctx);
    if (st != PG_OK) {
        pg_image_free(img);
        img = NULL;
    }
    *out = img;
    return st;
}
