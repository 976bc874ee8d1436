/*
 * The CPU backend: validates each op (the same checks as the reference backend), splits
 * it into tasks and runs them on the thread pool with the kernel table picked for this
 * CPU at creation.
 *
 * Concurrency: several sessions may call ops on one backend at once. Each op that uses
 * the pool or the per-thread scratch buffers holds `lock` for its duration, so calls are
 * serialised (each still uses every core); ops small enough to run inline on the
 * caller's thread without scratch skip the lock.
 */
#include "backend/cpu/cpu.h"

#include "backend/cpu/kernels.h"
#include "backend/cpu/pool.h"
#include "backend/quant.h"
#include "backend/tensor.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Elementwise ops below this many elements run inline on the caller's thread. */
#define PG_CPU_INLINE_ELEMS 32768
/* Elements per elementwise task. */
#define PG_CPU_CHUNK_ELEMS 16384

typedef struct cpu_backend {
    pg__backend base;
    const pg__cpu_kernels *kern;
    pg__pool *pool;
    pthread_mutex_t lock;
    float **scratch;       /* one 64-byte aligned buffer per thread */
    size_t scratch_floats; /* size of each */
    void *qact;            /* quantized activations of a prefill matmul (shared) */
    size_t qact_bytes;
} cpu_backend;

static cpu_backend *cpu(pg__backend *be)
{
    return (cpu_backend *)be;
}

static int64_t cdiv(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* Grows every thread's scratch buffer to at least `floats` (caller holds the lock). */
static pg_status ensure_scratch(cpu_backend *cb, size_t floats)
{
    if (floats <= cb->scratch_floats) {
        return PG_OK;
    }
    size_t bytes;
    if (!pg__mul_size(floats, sizeof(float), &bytes)) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "cpu backend: scratch size overflows");
    }
    int n = pg__pool_threads(cb->pool);
    for (int t = 0; t < n; t++) {
        pg__aligned_free(cb->scratch[t]);
        cb->scratch[t] = pg__aligned_alloc(bytes);
        if (!cb->scratch[t]) {
            cb->scratch_floats = 0;
            return PG_ERR_OUT_OF_MEMORY;
        }
    }
    cb->scratch_floats = floats;
    return PG_OK;
}

/* Runs n tasks on the pool under the backend lock, with scratch of at least `floats`. */
static pg_status run(cpu_backend *cb, size_t floats, pg__pool_fn fn, void *ctx, int64_t n)
{
    pthread_mutex_lock(&cb->lock);
    pg_status st = ensure_scratch(cb, floats);
    if (st == PG_OK) {
        pg__pool_run(cb->pool, fn, ctx, n);
    }
    pthread_mutex_unlock(&cb->lock);
    return st;
}

static int threads(cpu_backend *cb)
{
    return pg__pool_threads(cb->pool);
}

/* A plain-typed vector as f32 (a new buffer; `plus` is added to every element). */
static float *vector_f32(cpu_backend *cb, const pg__tensor *v, int64_t n, float plus)
{
    float *out = pg__malloc_array((size_t)n, sizeof *out);
    if (out) {
        cb->kern->to_f32(out, v->data, v->dtype, (size_t)n);
        for (int64_t i = 0; plus != 0.0f && i < n; i++) {
            out[i] += plus;
        }
    }
    return out;
}

/* ------------------------------------------------------------------------------------ */
/* matmul */

typedef struct matmul_task {
    cpu_backend *cb;
    pg__gemm g;
    const pg__tensor *w;
    int64_t n_chunk;   /* output columns per task */
    int64_t n_ntasks;  /* tasks along n */
    int64_t panels;    /* packed panels along n (gemm) */
    int64_t m_chunk;   /* rows per task (gemm) */
    const void *qx;    /* quantized activations (quantized-weight prefill) */
} matmul_task;

