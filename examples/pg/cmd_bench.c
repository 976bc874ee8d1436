/*
 * pg bench: end-to-end speed of one model variant and weight type, next to this machine's
 * own ceilings measured in the same run (docs/performance.md).
 *
 * Model: -m MODEL_DIR, or a full-size random-weight checkpoint of --variant in the hub
 * layout, generated once into a cache folder keyed by a hash of what defines it and reused
 * afterwards (only one is kept: they are gigabytes).
 * Each run: a fresh image (so the encoded-image cache never hits), the prompt ids, the
 * prefill (vision and decoder timed by the library: pg_session_get_timings), then
 * --decode-tokens greedy decode steps (pg_session_feed, timed here). Reported as min and
 * median over --runs runs, after --warmup runs.
 * Only the public API is used.
 */
#include "bench_support.h"
#include "bench_machine.h"
#include "pg.h"

#include "paligemma.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RUNS 100

typedef struct bench_args {
    const char *model;
    const char *variant;
    const char *dtype_name;
    int32_t dtype;
    const char *backend;
    const char *cache_dir;
    int threads, runs, warmup, decode_tokens, layers, mem_mib;
    uint64_t seed;
    bool json, no_machine, no_quant_cache;
    uint32_t batch[16];  /* --batch widths; n_batch 0 = the single-session benchmark */
    int n_batch, batch_tokens, batch_images;
} bench_args;

static int usage_bench(FILE *f)
{
    fprintf(f,
            "usage: pg bench [-m MODEL_DIR | --variant 3b-224|3b-448|3b-896|10b-448|...]\n"
            "                [--dtype bf16|int8|q4] [--threads N] [--runs R] [--warmup W]\n"
            "                [--decode-tokens N] [--json]\n"
            "                [--layers N] [--seed S] [--cache-dir DIR] [--backend NAME]\n"
            "                [--mem-mib M] [--no-machine] [--no-quant-cache]\n"
            "                [--batch 1,2,4,8 [--batch-tokens 64] [--batch-images N]]\n"
            "\n"
            "Without -m, a full-size random-weight checkpoint of the variant (hub layout) is\n"
            "written once to --cache-dir (default $XDG_CACHE_HOME/paligemma-bench or\n"
            "~/.cache/paligemma-bench) and reused; --layers N makes a shallower one.\n"
            "--dtype: bf16 = weights as stored; int8 / q4 = quantized at load (Q8 / Q4), and\n"
            "cached in a file next to the model unless --no-quant-cache is given.\n"
            "Reports min and median over the runs, and the machine's fp32 FMA rate, int8\n"
            "dot-product rate and memory bandwidth measured with the same threads\n"
            "(--no-machine skips that; --mem-mib sets the read buffer, default 512).\n"
            "--batch W1,W2,...: instead, the batch engine at each width: aggregate decode\n"
            "tokens/s while W sessions decode together, and images/minute for captions of\n"
            "--batch-tokens new tokens (default 64) over --batch-images images (default\n"
            "2 x the largest width), each next to the first width's figures (docs/batch.md).\n");
    return f == stderr ? 2 : 0;
}

static int parse_dtype(bench_args *a, const char *s)
{
    if (!strcmp(s, "bf16") || !strcmp(s, "auto")) {
        a->dtype = PG_DTYPE_AUTO;
    } else if (!strcmp(s, "int8") || !strcmp(s, "q8")) {
        a->dtype = PG_DTYPE_Q8;
    } else if (!strcmp(s, "q4") || !strcmp(s, "int4")) {
        a->dtype = PG_DTYPE_Q4;
    } else {
        fprintf(stderr, "pg bench: --dtype must be bf16, int8 or q4, not '%s'\n", s);
        return -1;
    }
    a->dtype_name = a->dtype == PG_DTYPE_Q8 ? "int8" : (a->dtype == PG_DTYPE_Q4 ? "q4" : "bf16");
    return 0;
}

static int parse_int(const char *flag, const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "pg bench: %s wants an integer in [%d, %d], not '%s'\n", flag, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* "1,2,4,8" -> widths 1..64. */
static int parse_widths(bench_args *a, const char *s)
{
    a->n_batch = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 64 || a->n_batch >= 16 || (*end && *end != ',')) {
            fprintf(stderr, "pg bench: --batch wants widths 1..64 like 1,2,4,8, not '%s'\n", s);
            return -1;
        }
        a->batch[a->n_batch++] = (uint32_t)v;
        s = *end ? end + 1 : end;
    }
    return a->n_batch ? 0 : -1;
}

