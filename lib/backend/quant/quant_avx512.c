/*
 * backend/quant/quant_avx512: AVX-512 + VNNI variant of the quantized kernels. Compiled with
 * -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma -mf16c; used only when the CPU has them.
 *
 * Hot loop, per 64-value pair of one activation row and one weight row:
 *   vpdpbusd (u8 weights x s8 activations -> 16 int32 lanes, lane l belongs to block l & 1),
 *   vcvtdq2ps, one multiply for the two block scales (dx * dw, broadcast 64-bit pairs), FMA.
 * Weights are stored offset (u = q + Z, Z = 128 for Q8, 8 for Q4), which is what vpdpbusd's
 * unsigned operand needs; the offset is removed once per output at the end:
 *   sum_b dx_b dw_b (u - Z) . q = sum_b dx_b dw_b (u . q) - Z * sum_b dw_b (dx_b sum(q_b)).
 * A 4 x 4 register tile (4 activation rows x 4 weight rows) reuses every load 4 times.
 */
#include "backend/quant/quant_kernels.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) &&                 \
    defined(__AVX512VNNI__) && defined(__FMA__) && defined(__F16C__)

#    include <immintrin.h>
#    include <string.h>

#    define PG_AI static inline __attribute__((always_inline))

/* {s[0], s[1]} broadcast to 16 lanes: lane l gets s[l & 1] (a single vbroadcastsd). */
PG_AI __m512 bcast_pair(const float *s)
{
    return _mm512_castpd_ps(_mm512_broadcastsd_pd(_mm_load_sd((const double *)(const void *)s)));
}

PG_AI __m512i load_weights(const uint8_t *q, int64_t p, int is_q4)
{
    if (!is_q4) {
        return _mm512_loadu_si512((const void *)(q + p * 64));
    }
    /* 32 bytes of nibbles -> low nibbles in the low 256 bits, high nibbles in the high ones:
     * broadcast, shift the upper half right by 4, mask. */
    const __m512i shifts = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
    __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(const void *)(q + p * 32)));
    return _mm512_and_si512(_mm512_srlv_epi16(v, shifts), _mm512_set1_epi8(0x0f));
}

PG_AI void tile_rc(const pg__qx *x, const pg__qw *w, int64_t npair, int64_t ns, const int R,
                   const int C, float *y, int64_t ldy, const int is_q4)
{
    /* dx * dw of 8 pairs for every (r, c), made with one multiply per 8 pairs and read back
     * by 64-bit broadcast loads: the hot loop then has no multiply of its own. */
    float prod[4][4][16] __attribute__((aligned(64)));
    __m512 acc[4][4];
    _Pragma("GCC unroll 4")
    for (int r = 0; r < R; r++) {
        _Pragma("GCC unroll 4")
        for (int c = 0; c < C; c++) {
            acc[r][c] = _mm512_setzero_ps();
        }
    }
    for (int64_t g = 0; g < npair; g += 8) {
        /* d and s are zero-padded to ns >= 2 g + 16 floats */
        __m512 wsg[4];
        _Pragma("GCC unroll 4")
        for (int c = 0; c < C; c++) {
            wsg[c] = _mm512_loadu_ps(w->s + (size_t)c * w->s_stride + 2 * g);
        }
        _Pragma("GCC unroll 4")
        for (int r = 0; r < R; r++) {
            __m512 dxg = _mm512_loadu_ps(x->d + (size_t)r * x->s_stride + 2 * g);
            _Pragma("GCC unroll 4")
            for (int c = 0; c < C; c++) {
                _mm512_store_ps(prod[r][c], _mm512_mul_ps(dxg, wsg[c]));
            }
        }
        int64_t pend = g + 8 < npair ? g + 8 : npair;
        for (int64_t p = g; p < pend; p++) {
            __m512i wv[4];
            _Pragma("GCC unroll 4")
            for (int c = 0; c < C; c++) {
                wv[c] = load_weights(w->q + (size_t)c * w->q_stride, p, is_q4);
            }
            _Pragma("GCC unroll 4")
            for (int r = 0; r < R; r++) {
                __m512i xv =
                    _mm512_loadu_si512((const void *)(x->q + (size_t)r * x->q_stride + p * 64));
                _Pragma("GCC unroll 4")
                for (int c = 0; c < C; c++) {
                    __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[c], xv);
                    acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                                                bcast_pair(&prod[r][c][2 * (p - g)]), acc[r][c]);
                }
            }
        }
    }
    const __m512 z = _mm512_set1_ps(is_q4 ? 8.0f : 128.0f);
    _Pragma("GCC unroll 4")
    for (int r = 0; r < R; r++) {
        _Pragma("GCC unroll 4")
        for (int c = 0; c < C; c++) {
            const float *ws = w->s + (size_t)c * w->s_stride;
            const float *xc = x->c + (size_t)r * x->s_stride;
            __m512 corr = _mm512_setzero_ps();
            for (int64_t b = 0; b < ns; b += 16) {
                corr = _mm512_fmadd_ps(_mm512_loadu_ps(ws + b), _mm512_loadu_ps(xc + b), corr);
            }
            y[r * ldy + c] = _mm512_reduce_add_ps(_mm512_fnmadd_ps(z, corr, acc[r][c]));
        }
    }
}

