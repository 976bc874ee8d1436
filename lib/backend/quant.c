/*
 * backend/quant: block-quantized weights (Q8, Q4) and the driver of their matmul kernels.
 *
 * Storage of a rows x cols matrix (cols need not be a multiple of 32; the last block of each
 * row is zero-padded, and the blocks are taken in pairs, npair = ceil(cols / 64)):
 *
 *     [rows][npair * 64] uint8   Q8: u = q + 128, q in [-127, 127]      (the "quant plane")
 *     [rows][npair * 32] uint8   Q4: two nibbles per byte, u = q + 8, q in [-8, 7]
 *     [rows][npair * 2]  f16     one scale per 32-value block           (the "scale plane")
 *
 * value = scale * q. Inside a pair, values are dword-interleaved (see
 * quant/quant_kernels.h) so the VNNI kernel needs no shuffles. Q8 costs 8.5 bits per weight,
 * Q4 4.5 bits.
 *
 * The matmul quantizes the activations too (per 32-value block to int8 with a float scale,
 * made per call), so every block product is an exact integer dot product scaled by
 * dx * dw. Three kernel variants (AVX-512 VNNI, AVX2, scalar) are picked at run time.
 */
#include "backend/quant.h"

#include "backend/quant/quant_kernels.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Target size of the slice of weight rows kept hot in L2 while all activation rows pass. */
#define PG__QUANT_CHUNK_BYTES ((size_t)512 * 1024)

static int64_t row_pairs(int64_t cols)
{
    return (cols + 63) / 64;
}

static size_t quant_row_bytes(pg__dtype dt, int64_t cols)
{
    return (size_t)row_pairs(cols) * (dt == PG__Q4 ? 32u : 64u);
}

size_t pg__quant_size(pg__dtype dt, int64_t rows, int64_t cols)
{
    if ((dt != PG__Q8 && dt != PG__Q4) || rows <= 0 || cols <= 0 || cols > INT64_MAX / 2) {
        return 0;
    }
    size_t per_row = quant_row_bytes(dt, cols) + (size_t)row_pairs(cols) * 2 * sizeof(uint16_t);
    size_t total;
    if ((uint64_t)rows > SIZE_MAX || !pg__mul_size((size_t)rows, per_row, &total)) {
        return 0;
    }
    return total;
}

size_t pg__quant_row_bytes(pg__dtype dt, int64_t cols)
{
    return (dt == PG__Q8 || dt == PG__Q4) && cols > 0 ? quant_row_bytes(dt, cols) : 0;
}

void pg__quant_tensor_init(pg__tensor *out, pg__dtype dt, const pg__tensor *src, const void *data)
{
    *out = *src;
    out->dtype = dt;
    out->data = data;
}

/* ---- kernel selection ------------------------------------------------------------------ */

static const pg__qkernels *_Atomic g_kernels;

static bool cpu_has(const char *variant)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (!strcmp(variant, "avx512vnni")) {
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
               __builtin_cpu_supports("fma");
    }
    if (!strcmp(variant, "avx2")) {
        /* Every AVX2 CPU has F16C; GCC cannot test it by name here. */
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
#endif
    return !strcmp(variant, "scalar");
}

static const pg__qkernels *variant_table(const char *name)
{
    const pg__qkernels *k = NULL;
    if (!strcmp(name, "avx512vnni")) {
        k = pg__qkernels_avx512();
    } else if (!strcmp(name, "avx2")) {
        k = pg__qkernels_avx2();
    } else if (!strcmp(name, "scalar")) {
        k = pg__qkernels_scalar();
    }
    return k && cpu_has(name) ? k : NULL;
}

static const char *const variant_names[] = { "avx512vnni", "avx2", "scalar", NULL };

const char *const *pg__quant_kernel_names(void)
{
    return variant_names;
}

static const pg__qkernels *kernels(void)
{
    const pg__qkernels *k = atomic_load_explicit(&g_kernels, memory_order_acquire);
    if (!k) {
        for (int i = 0; !k && variant_names[i]; i++) {
            k = variant_table(variant_names[i]);
        }
        atomic_store_explicit(&g_kernels, k, memory_order_release);
    }
    return k;
}