static int parse_args(bench_args *a, int argc, char **argv)
{
    *a = (bench_args){ .variant = "3b-448", .dtype_name = "bf16", .runs = 3, .warmup = 1,
                       .decode_tokens = 32, .mem_mib = 512, .seed = 1, .batch_tokens = 64 };
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage_bench(stdout);
            exit(0);
        } else if (!strcmp(f, "--json")) {
            a->json = true;
            continue;
        } else if (!strcmp(f, "--no-machine")) {
            a->no_machine = true;
            continue;
        } else if (!strcmp(f, "--no-quant-cache")) {
            a->no_quant_cache = true;
            continue;
        }
        static const char *const value_flags[] = {
            "-m", "--model", "--variant", "--dtype", "--threads", "--runs", "--warmup",
            "--decode-tokens", "--layers", "--mem-mib", "--seed", "--cache-dir", "--backend",
            "--batch", "--batch-tokens", "--batch-images",
        };
        bool known = false;
        for (size_t k = 0; k < sizeof value_flags / sizeof value_flags[0]; k++) {
            known = known || !strcmp(f, value_flags[k]);
        }
        if (!known) {
            fprintf(stderr, "pg bench: unknown option '%s'\n", f);
            return -1;
        }
        if (!v) {
            fprintf(stderr, "pg bench: %s needs a value\n", f);
            return -1;
        }
        i++;
        if (!strcmp(f, "-m") || !strcmp(f, "--model")) {
            a->model = v;
        } else if (!strcmp(f, "--variant")) {
            a->variant = v;
        } else if (!strcmp(f, "--dtype")) {
            rc = parse_dtype(a, v);
        } else if (!strcmp(f, "--threads")) {
            rc = parse_int(f, v, 0, 1024, &a->threads);
        } else if (!strcmp(f, "--runs")) {
            rc = parse_int(f, v, 1, MAX_RUNS, &a->runs);
        } else if (!strcmp(f, "--warmup")) {
            rc = parse_int(f, v, 0, 100, &a->warmup);
        } else if (!strcmp(f, "--decode-tokens")) {
            rc = parse_int(f, v, 0, 100000, &a->decode_tokens);
        } else if (!strcmp(f, "--layers")) {
            rc = parse_int(f, v, 1, 1000, &a->layers);
        } else if (!strcmp(f, "--mem-mib")) {
            rc = parse_int(f, v, 16, 1 << 16, &a->mem_mib);
        } else if (!strcmp(f, "--seed")) {
            a->seed = strtoull(v, NULL, 10);
        } else if (!strcmp(f, "--cache-dir")) {
            a->cache_dir = v;
        } else if (!strcmp(f, "--backend")) {
            a->backend = v;
        } else if (!strcmp(f, "--batch")) {
            rc = parse_widths(a, v);
        } else if (!strcmp(f, "--batch-tokens")) {
            rc = parse_int(f, v, 2, 4096, &a->batch_tokens);
        } else if (!strcmp(f, "--batch-images")) {
            rc = parse_int(f, v, 1, 100000, &a->batch_images);
        } else {
            fprintf(stderr, "pg bench: unknown option '%s'\n", f);
            return -1;
        }
        if (rc) {
            return -1;
        }
    }
    return 0;
}

/* ---- one run ---------------------------------------------------------------------------- */

/* A deterministic noise image of the model's input size, different for every run, so the
 * session's encoded-image cache never short-cuts the vision tower. */
pg_image *bench_make_image(uint32_t size, int run)
{
    size_t n = (size_t)size * size * 3;
    uint8_t *px = malloc(n);
    if (!px) {
        return NULL;
    }
    uint64_t s = 0x9e3779b97f4a7c15u * (uint64_t)(run + 1);
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        px[i] = (uint8_t)(s >> 56);
    }
    pg_image *img = NULL;
    if (pg_image_from_pixels(&img, px, size, size, 0, PG_PIXEL_RGB8, NULL) != PG_OK) {
        img = NULL;
    }
    free(px);
    return img;
}

/* <bos>, a few ordinary ids, "\n" (Gemma ids, reduced into small vocabularies). Ids, not
 * text: the prompt's words do not matter for speed, and random checkpoints have no
 * tokenizer. */