static void gemm_task(void *ctx, int64_t t, int thread)
{
    matmul_task *mt = ctx;
    /* Panels are shared out as evenly as possible (task sizes differ by one panel). */
    int64_t nt = t % mt->n_ntasks, nr = mt->cb->kern->gemm_nr;
    int64_t n0 = nt * mt->panels / mt->n_ntasks * nr;
    int64_t n1 = (nt + 1) * mt->panels / mt->n_ntasks * nr;
    n1 = n1 < mt->g.n ? n1 : mt->g.n;
    int64_t m0 = (t / mt->n_ntasks) * mt->m_chunk;
    pg__gemm g = mt->g;
    g.m = g.m - m0 < mt->m_chunk ? g.m - m0 : mt->m_chunk;
    g.x += m0 * g.ldx;
    g.y += m0 * g.ldy;
    mt->cb->kern->gemm(&g, n0, n1, mt->cb->scratch[thread]);
}

static void gemv_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    matmul_task *mt = ctx;
    int64_t n0 = t * mt->n_chunk;
    int64_t n1 = n0 + mt->n_chunk < mt->g.n ? n0 + mt->n_chunk : mt->g.n;
    mt->cb->kern->gemv(&mt->g, n0, n1);
}

static void add_bias(const matmul_task *mt, int64_t n0, int64_t n1)
{
    for (int64_t i = 0; mt->g.bias && i < mt->g.m; i++) {
        float *yi = mt->g.y + i * mt->g.ldy;
        for (int64_t n = n0; n < n1; n++) {
            yi[n] += mt->g.bias[n];
        }
    }
}

/* Decode-sized quantized matmul: each task quantizes its (few) activation rows itself. */
static void quant_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    matmul_task *mt = ctx;
    int64_t n0 = t * mt->n_chunk;
    int64_t n1 = n0 + mt->n_chunk < mt->g.n ? n0 + mt->n_chunk : mt->g.n;
    pg__quant_matmul_cols(mt->w, mt->g.x, mt->g.ldx, mt->g.m, mt->g.y, mt->g.ldy, n0, n1);
    add_bias(mt, n0, n1);
}

/* Prefill-sized: the activations are quantized once (row tasks), then column tasks share
 * them, each with its thread's scratch for the packed weight panels. */
static void quant_act_task(void *ctx, int64_t t, int thread)
{
    (void)thread;
    matmul_task *mt = ctx;
    int64_t i0 = t * mt->m_chunk;
    int64_t i1 = i0 + mt->m_chunk < mt->g.m ? i0 + mt->m_chunk : mt->g.m;
    pg__quant_act_rows(mt->g.x, mt->g.ldx, mt->g.m, mt->g.k, mt->cb->qact, i0, i1);
}

static void quant_cols_task(void *ctx, int64_t t, int thread)
{
    matmul_task *mt = ctx;
    int64_t n0 = t * mt->n_chunk;
    int64_t n1 = n0 + mt->n_chunk < mt->g.n ? n0 + mt->n_chunk : mt->g.n;
    pg__quant_matmul_cols_qs(mt->w, mt->qx, mt->g.m, mt->g.y, mt->g.ldy, n0, n1,
                             mt->cb->scratch[thread], mt->g.bias);
}

/* Splits n columns into about `per_thread` tasks per thread, in multiples of `align`. */
static int64_t column_chunk(int64_t n, int nthreads, int per_thread, int64_t align)
{
    int64_t chunk = cdiv(n, (int64_t)nthreads * per_thread);
    return cdiv(chunk, align) * align;
}

/* Quantized weights, m >= PG__QUANT_PANEL_MIN_M: two pool runs under one lock. */
static pg_status quant_prefill(cpu_backend *cb, matmul_task *mt)
{
    int nt = threads(cb);
    /* A few column tasks per thread (balance), in multiples of 32 columns (the kernels'
     * sliver width). */
    mt->n_chunk = column_chunk(mt->g.n, nt, 3, 32);
    size_t act = pg__quant_act_size(mt->g.m, mt->g.k);
    size_t scratch = pg__quant_matmul_scratch_size(mt->w, mt->g.m, mt->n_chunk);
    if (act == 0 || scratch == 0) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "matmul %s: shape too large",
                         mt->w->name ? mt->w->name : "");
    }
    pthread_mutex_lock(&cb->lock);
    pg_status st = ensure_scratch(cb, (scratch + sizeof(float) - 1) / sizeof(float));
    if (st == PG_OK && act > cb->qact_bytes) {
        pg__aligned_free(cb->qact);
        cb->qact_bytes = 0;
        cb->qact = pg__aligned_alloc(act);
        st = cb->qact ? PG_OK : PG_ERR_OUT_OF_MEMORY;
        cb->qact_bytes = cb->qact ? act : 0;
    }
    if (st == PG_OK) {
        mt->qx = cb->qact;
        mt->m_chunk = cdiv(mt->g.m, (int64_t)nt * 4);
        pg__pool_run(cb->pool, quant_act_task, mt, cdiv(mt->g.m, mt->m_chunk));
        pg__pool_run(cb->pool, quant_cols_task, mt, cdiv(mt->g.n, mt->n_chunk));
    }
    pthread_mutex_unlock(&cb->lock);
    return st;
}