/* Instantiates the register tile for a constant R (C = 4, or C = 1 column at a time). */
static void tile_any(const pg__qx *x, const pg__qw *w, int64_t npair, int64_t ns, int R, int C,
                     float *y, int64_t ldy, int is_q4)
{
    if (C == 4) {
        switch (R) {
        case 4: tile_rc(x, w, npair, ns, 4, 4, y, ldy, is_q4); return;
        case 3: tile_rc(x, w, npair, ns, 3, 4, y, ldy, is_q4); return;
        case 2: tile_rc(x, w, npair, ns, 2, 4, y, ldy, is_q4); return;
        default: tile_rc(x, w, npair, ns, 1, 4, y, ldy, is_q4); return;
        }
    }
    for (int c = 0; c < C; c++) {
        pg__qw one = *w;
        one.q += (size_t)c * w->q_stride;
        one.s += (size_t)c * w->s_stride;
        switch (R) {
        case 4: tile_rc(x, &one, npair, ns, 4, 1, y + c, ldy, is_q4); break;
        case 3: tile_rc(x, &one, npair, ns, 3, 1, y + c, ldy, is_q4); break;
        case 2: tile_rc(x, &one, npair, ns, 2, 1, y + c, ldy, is_q4); break;
        default: tile_rc(x, &one, npair, ns, 1, 1, y + c, ldy, is_q4); break;
        }
    }
}

static void tile_q8(const pg__qx *x, const pg__qw *w, int64_t npair, int64_t ns, int R, int C,
                    float *y, int64_t ldy)
{
    tile_any(x, w, npair, ns, R, C, y, ldy, 0);
}

static void tile_q4(const pg__qx *x, const pg__qw *w, int64_t npair, int64_t ns, int R, int C,
                    float *y, int64_t ldy)
{
    tile_any(x, w, npair, ns, R, C, y, ldy, 1);
}

/* ---- panel GEMM (prefill) ---------------------------------------------------------------
 *
 * Weights are repacked per task into slivers of PG__QG_NR = 32 columns (quant_kernels.h):
 * per 32-value block, 8 k-quads x 32 columns of u8 then 32 float scales. The micro-kernel
 * holds MR = 6 activation rows x 32 columns: 12 int32 and 12 float accumulators. Per block
 * each int32 accumulator starts at -Z * sum(q_x) of its row's block (which removes the
 * weights' offset Z inside the integer sum), takes 8 vpdpbusd (weights x the row's 4
 * activation bytes, broadcast into a register), and is then folded into the float accumulator
 * with one convert, one multiply (column scales x the row's block scale) and one FMA:
 * 4 other instructions per 8 vpdpbusd instead of 3 per 1 in the tile kernel above.
 */
