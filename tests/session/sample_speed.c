/*
 * Sampling cost per token at the hub vocabulary (257,216 logits): temperature only, top-k,
 * top-p and both. Prints milliseconds per token; a benchmark, not a test (nothing is checked).
 */
#include "session/session_internal.h"

#include <stdio.h>
#include <stdlib.h>

#define VOCAB 257216u
#define REPS 20

int main(void)
{
    float *logits = malloc(VOCAB * sizeof *logits);
    pg__cand *work = malloc(VOCAB * sizeof *work);
    if (!logits || !work) {
        return 1;
    }
    pg__rng r;
    pg__rng_seed(&r, 1);
    /* A floor of small logits with a few peaks, roughly like a trained model's. */
    for (size_t i = 0; i < VOCAB; i++) {
        double g = 0.0;
        for (int k = 0; k < 4; k++) {
            g += pg__rng_uniform(&r) - 0.5;
        }
        logits[i] = (float)(g * 6.0 - 8.0);
    }
    for (int p = 0; p < 20; p++) {
        logits[(size_t)(pg__rng_uniform(&r) * VOCAB)] = (float)(10.0 + 10.0 * pg__rng_uniform(&r));
    }
    const struct {
        uint32_t top_k;
        float top_p, temperature;
    } cases[] = { { 0, 1.0f, 1.0f }, { 50, 1.0f, 1.0f }, { 0, 0.9f, 1.0f },
                  { 50, 0.9f, 1.0f }, { 0, 0.95f, 1.5f } };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        pg__rng draw;
        pg__rng_seed(&draw, 7);
        long checksum = 0;
        const double t0 = pg__now_ms();
        for (int i = 0; i < REPS; i++) {
            checksum += pg__sample(logits, VOCAB, cases[c].temperature, cases[c].top_k,
                                   cases[c].top_p, &draw, work);
        }
        printf("top_k %3u top_p %.2f temperature %.1f: %7.3f ms/token (ids sum %ld)\n",
               cases[c].top_k, (double)cases[c].top_p, (double)cases[c].temperature,
               (pg__now_ms() - t0) / REPS, checksum);
    }
    free(logits);
    free(work);
    return 0;
}
