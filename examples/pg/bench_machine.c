/*
 * pg bench: peak fp32 FMA rate, int8 VNNI rate and memory read bandwidth of this machine,
 * measured with the same thread count as the model run, so the model's achieved GFLOP/s
 * and GB/s can be read as fractions of what the hardware does here and now.
 *
 * FMA: 16 (AVX-512) or 12 (AVX2) independent accumulators, enough to cover the FMA latency
 * times the number of FMA ports on current x86 cores. Memory: every thread sums its own
 * slice of one buffer with four independent accumulators; best of several passes.
 */
#include "bench_machine.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#    include <immintrin.h>
#    define BENCH_X86 1
#endif

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct fma_job {
    long iters;
    double ops;   /* out: operations done */
    float sink;
} fma_job;

#ifdef BENCH_X86
__attribute__((target("avx512f"))) static void fma_avx512(fma_job *j)
{
    __m512 acc[16];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 16; i++) {
        acc[i] = _mm512_set1_ps((float)i);
    }
    for (long it = 0; it < j->iters; it++) {
        _Pragma("GCC unroll 16")
        for (int i = 0; i < 16; i++) {
            acc[i] = _mm512_fmadd_ps(acc[i], a, b);
        }
    }
    __m512 s = acc[0];
    for (int i = 1; i < 16; i++) {
        s = _mm512_add_ps(s, acc[i]);
    }
    j->sink = _mm512_reduce_add_ps(s);
    j->ops = (double)j->iters * 16 * 16 * 2;
}

__attribute__((target("avx2,fma"))) static void fma_avx2(fma_job *j)
{
    __m256 acc[12];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) {
        acc[i] = _mm256_set1_ps((float)i);
    }
    for (long it = 0; it < j->iters; it++) {
        _Pragma("GCC unroll 12")
        for (int i = 0; i < 12; i++) {
            acc[i] = _mm256_fmadd_ps(acc[i], a, b);
        }
    }
    __m256 s = acc[0];
    for (int i = 1; i < 12; i++) {
        s = _mm256_add_ps(s, acc[i]);
    }
    float v[8];
    _mm256_storeu_ps(v, s);
    j->sink = v[0] + v[7];
    j->ops = (double)j->iters * 12 * 8 * 2;
}

__attribute__((target("avx512f,avx512vnni"))) static void vnni_avx512(fma_job *j)
{
    __m512i acc[16];
    const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
    for (int i = 0; i < 16; i++) {
        acc[i] = _mm512_set1_epi32(i);
    }
    for (long it = 0; it < j->iters; it++) {
        _Pragma("GCC unroll 16")
        for (int i = 0; i < 16; i++) {
            acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
        }
    }
    __m512i s = acc[0];
    for (int i = 1; i < 16; i++) {
        s = _mm512_add_epi32(s, acc[i]);
    }
    /* the accumulators wrap (harmless in the hardware); sum them as unsigned */
    uint32_t lanes[16], sum = 0;
    _mm512_storeu_si512((void *)lanes, s);
    for (int i = 0; i < 16; i++) {
        sum += lanes[i];
    }
    j->sink = (float)sum;
    j->ops = (double)j->iters * 16 * 64 * 2;
}
#endif

static void fma_scalar(fma_job *j)
{
    float acc[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
    for (long it = 0; it < j->iters; it++) {
        _Pragma("GCC unroll 8")
        for (int i = 0; i < 8; i++) {
            acc[i] = acc[i] * 0.999999f + 1e-7f;
        }
    }
    j->sink = acc[0] + acc[7];
    j->ops = (double)j->iters * 8 * 2;
}

typedef void (*kernel_fn)(fma_job *);

typedef struct thread_arg {
    kernel_fn fn;
    fma_job job;
} thread_arg;

static void *run_kernel(void *p)
{
    thread_arg *a = p;
    a->fn(&a->job);
    return NULL;
}

/* Runs fn on `threads` threads at once; returns total Gop/s. */
static double parallel_rate(kernel_fn fn, long iters, int threads)
{
    thread_arg *args = calloc((size_t)threads, sizeof *args);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    if (!args || !tid) {
        free(args);
        free(tid);
        return 0;
    }
    double t0 = now_s();
    for (int t = 0; t < threads; t++) {
        args[t] = (thread_arg){ fn, { iters, 0, 0 } };
        if (t > 0 && pthread_create(&tid[t], NULL, run_kernel, &args[t]) != 0) {
            tid[t] = 0;
            run_kernel(&args[t]);
        }
    }
    run_kernel(&args[0]);
    double ops = args[0].job.ops;
    for (int t = 1; t < threads; t++) {
        if (tid[t]) {
            pthread_join(tid[t], NULL);
        }
        ops += args[t].job.ops;
    }
    double dt = now_s() - t0;
    free(args);
    free(tid);
    return ops / dt / 1e9;
}

/* Best of three runs of ~0.1 s each (another process may take a core for a moment). */
static double best_rate(kernel_fn fn, int threads)
{
    long iters = 1000;
    while (iters < (1L << 40)) {
        double t0 = now_s();
        parallel_rate(fn, iters, 1);
        if (now_s() - t0 > 0.02) {
            break;
        }
        iters *= 4;
    }
    iters *= 5; /* ~0.1 s */
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double g = parallel_rate(fn, iters, threads);
        best = g > best ? g : best;
    }
    return best;
}

