/*
 * The public pg_image_* functions: options, format sniffing, loading from a file, from
 * memory and from caller pixels, accessors and pg_image_preprocess.
 */
#include "image/image.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Files above this size are refused before reading (a 100-Mpixel JPEG is far smaller). */
#define PG__IMAGE_MAX_FILE_BYTES ((size_t)1 << 30)

PG_API void pg_image_options_init(pg_image_options *opts, size_t struct_size)
{
    pg_image_options d;
    memset(&d, 0, sizeof d);
    d.max_dimension = PG__IMAGE_DEFAULT_MAX_DIMENSION;
    d.max_pixels = PG__IMAGE_DEFAULT_MAX_PIXELS;
    d.target_size = PG__IMAGE_DEFAULT_TARGET_SIZE;
    pg__options_init(opts, struct_size, &d, sizeof d);
}

/* Resolves `opts` (NULL = defaults) into limits; 0 fields mean the default. */
static pg_status resolve_options(const pg_image_options *opts, pg__image_limits *lim)
{
    pg_image_options o;
    memset(&o, 0, sizeof o);
    if (opts) {
        pg_status st = pg__check_struct_size(
            opts, sizeof o, offsetof(pg_image_options, flags) + sizeof o.flags, "pg_image_options");
        if (st != PG_OK) {
            return st;
        }
        memcpy(&o, opts, opts->struct_size < sizeof o ? opts->struct_size : sizeof o);
    }
    const uint32_t known = PG_IMAGE_NO_EXIF_ROTATE | PG_IMAGE_FAST_JPEG_SCALE;
    if (o.flags & ~known) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_image_options: unknown flags 0x%x",
                         o.flags & ~known);
    }
    lim->flags = o.flags;
    lim->max_dimension = o.max_dimension ? o.max_dimension : PG__IMAGE_DEFAULT_MAX_DIMENSION;
    lim->max_pixels = o.max_pixels ? o.max_pixels : PG__IMAGE_DEFAULT_MAX_PIXELS;
    lim->target_size = o.target_size ? o.target_size : PG__IMAGE_DEFAULT_TARGET_SIZE;
    return PG_OK;
}

/* Formats recognised by their signature but not decoded here. */
static const char *unsupported_format(const uint8_t *d, size_t n)
{
    if (n >= 2 && d[0] == 'B' && d[1] == 'M') {
        return "BMP";
    }
    if (n >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0)) {
        return "GIF";
    }
    if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0) {
        return "WebP";
    }
    if (n >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0)) {
        return "TIFF";
    }
    if (n >= 12 && memcmp(d + 4, "ftyp", 4) == 0) {
        return "HEIF/AVIF (ISO media)";
    }
    if (n >= 12 && memcmp(d, "\0\0\0\x0cjP  ", 8) == 0) {
        return "JPEG 2000";
    }
    if (n >= 4 && memcmp(d, "\xff\x0a", 2) == 0) {
        return "JPEG XL";
    }
    return NULL;
}

static pg_status
decode(const uint8_t *d, size_t n, const pg__image_limits *lim, struct pg_image **out)
{
    static const uint8_t png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    int orientation = 0;
    pg_status st;
    if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff) {
        st = pg__decode_jpeg(d, n, lim, out, &orientation);
    } else if (n >= 8 && memcmp(d, png_sig, 8) == 0) {
        st = pg__decode_png(d, n, lim, out, &orientation);
    } else {
        const char *fmt = unsupported_format(d, n);
        if (fmt) {
            return pg__error(PG_ERR_UNSUPPORTED,
                             "unsupported image format %s (JPEG and PNG "
                             "are decoded)",
                             fmt);
        }
        if (n == 0) {
            return pg__error(PG_ERR_FORMAT, "empty image data");
        }
        return pg__error(PG_ERR_FORMAT, "not a JPEG or PNG image");
    }
    if (st != PG_OK) {
        return st;
    }
    if (!(lim->flags & PG_IMAGE_NO_EXIF_ROTATE) && orientation > 1) {
        st = pg__image_orient(*out, orientation);
        if (st != PG_OK) {
            pg_image_free(*out);
            *out = NULL;
        }
    }
    return st;
}

PG_API pg_status pg_image_load_memory(pg_image **out,
                                      const void *data,
                                      size_t size,
                                      const pg_image_options *opts)
{
    if (!out) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_image_load_memory: out is NULL");
    }
    *out = NULL;
    if (!data && size > 0) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_image_load_memory: data is NULL");
    }
    pg__image_limits lim;
    pg_status st = resolve_options(opts, &lim);
    if (st != PG_OK) {
        return st;
    }
    return decode(data, size, &lim, out);
}

