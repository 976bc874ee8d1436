/*
 * core: status/error capture, logging, checked size arithmetic, timing, small file helpers.
 *
 * Every room may call into core; core calls nothing else in lib/. Internal names that are
 * not static start with pg__ so that the static archive cannot clash with a host program.
 *
 * Error model: internal functions report a failure with pg__error(status, fmt, ...), which
 * stores the message in a thread-local buffer (what pg_last_error() returns) and returns
 * the status, so `return pg__error(PG_ERR_FORMAT, "%s: bad header", path);` is the idiom.
 * Session entry points copy that message into the session afterwards.
 */
#ifndef PG_CORE_H
#define PG_CORE_H

#include "paligemma.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#    define PG__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#    define PG__PRINTF(a, b)
#endif

#define PG__ERRMSG_MAX 1024

/* Records `status` with a formatted message as this thread's last error; returns status. */
pg_status pg__error(pg_status status, const char *fmt, ...) PG__PRINTF(2, 3);
/* Prepends "prefix: " to this thread's last error message (adds context on the way up). */
void pg__error_prefix(const char *fmt, ...) PG__PRINTF(1, 2);
/* Clears this thread's last error. */
void pg__error_clear(void);
/* This thread's last error message ("" if none). */
const char *pg__error_message(void);

/* A logger: a callback plus its level. A NULL callback falls back to the process default. */
typedef struct pg__logger {
    pg_log_fn fn;
    void *user;
    int32_t level;
} pg__logger;

/* Logs through `lg` (may be NULL: process-wide callback). Never prints by itself. */
void pg__log(const pg__logger *lg, int level, const char *fmt, ...) PG__PRINTF(3, 4);

/* Checked size arithmetic: false on overflow (the result is then unspecified). */
static inline bool pg__mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool pg__add_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

/* malloc/calloc wrappers that record PG_ERR_OUT_OF_MEMORY on failure (NULL returned). */
void *pg__malloc(size_t size);
void *pg__calloc(size_t n, size_t size);
void *pg__realloc(void *p, size_t size);
/* size = n * elem, checked; NULL and an error on overflow or failure. */
void *pg__malloc_array(size_t n, size_t elem);
/* 64-byte aligned allocation (free with pg__aligned_free). */
void *pg__aligned_alloc(size_t size);
/* mmap(PROT_READ, MAP_PRIVATE) of a whole file of `size` bytes (> 0) from offset 0, placed at
 * a 2 MiB-aligned address when the file is at least that large, so that page-cache folios
 * of 2 MiB can be mapped whole (one TLB entry instead of 512; decode reads every weight
 * once per token and is TLB-bound otherwise). Returns MAP_FAILED with errno set on failure;
 * release with munmap(p, size). */
void *pg__map_file(int fd, size_t size);
void pg__aligned_free(void *p);
char *pg__strdup(const char *s);
char *pg__strndup(const char *s, size_t n);

/* Monotonic time in milliseconds. */
double pg__now_ms(void);

/* Reads a whole (small) file into a NUL-terminated buffer; refuses files over max_size. */
pg_status pg__read_file(const char *path, size_t max_size, char **data, size_t *size);

/* Joins a folder and a file name into a new string (free with free()). */
char *pg__path_join(const char *dir, const char *name);

/* Validates an options struct's struct_size: at least min_size, at most 4096, and any
 * bytes beyond known_size must be zero. Returns PG_OK or an error naming `what`. */
pg_status pg__check_struct_size(const void *opts, size_t known_size, size_t min_size,
                                const char *what);

/* The body of every pg_*_options_init: fills the caller's struct of `struct_size` bytes with
 * `defaults` (the `known_size` bytes this library knows), zeroes any newer fields a caller
 * built against a later header has (so pg__check_struct_size accepts them as unset), and
 * sets struct_size. Does nothing for NULL or a size below that of struct_size itself. */
void pg__options_init(void *opts, size_t struct_size, const void *defaults, size_t known_size);

/* Number of online CPUs (>= 1). */
int pg__cpu_count(void);

/* UTF-8 at s[0]: the length of a valid sequence (1..4), 0 if the bytes there are invalid
 * (overlong forms, surrogates and code points past U+10FFFF included), -1 if they are a valid
 * but incomplete start (n too short). */
int pg__utf8_check(const unsigned char *s, size_t n);
/* The same, with incomplete treated as invalid: 1..4, or 0. */
size_t pg__utf8_valid_prefix(const unsigned char *s, size_t n);

/* Returns from the calling function when `expr` (a pg_status) is not PG_OK. */
#define PG__TRY(expr)                                                                      \
    do {                                                                                   \
        pg_status pg__try_status_ = (expr);                                                \
        if (pg__try_status_ != PG_OK) {                                                    \
            return pg__try_status_;                                                        \
        }                                                                                  \
    } while (0)

/* bf16/f16 <-> f32 scalar conversions. */
static inline float pg__bf16_to_f32(uint16_t h)
{
    union {
        uint32_t u;
        float f;
    } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}
static inline uint16_t pg__f32_to_bf16(float f)
{
    union {
        uint32_t u;
        float f;
    } v;
    v.f = f;
    if ((v.u & 0x7fffffffu) > 0x7f800000u) { /* NaN: keep it a NaN */
        return (uint16_t)((v.u >> 16) | 0x40u);
    }
    return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16); /* round to nearest even */
}
float pg__f16_to_f32(uint16_t h);
uint16_t pg__f32_to_f16(float f);

#endif /* PG_CORE_H */
