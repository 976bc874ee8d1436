/*
 * A tiny test harness: CHECK* macros count passes and failures; pg_test_finish() prints
 * the closing "N passed, N failed" line and returns the exit code. Exit code 77 = skipped
 * (meson's convention), used when optional fixtures (../shared) are absent.
 */
#ifndef PG_TEST_HARNESS_H
#define PG_TEST_HARNESS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int pg_test_passed, pg_test_failed;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (cond) {                                                                        \
            pg_test_passed++;                                                              \
        } else {                                                                           \
            pg_test_failed++;                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
        }                                                                                  \
    } while (0)

#define CHECK_MSG(cond, ...)                                                               \
    do {                                                                                   \
        if (cond) {                                                                        \
            pg_test_passed++;                                                              \
        } else {                                                                           \
            pg_test_failed++;                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
        }                                                                                  \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                 \
    CHECK_MSG((long long)(a) == (long long)(b), "%lld != %lld", (long long)(a), (long long)(b))

/* Status check that prints pg_last_error() on failure. */
#define CHECK_OK(expr)                                                                     \
    do {                                                                                   \
        int st_ = (int)(expr);                                                             \
        CHECK_MSG(st_ == 0, "%s -> status %d (%s)", #expr, st_, pg_last_error());           \
    } while (0)

/* Prints the closing line; returns 0 if nothing failed, 1 otherwise. */
int pg_test_finish(void);
/* Prints a skip reason and returns 77 (for `return pg_test_skip(...)` in main). */
int pg_test_skip(const char *why);

/* The folder holding tests/data (compiled in), and ../shared/fixtures (NULL if absent). */
const char *pg_test_data_dir(void);
const char *pg_test_shared_dir(void);
/* Joins into a static rotating buffer (good for a few nested uses). */
const char *pg_test_path(const char *a, const char *b);

/* max |a - b| over n floats. */
double pg_test_max_abs_diff(const float *a, const float *b, size_t n);
double pg_test_max_abs(const float *a, size_t n);

/* Random test data from a caller-held xorshift64 state (each test seeds its own stream):
 * uniform in [0, 1) ... */
double pg_test_urand(uint64_t *state);
/* ... and roughly normal values (sum of four uniforms) times `scale`, 1 % of them 30 times
 * larger: the outliers of real activations. */
float pg_test_activation(uint64_t *state, float scale);

#endif