pg_status bench_set_prompt(pg_session *s, const pg_model_info *info)
{
    int32_t ids[] = { 2, 100, 101, 102, 103, 108 };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        ids[i] = (int32_t)((uint32_t)ids[i] % info->vocab_size);
    }
    return pg_session_set_prompt_ids(s, ids, sizeof ids / sizeof ids[0]);
}

static int32_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++) {
        best = v[i] > v[best] ? i : best;
    }
    return (int32_t)best;
}

/*
 * Greedy decoding by feeding the argmax back one token at a time: each pg_session_feed of
 * one token is exactly one decode step (forward pass + logits), timed here. Unlike
 * pg_session_generate it never stops early at <eos> and never detokenizes (random weights
 * produce any id), so every run decodes the same number of tokens.
 */
static pg_status decode_steps(pg_session *s, int n, double *ms)
{
    double t0 = bench_now_ms();
    for (int i = 0; i < n; i++) {
        const float *logits;
        size_t n_vocab;
        pg_status st = pg_session_logits(s, &logits, &n_vocab);
        if (st != PG_OK) {
            return st;
        }
        int32_t id = argmax(logits, n_vocab);
        st = pg_session_feed(s, &id, 1);
        if (st != PG_OK) {
            return st;
        }
    }
    *ms = bench_now_ms() - t0;
    return PG_OK;
}

/* What one run measured besides the library's timings. */
typedef struct run_extra {
    double prefill_cpu_ms, prefill_wall_ms, decode_cpu_ms, decode_wall_ms;
} run_extra;

static int run_once(pg_session *s, const pg_model_info *info, int run, int decode_tokens,
                    pg_timings *t, run_extra *ex)
{
    pg_image *img = bench_make_image(info->image_size, run);
    if (!img) {
        fprintf(stderr, "pg bench: cannot make the image: %s\n", pg_last_error());
        return -1;
    }
    pg_status st = pg_session_reset(s);
    if (st == PG_OK) {
        st = pg_session_set_image(s, img);
    }
    if (st == PG_OK) {
        st = bench_set_prompt(s, info);
    }
    double t0 = bench_now_ms(), c0 = bench_cpu_ms(), prefill_wall = 0, decode_ms = 0;
    if (st == PG_OK) {
        st = pg_session_prefill(s);
        prefill_wall = bench_now_ms() - t0;
        ex->prefill_cpu_ms = bench_cpu_ms() - c0;
        ex->prefill_wall_ms = prefill_wall;
    }
    memset(t, 0, sizeof *t);
    t->struct_size = sizeof *t;
    if (st == PG_OK) {
        st = pg_session_get_timings(s, t);
    }
    if (st == PG_OK) {
        double c1 = bench_cpu_ms();
        st = decode_steps(s, decode_tokens, &decode_ms);
        ex->decode_cpu_ms = bench_cpu_ms() - c1;
        ex->decode_wall_ms = decode_ms;
    }
    pg_image_free(img);
    if (st != PG_OK) {
        fprintf(stderr, "pg bench: run %d failed: %s\n", run, pg_session_last_error(s));
        return -1;
    }
    /* The first token is the argmax of the prefill's logits: time to first token is the
     * prefill call (vision + decoder prefill) unless the library reports its own. */
    if (t->ttft_ms <= 0) {
        t->ttft_ms = prefill_wall;
    }
    t->decode_ms = decode_ms;
    t->decode_tokens = (uint32_t)decode_tokens;
    return 0;
}

/* ---- statistics ------------------------------------------------------------------------- */

typedef struct stat2 {
    double min, median;
} stat2;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : (x > y);
}

static stat2 stats(const double *v, int n)
{
    double s[MAX_RUNS];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    stat2 r = { s[0], n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]) };
    return r;
}

typedef struct bench_series {
    double vision_ms[MAX_RUNS], prefill_ms[MAX_RUNS], decode_ms_tok[MAX_RUNS], ttft_ms[MAX_RUNS];
    double prefill_share[MAX_RUNS], decode_share[MAX_RUNS]; /* CPU time / (wall x threads) */
    uint32_t prefill_tokens, decode_tokens;
    int n;
} bench_series;

static double share(double cpu_ms, double wall_ms, int threads)
{
    return wall_ms > 0 ? cpu_ms / (wall_ms * threads) : 0;
}

