/*
 * backend/quant/quant_cache: the quantized-weight cache file (see quant_cache.h and
 * docs/quantization.md for the format).
 *
 * File layout (all integers little-endian):
 *   [0, 128)      header: magic "PGQCACHE", format version, endian mark, dtype, block-layout
 *                 version, key, tensor count, index offset/size/xxh64, data offset, file size
 *   [128, ...)    index: per tensor {u32 name_len, u32 0, i64 rows, i64 cols, u64 offset,
 *                 u64 size} followed by the name, padded to 8 bytes
 *   data_offset   (page-aligned) the tensors, each at a 64-byte aligned offset, in the
 *                 quant.h layout of pg__quant_size(dtype, rows, cols) bytes
 */
#include "backend/quant/quant_cache.h"

#include "backend/quant.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define QC_MAGIC "PGQCACHE"
#define QC_VERSION 1u
#define QC_ENDIAN 0x01020304u
/* Bump when the quant.h block layout changes: older caches then read as stale. */
#define QC_LAYOUT 1u
#define QC_HEADER_SIZE 128u
#define QC_DATA_ALIGN 4096u
#define QC_TENSOR_ALIGN 64u
#define QC_MAX_NAME 4096u
#define QC_MAX_TENSORS 1000000u
/* Largest safetensors header hashed into the key (the reader's own cap). */
#define QC_MAX_ST_HEADER ((uint64_t)100 * 1024 * 1024)

typedef struct qc_header {
    char magic[8];
    uint32_t version, endian, dtype, layout;
    uint64_t key, n_tensors, index_offset, index_size, index_hash, data_offset, file_size;
    uint8_t reserved[QC_HEADER_SIZE - 8 - 4 * 4 - 7 * 8];
} qc_header;

typedef struct qc_entry_head {
    uint32_t name_len, zero;
    int64_t rows, cols;
    uint64_t offset, size;
} qc_entry_head;

typedef struct qc_entry {
    const char *name; /* inside the map, not NUL-terminated */
    uint32_t name_len;
    int64_t rows, cols;
    const void *data;
} qc_entry;

struct pg__qcache {
    void *map;
    size_t size;
    qc_entry *entries;
    size_t n;
};

_Static_assert(sizeof(qc_header) == QC_HEADER_SIZE, "cache header size");
_Static_assert(sizeof(qc_entry_head) == 40, "cache index entry size");

