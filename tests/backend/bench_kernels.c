/*
 * Kernel benchmark of the CPU backend at the PaliGemma 2 3B-448 shapes: matmul (prefill,
 * vision and decode), attention (vision, decoder prefill, decode). Prints GFLOP/s and
 * GB/s next to this machine's FMA peak and memory read bandwidth, measured in the same
 * run with the same kernel set and thread count.
 *
 *   bench_kernels [--threads N] [--isa generic|avx2|avx512|avx512bf16] [--quick] [--full-head]
 *                 [--cpu-time] [--only WORD]
 *
 * --cpu-time divides by CPU time rather than wall time: with 1 thread that gives per-core
 * efficiency even when other processes share the cores (rates are then per core-second).
 * --quick runs each shape once (a smoke test); --full-head uses the full 257216-row
 * output head (1.2 GB of bf16) instead of 65536 rows.
 */
#include "backend/backend.h"
#include "backend/cpu/cpu.h"
#include "backend/cpu/kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --cpu-time: time by the process's CPU time instead of the wall clock, so rates are per
 * busy core-second (useful on a machine shared with other busy processes). */
static int use_cpu_time;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(use_cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int quick;
static const char *only = ""; /* --only WORD: run only the shapes whose label contains it */

/* ------------------------------------------------------------------------------------ */
/* machine probes, run on n threads at once */

typedef struct probe_arg {
    const pg__cpu_kernels *k;
    int64_t iters;
    const float *buf;
    size_t n;
    float sink;
    double flops;
} probe_arg;

static void *fma_thread(void *p)
{
    probe_arg *a = p;
    a->flops = a->k->fma_probe(a->iters, &a->sink);
    return NULL;
}

static void *read_thread(void *p)
{
    probe_arg *a = p;
    a->sink = 0;
    for (int r = 0; r < 3; r++) {
        a->sink += a->k->read_probe(a->buf, a->n);
    }
    return NULL;
}

/* Best of 3: GFLOP/s (fma) or GB/s (read) over nt threads. */
static double probe(const pg__cpu_kernels *k, int nt, int fma, float *buf, size_t n)
{
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        pthread_t th[64];
        probe_arg args[64];
        double t0 = now_s();
        for (int t = 0; t < nt; t++) {
            args[t] = (probe_arg){.k = k, .iters = 20000000, .buf = buf + (size_t)t * (n / (size_t)nt),
                                  .n = n / (size_t)nt};
            pthread_create(&th[t], NULL, fma ? fma_thread : read_thread, &args[t]);
        }
        for (int t = 0; t < nt; t++) {
            pthread_join(th[t], NULL);
        }
        double dt = now_s() - t0;
        double v = fma ? (double)nt * args[0].flops / dt / 1e9
                       : 3.0 * (double)(n / (size_t)nt / 256 * 256) * (double)nt * sizeof(float) / dt / 1e9;
        best = v > best ? v : best;
    }
    return best;
}

/* ------------------------------------------------------------------------------------ */

static uint16_t *rand_bf16(size_t n)
{
    uint16_t *p = malloc(n * sizeof *p);
    uint32_t s = 12345;
    size_t period = n < ((size_t)1 << 22) ? n : ((size_t)1 << 22);
    for (size_t i = 0; i < period; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = pg__f32_to_bf16(((float)(s >> 8) / 16777216.0f - 0.5f) * 0.1f);
    }
    for (size_t i = period; i < n; i += period) { /* repeat the pattern: fast to fill */
        memcpy(p + i, p, (n - i < period ? n - i : period) * sizeof *p);
    }
    return p;
}

static float *rand_f32(size_t n)
{
    float *p = malloc(n * sizeof *p);
    uint32_t s = 777;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    return p;
}

typedef struct timing {
    double best, median;
} timing;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define TIME_OP(res, stmt)                                                                 \
    do {                                                                                   \
        double ts_[64];                                                                    \
        int n_ = 0;                                                                        \
        double start_ = now_s();                                                           \
        stmt; /* warm-up */                                                                \
        do {                                                                               \
            double t0_ = now_s();                                                          \
            stmt;                                                                          \
            ts_[n_++] = now_s() - t0_;                                                     \
        } while (!quick && n_ < 64 && (n_ < 3 || now_s() - start_ < 1.0));                 \
        qsort(ts_, (size_t)n_, sizeof ts_[0], cmp_double);                                 \
        (res).best = ts_[0];                                                               \
        (res).median = ts_[n_ / 2];                                                        \
    } while (0)