static void add_run(bench_series *b, const pg_timings *t, const run_extra *ex, int threads)
{
    b->prefill_share[b->n] = share(ex->prefill_cpu_ms, ex->prefill_wall_ms, threads);
    b->decode_share[b->n] = share(ex->decode_cpu_ms, ex->decode_wall_ms, threads);
    b->vision_ms[b->n] = t->vision_ms;
    b->prefill_ms[b->n] = t->prefill_ms;
    b->decode_ms_tok[b->n] = t->decode_tokens ? t->decode_ms / t->decode_tokens : 0;
    b->ttft_ms[b->n] = t->ttft_ms;
    b->prefill_tokens = t->prefill_tokens;
    b->decode_tokens = t->decode_tokens;
    b->n++;
}

/* ---- output ----------------------------------------------------------------------------- */

typedef struct bench_report {
    const bench_args *a;
    const pg_model_info *info;
    const bench_machine *mach;
    bench_work work;
    stat2 vision, prefill, decode, ttft, prefill_share, decode_share;
    double peak_rss_mb;
    int threads;
} bench_report;

static double rate(double work, double ms)
{
    return ms > 0 ? work / (ms * 1e-3) : 0;
}

static void print_table(const bench_report *r)
{
    const bench_machine *m = r->mach;
    const bench_work *w = &r->work;
    printf("pg bench: %s, weights %s (%.2f GB as used), backend %s, %d threads, %d runs after "
           "%d warm-up\n", r->info->variant, r->a->dtype_name,
           (double)r->info->weight_bytes / 1e9, r->a->backend ? r->a->backend : "cpu",
           r->threads, r->a->runs, r->a->warmup);
    if (m->fma_gflops > 0) {
        printf("machine (%s, same threads): fp32 FMA %.0f GFLOP/s, int8 dot %.0f Gop/s, memory "
               "read %.1f GB/s\n", m->isa, m->fma_gflops, m->int8_gops, m->mem_gbs);
    }
    printf("\n%-22s %12s %12s %18s %24s\n", "stage", "best", "median", "achieved (median)",
           "floor: fp32 | int8 peak");
    double vg = rate(w->vision_flop, r->vision.median) / 1e9;
    printf("%-22s %9.1f ms %9.1f ms %10.0f GFLOP/s", "image encode", r->vision.min,
           r->vision.median, vg);
    if (m->fma_gflops > 0) {
        printf(" %9.1f ms | %5.1f ms", w->vision_flop / m->fma_gflops / 1e6,
               m->int8_gops > 0 ? w->vision_flop / m->int8_gops / 1e6 : 0.0);
    }
    printf("\n");
    double pt = (double)w->prefill_tokens;
    char label[64];
    snprintf(label, sizeof label, "prefill (%u tokens)", w->prefill_tokens);
    /* best run = fewest ms = most tokens per second */
    printf("%-22s %8.1f t/s %8.1f t/s %10.0f GFLOP/s", label, rate(pt, r->prefill.min),
           rate(pt, r->prefill.median), rate(w->prefill_flop, r->prefill.median) / 1e9);
    if (m->fma_gflops > 0) {
        printf(" %8.1f t/s | %5.1f t/s", pt / (w->prefill_flop / m->fma_gflops / 1e9),
               m->int8_gops > 0 ? pt / (w->prefill_flop / m->int8_gops / 1e9) : 0.0);
    }
    printf("\n");
    printf("%-22s %8.2f t/s %8.2f t/s %10.1f GB/s   ", "decode",
           r->decode.min > 0 ? 1e3 / r->decode.min : 0,
           r->decode.median > 0 ? 1e3 / r->decode.median : 0,
           rate(w->weight_bytes_per_token, r->decode.median) / 1e9);
    if (m->mem_gbs > 0) {
        printf(" %8.2f t/s (bandwidth)", m->mem_gbs * 1e9 / w->weight_bytes_per_token);
    }
    printf("\n");
    printf("%-22s %9.1f ms %9.1f ms\n", "time to first token", r->ttft.min, r->ttft.median);
    printf("%-22s %9.0f MB\n", "peak RSS", r->peak_rss_mb);
    printf("%-22s %8.0f %% %8.0f %%   (prefill call | decode: CPU time / (wall x %d threads); "
           "below 100 %% = the cores were shared)\n", "CPU share", 100 * r->prefill_share.median,
           100 * r->decode_share.median, r->threads);
    if (r->prefill_share.median > 0 && r->decode_share.median > 0) {
        printf("%-22s %8.1f t/s %8.2f t/s (estimate for idle cores: prefill | decode rate / CPU "
               "share)\n", "at full CPU share", rate(pt, r->prefill.median) / r->prefill_share.median,
               r->decode.median > 0 ? 1e3 / r->decode.median / r->decode_share.median : 0.0);
    }
    printf("\nwork: image encode %.3f TFLOP, prefill %.3f TFLOP (%u tokens), decode reads "
           "%.2f GB of weights per token\n", w->vision_flop / 1e12, w->prefill_flop / 1e12,
           w->prefill_tokens, w->weight_bytes_per_token / 1e9);
}