static pg_status cpu_matmul(pg__backend *be, float *y, int64_t ldy, const float *x,
                            int64_t ldx, int64_t m, const pg__tensor *w, const pg__tensor *bias)
{
    cpu_backend *cb = cpu(be);
    pg_status st = pg__check_matmul(y, ldy, x, ldx, m, w, bias);
    if (st != PG_OK || m == 0) {
        return st;
    }
    const pg__cpu_kernels *k = cb->kern;
    matmul_task mt = {.cb = cb, .w = w};
    mt.g = (pg__gemm){.x = x, .ldx = ldx, .m = m, .y = y, .ldy = ldy, .w = w->data,
                      .wdt = w->dtype, .n = w->rows, .k = w->cols};
    float *bias32 = NULL;
    if (bias) {
        if (bias->dtype == PG__F32) {
            mt.g.bias = bias->data;
        } else {
            bias32 = vector_f32(cb, bias, w->rows, 0.0f);
            if (!bias32) {
                return PG_ERR_OUT_OF_MEMORY;
            }
            mt.g.bias = bias32;
        }
    }
    int nt = threads(cb);
    if (!pg__dtype_is_plain(w->dtype) && m >= PG__QUANT_PANEL_MIN_M) {
        st = quant_prefill(cb, &mt);
    } else if (!pg__dtype_is_plain(w->dtype)) {
        /* Few rows: each task quantizes them itself (cheap), no shared buffer. */
        mt.n_chunk = column_chunk(w->rows, nt, m <= 4 ? 8 : 4, 16);
        st = run(cb, 0, quant_task, &mt, cdiv(w->rows, mt.n_chunk));
    } else if (m <= k->gemv_max_m) {
        /* Memory-bound: at least 8 tasks per thread, and at most ~4 MiB of weights per
         * task, so a thread the OS preempts mid-task holds up little (the output head
         * is 1.2 GB). */
        mt.n_chunk = column_chunk(w->rows, nt, 8, 16);
        int64_t max_rows = ((int64_t)4 << 20) / (w->cols * (int64_t)pg__dtype_size(w->dtype));
        max_rows = max_rows < 16 ? 16 : max_rows / 16 * 16;
        mt.n_chunk = mt.n_chunk < max_rows ? mt.n_chunk : max_rows;
        st = run(cb, 0, gemv_task, &mt, cdiv(w->rows, mt.n_chunk));
    } else {
        /* About 4 tasks per thread along n (a multiple of the thread count), each of at
         * most 8 packed panels; when there are too few panels for that, also split the
         * rows. */
        int64_t nr = k->gemm_nr, panels = cdiv(w->rows, nr);
        int64_t tasks = (int64_t)nt * 4, by_size = cdiv(panels, 8);
        tasks = tasks > by_size ? tasks : cdiv(by_size, nt) * nt;
        tasks = tasks < panels ? tasks : panels;
        int64_t ppt = cdiv(panels, tasks);
        mt.panels = panels;
        mt.n_ntasks = tasks;
        int64_t mblocks = cdiv(2 * nt, mt.n_ntasks);
        int64_t max_mblocks = cdiv(m, 64);
        mblocks = mblocks > max_mblocks ? max_mblocks : mblocks < 1 ? 1 : mblocks;
        mt.m_chunk = cdiv(m, mblocks);
        st = run(cb, (size_t)(ppt * nr * PG__GEMM_KC + PG__GEMM_X_SCRATCH), gemm_task, &mt,
                 mt.n_ntasks * cdiv(m, mt.m_chunk));
    }
    free(bias32);
    return st;
}

