/*
 * mask/vae: the VQ-VAE decoder of big_vision's segmentation evaluator (spec section 9.3):
 *
 *   z = codebook[code] for the 16 codes, as a 4x4 grid (row-major) of dim channels
 *   x = relu(conv1x1(z))                                    128 x 4 x 4
 *   2x: x = x + conv1x1(relu(conv3x3(relu(conv3x3(x)))))    (no activation after the add)
 *   4x: x = relu(convT4x4_stride2(x))                       128, 64, 32, 16 ch; 8 .. 64 px
 *   logits = conv1x1(x)                                     1 x 64 x 64
 *
 * Weights keep the file's PyTorch layouts (OIHW; [in][out][kh][kw] for the transposed convs,
 * which big_vision feeds to Flax's ConvTranspose(padding=2, transpose_kernel=True), the same
 * map as PyTorch's ConvTranspose2d(4, stride 2, padding 1)). Activations are float32 between
 * layers, every sum is accumulated in double: the result then differs from a float64
 * reference by float32 rounding of the activations only.
 */
#include "mask/mask.h"

#include "io/npz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIDTH 128   /* channels of the first layers */
#define MAX_DIM 4096 /* codebook vector size accepted (vae-oid's is 512) */

static void conv_free(pg__conv *c)
{
    free(c->w);
    free(c->b);
    memset(c, 0, sizeof *c);
}

void pg__mask_decoder_free(pg_mask_decoder *dec)
{
    if (!dec) {
        return;
    }
    free(dec->codebook);
    conv_free(&dec->first);
    for (int r = 0; r < 2; r++) {
        for (int j = 0; j < 3; j++) {
            conv_free(&dec->res[r][j]);
        }
    }
    for (int j = 0; j < 4; j++) {
        conv_free(&dec->up[j]);
    }
    conv_free(&dec->last);
    free(dec);
}

/* Reads `name` and checks that its shape is exactly `shape` (ndim entries). */
static pg_status read_array(pg__npz *z, const char *name, uint32_t ndim, const uint64_t *shape,
                            float **data)
{
    pg__npy a;
    PG__TRY(pg__npz_read_f32(z, name, &a));
    bool ok = a.ndim == ndim;
    for (uint32_t i = 0; ok && i < ndim; i++) {
        ok = a.shape[i] == shape[i];
    }
    if (!ok) {
        char got[128] = "", want[128] = "";
        for (uint32_t i = 0; i < a.ndim; i++) {
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", i ? ", " : "",
                     (unsigned long long)a.shape[i]);
        }
        for (uint32_t i = 0; i < ndim; i++) {
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%llu", i ? ", " : "",
                     (unsigned long long)shape[i]);
        }
        pg__npy_free(&a);
        return pg__error(PG_ERR_FORMAT, "mask decoder: %s has shape [%s], expected [%s]", name,
                         got, want);
    }
    *data = a.data;
    return PG_OK;
}

/* One conv layer `prefix`.weight / .bias; transposed convs store [in][out][k][k]. */
static pg_status read_conv(pg__npz *z, const char *prefix, uint32_t in, uint32_t out, uint32_t k,
                           bool transposed, pg__conv *c)
{
    char name[64];
    const uint64_t w_shape[4] = { transposed ? in : out, transposed ? out : in, k, k };
    const uint64_t b_shape[1] = { out };
    c->in = in;
    c->out = out;
    c->k = k;
    snprintf(name, sizeof name, "%s.weight", prefix);
    PG__TRY(read_array(z, name, 4, w_shape, &c->w));
    snprintf(name, sizeof name, "%s.bias", prefix);
    return read_array(z, name, 1, b_shape, &c->b);
}

static pg_status read_all(pg__npz *z, pg_mask_decoder *d)
{
    pg__npy book;
    PG__TRY(pg__npz_read_f32(z, "_vq_vae._embedding", &book));
    if (book.ndim != 2 || book.shape[0] != PG__MASK_BOOK || book.shape[1] == 0 ||
        book.shape[1] > MAX_DIM) {
        pg__npy_free(&book);
        return pg__error(PG_ERR_FORMAT,
                         "mask decoder: _vq_vae._embedding must be [128, D] with D in 1..%d",
                         MAX_DIM);
    }
    d->dim = (uint32_t)book.shape[1];
    d->codebook = book.data;
    PG__TRY(read_conv(z, "decoder.0", d->dim, WIDTH, 1, false, &d->first));
    for (int r = 0; r < 2; r++) {
        static const uint32_t ks[3] = { 3, 3, 1 };
        for (int j = 0; j < 3; j++) {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "decoder.%d.net.%d", 2 + r, 2 * j);
            PG__TRY(read_conv(z, prefix, WIDTH, WIDTH, ks[j], false, &d->res[r][j]));
        }
    }
    uint32_t ch = WIDTH;
    for (int j = 0; j < 4; j++) {
        char prefix[32];
        const uint32_t out = j == 0 ? WIDTH : ch / 2;
        snprintf(prefix, sizeof prefix, "decoder.%d", 4 + 2 * j);
        PG__TRY(read_conv(z, prefix, ch, out, 4, true, &d->up[j]));
        ch = out;
    }
    return read_conv(z, "decoder.12", ch, 1, 1, false, &d->last);
}

pg_status pg__mask_decoder_from_npz(pg_mask_decoder **out, pg__npz *z)
{
    *out = NULL;
    pg_mask_decoder *d = pg__calloc(1, sizeof *d);
    if (!d) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    pg_status st = read_all(z, d);
    if (st) {
        pg__mask_decoder_free(d);
        return st;
    }
    *out = d;
    return PG_OK;
}

