/*
 * JPEG through the libjpeg API of libjpeg-turbo, converted to 8-bit RGB the way Pillow 9.4
 * decodes (same library, default settings: ISLOW IDCT, fancy upsampling) and then calls
 * convert("RGB"):
 *   1 component   gray, replicated
 *   3 components  libjpeg's RGB output (YCbCr, or RGB per Adobe/JFIF markers)
 *   4 components  CMYK or YCCK read as CMYK, inverted as Adobe writes it (Pillow's
 *                 "CMYK;I"), then Pillow's cmyk2rgb
 * libjpeg errors longjmp back here (the library never exits). Warnings about corrupt data
 * are tolerated like Pillow does, except running out of data: Pillow then fails with "image
 * file is truncated", and so do we. Arithmetic coding is decoded (Pillow 9.4 here fails on
 * it). A progress monitor caps the number of scans so that crafted progressive files cannot
 * spin for minutes.
 */
#include "image/image.h"

#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE and size_t */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

/* More scans than any real encoder writes (libjpeg-turbo 3 uses the same default). */
#define JPEG_MAX_SCANS 500

typedef struct jpeg_job {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr err;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    int created;
    int hit_eof;
    char msg[JMSG_LENGTH_MAX];
    uint8_t *row;         /* one output scanline of the libjpeg colour space */
    struct pg_image *img; /* the result under construction */
} jpeg_job;

static void on_error_exit(j_common_ptr cinfo)
{
    jpeg_job *job = (jpeg_job *)cinfo->client_data;
    (*cinfo->err->format_message)(cinfo, job->msg);
    longjmp(job->jump, 1);
}

static void on_emit_message(j_common_ptr cinfo, int level)
{
    jpeg_job *job = (jpeg_job *)cinfo->client_data;
    if (level < 0) { /* a warning; trace messages (level >= 0) are ignored */
        cinfo->err->num_warnings++;
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
            job->hit_eof = 1;
        }
    }
}

static void on_output_message(j_common_ptr cinfo)
{
    (void)cinfo; /* never print */
}

static void on_progress(j_common_ptr cinfo)
{
    jpeg_job *job = (jpeg_job *)cinfo->client_data;
    const struct jpeg_decompress_struct *d = &job->cinfo;
    if (d->input_scan_number > JPEG_MAX_SCANS) {
        snprintf(job->msg, sizeof job->msg, "more than %d scans", JPEG_MAX_SCANS);
        longjmp(job->jump, 1);
    }
}

/* Pillow's cmyk2rgb on Pillow's (inverted) CMYK: nk = 255 - k; out = nk - c*nk/255. */
static inline uint8_t cmyk_channel(uint32_t c, uint32_t nk)
{
    uint32_t t = c * nk + 128;
    uint32_t m = ((t >> 8) + t) >> 8; /* MULDIV255 */
    return (uint8_t)(nk - m);         /* m <= nk, so no clipping is needed */
}

static void convert_row(const jpeg_job *job, uint8_t *d)
{
    const uint8_t *s = job->row;
    const uint32_t w = job->img->width;
    switch (job->cinfo.out_color_space) {
    case JCS_GRAYSCALE:
        for (uint32_t x = 0; x < w; x++, d += 3) {
            d[0] = d[1] = d[2] = s[x];
        }
        break;
    case JCS_CMYK:
        for (uint32_t x = 0; x < w; x++, d += 3, s += 4) {
            /* Stored inverted (Adobe): Pillow's C = 255 - s[0], ..., nk = 255 - K = s[3]. */
            uint32_t nk = s[3];
            d[0] = cmyk_channel(255u - s[0], nk);
            d[1] = cmyk_channel(255u - s[1], nk);
            d[2] = cmyk_channel(255u - s[2], nk);
        }
        break;
    default: /* JCS_RGB is decoded directly into the image */
        break;
    }
}

static int exif_from_markers(const struct jpeg_decompress_struct *cinfo)
{
    /* Pillow keeps the first APP1 that starts with "Exif\0" and parses it as TIFF after
     * "Exif\0\0"; a block without the second NUL does not parse, so no orientation. */
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 5 &&
            memcmp(m->data, "Exif\0", 5) == 0) {
            if (m->data_length < 6 || m->data[5] != 0) {
                return 0;
            }
            return pg__exif_orientation(m->data + 6, m->data_length - 6);
        }
    }
    return 0;
}

/* Largest DCT scaling 1/d (d in 1,2,4,8) that keeps both sides >= target. */
static unsigned fast_scale_denom(uint32_t w, uint32_t h, uint32_t target)
{
    unsigned d = 8;
    while (d > 1 && ((w + d - 1) / d < target || (h + d - 1) / d < target)) {
        d /= 2;
    }
    return d;
}