/* ------------------------------------------------------------------------------------ */
/* row-wise norms */

typedef struct norm_task {
    cpu_backend *cb;
    float *y;
    int64_t ldy;
    const float *x;
    int64_t ldx, m, n, rows_per_task;
    const float *w, *b;
    float eps;
    int layer;
} norm_task;

static void norm_rows(void *ctx, int64_t t, int thread)
{
    (void)thread;
    norm_task *nt = ctx;
    int64_t r0 = t * nt->rows_per_task;
    int64_t r1 = r0 + nt->rows_per_task < nt->m ? r0 + nt->rows_per_task : nt->m;
    for (int64_t r = r0; r < r1; r++) {
        if (nt->layer) {
            nt->cb->kern->layer_norm(nt->y + r * nt->ldy, nt->x + r * nt->ldx, nt->n, nt->w,
                                     nt->b, nt->eps);
        } else {
            nt->cb->kern->rms_norm(nt->y + r * nt->ldy, nt->x + r * nt->ldx, nt->n, nt->w,
                                   nt->eps);
        }
    }
}

static pg_status run_norm(norm_task *nt)
{
    int64_t elems = nt->m * nt->n;
    if (elems < PG_CPU_INLINE_ELEMS) {
        nt->rows_per_task = nt->m;
        norm_rows(nt, 0, 0);
        return PG_OK;
    }
    nt->rows_per_task = cdiv(nt->m, (int64_t)threads(nt->cb) * 4);
    return run(nt->cb, 0, norm_rows, nt, cdiv(nt->m, nt->rows_per_task));
}

static pg_status cpu_layer_norm(pg__backend *be, float *y, const float *x, int64_t m,
                                int64_t n, const pg__tensor *w, const pg__tensor *b, float eps)
{
    cpu_backend *cb = cpu(be);
    pg_status st = pg__check_rows(y, n, x, n, m, n, "layer_norm");
    if (st == PG_OK) {
        st = pg__check_vector(w, n, "layer_norm weight");
    }
    if (st == PG_OK) {
        st = pg__check_vector(b, n, "layer_norm bias");
    }
    if (st != PG_OK || m == 0) {
        return st;
    }
    float *w32 = vector_f32(cb, w, n, 0.0f), *b32 = vector_f32(cb, b, n, 0.0f);
    if (!w32 || !b32) {
        free(w32);
        free(b32);
        return PG_ERR_OUT_OF_MEMORY;
    }
    norm_task nt = {.cb = cb, .y = y, .ldy = n, .x = x, .ldx = n, .m = m, .n = n, .w = w32,
                    .b = b32, .eps = eps, .layer = 1};
    st = run_norm(&nt);
    free(w32);
    free(b32);
    return st;
}

static pg_status cpu_rms_norm(pg__backend *be, float *y, int64_t ldy, const float *x,
                              int64_t ldx, int64_t m, int64_t n, const pg__tensor *w, float eps)
{
    cpu_backend *cb = cpu(be);
    pg_status st = pg__check_rows(y, ldy, x, ldx, m, n, "rms_norm");
    if (st == PG_OK) {
        st = pg__check_vector(w, n, "rms_norm weight");
    }
    if (st != PG_OK || m == 0) {
        return st;
    }
    float *w1 = vector_f32(cb, w, n, 1.0f);
    if (!w1) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    norm_task nt = {.cb = cb, .y = y, .ldy = ldy, .x = x, .ldx = ldx, .m = m, .n = n, .w = w1,
                    .eps = eps};
    st = run_norm(&nt);
    free(w1);
    return st;
}

/* ------------------------------------------------------------------------------------ */
/* elementwise ops */

typedef enum ew_kind { EW_GELU, EW_GEGLU, EW_ADD, EW_SCALE, EW_SOFTCAP } ew_kind;

typedef struct ew_task {
    const pg__cpu_kernels *k;
    ew_kind kind;
    float *y;
    const float *a, *b;
    float s;
    size_t n;
} ew_task;

