/*
 * The quantized-weight cache as the loader uses it (model/owned.c + backend/quant/
 * quant_cache): on temporary copies of the tiny_b bf16 checkpoint, a Q8/Q4 load writes
 * <dir>/model.q8.pgcache; the next load maps it and gets bit-identical weights; a touched
 * shard makes the cache stale (rebuilt); PG_MODEL_NO_QUANT_CACHE writes nothing; a folder
 * where the cache cannot be written falls back to $XDG_CACHE_HOME/paligemma, and with no
 * writable place at all the load still succeeds with a warning. Misaligned tensors are
 * still copied on a cache hit. Hit/miss is observed through the model's log callback.
 */
#include "harness.h"
#include "model/loader.h"
#include "model_edit.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIXTURE "models/tiny_b/bf16"

typedef struct log_seen {
    int wrote, mapped, warned;
} log_seen;

static void on_log(void *user, int level, const char *msg)
{
    log_seen *s = user;
    s->wrote += strstr(msg, "wrote the quantized-weight cache") != NULL;
    s->mapped += strstr(msg, "mapped from the cache") != NULL;
    s->warned += level == PG_LOG_WARN && strstr(msg, "could not write a quantized") != NULL;
}

static pg_model *load_q(const char *dir, int32_t dt, uint32_t flags, log_seen *seen)
{
    memset(seen, 0, sizeof *seen);
    pg_model_options o;
    PG_MODEL_OPTIONS_INIT(&o);
    o.backend = "ref";
    o.n_threads = 2;
    o.weight_dtype = dt;
    o.flags = flags;
    o.log_fn = on_log;
    o.log_user = seen;
    o.log_level = PG_LOG_DEBUG;
    pg_model *m = NULL;
    CHECK_OK(pg_model_load(&m, dir, &o));
    return m;
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Every slot of b as in a: same type and shape, identical bytes. */
typedef struct cmp_ctx {
    pg__tensor **slots;
    size_t n, cap;
} cmp_ctx;

static pg_status collect(void *user, pg__tensor *t, bool matmul)
{
    (void)matmul;
    cmp_ctx *c = user;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->slots = realloc(c->slots, c->cap * sizeof *c->slots);
    }
    c->slots[c->n++] = t;
    return PG_OK;
}

static void check_same_weights(pg_model *a, pg_model *b)
{
    cmp_ctx ca = { 0 }, cb = { 0 };
    pg__model_foreach_tensor(a, collect, &ca);
    pg__model_foreach_tensor(b, collect, &cb);
    CHECK_EQ_INT(ca.n, cb.n);
    size_t differ = 0;
    for (size_t i = 0; i < ca.n && i < cb.n; i++) {
        const pg__tensor *x = ca.slots[i], *y = cb.slots[i];
        size_t bytes = pg__model_tensor_bytes(x);
        if (x->dtype != y->dtype || x->rows != y->rows || x->cols != y->cols ||
            bytes != pg__model_tensor_bytes(y) || memcmp(x->data, y->data, bytes) != 0) {
            differ++;
        }
    }
    CHECK_MSG(differ == 0, "%zu of %zu tensors differ", differ, ca.n);
    free(ca.slots);
    free(cb.slots);
}

/* Write, hit (identical), stale after a touched shard (rebuilt), hit again. */
static void test_roundtrip(int32_t dt, const char *file)
{
    char *dir = tmp_model_copy(FIXTURE);
    CHECK(dir != NULL);
    if (!dir) {
        return;
    }
    log_seen s;
    pg_model *fresh = load_q(dir, dt, PG_MODEL_NO_QUANT_CACHE, &s);
    CHECK(!exists(in_dir(dir, file)));
    pg_model *first = load_q(dir, dt, 0, &s);
    CHECK(exists(in_dir(dir, file)));
    CHECK_EQ_INT(s.wrote, 1);
    CHECK_EQ_INT(s.mapped, 0);
    pg_model *second = load_q(dir, dt, 0, &s);
    CHECK_EQ_INT(s.mapped, 1);
    CHECK_EQ_INT(s.wrote, 0);
    if (fresh && first && second) {
        CHECK(first->qcache == NULL && second->qcache != NULL);
        CHECK_EQ_INT(second->decoder.layers[0].q_w.dtype, dt);
        CHECK_EQ_INT(second->decoder.lm_head.dtype, dt);
        CHECK_EQ_INT(second->decoder.embed.dtype, PG__BF16);
        CHECK(second->owned == NULL); /* nothing misaligned, everything else mapped */
        check_same_weights(fresh, first);
        check_same_weights(fresh, second);
    }
    pg_model_free(second);

    /* a shard with another modification time: the cache is stale and is rebuilt */
    struct timespec times[2] = { { 0, UTIME_OMIT }, { 1000000000, 123 } };
    CHECK(utimensat(AT_FDCWD, in_dir(dir, "model-00002-of-00002.safetensors"), times, 0) == 0);
    pg_model *third = load_q(dir, dt, 0, &s);
    CHECK_EQ_INT(s.mapped, 0);
    CHECK_EQ_INT(s.wrote, 1);
    pg_model *fourth = load_q(dir, dt, 0, &s);
    CHECK_EQ_INT(s.mapped, 1);
    if (fresh && third && fourth) {
        CHECK(third->qcache == NULL && fourth->qcache != NULL);
        check_same_weights(fresh, fourth);
    }
    pg_model_free(third);
    pg_model_free(fourth);
    pg_model_free(first); /* the first model's mapping outlives the file's replacement */
    pg_model_free(fresh);
    tmp_model_remove(dir);
}