PG_API pg_status pg_image_load_file(pg_image **out, const char *path, const pg_image_options *opts)
{
    if (!out) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_image_load_file: out is NULL");
    }
    *out = NULL;
    if (!path) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_image_load_file: path is NULL");
    }
    pg__image_limits lim;
    pg_status st = resolve_options(opts, &lim);
    if (st != PG_OK) {
        return st;
    }
    char *data;
    size_t size;
    st = pg__read_file(path, PG__IMAGE_MAX_FILE_BYTES, &data, &size);
    if (st != PG_OK) {
        return st;
    }
    st = decode((const uint8_t *)data, size, &lim, out);
    free(data);
    if (st != PG_OK) {
        pg__error_prefix("%s", path);
    }
    return st;
}

/* Bytes per pixel of a PG_PIXEL_* layout, 0 if unknown. */
static size_t pixel_bytes(int32_t fmt)
{
    switch (fmt) {
    case PG_PIXEL_RGB8:
    case PG_PIXEL_BGR8:
        return 3;
    case PG_PIXEL_RGBA8:
    case PG_PIXEL_BGRA8:
        return 4;
    case PG_PIXEL_GRAY8:
        return 1;
    default:
        return 0;
    }
}

static void convert_row(uint8_t *d, const uint8_t *s, uint32_t w, int32_t fmt)
{
    switch (fmt) {
    case PG_PIXEL_RGB8:
        memcpy(d, s, (size_t)w * 3);
        break;
    case PG_PIXEL_RGBA8:
        for (uint32_t x = 0; x < w; x++, d += 3, s += 4) {
            d[0] = s[0], d[1] = s[1], d[2] = s[2];
        }
        break;
    case PG_PIXEL_BGR8:
        for (uint32_t x = 0; x < w; x++, d += 3, s += 3) {
            d[0] = s[2], d[1] = s[1], d[2] = s[0];
        }
        break;
    case PG_PIXEL_BGRA8:
        for (uint32_t x = 0; x < w; x++, d += 3, s += 4) {
            d[0] = s[2], d[1] = s[1], d[2] = s[0];
        }
        break;
    default: /* PG_PIXEL_GRAY8 */
        for (uint32_t x = 0; x < w; x++, d += 3, s++) {
            d[0] = d[1] = d[2] = s[0];
        }
        break;
    }
}

PG_API pg_status pg_image_from_pixels(pg_image **out,
                                      const void *pixels,
                                      uint32_t width,
                                      uint32_t height,
                                      size_t stride,
                                      int32_t pixel_format,
                                      const pg_image_options *opts)
{
    if (!out) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_image_from_pixels: out is NULL");
    }
    *out = NULL;
    if (!pixels) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_image_from_pixels: pixels is NULL");
    }
    size_t bpp = pixel_bytes(pixel_format);
    if (bpp == 0) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_image_from_pixels: unknown pixel format %d",
                         (int)pixel_format);
    }
    pg__image_limits lim;
    pg_status st = resolve_options(opts, &lim);
    if (st != PG_OK) {
        return st;
    }
    if (width == 0 || height == 0) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_image_from_pixels: size %ux%u is empty",
                         width, height);
    }
    st = pg__image_check_size(&lim, width, height, "pg_image_from_pixels");
    if (st != PG_OK) {
        return st;
    }
    size_t row;
    if (!pg__mul_size(width, bpp, &row)) {
        return pg__error(PG_ERR_LIMIT, "pg_image_from_pixels: row size overflows");
    }
    if (stride == 0) {
        stride = row;
    }
    if (stride < row) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "pg_image_from_pixels: stride %zu is smaller than a row (%zu bytes)",
                         stride, row);
    }
    struct pg_image *img = pg__image_alloc(width, height);
    if (!img) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    const uint8_t *src = pixels;
    for (uint32_t y = 0; y < height; y++) {
        convert_row(img->rgb + (size_t)y * width * 3, src + (size_t)y * stride, width,
                    pixel_format);
    }
    *out = img;
    return PG_OK;
}

PG_API void pg_image_free(pg_image *image)
{
    if (image) {
        free(image->rgb);
        free(image);
    }
}

PG_API uint32_t pg_image_width(const pg_image *image)
{
    return image ? image->width : 0;
}

PG_API uint32_t pg_image_height(const pg_image *image)
{
    return image ? image->height : 0;
}

PG_API const uint8_t *pg_image_pixels(const pg_image *image)
{
    return image ? image->rgb : NULL;
}

PG_API pg_status pg_image_preprocess(
    const pg_image *image, uint32_t size, int32_t method, float *out, size_t n_floats)
{
    if (!image || !out) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_image_preprocess: NULL argument");
    }
    if (size == 0 || size > 16384) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "pg_image_preprocess: size %u is out of range (1..16384)", size);
    }
    size_t need = (size_t)3 * size * size;
    if (n_floats < need) {
        return pg__error(PG_ERR_LIMIT, "pg_image_preprocess: out holds %zu floats, %zu needed",
                         n_floats, need);
    }
    return pg__image_preprocess(image, size, method, out);
}