static void ew_range(ew_task *e, size_t i0, size_t i1)
{
    size_t n = i1 - i0;
    switch (e->kind) {
    case EW_GELU:
        e->k->gelu(e->y + i0, e->a + i0, n);
        break;
    case EW_GEGLU:
        e->k->geglu(e->y + i0, e->a + i0, e->b + i0, n);
        break;
    case EW_ADD:
        e->k->add(e->y + i0, e->a + i0, e->b + i0, n);
        break;
    case EW_SCALE:
        e->k->scale(e->y + i0, e->a + i0, e->s, n);
        break;
    case EW_SOFTCAP:
        e->k->softcap(e->y + i0, e->a + i0, e->s, n);
        break;
    }
}

static void ew_chunk(void *ctx, int64_t t, int thread)
{
    (void)thread;
    ew_task *e = ctx;
    size_t i0 = (size_t)t * PG_CPU_CHUNK_ELEMS;
    size_t i1 = i0 + PG_CPU_CHUNK_ELEMS < e->n ? i0 + PG_CPU_CHUNK_ELEMS : e->n;
    ew_range(e, i0, i1);
}

static pg_status run_ew(cpu_backend *cb, ew_task *e)
{
    if (e->n < PG_CPU_INLINE_ELEMS) {
        ew_range(e, 0, e->n);
        return PG_OK;
    }
    return run(cb, 0, ew_chunk, e, (int64_t)((e->n + PG_CPU_CHUNK_ELEMS - 1) / PG_CPU_CHUNK_ELEMS));
}

static pg_status cpu_gelu_tanh(pg__backend *be, float *y, const float *x, size_t n)
{
    pg_status st = pg__check_elementwise(y, x, x, n, "gelu_tanh");
    ew_task e = {.k = cpu(be)->kern, .kind = EW_GELU, .y = y, .a = x, .n = n};
    return st != PG_OK ? st : run_ew(cpu(be), &e);
}

static pg_status cpu_geglu(pg__backend *be, float *y, const float *gate, const float *up,
                           size_t n)
{
    pg_status st = pg__check_elementwise(y, gate, up, n, "geglu");
    ew_task e = {.k = cpu(be)->kern, .kind = EW_GEGLU, .y = y, .a = gate, .b = up, .n = n};
    return st != PG_OK ? st : run_ew(cpu(be), &e);
}

static pg_status cpu_add(pg__backend *be, float *y, const float *a, const float *b, size_t n)
{
    pg_status st = pg__check_elementwise(y, a, b, n, "add");
    ew_task e = {.k = cpu(be)->kern, .kind = EW_ADD, .y = y, .a = a, .b = b, .n = n};
    return st != PG_OK ? st : run_ew(cpu(be), &e);
}

static pg_status cpu_scale(pg__backend *be, float *y, const float *x, float s, size_t n)
{
    pg_status st = pg__check_elementwise(y, x, x, n, "scale");
    ew_task e = {.k = cpu(be)->kern, .kind = EW_SCALE, .y = y, .a = x, .s = s, .n = n};
    return st != PG_OK ? st : run_ew(cpu(be), &e);
}

static pg_status cpu_softcap(pg__backend *be, float *y, const float *x, float cap, size_t n)
{
    pg_status st = pg__check_elementwise(y, x, x, n, "softcap");
    if (st == PG_OK && !(cap > 0.0f)) {
        st = pg__error(PG_ERR_INVALID_ARGUMENT, "softcap: cap %g must be positive", (double)cap);
    }
    ew_task e = {.k = cpu(be)->kern, .kind = EW_SOFTCAP, .y = y, .a = x, .s = cap, .n = n};
    return st != PG_OK ? st : run_ew(cpu(be), &e);
}

/* ------------------------------------------------------------------------------------ */
/* rope */

typedef struct rope_task {
    float *x;
    int64_t m, ld, rows_per_task;
    int32_t n_heads, head_dim;
    const int32_t *pos;
    const double *inv_freq;
} rope_task;

