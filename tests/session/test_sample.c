/*
 * Token sampling (lib/session/sample.c) against a plain full-sort reference on random logits:
 * for the same seed both must pick the same id, for every mix of temperature, top-k and top-p.
 * The reference sorts the whole vocabulary (logit descending, lower id first on ties) when
 * there is a cut, cuts top-k, normalizes in double, cuts the nucleus and draws one uniform
 * number (without any cut it draws over the ids in id order). Its one fixed
 * choice: without a top-k cut the nucleus is normalized over the whole vocabulary summed in id
 * order (with a top-k cut, over the k candidates in sorted order).
 */
#include "harness.h"

#include "session/session_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

static int ref_desc(const void *a, const void *b)
{
    const pg__cand *x = a, *y = b;
    if (x->logit != y->logit) {
        return x->logit > y->logit ? -1 : 1;
    }
    return x->id < y->id ? -1 : (x->id > y->id);
}

static int32_t ref_sample(const float *logits, size_t n, float temperature, uint32_t top_k,
                          float top_p, pg__rng *rng)
{
    pg__cand *c = malloc(n * sizeof *c);
    for (size_t i = 0; i < n; i++) {
        c[i].logit = logits[i] / temperature;
        c[i].id = (int32_t)i;
    }
    const bool cut_k = top_k > 0 && top_k < n;
    if (cut_k || top_p < 1.0f) {
        qsort(c, n, sizeof *c, ref_desc); /* without a cut, candidates stay in id order */
    }
    size_t m = cut_k ? top_k : n;
    float mx = c[0].logit;
    for (size_t i = 1; i < n; i++) {
        mx = c[i].logit > mx ? c[i].logit : mx;
    }
    double total = 0.0;
    if (cut_k) {
        for (size_t i = 0; i < m; i++) {
            total += exp((double)c[i].logit - mx);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            total += exp((double)(logits[i] / temperature) - mx);
        }
    }
    if (top_p < 1.0f) {
        double cum = 0.0;
        size_t keep = 0;
        while (keep < m) {
            cum += exp((double)c[keep].logit - mx) / total;
            keep++;
            if (cum >= (double)top_p) {
                break;
            }
        }
        m = keep;
    }
    total = 0.0;
    for (size_t i = 0; i < m; i++) {
        total += exp((double)c[i].logit - mx);
    }
    int32_t id = c[m - 1].id;
    double u = pg__rng_uniform(rng) * total;
    for (size_t i = 0; i < m; i++) {
        u -= exp((double)c[i].logit - mx);
        if (u < 0.0) {
            id = c[i].id;
            break;
        }
    }
    free(c);
    return id;
}

/* Random logits: a few peaks over a normal-ish floor, sometimes with exact ties. */
static void random_logits(pg__rng *r, float *logits, size_t n, bool ties)
{
    for (size_t i = 0; i < n; i++) {
        double g = 0.0;
        for (int k = 0; k < 4; k++) {
            g += pg__rng_uniform(r) - 0.5;
        }
        logits[i] = (float)(g * 6.0);
        if (ties) {
            logits[i] = roundf(logits[i]); /* many equal logits: the id order decides */
        }
    }
    for (int p = 0; p < 5; p++) {
        logits[(size_t)(pg__rng_uniform(r) * (double)n)] = (float)(10.0 + 20.0 * pg__rng_uniform(r));
    }
}

static void compare_on_random_logits(void)
{
    const size_t sizes[] = { 1, 2, 7, 100, 5000, 20000 };
    const uint32_t top_ks[] = { 0, 1, 2, 5, 40, 64, 1000, 100000 };
    const float top_ps[] = { 1.0f, 0.999f, 0.9f, 0.5f, 0.1f, 1e-6f };
    const float temps[] = { 0.3f, 1.0f, 2.5f, 50.0f };
    pg__rng gen;
    pg__rng_seed(&gen, 42);
    size_t mismatches = 0, cases = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        const size_t n = sizes[si];
        float *logits = malloc(n * sizeof *logits);
        pg__cand *work = malloc(n * sizeof *work);
        for (int rep = 0; rep < 3; rep++) {
            random_logits(&gen, logits, n, rep == 2);
            for (size_t ki = 0; ki < sizeof top_ks / sizeof *top_ks; ki++) {
                for (size_t pi = 0; pi < sizeof top_ps / sizeof *top_ps; pi++) {
                    const float t = temps[(ki + pi + (size_t)rep) % 4];
                    const uint64_t seed = (uint64_t)(si * 1000 + ki * 10 + pi) + 7u * rep;
                    pg__rng a, b;
                    pg__rng_seed(&a, seed);
                    pg__rng_seed(&b, seed);
                    for (int draw = 0; draw < 3; draw++) {
                        const int32_t got =
                            pg__sample(logits, n, t, top_ks[ki], top_ps[pi], &a, work);
                        const int32_t want = ref_sample(logits, n, t, top_ks[ki], top_ps[pi], &b);
                        cases++;
                        if (got != want) {
                            mismatches++;
                            fprintf(stderr, "n %zu k %u p %g t %g: got %d, want %d\n", n,
                                    top_ks[ki], (double)top_ps[pi], (double)t, got, want);
                        }
                    }
                }
            }
        }
        free(logits);
        free(work);
    }
    CHECK_MSG(mismatches == 0, "%zu of %zu draws differ from the full-sort reference",
              mismatches, cases);
}

/* top_k = 1 and a vanishing nucleus are greedy; so is a temperature so small that
 * logit / temperature overflows to infinity. */
static void greedy_limits(void)
{
    const size_t n = 3000;
    float *logits = malloc(n * sizeof *logits);
    pg__cand *work = malloc(n * sizeof *work);
    pg__rng r;
    pg__rng_seed(&r, 5);
    random_logits(&r, logits, n, false);
    const int32_t best = pg__sample_greedy(logits, n);
    for (int draw = 0; draw < 20; draw++) {
        CHECK_EQ_INT(pg__sample(logits, n, 1.0f, 1, 1.0f, &r, work), best);
        CHECK_EQ_INT(pg__sample(logits, n, 1.0f, 0, 1e-9f, &r, work), best);
        CHECK_EQ_INT(pg__sample(logits, n, 1e-40f, 0, 1.0f, &r, work), best);
        CHECK_EQ_INT(pg__sample(logits, n, 1e-40f, 50, 0.9f, &r, work), best);
        CHECK_EQ_INT(pg__sample(logits, n, 1e-40f, 0, 0.9f, &r, work), best);
    }
    free(logits);
    free(work);
}

int main(void)
{
    compare_on_random_logits();
    greedy_limits();
    return pg_test_finish();
}