pg_status pg__quant_use_kernel(const char *name)
{
    if (!name || !strcmp(name, "auto")) {
        atomic_store_explicit(&g_kernels, NULL, memory_order_release);
        return PG_OK;
    }
    const pg__qkernels *k = variant_table(name);
    if (!k) {
        return pg__error(PG_ERR_UNSUPPORTED, "quantized kernel '%s' is not available here", name);
    }
    atomic_store_explicit(&g_kernels, k, memory_order_release);
    return PG_OK;
}

const char *pg__quant_kernel_name(void)
{
    return kernels()->name;
}

/* ---- weight quantization ---------------------------------------------------------------- */

/* Rounds half away from zero and clamps to [lo, hi]. */
static int round_clamp(float v, int lo, int hi)
{
    int q = (int)(v + (v >= 0.0f ? 0.5f : -0.5f));
    return q > hi ? hi : (q < lo ? lo : q);
}

/* Reads row r of a plain-typed tensor as float. */
static void load_row(const pg__tensor *t, int64_t r, float *out)
{
    size_t off = (size_t)r * (size_t)t->cols;
    if (t->dtype == PG__F32) {
        memcpy(out, (const float *)t->data + off, (size_t)t->cols * sizeof *out);
    } else if (t->dtype == PG__BF16) {
        const uint16_t *s = (const uint16_t *)t->data + off;
        for (int64_t i = 0; i < t->cols; i++) {
            out[i] = pg__bf16_to_f32(s[i]);
        }
    } else {
        const uint16_t *s = (const uint16_t *)t->data + off;
        for (int64_t i = 0; i < t->cols; i++) {
            out[i] = pg__f16_to_f32(s[i]);
        }
    }
}

/* The stored f16 scale for a block whose extreme maps to `range`; returns the float value
 * actually stored, so the quantization is consistent with it. */
static float store_scale(float d, uint16_t *s)
{
    *s = pg__f32_to_f16(d);
    return pg__f16_to_f32(*s);
}

/* Largest |value| of block b of v (zeros past cols), and the value itself (signed). */
static float block_extreme(const float *v, int64_t cols, int64_t b, float *amax)
{
    float ext = 0.0f;
    *amax = 0.0f;
    for (int64_t k = b * 32; k < b * 32 + 32 && k < cols; k++) {
        float a = fabsf(v[k]);
        if (a > *amax) {
            *amax = a;
            ext = v[k];
        }
    }
    return ext;
}

static void quantize_row_q8(const float *v, int64_t cols, uint8_t *q, uint16_t *s)
{
    for (int64_t p = 0; p < row_pairs(cols); p++) {
        for (int half = 0; half < 2; half++) {
            int64_t b = 2 * p + half;
            float amax;
            (void)block_extreme(v, cols, b, &amax);
            float d = store_scale(amax / 127.0f, &s[b]);
            float inv = d > 0.0f ? 1.0f / d : 0.0f;
            for (int j = 0; j < 32; j++) {
                int64_t k = b * 32 + j;
                int qi = k < cols ? round_clamp(v[k] * inv, -127, 127) : 0;
                q[p * 64 + pg__qpos(half, j)] = (uint8_t)(qi + 128);
            }
        }
    }
}

/*
 * Q4 uses the asymmetric range [-8, 7] fully: the block's signed extreme maps to -8 (so one
 * sign gets the extra level), as in the common 4-bit formats.
 */
static void quantize_row_q4(const float *v, int64_t cols, uint8_t *q, uint16_t *s)
{
    size_t row_bytes = quant_row_bytes(PG__Q4, cols);
    memset(q, 0, row_bytes);
    for (int64_t p = 0; p < row_pairs(cols); p++) {
        for (int half = 0; half < 2; half++) {
            int64_t b = 2 * p + half;
            float amax;
            float ext = block_extreme(v, cols, b, &amax);
            float d = store_scale(ext / -8.0f, &s[b]);
            float inv = d != 0.0f ? 1.0f / d : 0.0f;
            for (int j = 0; j < 32; j++) {
                int64_t k = b * 32 + j;
                int u = (k < cols ? round_clamp(v[k] * inv, -8, 7) : 0) + 8;
                int P = pg__qpos(half, j);
                q[p * 32 + (P & 31)] |= (uint8_t)(P < 32 ? u : u << 4);
            }
        }
    }
}

static bool row_is_finite(const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(v[i]) || fabsf(v[i]) > 65504.0f * 7.0f) {
            return false;
        }
    }
    return true;
}