/* The reference points of issue 6 for 3B-448 on a 2-vCPU AVX-512 machine (docs/performance.md):
 * other implementations measured there, and our targets. Printed for comparison only. */
static void print_reference(const bench_report *r)
{
    if (strcmp(r->info->variant, "3b-448") != 0 || r->a->layers != 0 ||
        r->info->text_layers != 26) {
        return;
    }
    printf("\nreference (3B-448, 2 threads, 2-vCPU AVX-512 machine; docs/performance.md):\n"
           "%-22s %-34s %-16s %s\n", "stage", "llama.cpp (best)", "gemma.cpp", "target here");
    printf("%-22s %-34s %-16s %s\n", "image encode", "9.4 s (f16)", "17.2 s", "<= 4 s bf16");
    printf("%-22s %-34s %-16s %s\n", "prefill", "32 tok/s f16, 45.6 q4_0", "21-23 tok/s",
           ">= 64 tok/s bf16, >= 120 8-bit");
    printf("%-22s %-34s %-16s %s\n", "decode", "3.5 bf16, 5.3 q8_0, 6.2 q4_0 t/s",
           "3.5-3.85 tok/s", ">= 4.8 / 9 / 16 tok/s");
    printf("%-22s %-34s %-16s %s\n", "time to first token", "-", "~64 s",
           "<= 12 s bf16, <= 5 s 8-bit");
}

static void print_json(const bench_report *r)
{
    const bench_work *w = &r->work;
    json_t *o = json_object();
    json_object_set_new(o, "variant", json_string(r->info->variant));
    json_object_set_new(o, "dtype", json_string(r->a->dtype_name));
    json_object_set_new(o, "backend", json_string(r->a->backend ? r->a->backend : "cpu"));
    json_object_set_new(o, "threads", json_integer(r->threads));
    json_object_set_new(o, "runs", json_integer(r->a->runs));
    json_object_set_new(o, "vision_ms", json_real(r->vision.median));
    json_object_set_new(o, "prefill_tokens", json_integer(w->prefill_tokens));
    json_object_set_new(o, "prefill_ms", json_real(r->prefill.median));
    json_object_set_new(o, "prefill_tokens_per_s", json_real(rate(w->prefill_tokens, r->prefill.median)));
    json_object_set_new(o, "decode_tokens", json_integer(w->decode_tokens));
    json_object_set_new(o, "decode_ms_per_token", json_real(r->decode.median));
    json_object_set_new(o, "decode_tokens_per_s",
                        json_real(r->decode.median > 0 ? 1e3 / r->decode.median : 0));
    json_object_set_new(o, "ttft_ms", json_real(r->ttft.median));
    json_object_set_new(o, "peak_rss_mb", json_real(r->peak_rss_mb));
    json_object_set_new(o, "weight_bytes", json_integer((json_int_t)r->info->weight_bytes));
    json_object_set_new(o, "weight_bytes_per_token", json_real(w->weight_bytes_per_token));
    json_object_set_new(o, "vision_gflop", json_real(w->vision_flop / 1e9));
    json_object_set_new(o, "prefill_gflop", json_real(w->prefill_flop / 1e9));
    json_object_set_new(o, "vision_gflops", json_real(rate(w->vision_flop, r->vision.median) / 1e9));
    json_object_set_new(o, "prefill_gflops", json_real(rate(w->prefill_flop, r->prefill.median) / 1e9));
    json_object_set_new(o, "decode_gbs",
                        json_real(rate(w->weight_bytes_per_token, r->decode.median) / 1e9));
    json_t *mn = json_object();
    json_object_set_new(mn, "vision_ms", json_real(r->vision.min));
    json_object_set_new(mn, "prefill_ms", json_real(r->prefill.min));
    json_object_set_new(mn, "decode_ms_per_token", json_real(r->decode.min));
    json_object_set_new(mn, "ttft_ms", json_real(r->ttft.min));
    json_object_set_new(o, "min", mn);
    json_t *cs = json_object();
    json_object_set_new(cs, "prefill", json_real(r->prefill_share.median));
    json_object_set_new(cs, "decode", json_real(r->decode_share.median));
    json_object_set_new(o, "cpu_share", cs);
    json_t *m = json_object();
    json_object_set_new(m, "fma_gflops", json_real(r->mach->fma_gflops));
    json_object_set_new(m, "int8_gops", json_real(r->mach->int8_gops));
    json_object_set_new(m, "mem_gbs", json_real(r->mach->mem_gbs));
    json_object_set_new(m, "isa", json_string(r->mach->isa ? r->mach->isa : "none"));
    json_object_set_new(o, "machine", m);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    if (s) {
        printf("%s\n", s);
        free(s);
    }
    json_decref(o);
}