static void rope_rows(void *ctx, int64_t t, int thread)
{
    (void)thread;
    rope_task *rt = ctx;
    int32_t half = rt->head_dim / 2;
    float cs[2 * 512];
    int64_t r0 = t * rt->rows_per_task;
    int64_t r1 = r0 + rt->rows_per_task < rt->m ? r0 + rt->rows_per_task : rt->m;
    for (int64_t r = r0; r < r1; r++) {
        for (int32_t i0 = 0; i0 < half; i0 += 512) {
            int32_t i1 = half - i0 < 512 ? half : i0 + 512;
            /* The angle in double keeps large positions exact to float precision. */
            for (int32_t i = i0; i < i1; i++) {
                double ang = (double)rt->pos[r] * rt->inv_freq[i], sn, cn;
                sincos(ang, &sn, &cn);
                cs[2 * (i - i0)] = (float)cn;
                cs[2 * (i - i0) + 1] = (float)sn;
            }
            for (int32_t h = 0; h < rt->n_heads; h++) {
                float *v = rt->x + r * rt->ld + (int64_t)h * rt->head_dim;
                for (int32_t i = i0; i < i1; i++) {
                    float c = cs[2 * (i - i0)], s = cs[2 * (i - i0) + 1];
                    float x0 = v[i], x1 = v[i + half];
                    v[i] = x0 * c - x1 * s;
                    v[i + half] = x1 * c + x0 * s;
                }
            }
        }
    }
}

static pg_status cpu_rope(pg__backend *be, float *x, int64_t m, int64_t ld, int32_t n_heads,
                          int32_t head_dim, const int32_t *pos, float theta)
{
    cpu_backend *cb = cpu(be);
    pg_status st = pg__check_rope(x, m, ld, n_heads, head_dim, pos);
    if (st != PG_OK || m == 0) {
        return st;
    }
    double *inv_freq = pg__malloc_array((size_t)head_dim / 2, sizeof *inv_freq);
    if (!inv_freq) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    for (int32_t i = 0; i < head_dim / 2; i++) {
        inv_freq[i] = pow((double)theta, -2.0 * i / (double)head_dim);
    }
    rope_task rt = {.x = x, .m = m, .ld = ld, .n_heads = n_heads, .head_dim = head_dim,
                    .pos = pos, .inv_freq = inv_freq};
    if (m * n_heads * head_dim < PG_CPU_INLINE_ELEMS) {
        rt.rows_per_task = m;
        rope_rows(&rt, 0, 0);
    } else {
        rt.rows_per_task = cdiv(m, (int64_t)threads(cb) * 4);
        st = run(cb, 0, rope_rows, &rt, cdiv(m, rt.rows_per_task));
    }
    free(inv_freq);
    return st;
}

/* ------------------------------------------------------------------------------------ */
/* attention */

size_t pg__attn_scratch_floats(const pg__attn *a)
{
    size_t hdp = ((size_t)a->head_dim + 15) & ~(size_t)15;
    size_t group = (size_t)(a->n_heads / a->n_kv_heads);
    size_t bq = PG__ATTN_BQ_MAX, bk = PG__ATTN_BK;
    size_t block = 2 * hdp * bq + bk * bq + 2 * bk * hdp;
    size_t row = 2 * group * hdp + hdp + ((group + 15) & ~(size_t)15) +
                 group * (size_t)a->n_kv;
    return (block > row ? block : row) + 16;
}

typedef struct attn_task {
    cpu_backend *cb;
    const pg__attn *a;
    int64_t qblocks;
    int bq;
} attn_task;

static void attn_block_task(void *ctx, int64_t t, int thread)
{
    attn_task *at = ctx;
    /* Consecutive tasks take consecutive query blocks of one head, so that head's keys
     * and values stay in cache (L2) from one task to the next. */
    int32_t h = (int32_t)(t / at->qblocks);
    int64_t q0 = (t % at->qblocks) * at->bq;
    int64_t q1 = q0 + at->bq < at->a->n_q ? q0 + at->bq : at->a->n_q;
    at->cb->kern->attn_block(at->a, h, q0, q1, at->cb->scratch[thread]);
}

static void attn_row_task(void *ctx, int64_t t, int thread)
{
    attn_task *at = ctx;
    int32_t kvh = (int32_t)(t % at->a->n_kv_heads);
    int64_t qi = t / at->a->n_kv_heads;
    at->cb->kern->attn_row(at->a, kvh, qi, at->cb->scratch[thread]);
}