pg_status pg__quantize_rows(pg__dtype dt, const pg__tensor *src, void *dst, int64_t r0,
                            int64_t r1)
{
    if (!src || !dst || (dt != PG__Q8 && dt != PG__Q4)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "quantize: bad arguments");
    }
    if (src->dtype != PG__F32 && src->dtype != PG__F16 && src->dtype != PG__BF16) {
        return pg__error(PG_ERR_UNSUPPORTED, "quantize %s: source dtype %d is not F32/F16/BF16",
                         src->name ? src->name : "tensor", (int)src->dtype);
    }
    if (pg__quant_size(dt, src->rows, src->cols) == 0 || r0 < 0 || r1 < r0 || r1 > src->rows) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "quantize %s: bad shape or row range",
                         src->name ? src->name : "tensor");
    }
    float *row = pg__malloc_array((size_t)src->cols, sizeof *row);
    if (!row) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    size_t qrow = quant_row_bytes(dt, src->cols), srow = (size_t)row_pairs(src->cols) * 2;
    uint8_t *qplane = dst;
    uint16_t *splane = (uint16_t *)(void *)(qplane + (size_t)src->rows * qrow);
    pg_status st = PG_OK;
    for (int64_t r = r0; r < r1; r++) {
        load_row(src, r, row);
        if (!row_is_finite(row, src->cols)) {
            st = pg__error(PG_ERR_FORMAT, "quantize %s: row %lld has values that are not finite "
                           "or too large for an f16 scale", src->name ? src->name : "tensor",
                           (long long)r);
            break;
        }
        if (dt == PG__Q8) {
            quantize_row_q8(row, src->cols, qplane + (size_t)r * qrow, splane + (size_t)r * srow);
        } else {
            quantize_row_q4(row, src->cols, qplane + (size_t)r * qrow, splane + (size_t)r * srow);
        }
    }
    free(row);
    return st;
}

/* ---- dequantization --------------------------------------------------------------------- */

/* The 64 values of pair p of a row, in natural order (block 2p then 2p + 1). */
static void dequantize_pair(const pg__tensor *w, const uint8_t *q, const uint16_t *s, int64_t p,
                            float out[64])
{
    for (int half = 0; half < 2; half++) {
        float d = pg__f16_to_f32(s[2 * p + half]);
        for (int j = 0; j < 32; j++) {
            int P = pg__qpos(half, j);
            int u;
            if (w->dtype == PG__Q8) {
                u = (int)q[p * 64 + P] - 128;
            } else {
                uint8_t byte = q[p * 32 + (P & 31)];
                u = (int)(P < 32 ? byte & 0x0f : byte >> 4) - 8;
            }
            out[half * 32 + j] = d * (float)u;
        }
    }
}

static void row_planes(const pg__tensor *w, int64_t row, const uint8_t **q, const uint16_t **s)
{
    size_t qrow = quant_row_bytes(w->dtype, w->cols), srow = (size_t)row_pairs(w->cols) * 2;
    const uint8_t *base = w->data;
    *q = base + (size_t)row * qrow;
    *s = (const uint16_t *)(const void *)(base + (size_t)w->rows * qrow) + (size_t)row * srow;
}

void pg__dequantize_row(const pg__tensor *w, int64_t row, float *out)
{
    const uint8_t *q;
    const uint16_t *s;
    row_planes(w, row, &q, &s);
    float pair[64];
    for (int64_t p = 0; p < row_pairs(w->cols); p++) {
        dequantize_pair(w, q, s, p, pair);
        int64_t n = w->cols - p * 64 < 64 ? w->cols - p * 64 : 64;
        memcpy(out + p * 64, pair, (size_t)n * sizeof *out);
    }
}

/* ---- matmul ----------------------------------------------------------------------------- */

/* Without scratch memory: float activations against dequantized weight pairs (slow, exact
 * to the weights). Used when the scratch allocation fails. */
