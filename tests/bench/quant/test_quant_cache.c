/*
 * The quantized-weight cache file (backend/quant/quant_cache): write, map and find; a
 * changed checkpoint, a damaged index and a truncated file are rejected; the loader's
 * load-or-build call builds once and maps afterwards.
 */
#include "backend/quant.h"
#include "backend/quant/quant_cache.h"
#include "harness.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define N_T 3

static char tmpdir[256];
static const int64_t shapes[N_T][2] = { { 7, 64 }, { 3, 100 }, { 16, 4304 } };
static const char *names[N_T] = { "layer.0.q_proj.weight", "layer.0.k_proj.weight", "fc2" };

static float src_data[N_T][16 * 4304];
static pg__tensor src[N_T];

static const char *tpath(const char *name)
{
    return pg_test_path(tmpdir, name);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(data, 1, n, f) == n);
        fclose(f);
    }
}

/* A stand-in shard: an 8-byte header length, a JSON header, some data. */
static void make_shard(const char *path, const char *json)
{
    uint8_t buf[512] = { 0 };
    uint64_t n = strlen(json);
    for (int i = 0; i < 8; i++) {
        buf[i] = (uint8_t)(n >> (8 * i));
    }
    memcpy(buf + 8, json, n);
    write_file(path, buf, 8 + n + 64);
}

typedef struct builder {
    int calls;
    pg__tensor *slots[N_T];
    void *bufs[N_T];
} builder;

static pg_status build(void *user)
{
    builder *b = user;
    b->calls++;
    for (int i = 0; i < N_T; i++) {
        size_t size = pg__quant_size(PG__Q8, src[i].rows, src[i].cols);
        b->bufs[i] = malloc(size);
        pg_status st = pg__quantize_rows(PG__Q8, &src[i], b->bufs[i], 0, src[i].rows);
        if (st != PG_OK) {
            return st;
        }
        pg__quant_tensor_init(b->slots[i], PG__Q8, &src[i], b->bufs[i]);
    }
    return PG_OK;
}

static void free_builder(builder *b)
{
    for (int i = 0; i < N_T; i++) {
        free(b->bufs[i]);
        b->bufs[i] = NULL;
    }
}