static void bench_matmul(pg__backend *be, const char *what, int64_t m, int64_t k, int64_t n,
                         double peak, double bw)
{
    if (!strstr(what, only)) {
        return;
    }
    /* Decode shapes stream their weights from memory in the model (5 GB per token), so
     * they rotate through enough copies (>= 512 MiB) that no run finds them in cache. */
    size_t elems = (size_t)(n * k), bytes_one = elems * 2;
    int copies = 1;
    if (m <= 4 && bytes_one < ((size_t)512 << 20)) {
        copies = (int)((((size_t)512 << 20) + bytes_one - 1) / bytes_one);
    }
    uint16_t *w = rand_bf16(elems * (size_t)copies);
    float *x = rand_f32((size_t)(m * k)), *y = malloc((size_t)(m * n) * sizeof *y);
    pg__tensor t = {.dtype = PG__BF16, .rows = n, .cols = k, .data = w, .ndim = 2,
                    .ne = {n, k}, .name = what};
    int next = 0;
    timing tm;
    TIME_OP(tm, (t.data = w + (size_t)(next++ % copies) * elems,
                 be->ops->matmul(be, y, n, x, k, m, &t, NULL)));
    double flops = 2.0 * (double)m * (double)n * (double)k;
    double bytes = (double)bytes_one;
    printf("%-28s %5lld x %5lld x %6lld  %8.3f ms  %7.1f GFLOP/s (%4.0f%% of peak)  %6.1f GB/s "
           "(%4.0f%% of bw)  median %.3f ms\n",
           what, (long long)m, (long long)k, (long long)n, tm.best * 1e3, flops / tm.best / 1e9,
           100.0 * flops / tm.best / 1e9 / peak, bytes / tm.best / 1e9,
           100.0 * bytes / tm.best / 1e9 / bw, tm.median * 1e3);
    free(w);
    free(x);
    free(y);
}

static void bench_attention(pg__backend *be, const char *what, int64_t n_q, int64_t q_start,
                            int64_t n_kv, int64_t prefix, int32_t heads, int32_t kv_heads,
                            int32_t hd, float softcap, pg__dtype kvdt, double peak)
{
    if (!strstr(what, only)) {
        return;
    }
    int64_t width = (int64_t)heads * hd, kvw = (int64_t)kv_heads * hd;
    float *q = rand_f32((size_t)(n_q * width)), *out = malloc((size_t)(n_q * width) * sizeof *out);
    void *k = kvdt == PG__F32 ? (void *)rand_f32((size_t)(n_kv * kvw)) : (void *)rand_bf16((size_t)(n_kv * kvw));
    void *v = kvdt == PG__F32 ? (void *)rand_f32((size_t)(n_kv * kvw)) : (void *)rand_bf16((size_t)(n_kv * kvw));
    pg__attn a = {.out = out, .ld_out = width, .q = q, .ld_q = width, .k = k, .v = v,
                  .kv_dtype = kvdt, .kv_head_stride = hd, .kv_row_stride = kvw, .n_q = n_q,
                  .q_start = q_start, .n_kv = n_kv, .n_heads = heads, .n_kv_heads = kv_heads,
                  .head_dim = hd, .scale = 1.0f / sqrtf((float)hd), .softcap = softcap,
                  .prefix_len = prefix, .window = 0};
    timing tm;
    TIME_OP(tm, be->ops->attention(be, &a));
    /* visible pairs (prefix block + causal part) x 4 flops per element (QK and PV) */
    double pairs = 0;
    for (int64_t r = 0; r < n_q; r++) {
        int64_t i = q_start + r, vis = i + 1 > prefix ? i + 1 : prefix;
        pairs += (double)(vis < n_kv ? vis : n_kv);
    }
    double flops = pairs * heads * hd * 4.0;
    printf("%-28s q %5lld kv %5lld h %2d/%d hd %3d %-4s %8.3f ms  %7.1f GFLOP/s (%4.0f%% of peak)  "
           "median %.3f ms\n",
           what, (long long)n_q, (long long)n_kv, heads, kv_heads, hd, pg__dtype_name(kvdt),
           tm.best * 1e3, flops / tm.best / 1e9, 100.0 * flops / tm.best / 1e9 / peak,
           tm.median * 1e3);
    free(q);
    free(out);
    free(k);
    free(v);
}