void pg__quant_matmul_cols_float(const pg__tensor *w, const float *x, int64_t ldx, int64_t m,
                                 float *y, int64_t ldy, int64_t n0, int64_t n1)
{
    float pair[64];
    for (int64_t n = n0; n < n1; n++) {
        const uint8_t *q;
        const uint16_t *s;
        row_planes(w, n, &q, &s);
        for (int64_t i = 0; i < m; i++) {
            y[i * ldy + n] = 0.0f;
        }
        for (int64_t p = 0; p < row_pairs(w->cols); p++) {
            dequantize_pair(w, q, s, p, pair);
            int64_t kn = w->cols - p * 64 < 64 ? w->cols - p * 64 : 64;
            for (int64_t i = 0; i < m; i++) {
                float acc = 0.0f;
                for (int64_t k = 0; k < kn; k++) {
                    acc += pair[k] * x[i * ldx + p * 64 + k];
                }
                y[i * ldy + n] += acc;
            }
        }
    }
}

/*
 * The quantized-activation block: [m][npair * 64] int8, then d [m][ns], c [m][ns] (float)
 * and s [m][ns] (int32), then, for the panel GEMM, the per-block tables of every sliver of
 * PG__QG_MR rows, row-interleaved ([sliver][block][MR]) so that the micro-kernel broadcasts
 * them from consecutive addresses: d, and the int32 accumulators' start -Z * s for Z = 128
 * (Q8) and Z = 8 (Q4). Rows past m in the last sliver are zero. Made once per matmul.
 */
typedef struct act_layout {
    int64_t npair, ns;
    size_t q_bytes, s_bytes, g_stride, g_bytes, total;
} act_layout;

static bool act_layout_of(int64_t m, int64_t cols, act_layout *l)
{
    if (m <= 0 || cols <= 0 || cols > INT64_MAX / 2) {
        return false;
    }
    l->npair = row_pairs(cols);
    l->ns = (2 * l->npair + 15) / 16 * 16;
    l->g_stride = (size_t)(2 * l->npair) * PG__QG_MR;
    size_t planes, gplanes, slivers = (size_t)((m + PG__QG_MR - 1) / PG__QG_MR);
    return pg__mul_size((size_t)m, (size_t)l->npair * 64, &l->q_bytes) &&
           pg__mul_size((size_t)m, (size_t)l->ns * sizeof(float), &l->s_bytes) &&
           pg__mul_size(l->s_bytes, 3, &planes) &&
           pg__mul_size(slivers, l->g_stride * sizeof(float), &l->g_bytes) &&
           pg__mul_size(l->g_bytes, 3, &gplanes) && pg__add_size(l->q_bytes, planes, &l->total) &&
           pg__add_size(l->total, gplanes, &l->total);
}

/* The buffer's planes (see act_layout). */
typedef struct act_planes {
    pg__qx x;
    float *gd;        /* [sliver][block][MR] d */
    int32_t *gi[2];   /* [sliver][block][MR] -128 * s (Q8), -8 * s (Q4) */
} act_planes;

static act_planes act_view(const void *qx, int64_t m, const act_layout *l)
{
    const int8_t *q = qx;
    /* one view for the writer (pg__quant_act_rows) and the readers: const is dropped here */
    float *d = (float *)(void *)((char *)(uintptr_t)qx + l->q_bytes);
    float *c = d + (size_t)m * (size_t)l->ns;
    int32_t *s = (int32_t *)(void *)(c + (size_t)m * (size_t)l->ns);
    char *g = (char *)(void *)(s + (size_t)m * (size_t)l->ns);
    act_planes v = { { q, d, c, s, (size_t)l->npair * 64, (size_t)l->ns },
                     (float *)(void *)g,
                     { (int32_t *)(void *)(g + l->g_bytes),
                       (int32_t *)(void *)(g + 2 * l->g_bytes) } };
    return v;
}

size_t pg__quant_act_size(int64_t m, int64_t cols)
{
    act_layout l;
    return act_layout_of(m, cols, &l) ? l.total : 0;
}

/* Row i's entries of the sliver tables (zeros for rows past m). */
static void sliver_row(const act_planes *v, const act_layout *l, int64_t i, int64_t m)
{
    size_t base = (size_t)(i / PG__QG_MR) * l->g_stride + (size_t)(i % PG__QG_MR);
    const float *d = v->x.d + (size_t)i * v->x.s_stride;
    const int32_t *s = v->x.s + (size_t)i * v->x.s_stride;
    for (int64_t b = 0; b < 2 * l->npair; b++) {
        size_t at = base + (size_t)b * PG__QG_MR;
        v->gd[at] = i < m ? d[b] : 0.0f;
        v->gi[0][at] = i < m ? -128 * s[b] : 0;
        v->gi[1][at] = i < m ? -8 * s[b] : 0;
    }
}

