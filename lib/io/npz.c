/*
 * io/npz: .npz archives through libzip, .npy headers parsed and checked here (npz.h).
 *
 * The .npy format (NumPy's format.py documents it): the magic "\x93NUMPY", a major and minor
 * version byte, a little-endian header length (2 bytes for version 1, 4 for 2 and 3), then
 * that many bytes of a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (128, 512), }
 * padded with spaces and ended by '\n', then the raw array data.
 */
#include "io/npz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define READ_CHUNK ((size_t)1 << 20)
/* Each dimension below 2^40: keeps every product check simple and is far above any mask
 * decoder's needs. */
#define MAX_DIM ((uint64_t)1 << 40)

struct pg__npz {
    zip_t *zip;
    char *what; /* the path, or the caller's name for a memory archive */
    uint64_t max_entry;
};

static pg_status zip_failure(pg_status st, const char *what, zip_error_t *err)
{
    pg_status r = pg__error(st, "%s: %s", what, zip_error_strerror(err));
    zip_error_fini(err);
    return r;
}

/* libzip's open errors mapped to statuses. */
static pg_status open_status(int code)
{
    switch (code) {
    case ZIP_ER_NOENT:
        return PG_ERR_NOT_FOUND;
    case ZIP_ER_OPEN:
    case ZIP_ER_READ:
    case ZIP_ER_SEEK:
        return PG_ERR_IO;
    case ZIP_ER_MEMORY:
        return PG_ERR_OUT_OF_MEMORY;
    default:
        return PG_ERR_FORMAT; /* not a zip, inconsistent, bad CRC, ... */
    }
}

static pg_status wrap(pg__npz **out, zip_t *zip, const char *what, uint64_t max_entry)
{
    pg__npz *z = pg__calloc(1, sizeof *z);
    char *name = pg__strdup(what);
    if (!z || !name) {
        free(z);
        free(name);
        zip_discard(zip);
        return PG_ERR_OUT_OF_MEMORY;
    }
    z->zip = zip;
    z->what = name;
    z->max_entry = max_entry;
    *out = z;
    return PG_OK;
}

pg_status pg__npz_open(pg__npz **out, const char *path)
{
    if (!out || !path) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg__npz_open: NULL argument");
    }
    *out = NULL;
    int code = 0;
    zip_t *zip = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &code);
    if (!zip) {
        zip_error_t err;
        zip_error_init_with_code(&err, code);
        return zip_failure(open_status(code), path, &err);
    }
    return wrap(out, zip, path, PG__NPZ_MAX_ENTRY);
}

pg_status pg__npz_open_memory(pg__npz **out, const void *buf, size_t size, const char *what,
                              uint64_t max_entry)
{
    if (!out || (!buf && size) || !what) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg__npz_open_memory: NULL argument");
    }
    *out = NULL;
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t *src = zip_source_buffer_create(size ? buf : "", size, 0, &err);
    if (!src) {
        return zip_failure(PG_ERR_OUT_OF_MEMORY, what, &err);
    }
    zip_t *zip = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (!zip) {
        zip_source_free(src);
        /* In memory there is no file to miss or fail to read: every failure but memory is
         * a malformed archive (libzip says "No such file" for some, found by fuzzing). */
        const int code = zip_error_code_zip(&err);
        return zip_failure(code == ZIP_ER_MEMORY ? PG_ERR_OUT_OF_MEMORY : PG_ERR_FORMAT, what,
                           &err);
    }
    zip_error_fini(&err);
    return wrap(out, zip, what, max_entry);
}

void pg__npz_close(pg__npz *z)
{
    if (!z) {
        return;
    }
    zip_discard(z->zip);
    free(z->what);
    free(z);
}

size_t pg__npz_count(const pg__npz *z)
{
    zip_int64_t n = z ? zip_get_num_entries(z->zip, 0) : 0;
    return n > 0 ? (size_t)n : 0;
}

const char *pg__npz_entry_name(const pg__npz *z, size_t i)
{
    return z ? zip_get_name(z->zip, (zip_uint64_t)i, 0) : NULL;
}

void pg__npy_free(pg__npy *a)
{
    if (a) {
        free(a->data);
        memset(a, 0, sizeof *a);
    }
}

