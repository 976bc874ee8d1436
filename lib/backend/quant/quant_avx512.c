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
    if (R == 1) {
        /* One activation row (decode): the pair's scale product is formed in registers
         * from two 64-bit broadcasts, with no store to `prod` and reload (a narrow load
         * from a wide store just written cannot be store-forwarded and stalls). */
        for (int64_t p = 0; p < npair; p++) {
            __m512i xv = _mm512_loadu_si512((const void *)(x->q + p * 64));
            __m512 dx = bcast_pair(x->d + 2 * p);
            _Pragma("GCC unroll 4")
            for (int c = 0; c < C; c++) {
                /* The rows are short (1-2 KiB) and read once: fetch a row ~9 KiB ahead
                 * (the next tile's for Q8, the one after for Q4) at the same spot; the
                 * hardware prefetcher alone restarts too late (decode: 101 -> 72 ms per
                 * 3B token for Q8, 73 -> 49 ms for Q4 on 2 threads). */
                const uint8_t *ahead = w->q + (size_t)(c + (is_q4 ? 2 * C : C)) * w->q_stride;
                _mm_prefetch((const char *)ahead + p * (is_q4 ? 32 : 64), _MM_HINT_NTA);
                __m512i wv = load_weights(w->q + (size_t)c * w->q_stride, p, is_q4);
                __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, xv);
                __m512 sc = _mm512_mul_ps(dx, bcast_pair(w->s + (size_t)c * w->s_stride + 2 * p));
                acc[0][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, acc[0][c]);
            }
        }
    }
    for (int64_t g = 0; R > 1 && g < npair; g += 8) {
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

/* Quantizes one 32-value block held in two vectors; returns the int32 values, sets d/c. */
static void quantize_block(__m512 a0, __m512 a1, __m512i *q0, __m512i *q1, float *d, float *c)
{
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a0), _mm512_abs_ps(a1)));
    __m512 inv = _mm512_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
    *q0 = _mm512_cvtps_epi32(_mm512_mul_ps(a0, inv)); /* round to nearest even */
    *q1 = _mm512_cvtps_epi32(_mm512_mul_ps(a1, inv));
    *d = amax / 127.0f;
    *c = *d * (float)_mm512_reduce_add_epi32(_mm512_add_epi32(*q0, *q1));
}

static void quantize_x(const float *x, int64_t cols, int64_t npair, int64_t ns, int8_t *q,
                       float *d, float *c)
{
    /* Block 0's dwords go to the even dwords of the pair, block 1's to the odd ones. */
    const __m512i idx = _mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    for (int64_t p = 0; p < npair; p++) {
        int64_t k0 = p * 64;
        __m512i q00, q01, q10, q11;
        quantize_block(load_part(x, k0, cols), load_part(x, k0 + 16, cols), &q00, &q01,
                       &d[2 * p], &c[2 * p]);
        quantize_block(load_part(x, k0 + 32, cols), load_part(x, k0 + 48, cols), &q10, &q11,
                       &d[2 * p + 1], &c[2 * p + 1]);
        __m512i bytes = _mm512_castsi128_si512(_mm512_cvtepi32_epi8(q00));
        bytes = _mm512_inserti32x4(bytes, _mm512_cvtepi32_epi8(q01), 1);
        bytes = _mm512_inserti32x4(bytes, _mm512_cvtepi32_epi8(q10), 2);
        bytes = _mm512_inserti32x4(bytes, _mm512_cvtepi32_epi8(q11), 3);
        _mm512_storeu_si512((void *)(q + k0), _mm512_permutexvar_epi32(idx, bytes));
    }
    for (int64_t b = 2 * npair; b < ns; b++) {
        d[b] = 0.0f;
        c[b] = 0.0f;
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

const pg__qkernels *pg__qkernels_avx512(void)
{
    static const pg__qkernels k = { "avx512vnni", 4, 4, quantize_x, widen_scales, tile_q8,
                                    tile_q4 };
    return &k;
}

#else

const pg__qkernels *pg__qkernels_avx512(void)
{
    return 0;
}

#endif
