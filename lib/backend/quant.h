/*
 * backend/quant: block-quantized weight formats (PG__Q8, PG__Q4), made at load time from
 * bf16/f16/f32 weights. The exact block layouts are documented in quant.c,
 * quant/quant_kernels.h and docs/quantization.md. Any cols > 0 works: the last 32-value
 * block of a row is zero-padded (so SigLIP's 4304-wide fc2 quantizes too).
 */
#ifndef PG_BACKEND_QUANT_H
#define PG_BACKEND_QUANT_H

#include "backend/backend.h"

#define PG__QBLOCK 32

/* Bytes needed for a rows x cols matrix of type dt (Q8 or Q4); 0 for other types, rows or
 * cols <= 0, or on overflow. */
size_t pg__quant_size(pg__dtype dt, int64_t rows, int64_t cols);
/* Bytes of one row in the quant plane (without scales); 0 as above. */
size_t pg__quant_row_bytes(pg__dtype dt, int64_t cols);
/* Quantizes rows [r0, r1) of `src` (F32/F16/BF16) into `dst`, the buffer of the whole
 * matrix (pg__quant_size bytes); disjoint row ranges may run on different threads.
 * Fails (PG_ERR_FORMAT) on non-finite values. */
pg_status pg__quantize_rows(pg__dtype dt, const pg__tensor *src, void *dst, int64_t r0,
                            int64_t r1);
/* Makes *out describe quantized data: src's shape and name, dtype dt, data = `data`. */
void pg__quant_tensor_init(pg__tensor *out, pg__dtype dt, const pg__tensor *src,
                           const void *data);
/* One row of a quantized matrix back to float32 (cols floats). */
void pg__dequantize_row(const pg__tensor *w, int64_t row, float *out);
/*
 * y[i][n] = x[i][:] . W[n][:] for i < m and n in [n0, n1): the single-threaded kernel the CPU
 * backend's matmul calls for Q8/Q4 weights (the backend splits [0, rows) across threads
 * and adds any bias). The activations are quantized per 32-value block to int8 on the fly.
 * Uses VNNI/AVX-512/AVX2 where the CPU has them (run-time dispatch). Never fails: should its
 * scratch allocation fail it falls back to a slower float path.
 */
void pg__quant_matmul_cols(const pg__tensor *w, const float *x, int64_t ldx, int64_t m,
                           float *y, int64_t ldy, int64_t n0, int64_t n1);

/* The same with float activations (no activation quantization, no scratch memory): slow;
 * the fallback of pg__quant_matmul_cols when memory is short, and a reference for tests. */
void pg__quant_matmul_cols_float(const pg__tensor *w, const float *x, int64_t ldx, int64_t m,
                                 float *y, int64_t ldy, int64_t n0, int64_t n1);

/*
 * The same in two steps, so that a multi-threaded caller quantizes the activations once
 * (not once per column task): pg__quant_act_rows fills rows [i0, i1) of a buffer of
 * pg__quant_act_size(m, w->cols) bytes (row ranges may run on different threads), then
 * every column task calls pg__quant_matmul_cols_q on it (the buffer layout is the same for
 * every kernel variant).
 * pg__quant_matmul_cols_q fails only with PG_ERR_OUT_OF_MEMORY (a small scratch buffer).
 */
size_t pg__quant_act_size(int64_t m, int64_t cols);
void pg__quant_act_rows(const float *x, int64_t ldx, int64_t m, int64_t cols, void *qx,
                        int64_t i0, int64_t i1);
pg_status pg__quant_matmul_cols_q(const pg__tensor *w, const void *qx, int64_t m, float *y,
                                  int64_t ldy, int64_t n0, int64_t n1);
/*
 * The same with caller-owned scratch memory (never fails): at least
 * pg__quant_matmul_scratch_size(w, m, n1 - n0) bytes (0 on overflow), 64-byte aligned, and
 * an optional bias (y[i][n] += bias[n]; NULL: none). For prefill-sized m (and a kernel
 * variant that has it) this runs the panel GEMM: weights repacked per task into column
 * slivers, see quant/quant_kernels.h; the bias is added as the results are stored.
 */
size_t pg__quant_matmul_scratch_size(const pg__tensor *w, int64_t m, int64_t ncols);
void pg__quant_matmul_cols_qs(const pg__tensor *w, const void *qx, int64_t m, float *y,
                              int64_t ldy, int64_t n0, int64_t n1, void *scratch,
                              const float *bias);
/* Below this many activation rows the register-tile kernels run (decode); from it on, the
 * panel GEMM where the variant has one. */
#define PG__QUANT_PANEL_MIN_M 16
/* Overrides that threshold process-wide (benchmarks comparing the two paths; INT64_MAX:
 * never the panel GEMM); <= 0 restores PG__QUANT_PANEL_MIN_M. Like pg__quant_use_kernel,
 * only while no quantized matmul runs (the scratch size depends on it). */
void pg__quant_set_panel_min_m(int64_t m);
/* Whether the kernel variant in use has the panel GEMM. */
bool pg__quant_has_panel_gemm(void);

/* Kernel variants, best first ("avx512vnni", "avx2", "scalar"), NULL-terminated. */
const char *const *pg__quant_kernel_names(void);
/* The variant in use (the best one the CPU has unless forced). */
const char *pg__quant_kernel_name(void);
/* Forces a variant by name (tests, benchmarks); NULL or "auto" restores the automatic
 * choice. PG_ERR_UNSUPPORTED when this CPU or build lacks it. Process-wide. */
pg_status pg__quant_use_kernel(const char *name);

#endif
