/*
 * bench_quant: throughput of the quantized matmul kernels (backend/quant) on PaliGemma 2
 * decoder shapes, for every kernel variant this CPU has, next to the CPU backend's bf16
 * matmul when that backend is built. Decode shape M = 1 (bandwidth-bound: GB/s of weights
 * read), prefill shape M = 1024 (compute-bound: Gop/s, one multiply-add = 2 ops).
 *
 *   bench_quant [--threads N] [--reps R] [--shape M,N,K] [--kernel NAME] [--cpu-time 1]
 *
 * "cpu backend" rows go through the backend's matmul (what the model runs); "kernel" rows
 * use the two-step quant API directly (activations quantized once, columns split over the
 * threads). For M >= PG__QUANT_PANEL_MIN_M a variant with the panel GEMM (prefill) is also
 * timed with its register tiles ("... tiles"), the path decode uses. Reports the best of R
 * repetitions. Not a test: a meson benchmark().
 */
#include "backend/quant.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Process CPU time in ms: with --threads 1 it is the time the kernel really ran, which
 * other processes competing for the cores do not inflate (unlike the wall clock). */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int g_use_cpu_time;

static double now_ms(void)
{
    return g_use_cpu_time ? cpu_ms() : pg__now_ms();
}

typedef struct job {
    const pg__tensor *w;
    const void *qx;
    float *y;
    int64_t m, n0, n1;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    pg__quant_matmul_cols_q(j->w, j->qx, j->m, j->y, j->w->rows, j->n0, j->n1);
    return NULL;
}

/* One quantized matmul in the two-step form: activations quantized once (single thread),
 * then the columns split over `threads` threads. */
static double time_quant(const pg__tensor *w, const float *x, float *y, int64_t m, int threads)
{
    pthread_t tid[64];
    job jobs[64];
    double t0 = now_ms();
    void *qx = malloc(pg__quant_act_size(m, w->cols));
    pg__quant_act_rows(x, w->cols, m, w->cols, qx, 0, m);
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){ w, qx, y, m, w->rows * t / threads, w->rows * (t + 1) / threads };
        if (t > 0) {
            pthread_create(&tid[t], NULL, run_job, &jobs[t]);
        }
    }
    run_job(&jobs[0]);
    for (int t = 1; t < threads; t++) {
        pthread_join(tid[t], NULL);
    }
    free(qx);
    return now_ms() - t0;
}

static double time_backend(pg__backend *be, const pg__tensor *w, const float *x, float *y,
                           int64_t m)
{
    double t0 = now_ms();
    if (be->ops->matmul(be, y, w->rows, x, w->cols, m, w, NULL) != PG_OK) {
        return -1;
    }
    return now_ms() - t0;
}

static void report(const char *what, const char *how, int64_t m, int64_t n, int64_t k,
                   double ms, size_t weight_bytes)
{
    double ops = 2.0 * (double)m * (double)n * (double)k;
    printf("%-5s %-23s M=%-5lld N=%-6lld K=%-5lld %9.3f ms %8.1f Gop/s %7.1f GB/s\n", what, how,
           (long long)m, (long long)n, (long long)k, ms, ops / ms / 1e6,
           (double)weight_bytes / ms / 1e6);
}

typedef struct bench_case {
    int64_t m, n, k;
} bench_case;

static void random_weights(uint16_t *w, size_t n)
{
    uint64_t s = 88172645463325252u;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        w[i] = pg__f32_to_bf16(((float)(s >> 40) / 16777216.0f - 0.5f) * 0.1f);
    }
}

