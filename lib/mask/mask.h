/*
 * mask: segmentation masks from PaliGemma's <segDDD> codes (spec section 9.3; big_vision
 * big_vision/evaluators/proj/paligemma/transfers/segmentation.py).
 *
 *   vae.c    the VQ-VAE decoder: weights from vae-oid.npz (io/npz), 16 codes -> 64x64 logits
 *   paste.c  big_vision's placement: the box from loc / 1023 truncated to pixels, the logits
 *            resized into it as Pillow's BILINEAR does on a float image, thresholded > 0
 *   segment.c  the public functions (pg_mask_decoder_*, pg_detections_mask)
 *
 * A small self-contained room: the decoder is about 25 M multiply-adds per object, nothing
 * next to the language model, so it runs on the CPU in plain C (float32 weights and
 * activations, double accumulators) rather than through the backend interface.
 */
#ifndef PG_MASK_MASK_H
#define PG_MASK_MASK_H

#include "core/core.h"

#define PG__MASK_CODES 16   /* a 4x4 grid of codebook indices */
#define PG__MASK_BOOK 128   /* codebook entries (<seg000>..<seg127>) */
#define PG__MASK_SIDE 64    /* the decoder's output is 64x64 */

/* One convolution's weights as stored: conv OIHW [out][in][k][k], transposed conv
 * [in][out][k][k] (PyTorch layouts); bias [out]. */
typedef struct pg__conv {
    uint32_t in, out, k;
    float *w, *b;
} pg__conv;

struct pg_mask_decoder {
    uint32_t dim;          /* codebook vector size (C_e) */
    float *codebook;       /* PG__MASK_BOOK x dim */
    pg__conv first;        /* decoder.0: 1x1, dim -> 128 */
    pg__conv res[2][3];    /* decoder.{2,3}.net.{0,2,4}: 3x3, 3x3, 1x1 */
    pg__conv up[4];        /* decoder.{4,6,8,10}: transposed 4x4 stride 2 */
    pg__conv last;         /* decoder.12: 1x1, 16 -> 1 */
};

typedef struct pg__npz pg__npz;

/* Reads and checks every decoder array of an open archive (names and shapes as in
 * big_vision's vae-oid.npz; other arrays, the encoder's, are ignored). */
pg_status pg__mask_decoder_from_npz(pg_mask_decoder **out, pg__npz *z);
void pg__mask_decoder_free(pg_mask_decoder *dec);

/* 16 codes (each 0..127, checked by the caller) -> 64x64 logits, row-major. */
pg_status pg__mask_decode(const pg_mask_decoder *dec, const int32_t codes[PG__MASK_CODES],
                          float logits[PG__MASK_SIDE * PG__MASK_SIDE]);

/* big_vision's pixel box of loc values (y_min, x_min, y_max, x_max) in a w x h image:
 * int(loc / 1023 * side). box = x0, y0, x1, y1 (x1, y1 exclusive); may be empty. */
void pg__mask_box(const int32_t loc[4], uint32_t w, uint32_t h, uint32_t box[4]);

/* Resizes the 64x64 logits to the box (Pillow BILINEAR on a float image), thresholds > 0 and
 * writes 0/1 bytes into the w x h mask (which the caller zeroed). */
pg_status pg__mask_paste(const float logits[PG__MASK_SIDE * PG__MASK_SIDE], const uint32_t box[4],
                         uint32_t w, uint32_t h, uint8_t *mask);

#endif /* PG_MASK_MASK_H */
