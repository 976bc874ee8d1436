/* Token selection: greedy argmax, seeded temperature / top-k / top-p sampling, log-probs. */
#include "session/session_internal.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void pg__rng_seed(pg__rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) {
        r->s[i] = splitmix64(&seed);
    }
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256**: small, fast and good enough for sampling. */
static uint64_t rng_next(pg__rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double pg__rng_uniform(pg__rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

int32_t pg__sample_greedy(const float *logits, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++) {
        if (logits[i] > logits[best]) {
            best = i;
        }
    }
    return (int32_t)best;
}

/* The sampling order: higher logit first, the lower id on ties (a strict total order for
 * non-NaN logits, so every selection below gives the same candidates in the same order). */
static bool cand_better(pg__cand a, pg__cand b)
{
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

static int cand_desc(const void *a, const void *b)
{
    const pg__cand *x = a, *y = b;
    return cand_better(*x, *y) ? -1 : cand_better(*y, *x) ? 1 : 0;
}

/* Restores the heap below `i`: heap[0] is the worst of the kept candidates. */
static void heap_sift_down(pg__cand *heap, size_t n, size_t i)
{
    for (;;) {
        size_t worst = i;
        const size_t l = 2 * i + 1, r = l + 1;
        if (l < n && cand_better(heap[worst], heap[l])) {
            worst = l;
        }
        if (r < n && cand_better(heap[worst], heap[r])) {
            worst = r;
        }
        if (worst == i) {
            return;
        }
        const pg__cand t = heap[i];
        heap[i] = heap[worst];
        heap[worst] = t;
        i = worst;
    }
}

/* The c best candidates of logits/temperature, best first, into work[0..c). One pass with a
 * c-entry heap (O(n log c), and most logits lose against the heap's worst at once), then a
 * sort of those c: the same prefix a sort of all n would give, at a fraction of its cost. */
static void select_best(const float *logits, size_t n, float temperature, size_t c,
                        pg__cand *work)
{
    for (size_t i = 0; i < c; i++) {
        work[i].logit = logits[i] / temperature;
        work[i].id = (int32_t)i;
    }
    for (size_t i = c / 2; i-- > 0;) {
        heap_sift_down(work, c, i);
    }
    for (size_t i = c; i < n; i++) {
        const pg__cand x = { logits[i] / temperature, (int32_t)i };
        if (cand_better(x, work[0])) {
            work[0] = x;
            heap_sift_down(work, c, 0);
        }
    }
    qsort(work, c, sizeof *work, cand_desc);
}

/* Above this share of the vocabulary a full sort is as cheap as the heap. */
static size_t heap_limit(size_t n)
{
    return n / 4;
}

/* The c best candidates, best first, in work[0..c) (a full sort when c is large). */
static void best_candidates(const float *logits, size_t n, float temperature, size_t c,
                            pg__cand *work)
{
    if (c <= heap_limit(n)) {
        select_best(logits, n, temperature, c, work);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        work[i].logit = logits[i] / temperature;
        work[i].id = (int32_t)i;
    }
    qsort(work, n, sizeof *work, cand_desc);
}

/* The smallest prefix of work[0..m) whose probability (each exp(logit - mx) / total) reaches
 * top_p, at least one; 0 when the m candidates do not reach it. */
static size_t nucleus_size(const pg__cand *work, size_t m, float mx, double total, float top_p)
{
    double cum = 0.0;
    for (size_t i = 0; i < m; i++) {
        cum += exp((double)work[i].logit - mx) / total;
        if (cum >= (double)top_p) {
            return i + 1;
        }
    }
    return 0;
}

/* The first candidates of a nucleus cut without a top-k cut: the normalizer is over the whole
 * vocabulary (summed in id order), and the candidate set grows until it holds the nucleus. */
static size_t nucleus_candidates(const float *logits, size_t n, float temperature, float top_p,
                                 pg__cand *work, float *mx_out)
{
    float mx = logits[0] / temperature;
    for (size_t i = 1; i < n; i++) {
        const float l = logits[i] / temperature;
        mx = l > mx ? l : mx;
    }
    *mx_out = mx;
    if (!isfinite(mx)) {
        return 1; /* the caller falls back to greedy */
    }
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        total += exp((double)(logits[i] / temperature) - mx);
    }
    size_t c = 64;
    for (;;) {
        c = c < n ? c : n;
        best_candidates(logits, n, temperature, c, work);
        const size_t keep = nucleus_size(work, c, mx, total, top_p);
        if (keep || c == n) {
            return keep ? keep : n; /* rounding short of top_p over all n: keep them all */
        }
        c *= 8;
    }
}

int32_t pg__sample(const float *logits, size_t n, float temperature, uint32_t top_k,
                   float top_p, pg__rng *rng, pg__cand *work)
{
    size_t m = n;
    float mx;
    const bool cut_k = top_k > 0 && top_k < n;
    if (cut_k) {
        /* Softmax over the top k (in double), then the nucleus cut inside them. */
        m = top_k;
        best_candidates(logits, n, temperature, m, work);
        mx = work[0].logit;
        if (top_p < 1.0f) {
            double total = 0.0;
            for (size_t i = 0; i < m; i++) {
                total += exp((double)work[i].logit - mx);
            }
            const size_t keep = nucleus_size(work, m, mx, total, top_p);
            m = keep ? keep : m;
        }
    } else if (top_p < 1.0f) {
        m = nucleus_candidates(logits, n, temperature, top_p, work, &mx);
    } else {
        /* Plain temperature sampling: every id, in id order. */
        for (size_t i = 0; i < n; i++) {
            work[i].logit = logits[i] / temperature;
            work[i].id = (int32_t)i;
        }
        mx = work[0].logit;
        for (size_t i = 1; i < n; i++) {
            mx = work[i].logit > mx ? work[i].logit : mx;
        }
    }
    if (!isfinite(mx)) {
        /* A temperature so small that logit / temperature overflows: the limit is greedy. */
        return pg__sample_greedy(logits, n);
    }
    double total = 0.0;
    for (size_t i = 0; i < m; i++) {
        total += exp((double)work[i].logit - mx);
    }
    double u = pg__rng_uniform(rng) * total;
    for (size_t i = 0; i < m; i++) {
        u -= exp((double)work[i].logit - mx);
        if (u < 0.0) {
            return work[i].id;
        }
    }
    return work[m - 1].id; /* rounding left a sliver at the end */
}

double pg__log_normalizer(const float *logits, size_t n)
{
    float mx = logits[0];
    for (size_t i = 1; i < n; i++) {
        mx = logits[i] > mx ? logits[i] : mx;
    }
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        sum += exp((double)logits[i] - mx);
    }
    return (double)mx + log(sum);
}

void pg__top_logprobs(const float *logits, size_t n, double log_z, uint32_t k, int32_t *ids,
                      float *lps)
{
    uint32_t have = 0;
    /* Insertion into a short sorted list: k <= 20, so this is one pass over the vocab. */
    for (size_t i = 0; i < n; i++) {
        if (have == k && !(logits[i] > logits[ids[k - 1]])) {
            continue;
        }
        uint32_t j = have < k ? have++ : k - 1;
        while (j > 0 && logits[ids[j - 1]] < logits[i]) {
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = (int32_t)i;
    }
    for (uint32_t j = 0; j < have; j++) {
        lps[j] = (float)((double)logits[ids[j]] - log_z);
    }
}
