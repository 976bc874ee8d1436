/*
 * mask/segment: the public functions of the room: pg_mask_decoder_load / _free,
 * pg_mask_decode_logits and pg_detections_mask (docs/postprocessing.md).
 */
#include "io/npz.h"
#include "mask/mask.h"
#include "postproc/postproc.h"

#include <stdlib.h>
#include <string.h>

PG_API pg_status pg_mask_decoder_load(pg_mask_decoder **out, const char *npz_path)
{
    if (!out) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_mask_decoder_load: out is NULL");
    }
    *out = NULL;
    if (!npz_path) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_mask_decoder_load: npz_path is NULL");
    }
    pg__npz *z = NULL;
    PG__TRY(pg__npz_open(&z, npz_path));
    pg_status st = pg__mask_decoder_from_npz(out, z);
    pg__npz_close(z);
    if (st) {
        pg__error_prefix("%s", npz_path);
    }
    return st;
}

PG_API void pg_mask_decoder_free(pg_mask_decoder *decoder)
{
    pg__mask_decoder_free(decoder);
}

/* The codes must be 16 values in 0..127: they index the codebook. */
static pg_status check_codes(const int32_t *codes, size_t n, const char *fn)
{
    if (n != PG__MASK_CODES) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "%s: %zu codes, need 16", fn, n);
    }
    for (size_t i = 0; i < n; i++) {
        if (codes[i] < 0 || codes[i] >= PG__MASK_BOOK) {
            return pg__error(PG_ERR_INVALID_ARGUMENT, "%s: code %zu is %d, not in 0..127", fn, i,
                             (int)codes[i]);
        }
    }
    return PG_OK;
}

PG_API pg_status pg_mask_decode_logits(const pg_mask_decoder *decoder, const int32_t *codes,
                                       size_t n_codes, float *logits, size_t n_logits)
{
    if (!decoder || !codes || !logits) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_mask_decode_logits: NULL argument");
    }
    if (n_logits < (size_t)PG__MASK_SIDE * PG__MASK_SIDE) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "pg_mask_decode_logits: room for %zu logits, need 4096", n_logits);
    }
    PG__TRY(check_codes(codes, n_codes, "pg_mask_decode_logits"));
    return pg__mask_decode(decoder, codes, logits);
}

PG_API pg_status pg_detections_mask(const pg_detections *detections, size_t index,
                                    const pg_mask_decoder *decoder, float *logits,
                                    uint8_t *mask, size_t mask_size, uint32_t *box)
{
    if (!detections || !decoder) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_detections_mask: NULL argument");
    }
    pg_detection_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    PG__TRY(pg_detections_get(detections, index, &info));
    if (info.n_seg != PG__MASK_CODES) {
        return pg__error(PG_ERR_NOT_FOUND,
                         "pg_detections_mask: object %zu has no segmentation codes", index);
    }
    uint32_t w, h, b[4];
    pg__detections_image_size(detections, &w, &h);
    if (mask && mask_size / w < h) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "pg_detections_mask: mask holds %zu bytes, the %ux%u image needs %zu",
                         mask_size, (unsigned)w, (unsigned)h, (size_t)w * h);
    }
    float *own = NULL;
    if (!logits && mask && !(logits = own = pg__malloc_array(4096, sizeof *own))) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    pg_status st = PG_OK;
    if (logits) {
        st = pg__mask_decode(decoder, info.seg_codes, logits);
    }
    pg__mask_box(info.loc, w, h, b);
    if (!st && mask) {
        memset(mask, 0, (size_t)w * h);
        st = pg__mask_paste(logits, b, w, h, mask);
    }
    if (!st && box) {
        memcpy(box, b, sizeof b);
    }
    free(own);
    return st;
}
