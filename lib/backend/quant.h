/*
 * backend/quant: block-quantized weight formats (PG__Q8, PG__Q4), made at load time from
 * bf16/f16/f32 weights. The exact block layouts are documented in quant.c and
 * docs/quantization.md. Quantization needs cols % PG__QBLOCK == 0.
 */
#ifndef PG_BACKEND_QUANT_H
#define PG_BACKEND_QUANT_H

#include "backend/backend.h"

#define PG__QBLOCK 32

/* Bytes needed for a rows x cols matrix of type dt (Q8 or Q4); 0 if cols is not a multiple
 * of PG__QBLOCK or on overflow. */
size_t pg__quant_size(pg__dtype dt, int64_t rows, int64_t cols);
/* Quantizes `src` (F32/F16/BF16) into `dst` (pg__quant_size bytes); fills out->{dtype, rows,
 * cols, data = dst, ndim, ne, name} from src. Rows [r0, r1) only (for threading). */
pg_status pg__quantize_rows(pg__dtype dt, const pg__tensor *src, void *dst, int64_t r0,
                            int64_t r1);
/* One row of a quantized matrix back to float32 (cols floats). */
void pg__dequantize_row(const pg__tensor *w, int64_t row, float *out);
/*
 * y[i][n] = x[i][:] . W[n][:] for i < m and n in [n0, n1): the single-threaded kernel the CPU
 * backend's matmul calls for Q8/Q4 weights (the backend splits [0, rows) across threads
 * and adds any bias). Uses VNNI/AVX-512/AVX2 where the CPU has them (run-time dispatch).
 */
void pg__quant_matmul_cols(const pg__tensor *w, const float *x, int64_t ldx, int64_t m,
                           float *y, int64_t ldy, int64_t n0, int64_t n1);

#endif