static const char *dtype_tag(pg__dtype dt)
{
    return dt == PG__Q4 ? "q4" : "q8";
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

/* ---- key -------------------------------------------------------------------------------- */

typedef struct shard_id {
    uint64_t size, mtime_s, mtime_ns, name_hash, header_hash;
} shard_id;

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Hashes the 8-byte length and the JSON header of a safetensors file (at most the cap). */
static pg_status hash_st_header(int fd, const char *path, uint64_t file_size, uint64_t *out)
{
    uint8_t len8[8] = { 0 };
    uint64_t n = 0;
    if (file_size >= 8) {
        if (pread(fd, len8, 8, 0) != 8) {
            return pg__error(PG_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
        }
        for (int i = 7; i >= 0; i--) {
            n = n << 8 | len8[i];
        }
    }
    uint64_t take = n > file_size - (file_size >= 8 ? 8 : file_size) ? 0 : n;
    take = take > QC_MAX_ST_HEADER ? QC_MAX_ST_HEADER : take;
    uint8_t *buf = pg__malloc((size_t)take + 8);
    if (!buf) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    memcpy(buf, len8, 8);
    if (take && pread(fd, buf + 8, (size_t)take, 8) != (ssize_t)take) {
        free(buf);
        return pg__error(PG_ERR_IO, "%s: cannot read the header", path);
    }
    *out = XXH3_64bits(buf, (size_t)take + 8);
    free(buf);
    return PG_OK;
}

pg_status pg__qcache_key(const char *const *shard_paths, size_t n, pg__dtype dt, uint64_t *key)
{
    if (!shard_paths || !key || n == 0 || n > 100000 || (dt != PG__Q8 && dt != PG__Q4)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "quant cache key: bad arguments");
    }
    shard_id *ids = pg__calloc(n, sizeof *ids);
    if (!ids) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    pg_status st = PG_OK;
    for (size_t i = 0; i < n && st == PG_OK; i++) {
        int fd = open(shard_paths[i], O_RDONLY | O_CLOEXEC);
        struct stat sb;
        if (fd < 0 || fstat(fd, &sb) != 0) {
            st = pg__error(PG_ERR_IO, "%s: %s", shard_paths[i], strerror(errno));
        } else {
            const char *bn = base_name(shard_paths[i]);
            ids[i] = (shard_id){ (uint64_t)sb.st_size, (uint64_t)sb.st_mtim.tv_sec,
                                 (uint64_t)sb.st_mtim.tv_nsec, XXH3_64bits(bn, strlen(bn)), 0 };
            st = hash_st_header(fd, shard_paths[i], (uint64_t)sb.st_size, &ids[i].header_hash);
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    if (st == PG_OK) {
        uint64_t seed = (uint64_t)dt << 32 | QC_VERSION << 16 | QC_LAYOUT;
        *key = XXH3_64bits_withSeed(ids, n * sizeof *ids, seed);
    }
    free(ids);
    return st;
}

char *pg__qcache_path(const char *model_dir, pg__dtype dt, uint64_t key, bool fallback)
{
    char name[96];
    if (!fallback) {
        snprintf(name, sizeof name, "model.%s.pgcache", dtype_tag(dt));
        return model_dir ? pg__path_join(model_dir, name) : NULL;
    }
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[4096];
    int len;
    if (xdg && xdg[0] == '/') {
        len = snprintf(dir, sizeof dir, "%s/paligemma", xdg);
    } else if (home && home[0] == '/') {
        len = snprintf(dir, sizeof dir, "%s/.cache/paligemma", home);
    } else {
        return NULL;
    }
    if (len < 0 || (size_t)len >= sizeof dir) {
        return NULL;
    }
    snprintf(name, sizeof name, "%016llx.%s.pgcache", (unsigned long long)key, dtype_tag(dt));
    return pg__path_join(dir, name);
}

/* ---- reading ---------------------------------------------------------------------------- */

static pg_status check_header(const qc_header *h, const char *path, uint64_t key, pg__dtype dt,
                              uint64_t file_size)
{
    if (memcmp(h->magic, QC_MAGIC, 8) != 0 || h->endian != QC_ENDIAN) {
        return pg__error(PG_ERR_FORMAT, "%s: not a quantized-weight cache", path);
    }
    if (h->version != QC_VERSION || h->layout != QC_LAYOUT || h->dtype != (uint32_t)dt ||
        h->key != key) {
        return pg__error(PG_ERR_FORMAT, "%s: stale cache (made from another checkpoint, type or "
                         "library version)", path);
    }
    if (h->file_size != file_size || h->n_tensors > QC_MAX_TENSORS ||
        h->index_offset != QC_HEADER_SIZE || h->index_size > file_size ||
        h->index_offset + h->index_size > h->data_offset || h->data_offset > file_size ||
        h->data_offset % QC_DATA_ALIGN != 0) {
        return pg__error(PG_ERR_FORMAT, "%s: damaged cache (sizes do not add up)", path);
    }
    return PG_OK;
}

/* Reads and checks every index entry against the file. */
static pg_status parse_index(pg__qcache *c, const qc_header *h, const char *path, pg__dtype dt)
{
    const uint8_t *base = c->map, *p = base + h->index_offset, *end = p + h->index_size;
    if (XXH3_64bits(p, (size_t)h->index_size) != h->index_hash) {
        return pg__error(PG_ERR_FORMAT, "%s: damaged cache (index checksum)", path);
    }
    c->entries = pg__calloc((size_t)h->n_tensors ? (size_t)h->n_tensors : 1, sizeof *c->entries);
    if (!c->entries) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    for (uint64_t i = 0; i < h->n_tensors; i++) {
        qc_entry_head e;
        if ((size_t)(end - p) < sizeof e) {
            return pg__error(PG_ERR_FORMAT, "%s: damaged cache (index truncated)", path);
        }
        memcpy(&e, p, sizeof e);
        p += sizeof e;
        uint64_t name_room = align_up(e.name_len, 8);
        if (e.name_len == 0 || e.name_len > QC_MAX_NAME || (uint64_t)(end - p) < name_room ||
            e.rows <= 0 || e.cols <= 0 || e.size != pg__quant_size(dt, e.rows, e.cols) ||
            e.size == 0 || e.offset % QC_TENSOR_ALIGN != 0 || e.offset < h->data_offset ||
            e.offset > h->file_size || e.size > h->file_size - e.offset) {
            return pg__error(PG_ERR_FORMAT, "%s: damaged cache (index entry %llu)", path,
                             (unsigned long long)i);
        }
        c->entries[i] = (qc_entry){ (const char *)p, e.name_len, e.rows, e.cols,
                                    base + e.offset };
        p += name_room;
        c->n++;
    }
    return PG_OK;
}

pg_status pg__qcache_open(pg__qcache **out, const char *path, uint64_t key, pg__dtype dt)
{
    if (!out || !path) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "quant cache open: bad arguments");
    }
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return pg__error(errno == ENOENT ? PG_ERR_NOT_FOUND : PG_ERR_IO, "%s: %s", path,
                         strerror(errno));
    }
    struct stat sb;
    qc_header h;
    pg_status st = PG_OK;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = pg__error(PG_ERR_IO, "%s: not a regular file", path);
    } else if ((uint64_t)sb.st_size < QC_HEADER_SIZE || (uint64_t)sb.st_size > SIZE_MAX ||
               pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) {
        st = pg__error(PG_ERR_FORMAT, "%s: too short for a quantized-weight cache", path);
    } else {
        st = check_header(&h, path, key, dt, (uint64_t)sb.st_size);
    }
    pg__qcache *c = NULL;
    if (st == PG_OK && !(c = pg__calloc(1, sizeof *c))) {
        st = PG_ERR_OUT_OF_MEMORY;
    }
    if (st == PG_OK) {
        c->size = (size_t)sb.st_size;
        c->map = pg__map_file(fd, c->size);
        if (c->map == MAP_FAILED) {
            c->map = NULL;
            st = pg__error(PG_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        } else {
            st = parse_index(c, &h, path, dt);
        }
    }
    close(fd);
    if (st != PG_OK) {
        pg__qcache_close(c);
        return st;
    }
    *out = c;
    return PG_OK;
}