static void test_load_or_build(const char *const *shards)
{
    pg__tensor slots[N_T], slots2[N_T];
    builder b = { 0 }, b2 = { 0 };
    for (int i = 0; i < N_T; i++) {
        slots[i] = src[i];
        slots2[i] = src[i];
        b.slots[i] = &slots[i];
        b2.slots[i] = &slots2[i];
    }
    pg__qcache *qc = NULL;
    CHECK_OK(pg__qcache_load_or_build(&qc, tmpdir, shards, 1, PG__Q8, b.slots, N_T, build, &b, 0));
    CHECK(qc == NULL && b.calls == 1);
    struct stat sb;
    CHECK(stat(tpath("model.q8.pgcache"), &sb) == 0);

    CHECK_OK(pg__qcache_load_or_build(&qc, tmpdir, shards, 1, PG__Q8, b2.slots, N_T, build, &b2, 0));
    CHECK(qc != NULL && b2.calls == 0);
    for (int i = 0; i < N_T; i++) {
        CHECK(slots2[i].dtype == PG__Q8 && slots2[i].rows == src[i].rows);
        CHECK(memcmp(slots2[i].data, slots[i].data,
                     pg__quant_size(PG__Q8, src[i].rows, src[i].cols)) == 0);
    }
    pg__qcache_close(qc);

    /* NO_READ builds again */
    for (int i = 0; i < N_T; i++) {
        slots2[i] = src[i];
    }
    CHECK_OK(pg__qcache_load_or_build(&qc, tmpdir, shards, 1, PG__Q8, b2.slots, N_T, build, &b2,
                                      PG__QCACHE_NO_READ | PG__QCACHE_NO_WRITE));
    CHECK(qc == NULL && b2.calls == 1);
    free_builder(&b);
    free_builder(&b2);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pg_qcache_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        return pg_test_skip("cannot make a temporary folder");
    }
    setenv("XDG_CACHE_HOME", tmpdir, 1); /* never touch the user's cache */
    uint64_t s = 12345;
    for (int i = 0; i < N_T; i++) {
        for (int64_t k = 0; k < shapes[i][0] * shapes[i][1]; k++) {
            s = s * 6364136223846793005u + 1442695040888963407u;
            src_data[i][k] = (float)((int64_t)(s >> 40) - (1 << 23)) / (float)(1 << 23);
        }
        src[i] = (pg__tensor){ PG__F32, shapes[i][0], shapes[i][1], src_data[i], 2,
                               { shapes[i][0], shapes[i][1], 0, 0 }, names[i] };
    }
    char shard[512];
    snprintf(shard, sizeof shard, "%s", tpath("model.safetensors"));
    make_shard(shard, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}");
    const char *shards[1] = { shard };

    uint64_t key, key4;
    CHECK_OK(pg__qcache_key(shards, 1, PG__Q8, &key));
    CHECK_OK(pg__qcache_key(shards, 1, PG__Q4, &key4));
    CHECK(key != key4);

    /* write and map */
    void *bufs[N_T];
    pg__tensor q[N_T];
    const pg__tensor *qp[N_T];
    for (int i = 0; i < N_T; i++) {
        bufs[i] = malloc(pg__quant_size(PG__Q8, src[i].rows, src[i].cols));
        CHECK_OK(pg__quantize_rows(PG__Q8, &src[i], bufs[i], 0, src[i].rows));
        pg__quant_tensor_init(&q[i], PG__Q8, &src[i], bufs[i]);
        qp[i] = &q[i];
    }
    char *path = pg__qcache_path(tmpdir, PG__Q8, key, false);
    CHECK(path != NULL && strstr(path, "model.q8.pgcache") != NULL);
    CHECK_OK(pg__qcache_write(path, key, PG__Q8, qp, N_T));
    pg__qcache *c = NULL;
    CHECK_OK(pg__qcache_open(&c, path, key, PG__Q8));
    for (int i = 0; c && i < N_T; i++) {
        const void *d = pg__qcache_find(c, names[i], src[i].rows, src[i].cols);
        CHECK(d != NULL && ((uintptr_t)d % 64) == 0);
        CHECK(d && memcmp(d, bufs[i], pg__quant_size(PG__Q8, src[i].rows, src[i].cols)) == 0);
    }
    CHECK(pg__qcache_find(c, names[0], 8, 64) == NULL);      /* wrong shape */
    CHECK(pg__qcache_find(c, "layer.0.q_proj", 7, 64) == NULL); /* prefix only */
    pg__qcache_close(c);

    /* the wrong key or type is stale */
    CHECK(pg__qcache_open(&c, path, key + 1, PG__Q8) == PG_ERR_FORMAT && c == NULL);
    CHECK(pg__qcache_open(&c, path, key, PG__Q4) == PG_ERR_FORMAT);
    CHECK(pg__qcache_open(&c, tpath("absent.pgcache"), key, PG__Q8) == PG_ERR_NOT_FOUND);

    /* a touched checkpoint changes the key */
    struct timespec times[2] = { { 1000000, 0 }, { 1000000, 0 } };
    CHECK(utimensat(AT_FDCWD, shard, times, 0) == 0);
    uint64_t key2;
    CHECK_OK(pg__qcache_key(shards, 1, PG__Q8, &key2));
    CHECK(key2 != key);

    /* a damaged index, then a truncated file */
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f) {
        fseek(f, 128 + 40 + 2, SEEK_SET); /* inside the first name */
        fputc('X', f);
        fclose(f);
    }
    CHECK(pg__qcache_open(&c, path, key, PG__Q8) == PG_ERR_FORMAT);
    CHECK_OK(pg__qcache_write(path, key, PG__Q8, qp, N_T));
    CHECK(truncate(path, 5000) == 0);
    CHECK(pg__qcache_open(&c, path, key, PG__Q8) == PG_ERR_FORMAT);
    CHECK(truncate(path, 100) == 0);
    CHECK(pg__qcache_open(&c, path, key, PG__Q8) == PG_ERR_FORMAT);
    unlink(path);
    free(path);

    /* bad arguments */
    pg__tensor plain = src[0];
    const pg__tensor *pp = &plain;
    CHECK(pg__qcache_write(tpath("x.pgcache"), key, PG__Q8, &pp, 1) == PG_ERR_INVALID_ARGUMENT);
    CHECK(pg__qcache_key(shards, 1, PG__BF16, &key2) == PG_ERR_INVALID_ARGUMENT);

    test_load_or_build(shards);

    for (int i = 0; i < N_T; i++) {
        free(bufs[i]);
    }
    unlink(tpath("model.q8.pgcache"));
    unlink(shard);
    rmdir(tmpdir);
    return pg_test_finish();
}