/* A changed weight (same size and header) behind a new mtime: the rebuilt cache has it. */
static void bump_first_byte(st_image *im, void *user)
{
    (void)user;
    im->data[im->data_size - 2] ^= 0x01; /* low mantissa bit of the last bf16 value */
}

static void test_changed_content(void)
{
    char *dir = tmp_model_copy(FIXTURE);
    CHECK(dir != NULL);
    if (!dir) {
        return;
    }
    log_seen s;
    pg_model *before = load_q(dir, PG_DTYPE_Q8, 0, &s);
    CHECK_EQ_INT(s.wrote, 1);
    const char *shard = in_dir(dir, "model-00001-of-00002.safetensors");
    CHECK(st_edit(shard, bump_first_byte, NULL) == 0);
    struct timespec times[2] = { { 0, UTIME_OMIT }, { 1000000001, 0 } };
    CHECK(utimensat(AT_FDCWD, shard, times, 0) == 0);
    pg_model *after = load_q(dir, PG_DTYPE_Q8, 0, &s);
    CHECK_EQ_INT(s.mapped, 0);
    pg_model *fresh = load_q(dir, PG_DTYPE_Q8, PG_MODEL_NO_QUANT_CACHE, &s);
    if (after && fresh) {
        check_same_weights(fresh, after);
    }
    pg_model_free(before);
    pg_model_free(after);
    pg_model_free(fresh);
    tmp_model_remove(dir);
}

static void test_no_cache_flag(void)
{
    char *dir = tmp_model_copy(FIXTURE);
    CHECK(dir != NULL);
    if (!dir) {
        return;
    }
    log_seen s;
    pg_model *m = load_q(dir, PG_DTYPE_Q8, PG_MODEL_NO_QUANT_CACHE, &s);
    CHECK(m != NULL && m->qcache == NULL);
    CHECK(!exists(in_dir(dir, "model.q8.pgcache")));
    CHECK_EQ_INT(s.wrote + s.mapped + s.warned, 0);
    pg_model_free(m);
    /* and it ignores a cache that is there */
    pg_model *w = load_q(dir, PG_DTYPE_Q8, 0, &s);
    CHECK_EQ_INT(s.wrote, 1);
    pg_model *n = load_q(dir, PG_DTYPE_Q8, PG_MODEL_NO_QUANT_CACHE, &s);
    CHECK(n != NULL && n->qcache == NULL);
    CHECK_EQ_INT(s.mapped, 0);
    pg_model_free(w);
    pg_model_free(n);
    tmp_model_remove(dir);
}

static size_t count_caches(const char *folder)
{
    DIR *d = opendir(folder);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        n += strstr(e->d_name, ".q8.pgcache") != NULL;
    }
    if (d) {
        closedir(d);
    }
    return n;
}

/*
 * The model folder cannot take the cache: a directory sits where the file would go (this
 * blocks the write even for root, unlike a read-only folder). First the user cache cannot
 * be written either (warning, load fine), then it can (the cache goes there and is used).
 */