#    define NR PG__QG_NR
#    define MR PG__QG_MR
#    define BB PG__QG_BLOCK_BYTES

/* In-register transpose of a 16 x 16 matrix of dwords (r[i] = row i -> r[j] = column j). */
PG_AI void transpose16(__m512i r[16])
{
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    /* u[4a + e], 128-bit lane L: element 4L + e of rows 4a .. 4a + 3 */
    for (int a = 0; a < 4; a++) {
        u[4 * a + 0] = _mm512_unpacklo_epi64(t[4 * a], t[4 * a + 2]);
        u[4 * a + 1] = _mm512_unpackhi_epi64(t[4 * a], t[4 * a + 2]);
        u[4 * a + 2] = _mm512_unpacklo_epi64(t[4 * a + 1], t[4 * a + 3]);
        u[4 * a + 3] = _mm512_unpackhi_epi64(t[4 * a + 1], t[4 * a + 3]);
    }
    for (int e = 0; e < 4; e++) {
        __m512i v02 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0x88);
        __m512i v13 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0xdd);
        __m512i w02 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0x88);
        __m512i w13 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0xdd);
        r[e] = _mm512_shuffle_i32x4(v02, w02, 0x88);
        r[8 + e] = _mm512_shuffle_i32x4(v02, w02, 0xdd);
        r[4 + e] = _mm512_shuffle_i32x4(v13, w13, 0x88);
        r[12 + e] = _mm512_shuffle_i32x4(v13, w13, 0xdd);
    }
}

/* The 64 u8 values of one stored pair, in the Q8 byte order (Q4 nibbles widened). */
PG_AI __m512i load_pair_u8(const uint8_t *row, int64_t p, int is_q4)
{
    if (!is_q4) {
        return _mm512_loadu_si512((const void *)(row + p * 64));
    }
    __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(row + p * 32));
    __m256i lo = _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0f));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* 16 columns (rows n .. n + cn - 1 of the matrix, cn <= 16; the rest zero) of pairs
 * [p0, p0 + np) into column group g of a sliver. */
PG_AI void pack_group(const uint8_t *q, size_t qrow, const uint16_t *s, size_t srow, int is_q4,
                       int64_t n, int64_t cn, int64_t p0, int64_t np, uint8_t *sl, int g)
{
    for (int64_t p = 0; p < np; p++) {
        __m512i r[16];
        uint16_t sc[2][16] = { { 0 } };
        for (int i = 0; i < 16; i++) {
            if (i < cn) {
                r[i] = load_pair_u8(q + (size_t)(n + i) * qrow, p0 + p, is_q4);
                sc[0][i] = s[(size_t)(n + i) * srow + 2 * (p0 + p)];
                sc[1][i] = s[(size_t)(n + i) * srow + 2 * (p0 + p) + 1];
            } else {
                r[i] = _mm512_setzero_si512();
            }
        }
        transpose16(r);
        /* r[l] = dword l of the pair for the 16 columns: block l & 1, k-quad l >> 1 */
        for (int l = 0; l < 16; l++) {
            uint8_t *blk = sl + (size_t)(2 * p + (l & 1)) * BB;
            _mm512_store_si512((void *)(blk + (l >> 1) * NR * 4 + g * 64), r[l]);
        }
        for (int h = 0; h < 2; h++) {
            __m256i hv = _mm256_loadu_si256((const __m256i *)(const void *)sc[h]);
            _mm512_store_ps(sl + (size_t)(2 * p + h) * BB + 8 * NR * 4 + g * 64,
                            _mm512_cvtph_ps(hv));
        }
    }
}