/* ---- the layers (CHW float tensors) ---- */

/* Cross-correlation with zero padding (k-1)/2, same size out: out = b + W * in. */
static void conv(const pg__conv *c, const float *in, uint32_t hgt, uint32_t wid, float *out,
                 double *acc)
{
    const int pad = (int)(c->k - 1) / 2, k = (int)c->k, H = (int)hgt, W = (int)wid;
    for (uint32_t o = 0; o < c->out; o++) {
        for (int p = 0; p < H * W; p++) {
            acc[p] = c->b[o];
        }
        for (uint32_t i = 0; i < c->in; i++) {
            const float *src = in + (size_t)i * (size_t)(H * W);
            const float *w = c->w + ((size_t)o * c->in + i) * (size_t)(k * k);
            for (int ky = 0; ky < k; ky++) {
                for (int kx = 0; kx < k; kx++) {
                    const double wv = w[ky * k + kx];
                    for (int y = 0; y < H; y++) {
                        const int sy = y + ky - pad;
                        if (sy < 0 || sy >= H) {
                            continue;
                        }
                        for (int x = 0; x < W; x++) {
                            const int sx = x + kx - pad;
                            if (sx >= 0 && sx < W) {
                                acc[y * W + x] += wv * src[sy * W + sx];
                            }
                        }
                    }
                }
            }
        }
        for (int p = 0; p < H * W; p++) {
            out[(size_t)o * (size_t)(H * W) + (size_t)p] = (float)acc[p];
        }
    }
}

/* PyTorch ConvTranspose2d(kernel 4, stride 2, padding 1): every input pixel (iy, ix) adds
 * in * W[i][o][ky][kx] at (2 iy - 1 + ky, 2 ix - 1 + kx) when that lies inside the 2H x 2W
 * output. */
static void conv_t(const pg__conv *c, const float *in, uint32_t hgt, uint32_t wid, float *out,
                   double *acc)
{
    const int H = (int)hgt, W = (int)wid, OH = 2 * H, OW = 2 * W;
    for (uint32_t o = 0; o < c->out; o++) {
        for (int p = 0; p < OH * OW; p++) {
            acc[p] = c->b[o];
        }
        for (uint32_t i = 0; i < c->in; i++) {
            const float *src = in + (size_t)i * (size_t)(H * W);
            const float *w = c->w + ((size_t)i * c->out + o) * 16;
            for (int ky = 0; ky < 4; ky++) {
                for (int kx = 0; kx < 4; kx++) {
                    const double wv = w[ky * 4 + kx];
                    for (int iy = 0; iy < H; iy++) {
                        const int y = 2 * iy - 1 + ky;
                        if (y < 0 || y >= OH) {
                            continue;
                        }
                        for (int ix = 0; ix < W; ix++) {
                            const int x = 2 * ix - 1 + kx;
                            if (x >= 0 && x < OW) {
                                acc[y * OW + x] += wv * src[iy * W + ix];
                            }
                        }
                    }
                }
            }
        }
        for (int p = 0; p < OH * OW; p++) {
            out[(size_t)o * (size_t)(OH * OW) + (size_t)p] = (float)acc[p];
        }
    }
}

static void relu(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        x[i] = x[i] > 0.0f ? x[i] : 0.0f;
    }
}

pg_status pg__mask_decode(const pg_mask_decoder *dec, const int32_t codes[PG__MASK_CODES],
                          float logits[PG__MASK_SIDE * PG__MASK_SIDE])
{
    /* The largest tensors: 16 ch x 64 x 64 after the last transposed conv, and the 4x4 input
     * of dim channels. */
    const size_t big = (size_t)16 * PG__MASK_SIDE * PG__MASK_SIDE;
    const size_t in_size = (size_t)dec->dim * 16 > big ? (size_t)dec->dim * 16 : big;
    float *a = pg__malloc_array(in_size, sizeof *a), *b = pg__malloc_array(in_size, sizeof *b);
    float *t = pg__malloc_array(WIDTH * 16, sizeof *t);
    double *acc = pg__malloc_array(PG__MASK_SIDE * PG__MASK_SIDE, sizeof *acc);
    if (!a || !b || !t || !acc) {
        free(a);
        free(b);
        free(t);
        free(acc);
        return PG_ERR_OUT_OF_MEMORY;
    }
    for (uint32_t c = 0; c < dec->dim; c++) { /* codes -> dim x 4 x 4 */
        for (int p = 0; p < PG__MASK_CODES; p++) {
            a[(size_t)c * 16 + (size_t)p] = dec->codebook[(size_t)codes[p] * dec->dim + c];
        }
    }
    conv(&dec->first, a, 4, 4, b, acc);
    relu(b, WIDTH * 16);
    for (int r = 0; r < 2; r++) { /* x in b */
        conv(&dec->res[r][0], b, 4, 4, a, acc);
        relu(a, WIDTH * 16);
        conv(&dec->res[r][1], a, 4, 4, t, acc);
        relu(t, WIDTH * 16);
        conv(&dec->res[r][2], t, 4, 4, a, acc);
        for (int p = 0; p < WIDTH * 16; p++) {
            b[p] += a[p];
        }
    }
    uint32_t side = 4;
    for (int j = 0; j < 4; j++) { /* ping-pong b -> a -> b ... */
        float *src = j % 2 ? a : b, *dst = j % 2 ? b : a;
        conv_t(&dec->up[j], src, side, side, dst, acc);
        side *= 2;
        relu(dst, (size_t)dec->up[j].out * side * side);
    }
    conv(&dec->last, b, side, side, logits, acc); /* after 4 layers the result is in b */
    free(a);
    free(b);
    free(t);
    free(acc);
    return PG_OK;
}