static void test_unwritable(const char *xdg)
{
    char *dir = tmp_model_copy(FIXTURE);
    CHECK(dir != NULL);
    if (!dir) {
        return;
    }
    char blocker[4096];
    snprintf(blocker, sizeof blocker, "%s", in_dir(dir, "model.q8.pgcache"));
    CHECK(mkdir(blocker, 0755) == 0);
    char nowhere[4096];
    snprintf(nowhere, sizeof nowhere, "%s/config.json/sub", dir); /* under a regular file */
    setenv("XDG_CACHE_HOME", nowhere, 1);
    log_seen s;
    pg_model *m = load_q(dir, PG_DTYPE_Q8, 0, &s);
    CHECK(m != NULL);
    CHECK_EQ_INT(s.warned, 1);
    CHECK_EQ_INT(s.wrote, 0);
    pg_model_free(m);

    setenv("XDG_CACHE_HOME", xdg, 1);
    char user_cache[4096];
    snprintf(user_cache, sizeof user_cache, "%s/paligemma", xdg);
    pg_model *w = load_q(dir, PG_DTYPE_Q8, 0, &s);
    CHECK_EQ_INT(s.wrote, 1);
    CHECK_EQ_INT(s.warned, 0);
    CHECK_EQ_INT(count_caches(user_cache), 1);
    pg_model *h = load_q(dir, PG_DTYPE_Q8, 0, &s);
    CHECK_EQ_INT(s.mapped, 1);
    if (w && h) {
        check_same_weights(w, h);
    }
    pg_model_free(w);
    pg_model_free(h);
    rmdir(blocker);
    tmp_model_remove(dir);

    /* a truly read-only folder (only testable when not root: root writes anyway) */
    char *ro = tmp_model_copy(FIXTURE);
    CHECK(ro != NULL);
    if (ro && chmod(ro, 0555) == 0 && access(ro, W_OK) != 0) {
        pg_model *r = load_q(ro, PG_DTYPE_Q8, 0, &s);
        CHECK(r != NULL);
        CHECK(!exists(in_dir(ro, "model.q8.pgcache")));
        pg_model_free(r);
    }
    if (ro) {
        chmod(ro, 0755);
    }
    tmp_model_remove(ro);
}

/* Data misaligned for bf16 (odd header padding): the cache holds the quantized matrices, and
 * a hit must still make the aligned copies of everything else. */
static void test_misaligned(void)
{
    char *dir = tmp_model_copy(FIXTURE);
    CHECK(dir != NULL);
    if (!dir) {
        return;
    }
    for (int i = 1; i <= 2; i++) {
        char name[64];
        snprintf(name, sizeof name, "model-0000%d-of-00002.safetensors", i);
        st_image im;
        CHECK(st_read(&im, in_dir(dir, name)) == 0);
        CHECK(st_write(&im, in_dir(dir, name), 1) == 0);
        st_free(&im);
    }
    log_seen s;
    pg_model *first = load_q(dir, PG_DTYPE_Q8, 0, &s);
    CHECK_EQ_INT(s.wrote, 1);
    pg_model *second = load_q(dir, PG_DTYPE_Q8, 0, &s);
    CHECK_EQ_INT(s.mapped, 1);
    if (first && second) {
        CHECK(second->qcache != NULL && second->owned != NULL);
        const pg__tensor *n = &second->decoder.final_norm, *e = &second->decoder.embed;
        CHECK((uintptr_t)n->data % 2 == 0 && (uintptr_t)e->data % 2 == 0);
        CHECK((const uint8_t *)n->data >= (const uint8_t *)second->owned &&
              (const uint8_t *)n->data < (const uint8_t *)second->owned + second->owned_size);
        check_same_weights(first, second);
    }
    pg_model_free(first);
    pg_model_free(second);
    tmp_model_remove(dir);
}

int main(void)
{
    /* the user-cache fallback must never touch the real home */
    char xdg[] = "/tmp/pg_qcache_home_XXXXXX";
    if (!mkdtemp(xdg)) {
        return pg_test_skip("cannot make a temporary folder");
    }
    setenv("XDG_CACHE_HOME", xdg, 1);
    test_roundtrip(PG_DTYPE_Q8, "model.q8.pgcache");
    test_roundtrip(PG_DTYPE_Q4, "model.q4.pgcache");
    test_changed_content();
    test_no_cache_flag();
    test_unwritable(xdg);
    test_misaligned();

    char user_cache[4096];
    snprintf(user_cache, sizeof user_cache, "%s/paligemma", xdg);
    DIR *d = opendir(user_cache);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] != '.') {
            char p[8192];
            snprintf(p, sizeof p, "%s/%s", user_cache, e->d_name);
            unlink(p);
        }
    }
    if (d) {
        closedir(d);
    }
    rmdir(user_cache);
    rmdir(xdg);
    return pg_test_finish();
}