void pg__quant_act_rows(const float *x, int64_t ldx, int64_t m, int64_t cols, void *qx,
                        int64_t i0, int64_t i1)
{
    act_layout l;
    if (!act_layout_of(m, cols, &l)) {
        return;
    }
    const pg__qkernels *k = kernels();
    act_planes v = act_view(qx, m, &l);
    for (int64_t i = i0; i < i1; i++) {
        size_t so = (size_t)i * v.x.s_stride;
        k->quantize_x(x + i * ldx, cols, l.npair, l.ns, (int8_t *)qx + (size_t)i * v.x.q_stride,
                      (float *)v.x.d + so, (float *)v.x.c + so, (int32_t *)v.x.s + so);
        sliver_row(&v, &l, i, m);
    }
    /* whoever quantizes the last row also zeroes the last sliver's padding rows */
    for (int64_t i = m; i1 == m && i % PG__QG_MR != 0; i++) {
        sliver_row(&v, &l, i, m);
    }
}

/* Rows of weights per L2-sized chunk, a multiple of the tile's nr. */
static int64_t chunk_rows(const pg__tensor *w, int nr, int64_t n_rows)
{
    int64_t chunk = (int64_t)(PG__QUANT_CHUNK_BYTES / quant_row_bytes(w->dtype, w->cols));
    chunk = chunk < nr ? nr : chunk - chunk % nr;
    return chunk < n_rows ? chunk : n_rows;
}

static void matmul_tiles(const pg__qkernels *k, const pg__tensor *w, const pg__qx *x,
                         int64_t m, const act_layout *l, float *ws, int64_t chunk, float *y,
                         int64_t ldy, int64_t n0, int64_t n1)
{
    const uint8_t *qplane;
    const uint16_t *splane;
    row_planes(w, 0, &qplane, &splane);
    size_t qrow = quant_row_bytes(w->dtype, w->cols), srow = (size_t)l->npair * 2;
    int64_t ns = l->ns;
    void (*tile)(const pg__qx *, const pg__qw *, int64_t, int64_t, int, int, float *,
                 int64_t) = w->dtype == PG__Q4 ? k->tile_q4 : k->tile_q8;
    /* Single activation rows (decode, or the last row of a few) go to the variant's row1
     * kernel, which reads the f16 scales in place: for m == 1 no widened copy is made (a
     * pass of its own that was ~10 % of a Q4 decode step). */
    const bool widen = m > 1 || !k->row1;

    for (int64_t c0 = n0; c0 < n1; c0 += chunk) {
        int64_t c1 = c0 + chunk < n1 ? c0 + chunk : n1;
        /* Widen this chunk's f16 scales once; every activation row reuses them. */
        for (int64_t n = c0; widen && n < c1; n++) {
            float *dst = ws + (n - c0) * ns;
            k->widen_scales(splane + (size_t)n * srow, 2 * l->npair, dst);
            memset(dst + 2 * l->npair, 0, (size_t)(ns - 2 * l->npair) * sizeof *dst);
        }
        for (int64_t i0 = 0; i0 < m; i0 += k->mr) {
            int R = (int)(m - i0 < k->mr ? m - i0 : k->mr);
            pg__qx xs = { x->q + (size_t)i0 * x->q_stride, x->d + (size_t)i0 * x->s_stride,
                          x->c + (size_t)i0 * x->s_stride, x->s + (size_t)i0 * x->s_stride,
                          x->q_stride, x->s_stride };
            for (int64_t n = c0; n < c1; n += k->nr) {
                int C = (int)(c1 - n < k->nr ? c1 - n : k->nr);
                if (R == 1 && k->row1) {
                    k->row1(&xs, qplane + (size_t)n * qrow, qrow, splane + (size_t)n * srow,
                            srow, l->npair, C, w->dtype == PG__Q4, y + i0 * ldy + n);
                    continue;
                }
                pg__qw wt = { qplane + (size_t)n * qrow, ws + (n - c0) * ns, qrow, (size_t)ns };
                tile(&xs, &wt, l->npair, ns, R, C, y + i0 * ldy + n, ldy);
            }
        }
    }
}

