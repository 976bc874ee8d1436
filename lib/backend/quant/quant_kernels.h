/*
 * backend/quant/quant_kernels: the contract between the quantized-matmul driver (quant.c)
 * and its SIMD variants (quant_avx512.c, quant_avx2.c, quant_scalar.c).
 *
 * Byte layout shared by weights and quantized activations (see docs/quantization.md):
 * a row of K values is cut into blocks of 32 (the last one zero-padded) and the blocks are
 * taken in pairs (a row has npair = ceil(K / 64) pairs; an odd last block is paired with an
 * all-zero block). The 64 values of a pair are stored dword-interleaved:
 *
 *     dword l (4 values) of the pair = block (l & 1), values 4*(l >> 1) .. 4*(l >> 1) + 3
 *
 * so that one 512-bit `vpdpbusd` over a pair yields 16 int32 lanes in which lane l belongs to
 * block l & 1: the two per-block scales then form one 64-bit pair {s0, s1} that a plain
 * broadcast load turns into the matching 16-lane scale vector (no shuffles in the hot loop).
 *
 * Q8 weight rows: 64 bytes per pair, value u = q + 128 (q in [-127, 127]), padding u = 128.
 * Q4 weight rows: 32 bytes per pair; the 64 interleaved positions P = 0..63 are nibbles:
 * P < 32 is the low nibble of byte P, P >= 32 the high nibble of byte P - 32; u = q + 8
 * (q in [-8, 7]), padding u = 8.
 * Activations (made per call): int8 q in [-127, 127] in the Q8 byte order, with per-block
 * float scales d (x ~= d * q), c = d * sum(q) and the integer sum(q) per block, all padded
 * with zeros to a multiple of 16 entries so the SIMD code can read whole vectors.
 *
 * Panel GEMM (prefill; variants that have it): the weights of a column range are repacked
 * at run time, per K chunk, into slivers of PG__QG_NR columns. A sliver holds, for each
 * 32-value block b of the chunk, PG__QG_BLOCK_BYTES bytes:
 *
 *     8 k-quads x PG__QG_NR columns x 4 bytes   u8 weights (Q4 nibbles widened), offset Z
 *     PG__QG_NR floats                          the block's weight scales
 *
 * so one 64-byte vector holds 4 consecutive k of 16 columns (vpdpbusd's operand) and the
 * activation's 4 bytes are a broadcast. Columns past the matrix are zero (scale 0).
 */
#ifndef PG_BACKEND_QUANT_KERNELS_H
#define PG_BACKEND_QUANT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Position (0..63) inside its pair of value j (0..31) of block `half` (0 or 1) of the pair. */
static inline int pg__qpos(int half, int j)
{
    return 8 * (j >> 2) + 4 * half + (j & 3);
}

/* Quantized activations of `m` rows, as the kernels read them. */
typedef struct pg__qx {
    const int8_t *q;   /* row i at q + i * q_stride (npair * 64 bytes per row) */
    const float *d;    /* row i at d + i * s_stride: per-block scales */
    const float *c;    /* row i at c + i * s_stride: per-block d * sum(q) */
    const int32_t *s;  /* row i at s + i * s_stride: per-block sum(q) */
    size_t q_stride, s_stride;
} pg__qx;

/* Weight rows n0 .. n0 + C - 1 of a tile, scales already widened to float. */
typedef struct pg__qw {
    const uint8_t *q;  /* row n at q + n * q_stride */
    const float *s;    /* row n at s + n * s_stride (zero-padded to a multiple of 16) */
    size_t q_stride, s_stride;
} pg__qw;

/* Panel GEMM geometry (see above). */
#define PG__QG_NR 32
#define PG__QG_MR 6
#define PG__QG_BLOCK_BYTES (8 * PG__QG_NR * 4 + PG__QG_NR * 4)

/* One activation row sliver of the panel GEMM: up to PG__QG_MR rows, offset to the chunk. */
typedef struct pg__qg_rows {
    const int8_t *q;       /* row r at q + r * q_stride, at the chunk's first pair */
    size_t q_stride;
    const int32_t *init;   /* [block][PG__QG_MR]: -Z * sum(q) of each row's block */
    const float *d;        /* [block][PG__QG_MR]: each row's block scale */
} pg__qg_rows;

/*
 * One SIMD variant. `tile_*` computes y[r][c] = sum over blocks of dx * dw * dot for r < R
 * (R <= mr) activation rows and c < C (C <= nr) weight rows, overwriting y (stride ldy).
 * `quantize_x` quantizes one float row of `cols` values into the layout above (q gets
 * npair * 64 bytes, d and c get `ns` floats, ns a multiple of 16 >= 2 * npair).
 * The driver (quant.c) owns the loops around the tiles and the scratch memory.
 */
typedef struct pg__qkernels {
    const char *name;
    int mr, nr;
    void (*quantize_x)(const float *x, int64_t cols, int64_t npair, int64_t ns, int8_t *q,
                       float *d, float *c, int32_t *s);
    /* f16 weight scales -> float (n values). */
    void (*widen_scales)(const uint16_t *src, int64_t n, float *dst);
    void (*tile_q8)(const pg__qx *x, const pg__qw *w, int64_t npair, int64_t ns, int R, int C,
                    float *y, int64_t ldy);
    void (*tile_q4)(const pg__qx *x, const pg__qw *w, int64_t npair, int64_t ns, int R, int C,
                    float *y, int64_t ldy);
    /*
     * Panel GEMM, NULL where the variant has none. `gemm_pack` writes the slivers of weight
     * rows [n0, n0 + ncols) and pairs [p0, p0 + np) of a matrix (quant plane `q` with
     * `qrow` bytes a row, scale plane `s` with `srow` f16 a row) to `dst`, sliver after
     * sliver (2 * np * PG__QG_BLOCK_BYTES bytes each). `gemm_tile` computes R <= MR rows x
     * C <= NR columns over nb blocks of one sliver and stores (accumulate = 0) or adds to y,
     * plus bias[c] when bias is not NULL.
     */
    void (*gemm_pack)(const uint8_t *q, size_t qrow, const uint16_t *s, size_t srow,
                      int is_q4, int64_t n0, int64_t ncols, int64_t p0, int64_t np,
                      uint8_t *dst);
    void (*gemm_tile)(const pg__qg_rows *x, const uint8_t *sliver, int64_t nb, int R, int C,
                      float *y, int64_t ldy, int accumulate, const float *bias);
    /*
     * One activation row (decode), NULL where the variant has none: y[c] for the C <= nr
     * weight rows at `q` (`qrow` bytes a row), reading their f16 scales in place (`s16`,
     * `srow` values a row) instead of a widened copy; Q4 when is_q4.
     */
    void (*row1)(const pg__qx *x, const uint8_t *q, size_t qrow, const uint16_t *s16,
                 size_t srow, int64_t npair, int C, int is_q4, float *y);
} pg__qkernels;

/* Each returns its table, or NULL when the variant was not compiled for this target. The
 * caller checks the CPU features before using a table. */
const pg__qkernels *pg__qkernels_scalar(void);
const pg__qkernels *pg__qkernels_avx2(void);
const pg__qkernels *pg__qkernels_avx512(void);

/* The portable activation quantizer (the scalar variant's; others may reuse it). */
void pg__quantize_x_generic(const float *x, int64_t cols, int64_t npair, int64_t ns,
                            int8_t *q, float *d, float *c, int32_t *s);
void pg__widen_scales_generic(const uint16_t *src, int64_t n, float *dst);

#endif
