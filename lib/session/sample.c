/* Token selection: greedy argmax, seeded temperature / top-k / top-p sampling, log-probs. */
#include "session/session_internal.h"

#include <math.h>
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

static int cand_desc(const void *a, const void *b)
{
    const pg__cand *x = a, *y = b;
    if (x->logit != y->logit) {
        return x->logit > y->logit ? -1 : 1;
    }
    return x->id < y->id ? -1 : (x->id > y->id);
}

int32_t pg__sample(const float *logits, size_t n, float temperature, uint32_t top_k,
                   float top_p, pg__rng *rng, pg__cand *work)
{
    size_t m = n;
    for (size_t i = 0; i < n; i++) {
        work[i].logit = logits[i] / temperature;
        work[i].id = (int32_t)i;
    }
    if ((top_k > 0 && top_k < m) || top_p < 1.0f) {
        /* A full sort is simple and costs little next to a decoder step. */
        qsort(work, m, sizeof *work, cand_desc);
        if (top_k > 0 && top_k < m) {
            m = top_k;
        }
    }
    /* Softmax over the kept candidates (in double), then the nucleus cut. */
    float mx = work[0].logit;
    for (size_t i = 1; i < m; i++) {
        mx = work[i].logit > mx ? work[i].logit : mx;
    }
    double total = 0.0;
    for (size_t i = 0; i < m; i++) {
        total += exp((double)work[i].logit - mx);
    }
    if (top_p < 1.0f) {
        /* Keep the smallest prefix whose probability reaches top_p (at least one). */
        double cum = 0.0;
        size_t keep = 0;
        while (keep < m) {
            cum += exp((double)work[keep].logit - mx) / total;
            keep++;
            if (cum >= (double)top_p) {
                break;
            }
        }
        m = keep;
        total = 0.0;
        for (size_t i = 0; i < m; i++) {
            total += exp((double)work[i].logit - mx);
        }
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