static void run_case(const bench_case *c, pg__backend *be, int threads, int reps,
                     const char *only)
{
    size_t wn = (size_t)(c->n * c->k);
    uint16_t *wbf = malloc(wn * sizeof *wbf);
    float *x = malloc((size_t)(c->m * c->k) * sizeof *x);
    float *y = malloc((size_t)(c->m * c->n) * sizeof *y);
    random_weights(wbf, wn);
    for (int64_t i = 0; i < c->m * c->k; i++) {
        x[i] = (float)((i * 7919) % 2001 - 1000) / 1000.0f;
    }
    pg__tensor src = { PG__BF16, c->n, c->k, wbf, 2, { c->n, c->k, 0, 0 }, "bench" };
    if (be) {
        double best = 1e30;
        for (int r = 0; r < reps + 1; r++) { /* +1: the first touches the pages */
            double t = time_backend(be, &src, x, y, c->m);
            best = r > 0 && t >= 0 && t < best ? t : best;
        }
        report("bf16", "cpu backend", c->m, c->n, c->k, best, wn * 2);
    }
    for (int q = 0; q < 2; q++) {
        pg__dtype dt = q ? PG__Q4 : PG__Q8;
        size_t size = pg__quant_size(dt, c->n, c->k);
        void *buf = pg__aligned_alloc(size);
        pg__tensor w;
        if (!buf || pg__quantize_rows(dt, &src, buf, 0, c->n) != PG_OK) {
            fprintf(stderr, "quantize failed: %s\n", pg_last_error());
            exit(1);
        }
        pg__quant_tensor_init(&w, dt, &src, buf);
        if (be) {
            double best = 1e30;
            for (int r = 0; r < reps + 1; r++) {
                double t = time_backend(be, &w, x, y, c->m);
                best = r > 0 && t >= 0 && t < best ? t : best;
            }
            report(q ? "q4" : "q8", "cpu backend", c->m, c->n, c->k, best, size);
        }
        for (const char *const *name = pg__quant_kernel_names(); *name; name++) {
            if ((only && strcmp(only, *name)) || pg__quant_use_kernel(*name) != PG_OK ||
                (!strcmp(*name, "scalar") && c->m > 16)) { /* scalar prefill: minutes */
                continue;
            }
            /* pass 0: the automatic path; pass 1: the register tiles at prefill sizes */
            for (int tiles = 0; tiles < 2; tiles++) {
                if (tiles && (c->m < PG__QUANT_PANEL_MIN_M || !pg__quant_has_panel_gemm())) {
                    continue;
                }
                pg__quant_set_panel_min_m(tiles ? INT64_MAX : 0);
                double best = 1e30;
                for (int r = 0; r < reps + 1; r++) {
                    double t = time_quant(&w, x, y, c->m, threads);
                    best = r > 0 && t < best ? t : best;
                }
                char how[40];
                snprintf(how, sizeof how, "kernel %s%s", *name, tiles ? " tiles" : "");
                report(q ? "q4" : "q8", how, c->m, c->n, c->k, best, size);
            }
            pg__quant_set_panel_min_m(0);
        }
        pg__quant_use_kernel(NULL);
        pg__aligned_free(buf);
    }
    free(wbf);
    free(x);
    free(y);
}

int main(int argc, char **argv)
{
    int threads = 1, reps = 5;
    /* decode: one token against a matrix far larger than the caches (bandwidth-bound);
     * prefill: 1024 tokens against a 2304 x 2304 projection (compute-bound) */
    bench_case cases[2] = { { 1, 16384, 2304 }, { 1024, 2304, 2304 } };
    int n_cases = 2;
    const char *only = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) {
            threads = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--reps")) {
            reps = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--shape")) { /* M,N,K: one case only */
            long long m, n, k;
            if (sscanf(argv[i + 1], "%lld,%lld,%lld", &m, &n, &k) == 3 && m > 0 && n > 0 &&
                k > 0) {
                cases[0] = (bench_case){ m, n, k };
                n_cases = 1;
            }
        } else if (!strcmp(argv[i], "--cpu-time")) { /* "--cpu-time 1" */
            g_use_cpu_time = atoi(argv[i + 1]) != 0;
        } else if (!strcmp(argv[i], "--kernel")) {
            only = argv[i + 1];
        }
    }
    threads = threads < 1 ? 1 : (threads > 64 ? 64 : threads);
    reps = reps < 1 ? 1 : reps;
    printf("threads %d, best of %d (after one untimed run), %s\n", threads, reps,
           g_use_cpu_time ? "process CPU time (all threads summed)" : "wall clock");
    pg__backend *be = NULL;
    if (pg__backend_create(&be, "cpu", threads) != PG_OK) {
        printf("(the cpu backend is not available: %s)\n", pg_last_error());
        be = NULL;
    }
    for (int c = 0; c < n_cases; c++) {
        run_case(&cases[c], be, threads, reps, only);
    }
    pg__backend_destroy(be);
    return 0;
}