int main(int argc, char **argv)
{
    int nt = 0, full_head = 0;
    pg__cpu_isa isa = PG__CPU_ISA_AUTO;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            nt = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--isa") == 0 && i + 1 < argc) {
            const char *s = argv[++i];
            isa = strcmp(s, "avx512bf16") == 0 ? PG__CPU_ISA_AVX512BF16
                : strcmp(s, "avx512") == 0 ? PG__CPU_ISA_AVX512
                : strcmp(s, "avx2") == 0   ? PG__CPU_ISA_AVX2
                                           : PG__CPU_ISA_GENERIC;
        } else if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--cpu-time") == 0) {
            use_cpu_time = 1;
        } else if (strcmp(argv[i], "--full-head") == 0) {
            full_head = 1;
        } else {
            fprintf(stderr, "usage: %s [--threads N] [--isa generic|avx2|avx512|avx512bf16] [--quick] "
                            "[--full-head] [--cpu-time] [--only WORD]\n", argv[0]);
            return 2;
        }
    }
    pg__backend *be = NULL;
    if (pg__cpu_backend_create(&be, nt, isa) != PG_OK) {
        fprintf(stderr, "cannot create the cpu backend: %s\n", pg_last_error());
        return 1;
    }
    nt = be->n_threads;
    const pg__cpu_kernels *k = pg__cpu_backend_kernels(be);
    size_t nbuf = (size_t)(quick ? 64 : 512) << 18; /* 64 or 512 MiB of floats */
    float *buf = rand_f32(nbuf);
    double fma1 = probe(k, 1, 1, NULL, 0), fman = probe(k, nt, 1, NULL, 0);
    double bw1 = probe(k, 1, 0, buf, nbuf), bwn = probe(k, nt, 0, buf, nbuf);
    free(buf);
    printf("machine: kernels %s, %d threads; fp32 FMA peak %.0f GFLOP/s (1 thread %.0f); "
           "memory read %.1f GB/s (1 thread %.1f)\n",
           k->isa, nt, fman, fma1, bwn, bw1);
    printf("-- matmul, bf16 weights (GB/s = weight bytes / time)\n");
    bench_matmul(be, "vision qkv/o 1152->1152", 1024, 1152, 1152, fman, bwn);
    bench_matmul(be, "vision fc1 1152->4304", 1024, 1152, 4304, fman, bwn);
    bench_matmul(be, "vision fc2 4304->1152", 1024, 4304, 1152, fman, bwn);
    bench_matmul(be, "prefill q 2304->2048", 1030, 2304, 2048, fman, bwn);
    bench_matmul(be, "prefill k/v 2304->1024", 1030, 2304, 1024, fman, bwn);
    bench_matmul(be, "prefill o 2048->2304", 1030, 2048, 2304, fman, bwn);
    bench_matmul(be, "prefill gate/up 2304->9216", 1030, 2304, 9216, fman, bwn);
    bench_matmul(be, "prefill down 9216->2304", 1030, 9216, 2304, fman, bwn);
    bench_matmul(be, "decode q 2304->2048", 1, 2304, 2048, fman, bwn);
    bench_matmul(be, "decode gate/up 2304->9216", 1, 2304, 9216, fman, bwn);
    bench_matmul(be, "decode down 9216->2304", 1, 9216, 2304, fman, bwn);
    bench_matmul(be, full_head ? "decode head 2304->257216" : "decode head 2304->65536", 1,
                 2304, full_head ? 257216 : 65536, fman, bwn);
    printf("-- attention\n");
    bench_attention(be, "vision attention (bidir.)", 1024, 0, 1024, 1024, 16, 16, 72, 0.0f,
                    PG__F32, fman);
    bench_attention(be, "prefill attention (causal)", 1030, 0, 1030, 1026, 8, 4, 256, 50.0f,
                    PG__BF16, fman);
    bench_attention(be, "decode attention (1 row)", 1, 1030, 1031, 1026, 8, 4, 256, 50.0f, PG__BF16,
                    fman);
    pg__backend_destroy(be);
    return 0;
}
