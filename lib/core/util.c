/* Allocation wrappers, time, small-file reading, struct_size checks, conversions. */
#define _POSIX_C_SOURCE 200809L
#include "core.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

void *pg__malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p) {
        pg__error(PG_ERR_OUT_OF_MEMORY, "out of memory allocating %zu bytes", size);
    }
    return p;
}

void *pg__calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        pg__error(PG_ERR_OUT_OF_MEMORY, "out of memory allocating %zu x %zu bytes", n, size);
    }
    return p;
}

void *pg__realloc(void *old, size_t size)
{
    void *p = realloc(old, size ? size : 1);
    if (!p) {
        pg__error(PG_ERR_OUT_OF_MEMORY, "out of memory reallocating %zu bytes", size);
    }
    return p;
}

void *pg__malloc_array(size_t n, size_t elem)
{
    size_t total;
    if (!pg__mul_size(n, elem, &total)) {
        pg__error(PG_ERR_LIMIT, "allocation of %zu x %zu bytes overflows", n, elem);
        return NULL;
    }
    return pg__malloc(total);
}

void *pg__aligned_alloc(size_t size)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, size ? size : 64) != 0) {
        pg__error(PG_ERR_OUT_OF_MEMORY, "out of memory allocating %zu aligned bytes", size);
        return NULL;
    }
    return p;
}

void pg__aligned_free(void *p)
{
    free(p);
}

char *pg__strdup(const char *s)
{
    return pg__strndup(s, strlen(s));
}

char *pg__strndup(const char *s, size_t n)
{
    char *d = pg__malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

PG_API void pg_free(void *ptr)
{
    free(ptr);
}

double pg__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

pg_status pg__read_file(const char *path, size_t max_size, char **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        return pg__error(errno == ENOENT ? PG_ERR_NOT_FOUND : PG_ERR_IO, "%s: cannot open: %s",
                         path, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return pg__error(PG_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > (uint64_t)max_size) {
        fclose(f);
        return pg__error(PG_ERR_LIMIT, "%s: file of %lld bytes exceeds the limit of %zu", path,
                         (long long)st.st_size, max_size);
    }
    size_t n = (size_t)st.st_size;
    char *buf = pg__malloc(n + 1);
    if (!buf) {
        fclose(f);
        return PG_ERR_OUT_OF_MEMORY;
    }
    size_t got = fread(buf, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (got != n || err) {
        free(buf);
        return pg__error(PG_ERR_IO, "%s: read failed", path);
    }
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return PG_OK;
}

char *pg__path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    bool slash = a > 0 && dir[a - 1] != '/';
    char *p = pg__malloc(a + b + 2);
    if (!p) {
        return NULL;
    }
    memcpy(p, dir, a);
    if (slash) {
        p[a++] = '/';
    }
    memcpy(p + a, name, b + 1);
    return p;
}

pg_status pg__check_struct_size(const void *opts, size_t known_size, size_t min_size,
                                const char *what)
{
    size_t sz = *(const size_t *)opts;
    if (sz < min_size || sz > 4096) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "%s: struct_size %zu is invalid (use the PG_*_INIT macro)", what, sz);
    }
    const unsigned char *b = opts;
    for (size_t i = known_size; i < sz; i++) {
        if (b[i] != 0) {
            return pg__error(PG_ERR_UNSUPPORTED,
                             "%s: fields beyond this library's version are set (struct_size "
                             "%zu > %zu)",
                             what, sz, known_size);
        }
    }
    return PG_OK;
}

void pg__options_init(void *opts, size_t struct_size, const void *defaults, size_t known_size)
{
    if (!opts || struct_size < sizeof(size_t)) {
        return;
    }
    memset(opts, 0, struct_size);
    memcpy(opts, defaults, struct_size < known_size ? struct_size : known_size);
    memcpy(opts, &struct_size, sizeof struct_size);
}

int pg__cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int pg__utf8_check(const unsigned char *s, size_t n)
{
    if (n == 0) {
        return -1;
    }
    unsigned c = s[0];
    if (c < 0x80) {
        return 1;
    }
    int len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlong forms */
        hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) {
            return -1;
        }
        unsigned b = s[i];
        unsigned l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) {
            return 0;
        }
    }
    return len;
}

size_t pg__utf8_valid_prefix(const unsigned char *s, size_t n)
{
    int k = pg__utf8_check(s, n);
    return k > 0 ? (size_t)k : 0;
}

float pg__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    union {
        uint32_t u;
        float f;
    } v;
    if (exp == 0) {
        float f = ldexpf((float)man, -24);
        return sign ? -f : f;
    }
    if (exp == 31) {
        v.u = sign | 0x7f800000u | (man << 13);
        return v.f;
    }
    v.u = sign | ((exp + 112) << 23) | (man << 13);
    return v.f;
}

uint16_t pg__f32_to_f16(float f)
{
    union {
        uint32_t u;
        float f;
    } v;
    v.f = f;
    uint32_t sign = (v.u >> 16) & 0x8000u;
    uint32_t a = v.u & 0x7fffffffu;
    if (a > 0x7f800000u) {
        return (uint16_t)(sign | 0x7e00u);
    }
    if (a >= 0x477ff000u) { /* rounds to >= 65520: infinity */
        return (uint16_t)(sign | 0x7c00u);
    }
    if (a < 0x38800000u) { /* subnormal or zero in f16 */
        float af;
        v.u = a;
        af = v.f;
        uint32_t m = (uint32_t)lrintf(ldexpf(af, 24)); /* round to nearest even */
        return (uint16_t)(sign | m);
    }
    uint32_t rounded = a + 0xfffu + ((a >> 13) & 1u);
    return (uint16_t)(sign | ((rounded - 0x38000000u) >> 13));
}

void *pg__map_file(int fd, size_t size)
{
    const size_t huge = (size_t)2 << 20;
    if (size < huge || size > SIZE_MAX - huge) {
        return mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    }
    /* Reserve size + 2 MiB of address space, map the file over its first aligned byte,
     * then give back the unused ends. */
    char *res = mmap(NULL, size + huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (res == MAP_FAILED) {
        return mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    }
    char *at = (char *)(((uintptr_t)res + huge - 1) & ~(uintptr_t)(huge - 1));
    void *map = mmap(at, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (map == MAP_FAILED) {
        int e = errno;
        munmap(res, size + huge);
        errno = e;
        return MAP_FAILED;
    }
    if (at > res) {
        munmap(res, (size_t)(at - res));
    }
    size_t tail = (size_t)(res + size + huge - (at + size));
    if (tail > 0) {
        munmap(at + size, tail);
    }
    return map;
}