static pg_status cpu_attention(pg__backend *be, const pg__attn *a)
{
    cpu_backend *cb = cpu(be);
    pg_status st = pg__check_attn(a);
    if (st != PG_OK || a->n_q == 0) {
        return st;
    }
    size_t floats = pg__attn_scratch_floats(a);
    attn_task at = {.cb = cb, .a = a, .bq = cb->kern->attn_bq};
    /* Few query rows (decode): one task per kv head and row; else blocks of rows. */
    if (a->n_q * 4 <= at.bq) {
        return run(cb, floats, attn_row_task, &at, a->n_q * a->n_kv_heads);
    }
    at.qblocks = cdiv(a->n_q, at.bq);
    return run(cb, floats, attn_block_task, &at, at.qblocks * a->n_heads);
}

/* ------------------------------------------------------------------------------------ */
/* get_rows, convert */

typedef struct rows_task {
    const pg__cpu_kernels *k;
    float *y;
    const pg__tensor *w;
    const int32_t *ids;
} rows_task;

static void get_row(void *ctx, int64_t r, int thread)
{
    (void)thread;
    rows_task *rt = ctx;
    const pg__tensor *w = rt->w;
    float *dst = rt->y + r * w->cols;
    if (pg__dtype_is_plain(w->dtype)) {
        size_t off = (size_t)rt->ids[r] * (size_t)w->cols * pg__dtype_size(w->dtype);
        rt->k->to_f32(dst, (const char *)w->data + off, w->dtype, (size_t)w->cols);
    } else {
        pg__dequantize_row(w, rt->ids[r], dst);
    }
}

static pg_status cpu_get_rows(pg__backend *be, float *y, const pg__tensor *w,
                              const int32_t *ids, int64_t n)
{
    cpu_backend *cb = cpu(be);
    pg_status st = pg__check_get_rows(y, w, ids, n);
    if (st != PG_OK || n == 0) {
        return st;
    }
    rows_task rt = {.k = cb->kern, .y = y, .w = w, .ids = ids};
    if (n * w->cols < PG_CPU_INLINE_ELEMS) {
        for (int64_t r = 0; r < n; r++) {
            get_row(&rt, r, 0);
        }
        return PG_OK;
    }
    return run(cb, 0, get_row, &rt, n);
}

typedef struct convert_task {
    const pg__cpu_kernels *k;
    void *dst;
    pg__dtype dt;
    const float *src;
    size_t n;
} convert_task;

static void convert_chunk(void *ctx, int64_t t, int thread)
{
    (void)thread;
    convert_task *ct = ctx;
    size_t i0 = (size_t)t * PG_CPU_CHUNK_ELEMS;
    size_t i1 = i0 + PG_CPU_CHUNK_ELEMS < ct->n ? i0 + PG_CPU_CHUNK_ELEMS : ct->n;
    ct->k->from_f32((char *)ct->dst + i0 * pg__dtype_size(ct->dt), ct->dt, ct->src + i0,
                    i1 - i0);
}

static pg_status cpu_convert(pg__backend *be, void *dst, pg__dtype dt, const float *src,
                             size_t n)
{
    cpu_backend *cb = cpu(be);
    pg_status st = pg__check_convert(dst, dt, src, n);
    if (st != PG_OK || n == 0) {
        return st;
    }
    convert_task ct = {.k = cb->kern, .dst = dst, .dt = dt, .src = src, .n = n};
    if (n < PG_CPU_INLINE_ELEMS) {
        cb->kern->from_f32(dst, dt, src, n);
        return PG_OK;
    }
    return run(cb, 0, convert_chunk, &ct,
               (int64_t)((n + PG_CPU_CHUNK_ELEMS - 1) / PG_CPU_CHUNK_ELEMS));
}

/* ------------------------------------------------------------------------------------ */
/* creation */

static void cpu_destroy(pg__backend *be)
{
    cpu_backend *cb = cpu(be);
    if (cb->scratch) {
        for (int t = 0; cb->pool && t < pg__pool_threads(cb->pool); t++) {
            pg__aligned_free(cb->scratch[t]);
        }
    }
    free(cb->scratch);
    pg__aligned_free(cb->qact);
    pg__pool_destroy(cb->pool);
    pthread_mutex_destroy(&cb->lock);
    free(cb);
}