/* ---- pg bench --batch -------------------------------------------------------------------- */

/* Aggregate decode ceiling at width B: B tokens per pass over the weights while memory-bound,
 * at most the compute peak (fp32 FMA, or int8 dot products for quantized weights). */
static double decode_ceiling(const bench_report *r, uint32_t width)
{
    const bench_machine *m = r->mach;
    const bench_work *w = &r->work;
    if (m->mem_gbs <= 0 || w->weight_bytes_per_token <= 0) {
        return 0;
    }
    double bw = width * m->mem_gbs * 1e9 / w->weight_bytes_per_token;
    double peak = r->info->weight_dtype == PG_DTYPE_Q8 || r->info->weight_dtype == PG_DTYPE_Q4
                      ? m->int8_gops : m->fma_gflops;
    double compute = peak > 0 && w->decode_flop_per_token > 0
                         ? peak * 1e9 / w->decode_flop_per_token : bw;
    return bw < compute ? bw : compute;
}

static void print_batch(const bench_report *r, const bench_batch_row *rows, int n)
{
    printf("pg bench --batch: %s, weights %s (%.2f GB), %d threads; captions of %d new tokens; "
           "ratios against width %u measured in this run\n", r->info->variant,
           r->a->dtype_name, (double)r->info->weight_bytes / 1e9, r->threads,
           r->a->batch_tokens, rows[0].width);
    if (r->mach->mem_gbs > 0) {
        printf("machine: memory read %.1f GB/s, fp32 FMA %.0f GFLOP/s, int8 %.0f Gop/s\n",
               r->mach->mem_gbs, r->mach->fma_gflops, r->mach->int8_gops);
    }
    printf("\n%6s %14s %8s %16s %8s | %12s %8s %7s %8s %6s\n", "batch", "decode tok/s",
           "ratio", "ceiling tok/s", "of ceil", "images/min", "ratio", "images", "tokens", "cpu");
    for (int i = 0; i < n; i++) {
        double ceil = decode_ceiling(r, rows[i].width);
        printf("%6u %14.2f %7.2fx %16.2f %7.0f%% | %12.2f %7.2fx %7u %8llu %5.0f%%\n",
               rows[i].width,
               rows[i].decode_tok_s,
               rows[0].decode_tok_s > 0 ? rows[i].decode_tok_s / rows[0].decode_tok_s : 0,
               ceil, ceil > 0 ? 100 * rows[i].decode_tok_s / ceil : 0, rows[i].images_per_min,
               rows[0].images_per_min > 0 ? rows[i].images_per_min / rows[0].images_per_min : 0,
               rows[i].images, (unsigned long long)rows[i].tokens,
               rows[i].wall_ms > 0 ? 100 * rows[i].cpu_ms / (rows[i].wall_ms * r->threads) : 0);
    }
    printf("cpu: CPU time / (wall x threads) while streaming images; below 100 %% = the cores "
           "were shared\n");
    printf("\nceiling: width x (memory read / weight bytes per token), capped by the compute "
           "peak; peak RSS %.0f MB\n", bench_peak_rss_mb());
}