static void gemm_pack(const uint8_t *q, size_t qrow, const uint16_t *s, size_t srow, int is_q4,
                      int64_t n0, int64_t ncols, int64_t p0, int64_t np, uint8_t *dst)
{
    for (int64_t c0 = 0; c0 < ncols; c0 += NR) {
        uint8_t *sl = dst + (size_t)(c0 / NR) * (size_t)(2 * np) * BB;
        for (int g = 0; g < NR / 16; g++) {
            int64_t cn = ncols - c0 - 16 * g;
            cn = cn > 16 ? 16 : (cn < 0 ? 0 : cn);
            if (is_q4) {
                pack_group(q, qrow, s, srow, 1, n0 + c0 + 16 * g, cn, p0, np, sl, g);
            } else {
                pack_group(q, qrow, s, srow, 0, n0 + c0 + 16 * g, cn, p0, np, sl, g);
            }
        }
    }
}

PG_AI int32_t load_i32(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* acc += u8 w . s8 x per dword lane. Inline asm because GCC, from the intrinsic, copies the
 * accumulators between registers around each vpdpbusd in this kernel (measured ~20 % slower).
 * The activation dword is broadcast into a register once per row and k-quad (vpbroadcastd
 * costs a load only) rather than as an embedded {1to16} operand of every vpdpbusd: with two
 * column vectors per row that halves the broadcast loads (measured ~20 % faster on Zen 5). */
PG_AI __m512i dpbusd(__m512i acc, __m512i w, __m512i x)
{
#    if defined(__GNUC__)
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(w), "v"(x));
    return acc;
#    else
    return _mm512_dpbusd_epi32(acc, w, x);
#    endif
}

/* One block of the micro-kernel (b: block index in the chunk, h = b & 1). */
PG_AI void gemm_block(const pg__qg_rows *x, const int8_t *const xr[MR], const uint8_t *wb,
                      int64_t b, const int h, const int R, __m512 fa[MR][2])
{
    __m512i ia[MR][2];
    const size_t xo = (size_t)(b >> 1) * 64 + (size_t)h * 4;
    _Pragma("GCC unroll 6")
    for (int r = 0; r < R; r++) {
        ia[r][0] = ia[r][1] = _mm512_set1_epi32(x->init[b * MR + r]);
    }
    _Pragma("GCC unroll 8")
    for (int j = 0; j < 8; j++) {
        __m512i w0 = _mm512_load_si512((const void *)(wb + j * NR * 4));
        __m512i w1 = _mm512_load_si512((const void *)(wb + j * NR * 4 + 64));
        _Pragma("GCC unroll 6")
        for (int r = 0; r < R; r++) {
            __m512i xb = _mm512_set1_epi32(load_i32(xr[r] + xo + 8 * j));
            ia[r][0] = dpbusd(ia[r][0], w0, xb);
            ia[r][1] = dpbusd(ia[r][1], w1, xb);
        }
    }
    __m512 ws0 = _mm512_load_ps(wb + 8 * NR * 4);
    __m512 ws1 = _mm512_load_ps(wb + 8 * NR * 4 + 64);
    _Pragma("GCC unroll 6")
    for (int r = 0; r < R; r++) {
        __m512 d = _mm512_set1_ps(x->d[b * MR + r]);
        fa[r][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[r][0]), _mm512_mul_ps(ws0, d), fa[r][0]);
        fa[r][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[r][1]), _mm512_mul_ps(ws1, d), fa[r][1]);
    }
}

PG_AI void gemm_rc(const pg__qg_rows *x, const uint8_t *sl, int64_t nb, const int R, int C,
                   float *y, int64_t ldy, int accumulate, const float *bias)
{
    __m512 fa[MR][2];
    const int8_t *xr[MR];
    _Pragma("GCC unroll 6")
    for (int r = 0; r < R; r++) {
        fa[r][0] = fa[r][1] = _mm512_setzero_ps();
        xr[r] = x->q + (size_t)r * x->q_stride;
    }
    /* nb is even: blocks come in pairs */
    for (int64_t b = 0; b < nb; b += 2) {
        gemm_block(x, xr, sl + (size_t)b * BB, b, 0, R, fa);
        gemm_block(x, xr, sl + (size_t)(b + 1) * BB, b + 1, 1, R, fa);
    }
    __mmask16 m0 = C >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << C) - 1u);
    __mmask16 m1 = C >= 32 ? (__mmask16)0xffff : C > 16 ? (__mmask16)((1u << (C - 16)) - 1u) : 0;
    _Pragma("GCC unroll 6")
    for (int r = 0; r < R; r++) {
        float *yr = y + r * ldy;
        __m512 v0 = fa[r][0], v1 = fa[r][1];
        if (accumulate) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, yr));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, yr + 16));
        }
        if (bias) { /* after the last chunk's sum, as a separate bias pass would add it */
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, bias));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, bias + 16));
        }
        _mm512_mask_storeu_ps(yr, m0, v0);
        _mm512_mask_storeu_ps(yr + 16, m1, v1);
    }
}