static const pg__backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .matmul = cpu_matmul,
    .layer_norm = cpu_layer_norm,
    .rms_norm = cpu_rms_norm,
    .gelu_tanh = cpu_gelu_tanh,
    .geglu = cpu_geglu,
    .add = cpu_add,
    .scale = cpu_scale,
    .softcap = cpu_softcap,
    .rope = cpu_rope,
    .attention = cpu_attention,
    .get_rows = cpu_get_rows,
    .convert = cpu_convert,
};

/* Whether vdpbf16ps runs at the fp32 FMA instruction rate, i.e. twice its flops: true of
 * AMD's AVX-512 cores (Zen 4, Zen 5); on the Intel Xeons measured for this project it
 * runs at half that rate, where widening bf16 weights to f32 and using FMA is as fast and
 * keeps x in f32 (docs/backends.md). */
static bool bf16_dot_is_fast(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_cpu_is("amd");
#else
    return false;
#endif
}

static const pg__cpu_kernels *kernels_for(pg__cpu_isa isa)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#    if defined(__clang__)
    bool f16c = true; /* clang 14 cannot ask; every AVX2 + FMA CPU (Haswell, Zen) has it */
#    else
    bool f16c = __builtin_cpu_supports("f16c");
#    endif
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    bool bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
#else
    bool avx512 = false, avx2 = false, bf16 = false;
#endif
    switch (isa) {
    case PG__CPU_ISA_AUTO_BF16:
        if (bf16 && bf16_dot_is_fast() && pg__cpu_kernels_avx512bf16()) {
            return pg__cpu_kernels_avx512bf16();
        }
        return kernels_for(PG__CPU_ISA_AUTO);
    case PG__CPU_ISA_AUTO:
        if (avx512 && pg__cpu_kernels_avx512()) {
            return pg__cpu_kernels_avx512();
        }
        if (avx2 && pg__cpu_kernels_avx2()) {
            return pg__cpu_kernels_avx2();
        }
        return pg__cpu_kernels_generic();
    case PG__CPU_ISA_AVX512:
        return avx512 ? pg__cpu_kernels_avx512() : NULL;
    case PG__CPU_ISA_AVX512BF16:
        return bf16 ? pg__cpu_kernels_avx512bf16() : NULL;
    case PG__CPU_ISA_AVX2:
        return avx2 ? pg__cpu_kernels_avx2() : NULL;
    case PG__CPU_ISA_GENERIC:
        return pg__cpu_kernels_generic();
    }
    return NULL;
}

bool pg__cpu_isa_available(pg__cpu_isa isa)
{
    return kernels_for(isa) != NULL;
}

const pg__cpu_kernels *pg__cpu_backend_kernels(const pg__backend *be)
{
    return ((const cpu_backend *)be)->kern;
}

const char *pg__cpu_backend_isa(const pg__backend *be)
{
    return ((const cpu_backend *)be)->kern->isa;
}

pg_status pg__cpu_backend_create(pg__backend **out, int32_t n_threads, pg__cpu_isa isa)
{
    *out = NULL;
    const pg__cpu_kernels *kern = kernels_for(isa);
    if (!kern) {
        return pg__error(PG_ERR_UNSUPPORTED, "cpu backend: kernel set %d not supported here",
                         (int)isa);
    }
    cpu_backend *cb = pg__calloc(1, sizeof *cb);
    if (!cb) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    int nt = n_threads > 0 ? n_threads : pg__cpu_count();
    pg_status st = pg__pool_create(&cb->pool, nt);
    if (st != PG_OK) {
        free(cb);
        return st;
    }
    cb->scratch = pg__calloc((size_t)nt, sizeof *cb->scratch);
    if (!cb->scratch) {
        pg__pool_destroy(cb->pool);
        free(cb);
        return PG_ERR_OUT_OF_MEMORY;
    }
    pthread_mutex_init(&cb->lock, NULL);
    cb->kern = kern;
    cb->base.ops = &cpu_ops;
    cb->base.n_threads = nt;
    *out = &cb->base;
    return PG_OK;
}