/* Everything that may longjmp lives here; all state is in *job (not in locals). */
static pg_status run_decoder(
    jpeg_job *job, const uint8_t *data, size_t size, const pg__image_limits *lim, int *orientation)
{
    struct jpeg_decompress_struct *cinfo = &job->cinfo;
    if (setjmp(job->jump)) {
        if (job->hit_eof) {
            return pg__error(PG_ERR_FORMAT, "JPEG: file is truncated (%s)", job->msg);
        }
        return pg__error(PG_ERR_FORMAT, "JPEG: %s", job->msg);
    }
    jpeg_create_decompress(cinfo);
    job->created = 1;
    job->progress.progress_monitor = on_progress;
    cinfo->progress = &job->progress;
    jpeg_mem_src(cinfo, data, (unsigned long)size);
    jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xffff);
    if (jpeg_read_header(cinfo, TRUE) != JPEG_HEADER_OK) {
        return pg__error(PG_ERR_FORMAT, "JPEG: no image in the file");
    }
    if (job->hit_eof) {
        return pg__error(PG_ERR_FORMAT, "JPEG: file is truncated in the header");
    }
    /* Read now: saved markers live in libjpeg's image pool, freed by jpeg_finish_decompress. */
    *orientation = exif_from_markers(cinfo);
    pg_status st = pg__image_check_size(lim, cinfo->image_width, cinfo->image_height, "JPEG");
    if (st != PG_OK) {
        return st;
    }
    switch (cinfo->num_components) {
    case 1:
        cinfo->out_color_space = JCS_GRAYSCALE;
        break;
    case 3:
        cinfo->out_color_space = JCS_RGB;
        break;
    case 4:
        cinfo->out_color_space = JCS_CMYK;
        break;
    default:
        return pg__error(PG_ERR_UNSUPPORTED, "JPEG: %d colour components are not supported",
                         cinfo->num_components);
    }
    if (lim->flags & PG_IMAGE_FAST_JPEG_SCALE) {
        cinfo->scale_num = 1;
        cinfo->scale_denom =
            fast_scale_denom(cinfo->image_width, cinfo->image_height, lim->target_size);
    }
    jpeg_start_decompress(cinfo);
    job->img = pg__image_alloc(cinfo->output_width, cinfo->output_height);
    /* RGB output goes straight into the image; gray and CMYK go through a row buffer. */
    const int direct = cinfo->out_color_space == JCS_RGB;
    if (!direct) {
        job->row = pg__malloc_array(cinfo->output_width, (size_t)cinfo->output_components);
    }
    if (!job->img || (!direct && !job->row)) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    const size_t stride = (size_t)job->img->width * 3;
    while (cinfo->output_scanline < cinfo->output_height) {
        uint32_t y = cinfo->output_scanline;
        JSAMPROW rows[1] = { direct ? job->img->rgb + (size_t)y * stride : job->row };
        if (jpeg_read_scanlines(cinfo, rows, 1) != 1) {
            return pg__error(PG_ERR_FORMAT, "JPEG: decoder stalled");
        }
        if (job->hit_eof) {
            return pg__error(PG_ERR_FORMAT, "JPEG: file is truncated");
        }
        if (!direct) {
            convert_row(job, job->img->rgb + (size_t)y * stride);
        }
    }
    jpeg_finish_decompress(cinfo);
    if (job->hit_eof) {
        return pg__error(PG_ERR_FORMAT, "JPEG: file is truncated (no end-of-image marker)");
    }
    return PG_OK;
}

pg_status pg__decode_jpeg(const uint8_t *data,
                          size_t size,
                          const pg__image_limits *lim,
                          struct pg_image **out,
                          int *orientation)
{
    *out = NULL;
    *orientation = 0;
    if ((unsigned long)size != size) {
        return pg__error(PG_ERR_LIMIT, "JPEG: file too large");
    }
    jpeg_job *job = pg__calloc(1, sizeof *job);
    if (!job) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    job->cinfo.err = jpeg_std_error(&job->err);
    job->cinfo.client_data = job; /* kept by jpeg_create_decompress */
    job->err.error_exit = on_error_exit;
    job->err.emit_message = on_emit_message;
    job->err.output_message = on_output_message;
    pg_status st = run_decoder(job, data, size, lim, orientation);
    if (job->created) {
        jpeg_destroy_decompress(&job->cinfo);
    }
    free(job->row);
    if (st == PG_OK) {
        *out = job->img;
    } else {
        pg_image_free(job->img);
    }
    free(job);
    return st;
}