/* Tile path scratch: widened scales of one chunk. chunk_rows() <= max(nr, min(n, L2 rows))
 * for any nr, and every variant's nr <= 4. */
static bool tile_scratch_bytes(const pg__tensor *w, const act_layout *l, int64_t ncols,
                               size_t *out)
{
    int64_t chunk = (int64_t)(PG__QUANT_CHUNK_BYTES / quant_row_bytes(w->dtype, w->cols));
    chunk = chunk < ncols ? chunk : ncols;
    chunk = chunk > 4 ? chunk : 4;
    return pg__mul_size((size_t)chunk, (size_t)l->ns * sizeof(float), out);
}

/* ---- panel GEMM (prefill) ---------------------------------------------------------------
 *
 * Per task: columns in panels of up to PANEL_COLS, K in chunks of up to panel_pairs() pairs.
 * Each (panel, chunk) is packed once (gemm_pack; ~PANEL_BYTES, kept in L2), then every
 * activation sliver of PG__QG_MR rows passes over all its column slivers (the sliver's
 * activation bytes stay in L1 while the packed weights stream from L2).
 */
#define PANEL_COLS 128
#define PANEL_BYTES ((size_t)384 * 1024)

static int64_t panel_pairs(int64_t npair)
{
    int64_t bytes_per_pair = (int64_t)PANEL_COLS * 2 * PG__QG_BLOCK_BYTES / PG__QG_NR;
    int64_t kcp = (int64_t)PANEL_BYTES / bytes_per_pair;
    kcp = kcp < 1 ? 1 : kcp;
    /* Even chunks: avoids a short last chunk */
    int64_t chunks = (npair + kcp - 1) / kcp;
    return (npair + chunks - 1) / chunks;
}

static bool panel_scratch_bytes(const act_layout *l, int64_t ncols, size_t *out)
{
    int64_t cols = ncols < PANEL_COLS ? ncols : PANEL_COLS;
    size_t slivers = (size_t)((cols + PG__QG_NR - 1) / PG__QG_NR);
    size_t nb = (size_t)(2 * panel_pairs(l->npair));
    return pg__mul_size(slivers * nb, PG__QG_BLOCK_BYTES, out);
}

static void matmul_panels(const pg__qkernels *k, const pg__tensor *w, const act_planes *a,
                          int64_t m, const act_layout *l, uint8_t *panel, float *y, int64_t ldy,
                          int64_t n0, int64_t n1, const float *bias)
{
    const uint8_t *qplane;
    const uint16_t *splane;
    row_planes(w, 0, &qplane, &splane);
    size_t qrow = quant_row_bytes(w->dtype, w->cols), srow = (size_t)l->npair * 2;
    const int is_q4 = w->dtype == PG__Q4;
    const int64_t kcp = panel_pairs(l->npair);
    const pg__qx *x = &a->x;

    for (int64_t c0 = n0; c0 < n1; c0 += PANEL_COLS) {
        int64_t ncols = n1 - c0 < PANEL_COLS ? n1 - c0 : PANEL_COLS;
        for (int64_t p0 = 0; p0 < l->npair; p0 += kcp) {
            int64_t np = l->npair - p0 < kcp ? l->npair - p0 : kcp, nb = 2 * np;
            k->gemm_pack(qplane, qrow, splane, srow, is_q4, c0, ncols, p0, np, panel);
            for (int64_t i0 = 0; i0 < m; i0 += PG__QG_MR) {
                int R = (int)(m - i0 < PG__QG_MR ? m - i0 : PG__QG_MR);
                size_t g = (size_t)(i0 / PG__QG_MR) * l->g_stride + (size_t)(2 * p0) * PG__QG_MR;
                pg__qg_rows xr = { x->q + (size_t)i0 * x->q_stride + (size_t)p0 * 64,
                                   x->q_stride, a->gi[is_q4] + g, a->gd + g };
                for (int64_t c = 0; c < ncols; c += PG__QG_NR) {
                    int C = (int)(ncols - c < PG__QG_NR ? ncols - c : PG__QG_NR);
                    /* the bias goes in with the last K chunk */
                    const float *bc = bias && p0 + np == l->npair ? bias + c0 + c : NULL;
                    k->gemm_tile(&xr, panel + (size_t)(c / PG__QG_NR) * (size_t)nb *
                                                  PG__QG_BLOCK_BYTES,
                                 nb, R, C, y + i0 * ldy + c0 + c, ldy, p0 > 0, bc);
                }
            }
        }
    }
}