static void gemm_tile(const pg__qg_rows *x, const uint8_t *sliver, int64_t nb, int R, int C,
                      float *y, int64_t ldy, int accumulate, const float *bias)
{
    switch (R) {
    case 6: gemm_rc(x, sliver, nb, 6, C, y, ldy, accumulate, bias); return;
    case 5: gemm_rc(x, sliver, nb, 5, C, y, ldy, accumulate, bias); return;
    case 4: gemm_rc(x, sliver, nb, 4, C, y, ldy, accumulate, bias); return;
    case 3: gemm_rc(x, sliver, nb, 3, C, y, ldy, accumulate, bias); return;
    case 2: gemm_rc(x, sliver, nb, 2, C, y, ldy, accumulate, bias); return;
    default: gemm_rc(x, sliver, nb, 1, C, y, ldy, accumulate, bias); return;
    }
}

/* Loads up to 16 floats of x[k0 ..] (zeros past `cols`). */
static __m512 load_part(const float *x, int64_t k0, int64_t cols)
{
    int64_t n = cols - k0;
    if (n >= 16) {
        return _mm512_loadu_ps(x + k0);
    }
    if (n <= 0) {
        return _mm512_setzero_ps();
    }
    return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), x + k0);
}

/* Quantizes one 32-value block held in two vectors; returns the int32 values, sets d/c/s. */
static void quantize_block(__m512 a0, __m512 a1, __m512i *q0, __m512i *q1, float *d, float *c,
                           int32_t *s)
{
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a0), _mm512_abs_ps(a1)));
    __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    *q0 = _mm512_cvtps_epi32(_mm512_mul_ps(a0, inv)); /* round to nearest even */
    *q1 = _mm512_cvtps_epi32(_mm512_mul_ps(a1, inv));
    *d = amax / 127.0f;
    *s = _mm512_reduce_add_epi32(_mm512_add_epi32(*q0, *q1));
    *c = *d * (float)*s;
}

static void quantize_x(const float *x, int64_t cols, int64_t npair, int64_t ns, int8_t *q,
                       float *d, float *c, int32_t *s)
{
    /* Block 0's dwords go to the even dwords of the pair, block 1's to the odd ones. */
    const __m512i idx = _mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    for (int64_t p = 0; p < npair; p++) {
        int64_t k0 = p * 64;
        __m512i q00, q01, q10, q11;
        quantize_block(load_part(x, k0, cols), load_part(x, k0 + 16, cols), &q00, &q01,
                       &d[2 * p], &c[2 * p], &s[2 * p]);
        quantize_block(load_part(x, k0 + 32, cols), load_part(x, k0 + 48, cols), &q10, &q11,
                       &d[2 * p + 1], &c[2 * p + 1], &s[2 * p + 1]);
        __m512i bytes = _mm512_castsi128_si512(_mm512_cvtepi32_epi8(q00));
        bytes = _mm512_inserti32x4(bytes, _mm512_cvtepi32_epi8(q01), 1);
        bytes = _mm512_inserti32x4(bytes, _mm512_cvtepi32_epi8(q10), 2);
        bytes = _mm512_inserti32x4(bytes, _mm512_cvtepi32_epi8(q11), 3);
        _mm512_storeu_si512((void *)(q + k0), _mm512_permutexvar_epi32(idx, bytes));
    }
    for (int64_t b = 2 * npair; b < ns; b++) {
        d[b] = 0.0f;
        c[b] = 0.0f;
        s[b] = 0;
    }
}