static void print_batch_json(const bench_report *r, const bench_batch_row *rows, int n)
{
    json_t *o = json_object(), *list = json_array();
    json_object_set_new(o, "variant", json_string(r->info->variant));
    json_object_set_new(o, "dtype", json_string(r->a->dtype_name));
    json_object_set_new(o, "threads", json_integer(r->threads));
    json_object_set_new(o, "caption_tokens", json_integer(r->a->batch_tokens));
    for (int i = 0; i < n; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "batch", json_integer(rows[i].width));
        json_object_set_new(e, "decode_tokens_per_s", json_real(rows[i].decode_tok_s));
        json_object_set_new(e, "decode_ratio", json_real(rows[0].decode_tok_s > 0
                                ? rows[i].decode_tok_s / rows[0].decode_tok_s : 0));
        json_object_set_new(e, "decode_ceiling_tokens_per_s",
                            json_real(decode_ceiling(r, rows[i].width)));
        json_object_set_new(e, "decode_steps", json_integer(rows[i].decode_steps));
        json_object_set_new(e, "images_per_min", json_real(rows[i].images_per_min));
        json_object_set_new(e, "images_ratio", json_real(rows[0].images_per_min > 0
                                ? rows[i].images_per_min / rows[0].images_per_min : 0));
        json_object_set_new(e, "images", json_integer(rows[i].images));
        json_object_set_new(e, "tokens", json_integer((json_int_t)rows[i].tokens));
        json_object_set_new(e, "wall_ms", json_real(rows[i].wall_ms));
        json_object_set_new(e, "cpu_share", json_real(rows[i].wall_ms > 0
                                ? rows[i].cpu_ms / (rows[i].wall_ms * r->threads) : 0));
        json_array_append_new(list, e);
    }
    json_object_set_new(o, "batch", list);
    json_t *m = json_object();
    json_object_set_new(m, "fma_gflops", json_real(r->mach->fma_gflops));
    json_object_set_new(m, "int8_gops", json_real(r->mach->int8_gops));
    json_object_set_new(m, "mem_gbs", json_real(r->mach->mem_gbs));
    json_object_set_new(o, "machine", m);
    json_object_set_new(o, "peak_rss_mb", json_real(bench_peak_rss_mb()));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    if (s) {
        printf("%s\n", s);
        free(s);
    }
    json_decref(o);
}

static int run_batch_bench(const bench_args *a, pg_model *model, bench_report *r)
{
    uint32_t widest = 1;
    for (int i = 0; i < a->n_batch; i++) {
        widest = a->batch[i] > widest ? a->batch[i] : widest;
    }
    uint32_t images = a->batch_images ? (uint32_t)a->batch_images : 2 * widest;
    images = images < 4 ? 4 : images;
    bench_batch_row rows[16];
    bench_work_of(r->info, r->info->weight_dtype, r->info->image_tokens + 6, &r->work);
    for (int i = 0; i < a->n_batch; i++) {
        if (!a->json) {
            fprintf(stderr, "batch width %u: decode, then %u images\n", a->batch[i], images);
        }
        if (bench_batch_run(model, r->info, a->batch[i], (uint32_t)a->batch_tokens, images,
                            1000 * (i + 1), !a->json, &rows[i]) != 0) {
            return 1;
        }
    }
    if (a->json) {
        print_batch_json(r, rows, a->n_batch);
    } else {
        print_batch(r, rows, a->n_batch);
    }
    return 0;
}

static const char *dtype_label(int32_t dt)
{
    switch (dt) {
    case PG_DTYPE_F32: return "f32";
    case PG_DTYPE_F16: return "f16";
    case PG_DTYPE_Q8: return "int8";
    case PG_DTYPE_Q4: return "q4";
    default: return "bf16";
    }
}

/* ---- the command ------------------------------------------------------------------------ */

static int load_model(const bench_args *a, const char *dir, pg_model **model)
{
    pg_model_options mo;
    PG_MODEL_OPTIONS_INIT(&mo);
    mo.n_threads = a->threads;
    mo.weight_dtype = a->dtype;
    if (a->no_quant_cache) {
        mo.flags |= PG_MODEL_NO_QUANT_CACHE;
    }
    mo.backend = a->backend;
    double t0 = bench_now_ms();
    if (pg_model_load(model, dir, &mo) != PG_OK) {
        fprintf(stderr, "pg bench: cannot load %s: %s\n", dir, pg_last_error());
        return -1;
    }
    if (!a->json) {
        printf("loaded %s in %.1f s\n", dir, (bench_now_ms() - t0) / 1e3);
    }
    return 0;
}