/* ---- the .npy header: a tiny reader for the dict literal NumPy writes ---- */

typedef struct cursor {
    const char *s;
    size_t len, pos;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->pos < c->len && (c->s[c->pos] == ' ' || c->s[c->pos] == '\t' ||
                               c->s[c->pos] == '\n' || c->s[c->pos] == '\r')) {
        c->pos++;
    }
}

static bool eat(cursor *c, char ch)
{
    skip_ws(c);
    if (c->pos < c->len && c->s[c->pos] == ch) {
        c->pos++;
        return true;
    }
    return false;
}

/* A quoted Python string without escapes ('...' or "..."): sets *str and *n. */
static bool read_string(cursor *c, const char **str, size_t *n)
{
    skip_ws(c);
    if (c->pos >= c->len || (c->s[c->pos] != '\'' && c->s[c->pos] != '"')) {
        return false;
    }
    const char q = c->s[c->pos++];
    const size_t start = c->pos;
    while (c->pos < c->len && c->s[c->pos] != q) {
        if (c->s[c->pos] == '\\') {
            return false;
        }
        c->pos++;
    }
    if (c->pos >= c->len) {
        return false;
    }
    *str = c->s + start;
    *n = c->pos - start;
    c->pos++;
    return true;
}

static bool read_word(cursor *c, const char *word)
{
    skip_ws(c);
    const size_t n = strlen(word);
    if (c->len - c->pos < n || memcmp(c->s + c->pos, word, n) != 0) {
        return false;
    }
    c->pos += n;
    return true;
}

/* A shape tuple: "()", "(5,)", "(128, 512)", "(1, 2, 3,)". */
static bool read_shape(cursor *c, pg__npy *a)
{
    if (!eat(c, '(')) {
        return false;
    }
    a->ndim = 0;
    for (;;) {
        if (eat(c, ')')) {
            return true;
        }
        skip_ws(c);
        if (a->ndim == PG__NPY_MAX_DIMS || c->pos >= c->len || c->s[c->pos] < '0' ||
            c->s[c->pos] > '9') {
            return false;
        }
        uint64_t v = 0;
        while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9') {
            v = v * 10 + (uint64_t)(c->s[c->pos++] - '0');
            if (v > MAX_DIM) {
                return false;
            }
        }
        a->shape[a->ndim++] = v;
        if (!eat(c, ',')) {
            /* no trailing comma: the tuple must end here, and a 1-tuple needs the comma */
            return a->ndim != 1 && eat(c, ')');
        }
    }
}

typedef enum elem_type { ELEM_F32, ELEM_F64, ELEM_F16 } elem_type;

/* The dtype: little-endian float of 2, 4 or 8 bytes. */
static pg_status parse_descr(const char *d, size_t n, const char *what, elem_type *t)
{
    if (n == 3 && (d[0] == '<' || d[0] == '>' || d[0] == '=' || d[0] == '|') && d[1] == 'f' &&
        (d[2] == '2' || d[2] == '4' || d[2] == '8')) {
        if (d[0] == '>') {
            return pg__error(PG_ERR_UNSUPPORTED, "%s: big-endian data ('%.3s')", what, d);
        }
        *t = d[2] == '4' ? ELEM_F32 : d[2] == '8' ? ELEM_F64 : ELEM_F16;
        return PG_OK;
    }
    return pg__error(PG_ERR_UNSUPPORTED, "%s: dtype '%.*s' is not a float (f2, f4, f8)", what,
                     (int)(n > 16 ? 16 : n), d);
}

