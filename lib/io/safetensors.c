/* Safetensors reader: mmap, header parsing with jansson, validation (see safetensors.h). */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *name;
    size_t size;
} dtype_table[] = {
    [PG__ST_BOOL] = { "BOOL", 1 },      [PG__ST_U8] = { "U8", 1 },
    [PG__ST_I8] = { "I8", 1 },          [PG__ST_F8_E4M3] = { "F8_E4M3", 1 },
    [PG__ST_F8_E5M2] = { "F8_E5M2", 1 }, [PG__ST_I16] = { "I16", 2 },
    [PG__ST_U16] = { "U16", 2 },        [PG__ST_F16] = { "F16", 2 },
    [PG__ST_BF16] = { "BF16", 2 },      [PG__ST_I32] = { "I32", 4 },
    [PG__ST_U32] = { "U32", 4 },        [PG__ST_F32] = { "F32", 4 },
    [PG__ST_I64] = { "I64", 8 },        [PG__ST_U64] = { "U64", 8 },
    [PG__ST_F64] = { "F64", 8 },
};
#define N_DTYPES (sizeof dtype_table / sizeof dtype_table[0])

const char *pg__st_dtype_name(pg__st_dtype dt)
{
    return (size_t)dt < N_DTYPES ? dtype_table[dt].name : "?";
}

size_t pg__st_dtype_size(pg__st_dtype dt)
{
    return (size_t)dt < N_DTYPES ? dtype_table[dt].size : 0;
}

static bool dtype_from_name(const char *s, pg__st_dtype *dt)
{
    for (size_t i = 0; i < N_DTYPES; i++) {
        if (strcmp(s, dtype_table[i].name) == 0) {
            *dt = (pg__st_dtype)i;
            return true;
        }
    }
    return false;
}

static void free_tensors(pg__st_file *f)
{
    for (size_t i = 0; i < f->n_tensors; i++) {
        free(f->tensors[i].name);
    }
    free(f->tensors);
    f->tensors = NULL;
    f->n_tensors = 0;
}

void pg__st_close(pg__st_file *f)
{
    if (!f) {
        return;
    }
    free_tensors(f);
    if (f->map) {
        munmap(f->map, f->map_size);
    }
    free(f->path);
    free(f);
}

const pg__st_tensor *pg__st_find(const pg__st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n_tensors; i++) {
        if (strcmp(f->tensors[i].name, name) == 0) {
            return &f->tensors[i];
        }
    }
    return NULL;
}

/* A JSON integer in [0, INT64_MAX]; false for anything else (reals, negatives, strings). */
static bool json_u63(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return false;
    }
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* Shape: an array of at most PG__ST_MAX_DIMS non-negative integers; the element count must
 * not overflow 64 bits. */
static pg_status parse_shape(pg__st_tensor *t, const json_t *shape, const char *path)
{
    if (!json_is_array(shape)) {
        return pg__error(PG_ERR_FORMAT, "%s: tensor '%s': \"shape\" is not an array", path,
                         t->name);
    }
    size_t nd = json_array_size(shape);
    if (nd > PG__ST_MAX_DIMS) {
        return pg__error(PG_ERR_UNSUPPORTED, "%s: tensor '%s' has %zu dimensions (at most %d)",
                         path, t->name, nd, PG__ST_MAX_DIMS);
    }
    uint64_t count = 1;
    for (size_t i = 0; i < nd; i++) {
        uint64_t d;
        if (!json_u63(json_array_get(shape, i), &d)) {
            return pg__error(PG_ERR_FORMAT,
                             "%s: tensor '%s': shape[%zu] is not a non-negative integer", path,
                             t->name, i);
        }
        if (__builtin_mul_overflow(count, d, &count)) {
            return pg__error(PG_ERR_FORMAT, "%s: tensor '%s': element count overflows", path,
                             t->name);
        }
        t->shape[i] = (int64_t)d;
    }
    t->ndim = (int32_t)nd;
    t->n_elements = count;
    return PG_OK;
}

