/*
 * bench_quant: throughput of the quantized matmul kernels (backend/quant) on PaliGemma 2
 * decoder shapes, for every kernel variant this CPU has, next to the CPU backend's bf16
 * matmul when that backend is built. Decode shape M = 1 (bandwidth-bound: GB/s of weights
 * read), prefill shape M = 1024 (compute-bound: Gop/s, one multiply-add = 2 ops).
 *
 *   bench_quant [--threads N] [--reps R] [--m M] [--n N] [--k K] [--kernel NAME]
 *
 * Reports the best of R repetitions. Not a test: registered with meson benchmark().
 */
#include "backend/quant.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct job {
    const pg__tensor *w;
    const float *x;
    float *y;
    int64_t m, n0, n1;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    pg__quant_matmul_cols(j->w, j->x, j->w->cols, j->m, j->y, j->w->rows, j->n0, j->n1);
    return NULL;
}

/* One quantized matmul split over `threads` column ranges (as the CPU backend does). */
static double time_quant(const pg__tensor *w, const float *x, float *y, int64_t m, int threads)
{
    pthread_t tid[64];
    job jobs[64];
    double t0 = pg__now_ms();
    for (int t = 0; t < threads; t++) {
        jobs[t] = (job){ w, x, y, m, w->rows * t / threads, w->rows * (t + 1) / threads };
        if (t > 0) {
            pthread_create(&tid[t], NULL, run_job, &jobs[t]);
        }
    }
    run_job(&jobs[0]);
    for (int t = 1; t < threads; t++) {
        pthread_join(tid[t], NULL);
    }
    return pg__now_ms() - t0;
}

static double time_backend(pg__backend *be, const pg__tensor *w, const float *x, float *y,
                           int64_t m)
{
    double t0 = pg__now_ms();
    if (be->ops->matmul(be, y, w->rows, x, w->cols, m, w, NULL) != PG_OK) {
        return -1;
    }
    return pg__now_ms() - t0;
}

static void report(const char *what, const char *kernel, int64_t m, int64_t n, int64_t k,
                   double ms, size_t weight_bytes)
{
    double ops = 2.0 * (double)m * (double)n * (double)k;
    printf("%-5s %-11s M=%-5lld N=%-6lld K=%-5lld %9.3f ms %8.1f Gop/s %7.1f GB/s (weights)\n",
           what, kernel, (long long)m, (long long)n, (long long)k, ms, ops / ms / 1e6,
           (double)weight_bytes / ms / 1e6);
}

int main(int argc, char **argv)
{
    int threads = 1, reps = 5;
    int64_t ms[2] = { 1, 1024 }, n = 2304, k = 2304;
    const char *only = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) {
            threads = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--reps")) {
            reps = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--m")) {
            ms[0] = ms[1] = atoll(argv[i + 1]);
        } else if (!strcmp(argv[i], "--n")) {
            n = atoll(argv[i + 1]);
        } else if (!strcmp(argv[i], "--k")) {
            k = atoll(argv[i + 1]);
        } else if (!strcmp(argv[i], "--kernel")) {
            only = argv[i + 1];
        }
    }
    threads = threads < 1 ? 1 : (threads > 64 ? 64 : threads);
    reps = reps < 1 ? 1 : reps;

    size_t wn = (size_t)(n * k);
    uint16_t *wbf = malloc(wn * sizeof *wbf);
    float *wf = malloc(wn * sizeof *wf);
    float *x = malloc((size_t)(ms[1] * k) * sizeof *x), *y = malloc((size_t)(ms[1] * n) * sizeof *y);
    uint64_t s = 88172645463325252u;
    for (size_t i = 0; i < wn; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        wbf[i] = pg__f32_to_bf16(((float)(s >> 40) / 16777216.0f - 0.5f) * 0.1f);
        wf[i] = pg__bf16_to_f32(wbf[i]);
    }
    for (int64_t i = 0; i < ms[1] * k; i++) {
        x[i] = (float)((i * 7919) % 2001 - 1000) / 1000.0f;
    }
    pg__tensor src = { PG__BF16, n, k, wbf, 2, { n, k, 0, 0 }, "bench" };
    printf("threads %d, best of %d\n", threads, reps);

    pg__backend *be = NULL;
    if (pg__backend_create(&be, "cpu", threads) == PG_OK) {
        for (int mi = 0; mi < 2; mi++) {
            double best = 1e30;
            for (int r = 0; r < reps; r++) {
                double t = time_backend(be, &src, x, y, ms[mi]);
                best = t >= 0 && t < best ? t : best;
            }
            report(ms[mi] == 1 ? "bf16" : "bf16", "cpu backend", ms[mi], n, k, best, wn * 2);
        }
    } else {
        printf("bf16  (the cpu backend is not built yet: %s)\n", pg_last_error());
    }

    for (int q = 0; q < 2; q++) {
        pg__dtype dt = q ? PG__Q4 : PG__Q8;
        size_t size = pg__quant_size(dt, n, k);
        void *buf = pg__aligned_alloc(size);
        pg__tensor w;
        if (!buf || pg__quantize_rows(dt, &src, buf, 0, n) != PG_OK) {
            fprintf(stderr, "quantize failed: %s\n", pg_last_error());
            return 1;
        }
        pg__quant_tensor_init(&w, dt, &src, buf);
        for (const char *const *name = pg__quant_kernel_names(); *name; name++) {
            if ((only && strcmp(only, *name)) || pg__quant_use_kernel(*name) != PG_OK) {
                continue;
            }
            for (int mi = 0; mi < 2; mi++) {
                if (!strcmp(*name, "scalar") && ms[mi] > 16) {
                    continue; /* minutes; not informative */
                }
                double best = 1e30;
                for (int r = 0; r < reps; r++) {
                    double t = time_quant(&w, x, y, ms[mi], threads);
                    best = t < best ? t : best;
                }
                report(q ? "q4" : "q8", *name, ms[mi], n, k, best, size);
            }
        }
        pg__aligned_free(buf);
    }
    pg__backend_destroy(be);
    free(wbf);
    free(wf);
    free(x);
    free(y);
    return 0;
}