const void *pg__qcache_find(const pg__qcache *c, const char *name, int64_t rows, int64_t cols)
{
    size_t len = name ? strlen(name) : 0;
    for (size_t i = 0; c && i < c->n; i++) {
        const qc_entry *e = &c->entries[i];
        if (e->name_len == len && !memcmp(e->name, name, len)) {
            return e->rows == rows && e->cols == cols ? e->data : NULL;
        }
    }
    return NULL;
}

size_t pg__qcache_size(const pg__qcache *c)
{
    return c ? c->size : 0;
}

void pg__qcache_close(pg__qcache *c)
{
    if (c) {
        if (c->map) {
            munmap(c->map, c->size);
        }
        free(c->entries);
        free(c);
    }
}

/* ---- writing ---------------------------------------------------------------------------- */

static pg_status write_all(int fd, const void *buf, size_t n, uint64_t off, const char *path)
{
    const uint8_t *p = buf;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? (size_t)1 << 30 : n;
        ssize_t w = pwrite(fd, p, chunk, (off_t)off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return pg__error(PG_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        }
        p += w;
        off += (uint64_t)w;
        n -= (size_t)w;
    }
    return PG_OK;
}

/* Builds the header and index in memory; entry offsets laid out from data_offset. */
static pg_status build_index(uint64_t key, pg__dtype dt, const pg__tensor *const *t, size_t n,
                             qc_header *h, uint8_t **index, uint64_t **offsets)
{
    uint64_t index_size = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = t[i]->name ? strlen(t[i]->name) : 0;
        if (t[i]->dtype != dt || len == 0 || len > QC_MAX_NAME ||
            pg__quant_size(dt, t[i]->rows, t[i]->cols) == 0 || !t[i]->data) {
            return pg__error(PG_ERR_INVALID_ARGUMENT, "quant cache: tensor %zu is not a named "
                             "%s tensor", i, dtype_tag(dt));
        }
        index_size += sizeof(qc_entry_head) + align_up(len, 8);
    }
    *index = pg__calloc((size_t)index_size ? (size_t)index_size : 1, 1);
    *offsets = pg__calloc(n ? n : 1, sizeof **offsets);
    if (!*index || !*offsets) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    memset(h, 0, sizeof *h);
    memcpy(h->magic, QC_MAGIC, 8);
    h->version = QC_VERSION;
    h->endian = QC_ENDIAN;
    h->dtype = (uint32_t)dt;
    h->layout = QC_LAYOUT;
    h->key = key;
    h->n_tensors = n;
    h->index_offset = QC_HEADER_SIZE;
    h->index_size = index_size;
    h->data_offset = align_up(QC_HEADER_SIZE + index_size, QC_DATA_ALIGN);
    uint64_t off = h->data_offset;
    uint8_t *p = *index;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(t[i]->name);
        qc_entry_head e = { (uint32_t)len, 0, t[i]->rows, t[i]->cols, off,
                            pg__quant_size(dt, t[i]->rows, t[i]->cols) };
        memcpy(p, &e, sizeof e);
        memcpy(p + sizeof e, t[i]->name, len);
        p += sizeof e + align_up(len, 8);
        (*offsets)[i] = off;
        off = align_up(off + e.size, QC_TENSOR_ALIGN);
    }
    h->file_size = off;
    h->index_hash = XXH3_64bits(*index, (size_t)index_size);
    return PG_OK;
}

static atomic_uint tmp_counter;

