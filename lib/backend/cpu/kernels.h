/*
 * backend/cpu/kernels: the single-threaded compute kernels of the CPU backend, one table
 * per instruction set. The same source (kernels.inc) is compiled three times: with
 * AVX-512 (F/BW/VL/BF16), with AVX2+FMA+F16C, and with the compiler's baseline flags
 * (the portable fallback); cpu_backend.c picks a table at run time with
 * __builtin_cpu_supports and splits each op into tasks for its thread pool.
 */
#ifndef PG_BACKEND_CPU_KERNELS_H
#define PG_BACKEND_CPU_KERNELS_H

#include "backend/backend.h"

/* K step of the GEMM blocking: packed weight panels hold this many columns of W. */
#define PG__GEMM_KC 256
/* Most rows of x per GEMM row block (MC) in any kernel set, and the scratch floats the
 * bf16 GEMM needs after its packed panels for one MC x KC block of x as bf16 pairs. */
#define PG__GEMM_MC_MAX 240
#define PG__GEMM_X_SCRATCH (PG__GEMM_MC_MAX * PG__GEMM_KC / 2)
/* Most keys per attention block (each kernel set uses a multiple of its tile height). */
#define PG__ATTN_BK 256

/* One matrix product y[m][n] = x[m][k] . W[n][k]^T (+ bias[n]). */
typedef struct pg__gemm {
    const float *x;
    int64_t ldx, m;
    float *y;
    int64_t ldy;
    const void *w;     /* F32, F16 or BF16, [n][k] row-major */
    pg__dtype wdt;
    int64_t n, k;
    const float *bias; /* f32 or NULL */
} pg__gemm;

typedef struct pg__cpu_kernels {
    const char *isa;
    int gemm_nr;   /* output columns per packed panel */
    int gemv_max_m; /* matmuls with m <= this use the streaming gemv kernel */
    int attn_bq;   /* query rows per attention task (prefill path) */
    /* y[0..m)[n0..n1) for a whole-k product; n0 is a multiple of gemm_nr. `pack` holds
     * (n1 - n0 rounded up to gemm_nr) * PG__GEMM_KC floats (64-byte aligned). */
    void (*gemm)(const pg__gemm *g, int64_t n0, int64_t n1, float *pack);
    /* The same for small m (decode): streams W once, all m rows at a time. */
    void (*gemv)(const pg__gemm *g, int64_t n0, int64_t n1);
    void (*to_f32)(float *dst, const void *src, pg__dtype dt, size_t n);
    void (*from_f32)(void *dst, pg__dtype dt, const float *src, size_t n);
    void (*gelu)(float *y, const float *x, size_t n);
    void (*geglu)(float *y, const float *gate, const float *up, size_t n);
    void (*add)(float *y, const float *a, const float *b, size_t n);
    void (*scale)(float *y, const float *x, float s, size_t n);
    void (*softcap)(float *y, const float *x, float cap, size_t n);
    /* One row: y = x / sqrt(mean(x^2) + eps) * w1, with w1 = 1 + weight. */
    void (*rms_norm)(float *y, const float *x, int64_t n, const float *w1, float eps);
    void (*layer_norm)(float *y, const float *x, int64_t n, const float *w, const float *b,
                       float eps);
    /* Query rows [q0, q1) (at most attn_bq) of head h; scratch of
     * pg__attn_scratch_floats() floats (64-byte aligned). */
    void (*attn_block)(const pg__attn *a, int32_t h, int64_t q0, int64_t q1, float *scratch);
    /* One query row qi for every head of kv head kvh (decode); same scratch. */
    void (*attn_row)(const pg__attn *a, int32_t kvh, int64_t qi, float *scratch);
    /* Machine probes for benchmarks: `iters` rounds of independent vector FMA chains
     * (returns the flops done; *sink keeps the work alive), and a streaming read sum. */
    double (*fma_probe)(int64_t iters, float *sink);
    float (*read_probe)(const float *p, size_t n);
} pg__cpu_kernels;

/* The kernel table a CPU backend uses (for benchmarks and tests). */
const pg__cpu_kernels *pg__cpu_backend_kernels(const pg__backend *be);

/* Largest attn_bq of any table (scratch sizing). */
#define PG__ATTN_BQ_MAX 32
/* Scratch floats one attention task (attn_block or attn_row) needs for `a`. */
size_t pg__attn_scratch_floats(const pg__attn *a);

const pg__cpu_kernels *pg__cpu_kernels_generic(void);
const pg__cpu_kernels *pg__cpu_kernels_avx2(void);
const pg__cpu_kernels *pg__cpu_kernels_avx512(void);
const pg__cpu_kernels *pg__cpu_kernels_avx512bf16(void);

#endif