/* One header entry: {"dtype": "BF16", "shape": [...], "data_offsets": [begin, end]}. */
static pg_status parse_entry(pg__st_tensor *t, const json_t *v, uint64_t data_size,
                             const char *path)
{
    if (!json_is_object(v)) {
        return pg__error(PG_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", path,
                         t->name);
    }
    const json_t *dtype = json_object_get(v, "dtype");
    if (!json_is_string(dtype)) {
        return pg__error(PG_ERR_FORMAT, "%s: tensor '%s': \"dtype\" missing or not a string",
                         path, t->name);
    }
    if (!dtype_from_name(json_string_value(dtype), &t->dtype)) {
        return pg__error(PG_ERR_FORMAT, "%s: tensor '%s': unknown dtype \"%s\"", path, t->name,
                         json_string_value(dtype));
    }
    pg_status st = parse_shape(t, json_object_get(v, "shape"), path);
    if (st != PG_OK) {
        return st;
    }
    const json_t *offs = json_object_get(v, "data_offsets");
    if (!json_is_array(offs) || json_array_size(offs) != 2 ||
        !json_u63(json_array_get(offs, 0), &t->begin) ||
        !json_u63(json_array_get(offs, 1), &t->end)) {
        return pg__error(PG_ERR_FORMAT,
                         "%s: tensor '%s': \"data_offsets\" must be two non-negative integers",
                         path, t->name);
    }
    if (t->begin > t->end || t->end > data_size) {
        return pg__error(PG_ERR_FORMAT,
                         "%s: tensor '%s': data_offsets [%llu, %llu] lie outside the data "
                         "buffer of %llu bytes",
                         path, t->name, (unsigned long long)t->begin,
                         (unsigned long long)t->end, (unsigned long long)data_size);
    }
    uint64_t bytes;
    if (__builtin_mul_overflow(t->n_elements, (uint64_t)pg__st_dtype_size(t->dtype), &bytes)) {
        return pg__error(PG_ERR_FORMAT, "%s: tensor '%s': byte size of %s x %llu elements "
                         "overflows", path, t->name, pg__st_dtype_name(t->dtype),
                         (unsigned long long)t->n_elements);
    }
    if (bytes != t->end - t->begin) {
        return pg__error(PG_ERR_FORMAT,
                         "%s: tensor '%s': data_offsets span %llu bytes but %s x %llu elements "
                         "need %llu",
                         path, t->name, (unsigned long long)(t->end - t->begin),
                         pg__st_dtype_name(t->dtype), (unsigned long long)t->n_elements,
                         (unsigned long long)bytes);
    }
    return PG_OK;
}

static int cmp_by_begin(const void *a, const void *b)
{
    const pg__st_tensor *x = *(const pg__st_tensor *const *)a;
    const pg__st_tensor *y = *(const pg__st_tensor *const *)b;
    if (x->begin != y->begin) {
        return x->begin < y->begin ? -1 : 1;
    }
    return x->end < y->end ? -1 : x->end > y->end;
}

/* No two non-empty tensors may share bytes (a writer bug or a crafted file). */
static pg_status check_overlaps(const pg__st_file *f)
{
    if (f->n_tensors < 2) {
        return PG_OK;
    }
    const pg__st_tensor **order = pg__malloc_array(f->n_tensors, sizeof *order);
    if (!order) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    for (size_t i = 0; i < f->n_tensors; i++) {
        order[i] = &f->tensors[i];
    }
    qsort(order, f->n_tensors, sizeof *order, cmp_by_begin);
    pg_status st = PG_OK;
    const pg__st_tensor *prev = NULL;
    for (size_t i = 0; i < f->n_tensors && st == PG_OK; i++) {
        const pg__st_tensor *t = order[i];
        if (t->begin == t->end) {
            continue;
        }
        if (prev && t->begin < prev->end) {
            st = pg__error(PG_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap in the data buffer",
                           f->path, prev->name, t->name);
        }
        if (!prev || t->end > prev->end) {
            prev = t;
        }
    }
    free(order);
    return st;
}

/* Parses the JSON header text and fills f->tensors (data pointers relative to f->data). */
static pg_status parse_header_json(pg__st_file *f, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        return pg__error(PG_ERR_FORMAT, "%s: header is not valid JSON (line %d, column %d: %s)",
                         f->path, jerr.line, jerr.column, jerr.text);
    }
    pg_status st = PG_OK;
    if (!json_is_object(root)) {
        st = pg__error(PG_ERR_FORMAT, "%s: header is not a JSON object", f->path);
        goto done;
    }
    f->tensors = pg__calloc(json_object_size(root), sizeof *f->tensors);
    if (!f->tensors) {
        st = PG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(value)) {
                st = pg__error(PG_ERR_FORMAT, "%s: \"__metadata__\" is not a JSON object",
                               f->path);
                goto done;
            }
            continue;
        }
        if (key[0] == '\0') {
            st = pg__error(PG_ERR_FORMAT, "%s: a tensor has an empty name", f->path);
            goto done;
        }
        pg__st_tensor *t = &f->tensors[f->n_tensors];
        t->name = pg__strdup(key);
        if (!t->name) {
            st = PG_ERR_OUT_OF_MEMORY;
            goto done;
        }
        f->n_tensors++;
        st = parse_entry(t, value, f->data_size, f->path);
        if (st != PG_OK) {
            goto done;
        }
        t->data = f->data + t->begin;
    }
    st = check_overlaps(f);
done:
    json_decref(root);
    return st;
}

