/* Shared helpers of the golden tests: comparing arrays with .npy goldens, reading the cases. */
#ifndef PG_TEST_GOLDEN_UTIL_H
#define PG_TEST_GOLDEN_UTIL_H

#include "npy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Tolerances of fixtures/models/manifest.json. */
#define GOLDEN_PIXEL_ABS 1e-6
#define GOLDEN_STAGE_REL 1e-4 /* max |diff| <= this * max |golden| */
#define GOLDEN_LOGIT_ABS 5e-3

/*
 * Compares n floats with the golden .npy at `path` (whose element count must be n):
 * max |got - golden| <= abs_tol when abs_tol > 0, else <= rel_tol * max |golden|.
 * Counts one CHECK and prints the measured error. Returns the max |diff| (INFINITY on error).
 */
double golden_check(const char *what, const float *got, size_t n, const char *path,
                    double abs_tol, double rel_tol);

/* Loads an int32 .npy (NULL and a failed CHECK when absent or of another type). */
int32_t *golden_ids(const char *path, size_t *n);

/* One golden case (tests/data/golden/<cfg>/cases.json or the shared manifests). */
typedef struct golden_case {
    char id[256];
    char image[128];     /* file name in the images folder */
    char image_dir[128]; /* per-image golden folder */
    char prompt[512];
    bool has_prompt;     /* false: prompt given as ids (full config) */
    int robust_prefix_len;
    int n_steps;
    int seq_len;
    /* max |prefill logit - float32 golden| of transformers run in bfloat16 on this case
     * (cases.json hf_bf16_compute_logit_dev; 0 when absent) */
    double hf_bf16_logit_dev;
} golden_case;

/* Reads cases.json (or a shared golden manifest.json); returns the count, -1 on error. */
int golden_read_cases(const char *path, golden_case **cases);

#endif
