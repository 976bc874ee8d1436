/*
 * Content identities: XXH3-128 of a file's bytes (the resume key, docs/index-schema.md) and
 * of a model's weights (model_id: config.json, each shard's size, header and first / last
 * 64 KiB of tensor data, the weight dtype as used and the backend name).
 */
#include "index/index.h"

#include "core/core.h"
#include "io/safetensors.h"
#include "model/model.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SAMPLE_BYTES (64u * 1024u)

static void to_hex(XXH128_hash_t h, char hex[PG__HEX128])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        hex[2 * i] = digits[c.digest[i] >> 4];
        hex[2 * i + 1] = digits[c.digest[i] & 15];
    }
    hex[32] = '\0';
}

pg_status pg__hash_file(const char *path, char hex[PG__HEX128])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return pg__error(PG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    XXH3_state_t *state = XXH3_createState();
    unsigned char *buf = pg__malloc(1u << 20);
    pg_status st = PG_OK;
    if (!state || !buf) {
        st = pg__error(PG_ERR_OUT_OF_MEMORY, "no memory to hash %s", path);
    } else {
        XXH3_128bits_reset(state);
        for (;;) {
            ssize_t n = read(fd, buf, 1u << 20);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                st = pg__error(PG_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
                break;
            }
            if (n == 0) {
                break;
            }
            XXH3_128bits_update(state, buf, (size_t)n);
        }
        if (st == PG_OK) {
            to_hex(XXH3_128bits_digest(state), hex);
        }
    }
    free(buf);
    XXH3_freeState(state);
    close(fd);
    return st;
}

static int by_path(const void *a, const void *b)
{
    const pg__st_file *fa = *(pg__st_file *const *)a, *fb = *(pg__st_file *const *)b;
    return strcmp(fa->path, fb->path);
}

static void hash_le64(XXH3_state_t *s, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(v >> (8 * i));
    }
    XXH3_128bits_update(s, b, 8);
}

static void hash_shard(XXH3_state_t *s, const pg__st_file *f)
{
    hash_le64(s, (uint64_t)f->map_size);
    XXH3_128bits_update(s, f->map, (size_t)(8 + f->header_size));
    size_t take = f->data_size < SAMPLE_BYTES ? (size_t)f->data_size : SAMPLE_BYTES;
    XXH3_128bits_update(s, f->data, take);
    XXH3_128bits_update(s, f->data + f->data_size - take, take);
}

pg_status pg__model_id(const pg_model *m, char hex[PG__HEX128])
{
    if (!m->n_files || !m->backend) {
        return pg__error(PG_ERR_BAD_STATE, "the model has no weights (tokenizer-only load)");
    }
    for (size_t i = 0; i < m->n_files; i++) {
        if (!m->files[i]->map) {
            return pg__error(PG_ERR_UNSUPPORTED, "model_id needs weights mapped from files");
        }
    }
    char *cfg_path = pg__path_join(m->path, "config.json");
    char *cfg = NULL;
    size_t cfg_size = 0;
    pg_status st = cfg_path ? pg__read_file(cfg_path, 16u << 20, &cfg, &cfg_size)
                            : pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
    free(cfg_path);
    pg__st_file **files = st == PG_OK ? pg__malloc_array(m->n_files, sizeof *files) : NULL;
    XXH3_state_t *s = files ? XXH3_createState() : NULL;
    if (st == PG_OK && !s) {
        st = pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
    }
    if (st == PG_OK) {
        memcpy(files, m->files, m->n_files * sizeof *files);
        qsort(files, m->n_files, sizeof *files, by_path);
        XXH3_128bits_reset(s);
        XXH3_128bits_update(s, cfg, cfg_size);
        for (size_t i = 0; i < m->n_files; i++) {
            hash_shard(s, files[i]);
        }
        unsigned char dt[4];
        for (int i = 0; i < 4; i++) {
            dt[i] = (unsigned char)((uint32_t)m->weight_dtype >> (8 * i));
        }
        XXH3_128bits_update(s, dt, 4);
        const char *be = m->backend->ops->name;
        XXH3_128bits_update(s, be, strlen(be));
        to_hex(XXH3_128bits_digest(s), hex);
    }
    XXH3_freeState(s);
    free(files);
    free(cfg);
    return st;
}

PG_API pg_status pg_index_hash_file(const char *path, char *hex, size_t cap)
{
    if (!path || !hex || cap < PG__HEX128) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "pg_index_hash_file: path and a buffer of 33 bytes are needed");
    }
    pg__error_clear();
    return pg__hash_file(path, hex);
}

PG_API pg_status pg_index_model_id(const pg_model *model, char *hex, size_t cap)
{
    if (!model || !hex || cap < PG__HEX128) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "pg_index_model_id: a model and a buffer of 33 bytes are needed");
    }
    pg__error_clear();
    return pg__model_id(model, hex);
}