/* Checks the 8-byte header length against the file size and the cap; sets the sizes. */
static pg_status check_framing(pg__st_file *f, const uint8_t len8[8], uint64_t size)
{
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) {
        n = (n << 8) | len8[i];
    }
    if (n > size - 8) {
        return pg__error(PG_ERR_FORMAT,
                         "%s: header length %llu is larger than the file (%llu bytes): "
                         "truncated or not a safetensors file",
                         f->path, (unsigned long long)n, (unsigned long long)size);
    }
    if (n > PG__ST_MAX_HEADER) {
        return pg__error(PG_ERR_LIMIT, "%s: header length %llu exceeds the limit of %llu bytes",
                         f->path, (unsigned long long)n, (unsigned long long)PG__ST_MAX_HEADER);
    }
    if (n < 2) {
        return pg__error(PG_ERR_FORMAT, "%s: header of %llu bytes cannot hold a JSON object",
                         f->path, (unsigned long long)n);
    }
    f->header_size = n;
    f->data_size = size - 8 - n;
    return PG_OK;
}

static pg_status too_short(const pg__st_file *f, uint64_t size)
{
    return pg__error(PG_ERR_FORMAT, "%s: file of %llu bytes is too short for a safetensors "
                     "header", f->path, (unsigned long long)size);
}

/* A complete file image in memory: framing, then the header text in place. */
static pg_status parse_image(pg__st_file *f, const uint8_t *buf, uint64_t size)
{
    if (size < 8) {
        return too_short(f, size);
    }
    pg_status st = check_framing(f, buf, size);
    if (st != PG_OK) {
        return st;
    }
    f->data = buf + 8 + f->header_size;
    return parse_header_json(f, (const char *)buf + 8, (size_t)f->header_size);
}

static pg__st_file *new_file(const char *path)
{
    pg__st_file *f = pg__calloc(1, sizeof *f);
    if (f) {
        f->path = pg__strdup(path ? path : "(memory)");
        if (!f->path) {
            free(f);
            f = NULL;
        }
    }
    return f;
}

pg_status pg__st_parse_memory(pg__st_file **out, const void *buf, size_t size,
                              const char *path)
{
    *out = NULL;
    if (!buf && size) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "safetensors image: NULL buffer");
    }
    pg__st_file *f = new_file(path);
    if (!f) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    static const uint8_t empty[1];
    pg_status st = parse_image(f, buf ? buf : empty, size);
    if (st != PG_OK) {
        pg__st_close(f);
        return st;
    }
    *out = f;
    return PG_OK;
}

static pg_status read_at(const pg__st_file *f, int fd, void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return pg__error(PG_ERR_IO, "%s: read failed: %s", f->path,
                             r < 0 ? strerror(errno) : "unexpected end of file");
        }
        done += (size_t)r;
    }
    return PG_OK;
}

/*
 * Reads the header with pread (not through the map: a page fault on the map would make the
 * kernel read around it, megabytes of weights), parses it, then maps the whole file
 * read-only for the tensor data. Opening a file therefore reads only its header.
 */
static pg_status open_fd(pg__st_file *f, int fd)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        return pg__error(PG_ERR_IO, "%s: cannot stat: %s", f->path, strerror(errno));
    }
    if (!S_ISREG(sb.st_mode)) {
        return pg__error(PG_ERR_IO, "%s: not a regular file", f->path);
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 8) {
        return too_short(f, size);
    }
    if (size > (uint64_t)SIZE_MAX) {
        return pg__error(PG_ERR_LIMIT, "%s: file too large to map", f->path);
    }
    uint8_t len8[8];
    pg_status st = read_at(f, fd, len8, 8, 0);
    if (st == PG_OK) {
        st = check_framing(f, len8, size);
    }
    if (st != PG_OK) {
        return st;
    }
    char *text = pg__malloc((size_t)f->header_size);
    if (!text) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    st = read_at(f, fd, text, (size_t)f->header_size, 8);
    if (st == PG_OK) {
        void *map = pg__map_file(fd, (size_t)size);
        if (map == MAP_FAILED) {
            int e = errno;
            st = pg__error(e == ENOMEM ? PG_ERR_OUT_OF_MEMORY : PG_ERR_IO,
                           "%s: cannot map: %s", f->path, strerror(e));
        } else {
            f->map = map;
            f->map_size = (size_t)size;
            f->data = (const uint8_t *)map + 8 + f->header_size;
        }
    }
    if (st == PG_OK) {
        st = parse_header_json(f, text, (size_t)f->header_size);
    }
    free(text);
    return st;
}

pg_status pg__st_open(pg__st_file **out, const char *path)
{
    *out = NULL;
    if (!path) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "safetensors: NULL path");
    }
    pg__st_file *f = new_file(path);
    if (!f) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    pg_status st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        st = pg__error(errno == ENOENT ? PG_ERR_NOT_FOUND : PG_ERR_IO, "%s: cannot open: %s",
                       path, strerror(errno));
    } else {
        st = open_fd(f, fd);
        close(fd); /* the mapping keeps the file alive */
    }
    if (st != PG_OK) {
        pg__st_close(f);
        return st;
    }
    *out = f;
    return PG_OK;
}
