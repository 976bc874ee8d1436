/*
 * backend/quant/quant_avx2: AVX2 + FMA + F16C variant of the quantized kernels, for x86 CPUs
 * without AVX-512 VNNI. A pair (64 values) is handled as two 256-bit halves; within a half,
 * dword lane l belongs to block l & 1, so the scale vector is again one 64-bit broadcast.
 *
 * Products use vpmaddubsw (u8 x s8 -> saturating s16 pairs) then vpmaddwd with ones.
 * Q8: |q| <= 127 on both sides keeps the s16 pair sums exact (2 * 127 * 127 < 32768), so the
 * weight sign is moved onto the activation (vpsignb) and |q| is the unsigned operand.
 * Q4: the nibbles u = q + 8 <= 15 are used as they are and the offset is removed at the end
 * (see quant_avx512.c).
 */
#include "backend/quant/quant_kernels.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#    include <immintrin.h>

#    define PG_AI static inline __attribute__((always_inline))

PG_AI __m256 bcast_pair(const float *s)
{
    return _mm256_castpd_ps(_mm256_broadcast_sd((const double *)(const void *)s));
}

PG_AI void tile_rc(const pg__qx *x, const pg__qw *w, int64_t npair, int64_t ns, const int R,
                   const int C, float *y, int64_t ldy, const int is_q4)
{
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i lo4 = _mm256_set1_epi8(0x0f);
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    __m256 acc[2][2];
    _Pragma("GCC unroll 4")
    for (int r = 0; r < R; r++) {
        _Pragma("GCC unroll 4")
        for (int c = 0; c < C; c++) {
            acc[r][c] = _mm256_setzero_ps();
        }
    }
    for (int64_t p = 0; p < npair; p++) {
        __m256 wsv[2];
        _Pragma("GCC unroll 4")
        for (int c = 0; c < C; c++) {
            wsv[c] = bcast_pair(w->s + (size_t)c * w->s_stride + 2 * p);
        }
        _Pragma("GCC unroll 4")
        for (int h = 0; h < 2; h++) {
            __m256i wu[2], wsg[2];
            _Pragma("GCC unroll 4")
            for (int c = 0; c < C; c++) {
                const uint8_t *row = w->q + (size_t)c * w->q_stride;
                if (is_q4) {
                    __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(row + p * 32));
                    wu[c] = _mm256_and_si256(h ? _mm256_srli_epi16(v, 4) : v, lo4);
                    wsg[c] = wu[c];
                } else {
                    __m256i v = _mm256_loadu_si256(
                        (const __m256i *)(const void *)(row + p * 64 + h * 32));
                    wsg[c] = _mm256_xor_si256(v, bias); /* u - 128 as int8 */
                    wu[c] = _mm256_abs_epi8(wsg[c]);
                }
            }
            _Pragma("GCC unroll 4")
            for (int r = 0; r < R; r++) {
                __m256i xv = _mm256_loadu_si256(
                    (const __m256i *)(const void *)(x->q + (size_t)r * x->q_stride + p * 64 + h * 32));
                __m256 dxv = bcast_pair(x->d + (size_t)r * x->s_stride + 2 * p);
                _Pragma("GCC unroll 4")
                for (int c = 0; c < C; c++) {
                    __m256i xs = is_q4 ? xv : _mm256_sign_epi8(xv, wsg[c]);
                    __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(wu[c], xs), ones);
                    acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                                                _mm256_mul_ps(dxv, wsv[c]), acc[r][c]);
                }
            }
        }
    }
    _Pragma("GCC unroll 4")
    for (int r = 0; r < R; r++) {
        _Pragma("GCC unroll 4")
        for (int c = 0; c < C; c++) {
            __m256 a = acc[r][c];
            if (is_q4) {
                const float *ws = w->s + (size_t)c * w->s_stride;
                const float *xc = x->c + (size_t)r * x->s_stride;
                __m256 corr = _mm256_setzero_ps();
                for (int64_t b = 0; b < ns; b += 8) {
                    corr = _mm256_fmadd_ps(_mm256_loadu_ps(ws + b), _mm256_loadu_ps(xc + b), corr);
                }
                a = _mm256_fnmadd_ps(_mm256_set1_ps(8.0f), corr, a);
            }
            __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
            s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            s = _mm_add_ss(s, _mm_movehdup_ps(s));
            y[r * ldy + c] = _mm_cvtss_f32(s);
        }
    }
}

static void tile_any(const pg__qx *x, const pg__qw *w, int64_t npair, int64_t ns, int R, int C,
                     float *y, int64_t ldy, int is_q4)
{
    if (R == 2 && C == 2) {
        tile_rc(x, w, npair, ns, 2, 2, y, ldy, is_q4);
    } else if (R == 2) {
        tile_rc(x, w, npair, ns, 2, 1, y, ldy, is_q4);
    } else if (C == 2) {
        tile_rc(x, w, npair, ns, 1, 2, y, ldy, is_q4);
    } else {
        tile_rc(x, w, npair, ns, 1, 1, y, ldy, is_q4);
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

static void widen_scales(const uint16_t *src, int64_t n, float *dst)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) {
        dst[i] = _cvtsh_ss(src[i]);
    }
}

const pg__qkernels *pg__qkernels_avx2(void)
{
    static const pg__qkernels k = { "avx2", 2, 2, pg__quantize_x_generic, widen_scales, tile_q8,
                                    tile_q4, NULL, NULL, NULL };
    return &k;
}

#else

const pg__qkernels *pg__qkernels_avx2(void)
{
    return 0;
}

#endif