static _Atomic int64_t g_panel_min_m = PG__QUANT_PANEL_MIN_M;

void pg__quant_set_panel_min_m(int64_t m)
{
    atomic_store_explicit(&g_panel_min_m, m > 0 ? m : PG__QUANT_PANEL_MIN_M,
                          memory_order_relaxed);
}

bool pg__quant_has_panel_gemm(void)
{
    return kernels()->gemm_tile != NULL;
}

/* Whether pg__quant_matmul_cols_qs runs the panel GEMM for m rows. */
static bool use_panels(const pg__qkernels *k, int64_t m)
{
    return k->gemm_tile && m >= atomic_load_explicit(&g_panel_min_m, memory_order_relaxed);
}

size_t pg__quant_matmul_scratch_size(const pg__tensor *w, int64_t m, int64_t ncols)
{
    act_layout l;
    size_t tiles, panels = 0;
    if (!w || (w->dtype != PG__Q8 && w->dtype != PG__Q4) || ncols <= 0 ||
        !act_layout_of(m, w->cols, &l) || !tile_scratch_bytes(w, &l, ncols, &tiles) ||
        (use_panels(kernels(), m) && !panel_scratch_bytes(&l, ncols, &panels))) {
        return 0;
    }
    /* decode-sized calls get only what the tiles need (the panel is hundreds of KB) */
    return tiles > panels ? tiles : panels;
}

void pg__quant_matmul_cols_qs(const pg__tensor *w, const void *qx, int64_t m, float *y,
                              int64_t ldy, int64_t n0, int64_t n1, void *scratch,
                              const float *bias)
{
    act_layout l;
    if (m <= 0 || n1 <= n0 || !act_layout_of(m, w->cols, &l)) {
        return;
    }
    const pg__qkernels *k = kernels();
    act_planes a = act_view(qx, m, &l);
    if (use_panels(k, m)) {
        matmul_panels(k, w, &a, m, &l, scratch, y, ldy, n0, n1, bias);
        return;
    }
    matmul_tiles(k, w, &a.x, m, &l, scratch, chunk_rows(w, k->nr, n1 - n0), y, ldy, n0, n1);
    for (int64_t i = 0; bias && i < m; i++) {
        for (int64_t n = n0; n < n1; n++) {
            y[i * ldy + n] += bias[n];
        }
    }
}

pg_status pg__quant_matmul_cols_q(const pg__tensor *w, const void *qx, int64_t m, float *y,
                                  int64_t ldy, int64_t n0, int64_t n1)
{
    if (m <= 0 || n1 <= n0) {
        return PG_OK;
    }
    size_t bytes = pg__quant_matmul_scratch_size(w, m, n1 - n0);
    if (bytes == 0) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "quantized matmul: bad shape");
    }
    void *ws = pg__aligned_alloc(bytes);
    if (!ws) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    pg__quant_matmul_cols_qs(w, qx, m, y, ldy, n0, n1, ws, NULL);
    pg__aligned_free(ws);
    return PG_OK;
}

void pg__quant_matmul_cols(const pg__tensor *w, const float *x, int64_t ldx, int64_t m,
                           float *y, int64_t ldy, int64_t n0, int64_t n1)
{
    act_layout l;
    if (m <= 0 || n1 <= n0 || !act_layout_of(m, w->cols, &l)) {
        return;
    }
    size_t ws_bytes = pg__quant_matmul_scratch_size(w, m, n1 - n0), total;
    void *mem = NULL;
    /* the scratch goes after the activations, 64-byte aligned */
    size_t act = (l.total + 63) / 64 * 64;
    if (ws_bytes && pg__add_size(act, ws_bytes, &total)) {
        mem = pg__aligned_alloc(total);
    }
    if (!mem) {
        pg__error_clear(); /* the float fallback takes over; nothing failed for the caller */
        pg__quant_matmul_cols_float(w, x, ldx, m, y, ldy, n0, n1);
        return;
    }
    pg__quant_act_rows(x, ldx, m, w->cols, mem, 0, m);
    pg__quant_matmul_cols_qs(w, mem, m, y, ldy, n0, n1, (char *)mem + act, NULL);
    pg__aligned_free(mem);
}