static void widen_scales(const uint16_t *src, int64_t n, float *dst)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)(src + i));
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h));
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);
        __m256i h = _mm256_maskz_loadu_epi16(k, src + i);
        _mm512_mask_storeu_ps(dst + i, k, _mm512_cvtph_ps(h));
    }
}

/* {s[0], s[1]} of two f16 values widened and broadcast like bcast_pair. */
PG_AI __m512 bcast_pair_f16(const uint16_t *s)
{
    int32_t two;
    memcpy(&two, s, sizeof two);
    __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128(two));
    return _mm512_castpd_ps(_mm512_broadcastsd_pd(_mm_castps_pd(f)));
}

/*
 * One activation row (decode) over C weight rows, the f16 scales read in place: per pair
 * one vpdpbusd, a convert, the scale product and an FMA, plus the offset term
 * dw * (dx * sum(q_x)) accumulated beside it (each pair's two values fill 8 lanes each, so
 * that sum comes out 8 times). Weight rows are prefetched ~9 KiB ahead (the rows are short
 * and read once; the hardware prefetcher alone restarts too late).
 */
PG_AI void row1_c(const pg__qx *x, const uint8_t *q, size_t qrow, const uint16_t *s16,
                  size_t srow, int64_t npair, const int C, const int is_q4, float *y)
{
    __m512 acc[4], cor[4];
    _Pragma("GCC unroll 4")
    for (int c = 0; c < C; c++) {
        acc[c] = _mm512_setzero_ps();
        cor[c] = _mm512_setzero_ps();
    }
    const size_t ahead = (size_t)(is_q4 ? 2 * C : C) * qrow;
    for (int64_t p = 0; p < npair; p++) {
        __m512i xv = _mm512_loadu_si512((const void *)(x->q + p * 64));
        __m512 dx = bcast_pair(x->d + 2 * p), xc = bcast_pair(x->c + 2 * p);
        _Pragma("GCC unroll 4")
        for (int c = 0; c < C; c++) {
            const uint8_t *row = q + (size_t)c * qrow;
            _mm_prefetch((const char *)row + ahead + p * (is_q4 ? 32 : 64), _MM_HINT_NTA);
            __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(),
                                              load_weights(row, p, is_q4), xv);
            __m512 ws = bcast_pair_f16(s16 + (size_t)c * srow + 2 * p);
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dx, ws), acc[c]);
            cor[c] = _mm512_fmadd_ps(ws, xc, cor[c]);
        }
    }
    const float z = is_q4 ? 8.0f : 128.0f;
    _Pragma("GCC unroll 4")
    for (int c = 0; c < C; c++) {
        y[c] = _mm512_reduce_add_ps(acc[c]) - z * (_mm512_reduce_add_ps(cor[c]) * 0.125f);
    }
}

static void row1(const pg__qx *x, const uint8_t *q, size_t qrow, const uint16_t *s16,
                 size_t srow, int64_t npair, int C, int is_q4, float *y)
{
    switch ((C == 4 ? 8 : C) + is_q4) {
    case 8: row1_c(x, q, qrow, s16, srow, npair, 4, 0, y); return;
    case 9: row1_c(x, q, qrow, s16, srow, npair, 4, 1, y); return;
    default:
        for (int c = 0; c < C; c++) {
            row1_c(x, q + (size_t)c * qrow, qrow, s16 + (size_t)c * srow, srow, npair, 1,
                   is_q4, y + c);
        }
        return;
    }
}

const pg__qkernels *pg__qkernels_avx512(void)
{
    static const pg__qkernels k = { "avx512vnni", 4, 4, quantize_x, widen_scales, tile_q8,
                                    tile_q4, gemm_pack, gemm_tile, row1 };
    return &k;
}

#else

const pg__qkernels *pg__qkernels_avx512(void)
{
    return 0;
}

#endif
