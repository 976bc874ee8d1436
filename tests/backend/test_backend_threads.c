/*
 * Several threads calling ops on one CPU backend at once (as several sessions sharing a
 * model do): every result must equal, bit for bit, what the same backend computes when
 * called alone (each output element is computed by one task in a fixed order, so the
 * result does not depend on which thread ran it). Also run under TSan in CI-like checks.
 */
#include "harness.h"

#include "backend/backend.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define N_CALLERS 4
#define N_ROUNDS 15

typedef struct job {
    pg__backend *be;
    const float *x;
    pg__tensor w;
    const float *want_mm, *want_mv, *want_attn;
    int64_t m, k, n;
    pg__attn attn;
    int mismatches;
} job;

static float *rand_floats(size_t n, uint32_t seed)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
    return p;
}

static void *caller(void *arg)
{
    job *j = arg;
    float *y = malloc((size_t)(j->m * j->n) * sizeof *y);
    float *out = malloc((size_t)(j->attn.n_q * j->attn.ld_out) * sizeof *out);
    for (int r = 0; r < N_ROUNDS; r++) {
        if (j->be->ops->matmul(j->be, y, j->n, j->x, j->k, j->m, &j->w, NULL) != PG_OK ||
            memcmp(y, j->want_mm, (size_t)(j->m * j->n) * sizeof *y) != 0) {
            j->mismatches++;
        }
        if (j->be->ops->matmul(j->be, y, j->n, j->x, j->k, 1, &j->w, NULL) != PG_OK ||
            memcmp(y, j->want_mv, (size_t)j->n * sizeof *y) != 0) {
            j->mismatches++;
        }
        pg__attn a = j->attn;
        a.out = out;
        if (j->be->ops->attention(j->be, &a) != PG_OK ||
            memcmp(out, j->want_attn, (size_t)(a.n_q * a.ld_out) * sizeof *out) != 0) {
            j->mismatches++;
        }
    }
    free(y);
    free(out);
    return NULL;
}

int main(void)
{
    pg__backend *be = NULL;
    CHECK_OK(pg__backend_create(&be, "cpu", 3));
    if (!be) {
        return pg_test_finish();
    }
    int64_t m = 33, k = 300, n = 70;
    float *x = rand_floats((size_t)(m * k), 1), *wv = rand_floats((size_t)(n * k), 2);
    pg__tensor w = {.dtype = PG__F32, .rows = n, .cols = k, .data = wv, .ndim = 2,
                    .ne = {n, k}, .name = "w"};
    float *want_mm = malloc((size_t)(m * n) * sizeof *want_mm);
    float *want_mv = malloc((size_t)n * sizeof *want_mv);
    CHECK_OK(be->ops->matmul(be, want_mm, n, x, k, m, &w, NULL));
    CHECK_OK(be->ops->matmul(be, want_mv, n, x, k, 1, &w, NULL));
    int64_t nq = 40, nkv = 90, heads = 4, hd = 24;
    float *q = rand_floats((size_t)(nq * heads * hd), 3), *kv = rand_floats((size_t)(nkv * 2 * hd), 4);
    float *want_attn = malloc((size_t)(nq * heads * hd) * sizeof *want_attn);
    pg__attn a = {.out = want_attn, .ld_out = heads * hd, .q = q, .ld_q = heads * hd, .k = kv,
                  .v = kv, .kv_dtype = PG__F32, .kv_head_stride = hd, .kv_row_stride = 2 * hd,
                  .n_q = nq, .q_start = 50, .n_kv = nkv, .n_heads = (int32_t)heads,
                  .n_kv_heads = 2, .head_dim = (int32_t)hd, .scale = 0.2f, .softcap = 0.0f,
                  .prefix_len = 20, .window = 0};
    CHECK_OK(be->ops->attention(be, &a));

    pthread_t th[N_CALLERS];
    job jobs[N_CALLERS];
    for (int t = 0; t < N_CALLERS; t++) {
        jobs[t] = (job){.be = be, .x = x, .w = w, .want_mm = want_mm, .want_mv = want_mv,
                        .want_attn = want_attn, .m = m, .k = k, .n = n, .attn = a};
        CHECK(pthread_create(&th[t], NULL, caller, &jobs[t]) == 0);
    }
    for (int t = 0; t < N_CALLERS; t++) {
        pthread_join(th[t], NULL);
        CHECK_MSG(jobs[t].mismatches == 0, "caller %d: %d results differ from the lone call", t,
                  jobs[t].mismatches);
    }
    pg__backend_destroy(be);
    free(x);
    free(wv);
    free(want_mm);
    free(want_mv);
    free(q);
    free(kv);
    free(want_attn);
    return pg_test_finish();
}