pg_status pg__qcache_write(const char *path, uint64_t key, pg__dtype dt,
                           const pg__tensor *const *tensors, size_t n)
{
    if (!path || (!tensors && n) || (dt != PG__Q8 && dt != PG__Q4)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "quant cache write: bad arguments");
    }
    qc_header h;
    uint8_t *index = NULL;
    uint64_t *offsets = NULL;
    pg_status st = build_index(key, dt, tensors, n, &h, &index, &offsets);
    char *tmp = NULL;
    int fd = -1;
    if (st == PG_OK) {
        size_t len = strlen(path) + 64;
        tmp = pg__malloc(len);
        if (!tmp) {
            st = PG_ERR_OUT_OF_MEMORY;
        } else {
            snprintf(tmp, len, "%s.tmp.%ld.%u", path, (long)getpid(),
                     atomic_fetch_add(&tmp_counter, 1u));
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            if (fd < 0) {
                st = pg__error(PG_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
            }
        }
    }
    if (st == PG_OK) {
        st = write_all(fd, &h, sizeof h, 0, tmp);
    }
    if (st == PG_OK) {
        st = write_all(fd, index, (size_t)h.index_size, QC_HEADER_SIZE, tmp);
    }
    for (size_t i = 0; st == PG_OK && i < n; i++) {
        st = write_all(fd, tensors[i]->data, pg__quant_size(dt, tensors[i]->rows, tensors[i]->cols),
                       offsets[i], tmp);
    }
    if (st == PG_OK && ftruncate(fd, (off_t)h.file_size) != 0) { /* trailing alignment */
        st = pg__error(PG_ERR_IO, "%s: %s", tmp, strerror(errno));
    }
    if (st == PG_OK && fsync(fd) != 0) {
        st = pg__error(PG_ERR_IO, "%s: sync failed: %s", tmp, strerror(errno));
    }
    if (fd >= 0 && close(fd) != 0 && st == PG_OK) {
        st = pg__error(PG_ERR_IO, "%s: %s", tmp, strerror(errno));
    }
    if (st == PG_OK && rename(tmp, path) != 0) {
        st = pg__error(PG_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    }
    if (st != PG_OK && fd >= 0) {
        unlink(tmp);
    }
    free(tmp);
    free(index);
    free(offsets);
    return st;
}

/* ---- the loader's one call -------------------------------------------------------------- */

/* Points every slot into the cache; false (slots untouched) unless the cache has them all. */
static bool bind_all(const pg__qcache *c, pg__dtype dt, pg__tensor *const *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!pg__qcache_find(c, t[i]->name, t[i]->rows, t[i]->cols)) {
            return false;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const void *data = pg__qcache_find(c, t[i]->name, t[i]->rows, t[i]->cols);
        pg__quant_tensor_init(t[i], dt, t[i], data);
    }
    return true;
}

static int mkdir_parents(const char *path)
{
    char *dir = pg__strdup(path);
    if (!dir) {
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0';
    }
    for (char *p = dir + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            (void)mkdir(dir, 0755);
            *p = '/';
        }
    }
    int rc = mkdir(dir, 0755) == 0 || errno == EEXIST ? 0 : -1;
    free(dir);
    return rc;
}

pg_status pg__qcache_load_or_build(pg__qcache **out, const char *model_dir,
                                   const char *const *shard_paths, size_t n_shards,
                                   pg__dtype dt, pg__tensor *const *tensors, size_t n,
                                   pg_status (*build)(void *user), void *user, uint32_t flags)
{
    if (!out || !model_dir || !build || (!tensors && n)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "quant cache: bad arguments");
    }
    *out = NULL;
    uint64_t key = 0;
    bool have_key = pg__qcache_key(shard_paths, n_shards, dt, &key) == PG_OK;
    int n_paths = flags & PG__QCACHE_NO_FALLBACK ? 1 : 2;
    for (int i = 0; have_key && !(flags & PG__QCACHE_NO_READ) && i < n_paths; i++) {
        char *path = pg__qcache_path(model_dir, dt, key, i == 1);
        pg__qcache *c = NULL;
        if (path && pg__qcache_open(&c, path, key, dt) == PG_OK && bind_all(c, dt, tensors, n)) {
            free(path);
            pg__error_clear();
            *out = c;
            return PG_OK;
        }
        pg__qcache_close(c);
        free(path);
    }
    pg__error_clear(); /* a missing or stale cache is not an error */
    pg_status st = build(user);
    if (st != PG_OK || !have_key || (flags & PG__QCACHE_NO_WRITE)) {
        return st;
    }
    /* Best effort: next to the model, else in the user's cache folder. */
    for (int i = 0; i < n_paths; i++) {
        char *path = pg__qcache_path(model_dir, dt, key, i == 1);
        bool ok = path && (i == 0 || mkdir_parents(path) == 0) &&
                  pg__qcache_write(path, key, dt, (const pg__tensor *const *)tensors, n) == PG_OK;
        free(path);
        if (ok) {
            break;
        }
    }
    pg__error_clear();
    return PG_OK;
}