/* The header dict: exactly the keys descr, fortran_order and shape, in any order. */
static pg_status parse_header(const char *h, size_t len, const char *what, pg__npy *a,
                              elem_type *t)
{
    cursor c = { h, len, 0 };
    bool have_descr = false, have_order = false, have_shape = false;
    if (!eat(&c, '{')) {
        return pg__error(PG_ERR_FORMAT, "%s: .npy header is not a dict", what);
    }
    while (!eat(&c, '}')) {
        const char *key;
        size_t key_len;
        if (!read_string(&c, &key, &key_len) || !eat(&c, ':')) {
            return pg__error(PG_ERR_FORMAT, "%s: .npy header: bad key at byte %zu", what, c.pos);
        }
        if (key_len == 5 && !memcmp(key, "descr", 5) && !have_descr) {
            const char *d;
            size_t n;
            if (!read_string(&c, &d, &n)) {
                return pg__error(PG_ERR_UNSUPPORTED, "%s: .npy descr is not a simple dtype",
                                 what);
            }
            PG__TRY(parse_descr(d, n, what, t));
            have_descr = true;
        } else if (key_len == 13 && !memcmp(key, "fortran_order", 13) && !have_order) {
            if (read_word(&c, "True")) {
                return pg__error(PG_ERR_UNSUPPORTED, "%s: Fortran-order arrays", what);
            }
            if (!read_word(&c, "False")) {
                return pg__error(PG_ERR_FORMAT, "%s: .npy fortran_order is not a bool", what);
            }
            have_order = true;
        } else if (key_len == 5 && !memcmp(key, "shape", 5) && !have_shape) {
            if (!read_shape(&c, a)) {
                return pg__error(PG_ERR_FORMAT, "%s: .npy shape is not a tuple of sizes", what);
            }
            have_shape = true;
        } else {
            return pg__error(PG_ERR_FORMAT, "%s: .npy header: unexpected key '%.*s'", what,
                             (int)(key_len > 32 ? 32 : key_len), key);
        }
        if (!eat(&c, ',')) {
            if (!eat(&c, '}')) {
                return pg__error(PG_ERR_FORMAT, "%s: .npy header: expected ',' or '}'", what);
            }
            break;
        }
    }
    skip_ws(&c);
    if (c.pos != len) {
        return pg__error(PG_ERR_FORMAT, "%s: .npy header: text after the dict", what);
    }
    if (!have_descr || !have_order || !have_shape) {
        return pg__error(PG_ERR_FORMAT, "%s: .npy header lacks %s", what,
                         !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
    }
    return PG_OK;
}

/* Little-endian element k of the data as float. */
static float element(const uint8_t *p, elem_type t, uint64_t k)
{
    if (t == ELEM_F32) {
        float f;
        memcpy(&f, p + k * 4, 4);
        return f;
    }
    if (t == ELEM_F64) {
        double d;
        memcpy(&d, p + k * 8, 8);
        return (float)d;
    }
    uint16_t h;
    memcpy(&h, p + k * 2, 2);
    return pg__f16_to_f32(h);
}

pg_status pg__npy_parse_f32(const uint8_t *buf, size_t size, const char *what, pg__npy *out)
{
    if (!out || (!buf && size) || !what) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg__npy_parse_f32: NULL argument");
    }
    memset(out, 0, sizeof *out);
    if (size < NPY_MAGIC_LEN + 4 || memcmp(buf, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
        return pg__error(PG_ERR_FORMAT, "%s: not a .npy array (bad magic)", what);
    }
    const uint8_t major = buf[6];
    size_t hdr_len, hdr_at;
    if (major == 1) {
        hdr_len = (size_t)buf[8] | (size_t)buf[9] << 8;
        hdr_at = 10;
    } else if ((major == 2 || major == 3) && size >= 12) {
        hdr_len = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 |
                  (size_t)buf[11] << 24;
        hdr_at = 12;
    } else {
        return pg__error(PG_ERR_UNSUPPORTED, "%s: .npy version %u.%u", what, (unsigned)major,
                         (unsigned)buf[7]);
    }
    if (hdr_len > size - hdr_at) {
        return pg__error(PG_ERR_FORMAT, "%s: .npy header length %zu past the end (%zu bytes)",
                         what, hdr_len, size);
    }
    pg__npy a = { 0 };
    elem_type t = ELEM_F32;
    PG__TRY(parse_header((const char *)buf + hdr_at, hdr_len, what, &a, &t));
    const size_t item = t == ELEM_F32 ? 4 : t == ELEM_F64 ? 8 : 2;
    size_t count = 1, bytes;
    for (uint32_t i = 0; i < a.ndim; i++) {
        if (!pg__mul_size(count, (size_t)a.shape[i], &count)) {
            return pg__error(PG_ERR_LIMIT, "%s: .npy shape too large", what);
        }
    }
    const size_t data_at = hdr_at + hdr_len;
    if (!pg__mul_size(count, item, &bytes) || bytes != size - data_at) {
        return pg__error(PG_ERR_FORMAT, "%s: .npy data is %zu bytes, the shape needs %zu%s",
                         what, size - data_at, bytes,
                         bytes > size - data_at ? " (truncated)" : "");
    }
    a.count = count;
    a.data = pg__malloc_array(count ? count : 1, sizeof(float));
    if (!a.data) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    for (uint64_t k = 0; k < count; k++) {
        a.data[k] = element(buf + data_at, t, k);
    }
    *out = a;
    return PG_OK;
}

/* Reads the whole entry `index` of `claimed` bytes (checked against the cap) into *buf, growing
 * the buffer as data arrives so that a lying size cannot make us allocate it up front. */
static pg_status read_entry(pg__npz *z, zip_uint64_t index, uint64_t claimed, const char *name,
                            uint8_t **buf, size_t *size)
{
    *buf = NULL;
    *size = 0;
    if (claimed > z->max_entry) {
        return pg__error(PG_ERR_LIMIT, "%s: entry %s is %llu bytes (cap %llu)", z->what, name,
                         (unsigned long long)claimed, (unsigned long long)z->max_entry);
    }
    zip_file_t *f = zip_fopen_index(z->zip, index, 0);
    if (!f) {
        return pg__error(PG_ERR_FORMAT, "%s: entry %s: %s", z->what, name,
                         zip_strerror(z->zip));
    }
    size_t cap = 0, len = 0;
    uint8_t *data = NULL;
    pg_status st = PG_OK;
    for (;;) {
        if (len == cap) {
            size_t want = cap ? cap * 2 : READ_CHUNK;
            if (want > claimed + 1) {
                want = (size_t)claimed + 1; /* one spare byte to see a longer entry */
            }
            uint8_t *p = pg__realloc(data, want ? want : 1);
            if (!p) {
                st = PG_ERR_OUT_OF_MEMORY;
                break;
            }
            data = p;
            cap = want;
        }
        zip_int64_t n = zip_fread(f, data + len, cap - len);
        if (n < 0) {
            st = pg__error(PG_ERR_FORMAT, "%s: entry %s: %s", z->what, name,
                           zip_file_strerror(f));
            break;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
        if (len > claimed) {
            st = pg__error(PG_ERR_FORMAT, "%s: entry %s holds more than its %llu bytes",
                           z->what, name, (unsigned long long)claimed);
            break;
        }
    }
    zip_fclose(f);
    if (!st && len != claimed) {
        st = pg__error(PG_ERR_FORMAT, "%s: entry %s is %zu bytes, the directory says %llu",
                       z->what, name, len, (unsigned long long)claimed);
    }
    if (st) {
        free(data);
        return st;
    }
    *buf = data;
    *size = len;
    return PG_OK;
}

pg_status pg__npz_read_f32(pg__npz *z, const char *name, pg__npy *out)
{
    if (!z || !name || !out) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg__npz_read_f32: NULL argument");
    }
    memset(out, 0, sizeof *out);
    const size_t n = strlen(name);
    char *entry = pg__malloc(n + 5);
    if (!entry) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    memcpy(entry, name, n);
    memcpy(entry + n, ".npy", 5);
    zip_int64_t index = zip_name_locate(z->zip, entry, 0);
    zip_stat_t zs;
    pg_status st = PG_OK;
    if (index < 0) {
        st = pg__error(PG_ERR_NOT_FOUND, "%s: no array '%s'", z->what, name);
    } else if (zip_stat_index(z->zip, (zip_uint64_t)index, 0, &zs) != 0 ||
               !(zs.valid & ZIP_STAT_SIZE)) {
        st = pg__error(PG_ERR_FORMAT, "%s: entry %s: %s", z->what, entry, zip_strerror(z->zip));
    } else {
        uint8_t *buf = NULL;
        size_t size = 0;
        st = read_entry(z, (zip_uint64_t)index, zs.size, entry, &buf, &size);
        if (!st) {
            char what[512];
            snprintf(what, sizeof what, "%s: %s", z->what, entry);
            st = pg__npy_parse_f32(buf, size, what, out);
        }
        free(buf);
    }
    free(entry);
    return st;
}