static int measure(const bench_args *a, pg_model *model, const pg_model_info *info,
                   int threads, bench_series *b)
{
    pg_session_options so;
    PG_SESSION_OPTIONS_INIT(&so);
    so.n_ctx = info->image_tokens + 64 + (uint32_t)a->decode_tokens;
    pg_session *s = NULL;
    if (pg_session_new(&s, model, &so) != PG_OK) {
        fprintf(stderr, "pg bench: session: %s\n", pg_last_error());
        return -1;
    }
    int rc = 0;
    for (int r = 0; r < a->warmup + a->runs && rc == 0; r++) {
        pg_timings t;
        run_extra ex = { 0 };
        rc = run_once(s, info, r, a->decode_tokens, &t, &ex);
        if (rc == 0 && r >= a->warmup) {
            add_run(b, &t, &ex, threads);
        }
        if (rc == 0 && !a->json) {
            fprintf(stderr, "%s %d: vision %.0f ms, prefill %.0f ms (%u tok), decode %.1f ms/tok "
                    "(%u tok), ttft %.0f ms\n", r < a->warmup ? "warm-up" : "run", r,
                    t.vision_ms, t.prefill_ms, t.prefill_tokens,
                    t.decode_tokens ? t.decode_ms / t.decode_tokens : 0.0, t.decode_tokens,
                    t.ttft_ms);
        }
    }
    pg_session_free(s);
    return rc;
}

int pg_cmd_bench(int argc, char **argv)
{
    bench_args a;
    if (parse_args(&a, argc, argv) != 0) {
        return usage_bench(stderr);
    }
    char dir[4096];
    if (a.model) {
        snprintf(dir, sizeof dir, "%s", a.model);
    } else if (bench_checkpoint(a.variant, a.layers, a.seed, a.cache_dir, !a.json, dir,
                                sizeof dir) != 0) {
        return 1;
    }
    int threads = a.threads > 0 ? a.threads : bench_cpu_count();

    bench_machine mach = { 0 };
    if (!a.no_machine && bench_measure_machine(&mach, threads, a.mem_mib) != 0) {
        fprintf(stderr, "pg bench: machine microbenchmarks failed (out of memory)\n");
        return 1;
    }
    bool rss_reset = bench_reset_peak_rss();

    pg_model *model = NULL;
    if (load_model(&a, dir, &model) != 0) {
        return 1;
    }
    pg_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (pg_model_get_info(model, &info) != PG_OK) {
        fprintf(stderr, "pg bench: %s\n", pg_last_error());
        pg_model_free(model);
        return 1;
    }
    /* info.variant belongs to the model: keep a copy past pg_model_free */
    char variant[64];
    snprintf(variant, sizeof variant, "%s", info.variant ? info.variant : "custom");
    info.variant = variant;
    if (a.n_batch > 0) {
        if (a.dtype == PG_DTYPE_AUTO) {
            a.dtype_name = dtype_label(info.weight_dtype);
        }
        bench_report br = { .a = &a, .info = &info, .mach = &mach, .threads = threads };
        int brc = run_batch_bench(&a, model, &br);
        pg_model_free(model);
        return brc;
    }
    bench_series b;
    memset(&b, 0, sizeof b);
    int rc = measure(&a, model, &info, threads, &b);
    pg_model_free(model);
    if (rc != 0) {
        return 1;
    }
    if (a.dtype == PG_DTYPE_AUTO) {
        a.dtype_name = dtype_label(info.weight_dtype);
    }
    bench_report r = { .a = &a, .info = &info, .mach = &mach, .threads = threads };
    bench_work_of(&info, info.weight_dtype ? info.weight_dtype : a.dtype, b.prefill_tokens,
                  &r.work);
    r.work.decode_tokens = b.decode_tokens;
    r.vision = stats(b.vision_ms, b.n);
    r.prefill = stats(b.prefill_ms, b.n);
    r.decode = stats(b.decode_ms_tok, b.n);
    r.ttft = stats(b.ttft_ms, b.n);
    r.prefill_share = stats(b.prefill_share, b.n);
    r.decode_share = stats(b.decode_share, b.n);
    r.peak_rss_mb = bench_peak_rss_mb();
    if (!rss_reset && !a.json) {
        printf("note: the peak RSS could not be reset after the microbenchmarks; it may include "
               "their %d MiB buffer\n", a.mem_mib);
    }
    if (a.json) {
        print_json(&r);
    } else {
        print_table(&r);
        print_reference(&r);
    }
    return 0;
}