typedef struct mem_job {
    const uint64_t *p;
    size_t n;      /* uint64 words */
    uint64_t sum;
} mem_job;

#ifdef BENCH_X86
__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint64_t *p, size_t n)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(const void *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(const void *)(p + i + 4)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(const void *)(p + i + 8)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(const void *)(p + i + 12)));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t v[4];
    _mm256_storeu_si256((__m256i *)(void *)v, s);
    uint64_t r = v[0] + v[1] + v[2] + v[3];
    for (; i < n; i++) {
        r += p[i];
    }
    return r;
}
#endif

static uint64_t sum_scalar(const uint64_t *p, size_t n)
{
    uint64_t a = 0, b = 0, c = 0, d = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a += p[i];
        b += p[i + 1];
        c += p[i + 2];
        d += p[i + 3];
    }
    for (; i < n; i++) {
        a += p[i];
    }
    return a + b + c + d;
}

static int use_avx2;

static void *run_sum(void *arg)
{
    mem_job *j = arg;
#ifdef BENCH_X86
    if (use_avx2) {
        j->sum = sum_avx2(j->p, j->n);
        return NULL;
    }
#endif
    j->sum = sum_scalar(j->p, j->n);
    return NULL;
}

static double mem_rate(const uint64_t *buf, size_t words, int threads)
{
    mem_job jobs[256];
    pthread_t tid[256];
    threads = threads > 256 ? 256 : threads;
    size_t per = words / (size_t)threads / 8 * 8;
    double t0 = now_s();
    for (int t = 0; t < threads; t++) {
        jobs[t] = (mem_job){ buf + (size_t)t * per, per, 0 };
        if (t > 0 && pthread_create(&tid[t], NULL, run_sum, &jobs[t]) != 0) {
            tid[t] = 0;
            run_sum(&jobs[t]);
        }
    }
    run_sum(&jobs[0]);
    for (int t = 1; t < threads; t++) {
        if (tid[t]) {
            pthread_join(tid[t], NULL);
        }
    }
    double dt = now_s() - t0;
    volatile uint64_t sink = 0;
    for (int t = 0; t < threads; t++) {
        sink += jobs[t].sum;
    }
    (void)sink;
    return (double)per * (double)threads * 8.0 / dt / 1e9;
}

int bench_measure_machine(bench_machine *out, int threads, int mem_mib)
{
    memset(out, 0, sizeof *out);
    out->isa = "scalar";
    kernel_fn fma = fma_scalar;
#ifdef BENCH_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        fma = fma_avx512;
        out->isa = "avx512";
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        fma = fma_avx2;
        out->isa = "avx2";
    }
    use_avx2 = __builtin_cpu_supports("avx2");
    if (__builtin_cpu_supports("avx512vnni")) {
        out->int8_gops = best_rate(vnni_avx512, threads);
    }
#endif
    out->fma_gflops = best_rate(fma, threads);

    size_t bytes = (size_t)mem_mib << 20;
    uint64_t *buf = aligned_alloc(64, bytes);
    if (!buf) {
        return -1;
    }
    memset(buf, 1, bytes); /* make the pages real */
    for (int r = 0; r < 4; r++) {
        double g = mem_rate(buf, bytes / 8, threads);
        out->mem_gbs = g > out->mem_gbs ? g : out->mem_gbs;
    }
    free(buf);
    return 0;
}
