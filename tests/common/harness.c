#include "harness.h"

#include "paligemma.h"

#include <sys/stat.h>

int pg_test_passed, pg_test_failed;

int pg_test_finish(void)
{
    printf("%d passed, %d failed\n", pg_test_passed, pg_test_failed);
    return pg_test_failed ? 1 : 0;
}

int pg_test_skip(const char *why)
{
    printf("SKIP: %s\n", why);
    return 77;
}

const char *pg_test_data_dir(void)
{
    const char *env = getenv("PG_TEST_DATA");
    return env ? env : PG_TEST_DATA_DIR;
}

const char *pg_test_shared_dir(void)
{
    const char *env = getenv("PG_SHARED_FIXTURES");
    const char *dir = env ? env : PG_SHARED_FIXTURES_DIR;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return NULL;
    }
    return dir;
}

const char *pg_test_path(const char *a, const char *b)
{
    static char bufs[8][4096];
    static int next;
    char *p = bufs[next++ & 7];
    snprintf(p, 4096, "%s/%s", a, b);
    return p;
}

double pg_test_max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d) {
            m = d != d ? INFINITY : d;
        }
    }
    return m;
}

double pg_test_max_abs(const float *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i]);
        if (d > m) {
            m = d;
        }
    }
    return m;
}

double pg_test_urand(uint64_t *state)
{
    uint64_t s = *state;
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    *state = s;
    return (double)(s >> 11) / 9007199254740992.0;
}

float pg_test_activation(uint64_t *state, float scale)
{
    double g = pg_test_urand(state) + pg_test_urand(state) + pg_test_urand(state) +
               pg_test_urand(state) - 2.0;
    return (float)(g * scale * (pg_test_urand(state) < 0.01 ? 30.0 : 1.0));
}
