/*
 * Weights the model owns instead of using them in place from the mapped files:
 *  - quantized copies (weight_dtype Q8/Q4) of the big matmul matrices, made here with
 *    backend/quant.h: quantize_tensor() is the one place that does it;
 *  - copies of tensors whose data is not aligned for their element type (a file written
 *    without the usual 8-byte header padding), because the kernels read them as
 *    float/uint16_t arrays.
 * Both go into a single 64-byte aligned block (m->owned), sized in a first pass and filled
 * in a second, so there is one allocation to free.
 *
 * Quantizing gigabytes takes a minute, so the quantized matrices are saved to a cache file
 * (backend/quant/quant_cache.h) and the next load maps that file instead: the quantized
 * slots then point into m->qcache and only the misaligned copies are made here.
 */
#include "backend/quant.h"
#include "backend/quant/quant_cache.h"
#include "io/safetensors.h"
#include "model/loader.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define OWNED_ALIGN 64
#define MIN_ROWS_PER_THREAD 64
#define SLAB_BYTES ((size_t)64 << 20)

static size_t elem_size(pg__dtype dt)
{
    switch (dt) {
    case PG__F32: return 4;
    case PG__F16:
    case PG__BF16: return 2;
    default: return 0;
    }
}

static size_t plain_bytes(const pg__tensor *t)
{
    return (size_t)t->rows * (size_t)t->cols * elem_size(t->dtype);
}

typedef struct owned_pass {
    pg_model *m;
    pg__dtype qdt;          /* PG__Q8 / PG__Q4, or 0 = no quantization */
    bool fill;              /* false: measure; true: copy / quantize */
    uint8_t *base;
    size_t off;             /* bytes used so far */
    int32_t n_threads;
    bool tied;              /* lm_head shares the embedding (decided before any copy) */
    size_t n_quant, n_quant_done, n_copied;
    pg_progress_fn progress;
    void *progress_user;
} owned_pass;

/* Quantization is for the big 2-D matmul weights only (norms, biases, the embedding table
 * and the patch/position embeddings stay as stored). */
static bool wants_quant(const owned_pass *p, const pg__tensor *t, bool matmul)
{
    return p->qdt != 0 && matmul && t->ndim == 2;
}

size_t pg__model_tensor_bytes(const pg__tensor *t)
{
    if (t->dtype == PG__Q8 || t->dtype == PG__Q4) {
        return pg__quant_size(t->dtype, t->rows, t->cols);
    }
    return plain_bytes(t);
}

static bool misaligned(const pg__tensor *t)
{
    size_t a = elem_size(t->dtype);
    return a > 1 && ((uintptr_t)t->data % a) != 0;
}

typedef struct quant_job {
    pg__dtype dt;
    const pg__tensor *src;
    void *dst;
    int64_t r0, r1;
    pg_status st;
    char err[PG__ERRMSG_MAX];
} quant_job;

static void *quant_worker(void *arg)
{
    quant_job *j = arg;
    j->st = pg__quantize_rows(j->dt, j->src, j->dst, j->r0, j->r1);
    if (j->st != PG_OK) {
        /* the error message is thread-local: carry it back to the loading thread */
        snprintf(j->err, sizeof j->err, "%s", pg__error_message());
    }
    return NULL;
}

/* Quantizes rows [r0, r1) of `src` into `dst` (the whole matrix's buffer), splitting them
 * over up to n_threads threads (the calling thread takes the first share and any share whose
 * thread failed to start). */
static pg_status quantize_rows(pg__dtype dt, const pg__tensor *src, void *dst, int64_t r0,
                               int64_t r1, int32_t n_threads)
{
    int64_t n = (r1 - r0) / MIN_ROWS_PER_THREAD;
    if (n > n_threads) {
        n = n_threads;
    }
    if (n <= 1) {
        return pg__quantize_rows(dt, src, dst, r0, r1);
    }
    quant_job *jobs = pg__calloc((size_t)n, sizeof *jobs);
    pthread_t *tids = pg__calloc((size_t)n, sizeof *tids);
    bool *running = pg__calloc((size_t)n, sizeof *running);
    if (!jobs || !tids || !running) {
        free(jobs);
        free(tids);
        free(running);
        return PG_ERR_OUT_OF_MEMORY;
    }
    for (int64_t i = 0; i < n; i++) {
        jobs[i] = (quant_job){ .dt = dt, .src = src, .dst = dst, .r0 = r0 + (r1 - r0) * i / n,
                               .r1 = r0 + (r1 - r0) * (i + 1) / n };
        running[i] = i > 0 && pthread_create(&tids[i], NULL, quant_worker, &jobs[i]) == 0;
    }
    for (int64_t i = 0; i < n; i++) {
        if (!running[i]) {
            quant_worker(&jobs[i]);
        }
    }
    for (int64_t i = 0; i < n; i++) {
        if (running[i]) {
            pthread_join(tids[i], NULL);
        }
    }
    pg_status st = PG_OK;
    for (int64_t i = 0; i < n && st == PG_OK; i++) {
        if (jobs[i].st != PG_OK) {
            st = pg__error(jobs[i].st, "%s", jobs[i].err);
        }
    }
    free(jobs);
    free(tids);
    free(running);
    return st;
}

/* Reserves `bytes` of the owned block; in the fill pass returns where they are. */
static void *reserve(owned_pass *p, size_t bytes)
{
    p->off = (p->off + OWNED_ALIGN - 1) & ~(size_t)(OWNED_ALIGN - 1);
    void *at = p->fill ? p->base + p->off : NULL;
    p->off += bytes;
    return at;
}

/*
 * Tells the kernel that the mapped source pages of a tensor just quantized are not needed:
 * without this the whole bf16 checkpoint stays resident next to its quantized copy (peak RSS
 * bf16 + Q8). Only whole pages inside the tensor and inside a file mapping are dropped. The
 * mappings are private, read-only and never written, so a dropped page that is read again
 * (the tied embedding's rows, looked up with get_rows) is simply faulted back in from the
 * file: this only costs time, never correctness.
 */
static void drop_source_pages(const pg_model *m, const void *data, size_t bytes)
{
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t page = ps > 0 ? (uintptr_t)ps : 4096, lo = (uintptr_t)data, hi = lo + bytes;
    for (size_t i = 0; i < m->n_files; i++) {
        uintptr_t map = (uintptr_t)m->files[i]->map, end = map + m->files[i]->map_size;
        if (m->files[i]->map && lo >= map && hi <= end) {
            uintptr_t a = (lo + page - 1) / page * page, b = hi / page * page;
            if (b > a) {
                (void)madvise((void *)a, (size_t)(b - a), MADV_DONTNEED);
            }
            return;
        }
    }
}

/* Quantizes all of `src` into `dst` in slabs of about SLAB_BYTES of source, releasing each
 * slab's mapped pages once done, so that even the 1.2 GB embedding (the tied head's source)
 * is never resident as a whole next to the quantized weights. A source misaligned for its
 * type (the quantizer reads it as uint16_t/float) is copied to aligned memory first. */
static pg_status quantize_tensor(const pg_model *m, pg__dtype dt, const pg__tensor *src,
                                 void *dst, int32_t n_threads)
{
    size_t row_bytes = (size_t)src->cols * elem_size(src->dtype);
    pg__tensor aligned = *src;
    void *copy = NULL;
    if (misaligned(src)) {
        copy = pg__aligned_alloc(plain_bytes(src));
        if (!copy) {
            return PG_ERR_OUT_OF_MEMORY;
        }
        memcpy(copy, src->data, plain_bytes(src));
        drop_source_pages(m, src->data, plain_bytes(src));
        aligned.data = copy;
    }
    int64_t slab = (int64_t)(SLAB_BYTES / (row_bytes ? row_bytes : 1));
    slab = slab < MIN_ROWS_PER_THREAD ? MIN_ROWS_PER_THREAD : slab;
    pg_status st = PG_OK;
    for (int64_t r0 = 0; r0 < src->rows && st == PG_OK; r0 += slab) {
        int64_t r1 = src->rows - r0 < slab ? src->rows : r0 + slab;
        st = quantize_rows(dt, &aligned, dst, r0, r1, n_threads);
        if (!copy) {
            drop_source_pages(m, (const uint8_t *)src->data + (size_t)r0 * row_bytes,
                              (size_t)(r1 - r0) * row_bytes);
        }
    }
    pg__aligned_free(copy);
    return st;
}

static pg_status visit_owned(void *user, pg__tensor *t, bool matmul)
{
    owned_pass *p = user;
    pg_model *m = p->m;
    bool tied_head = p->tied && t == &m->decoder.lm_head;
    if (!t->data || t->dtype == PG__Q8 || t->dtype == PG__Q4) {
        return PG_OK; /* nothing stored, or already quantized (mapped from the cache) */
    }
    if (wants_quant(p, t, matmul)) {
        size_t q = pg__quant_size(p->qdt, t->rows, t->cols);
        if (q == 0) {
            return pg__error(PG_ERR_UNSUPPORTED, "tensor '%s': quantization to %s is not "
                             "available for %lld x %lld",
                             t->name, p->qdt == PG__Q8 ? "Q8" : "Q4", (long long)t->rows,
                             (long long)t->cols);
        }
        void *dst = reserve(p, q);
        if (!p->fill) {
            p->n_quant++;
            return PG_OK;
        }
        pg_status st = quantize_tensor(m, p->qdt, t, dst, p->n_threads);
        if (st != PG_OK) {
            pg__error_prefix("quantizing '%s'", t->name);
            return st;
        }
        pg__tensor src = *t;
        pg__quant_tensor_init(t, p->qdt, &src, dst);
        p->n_quant_done++;
        if (p->progress && p->progress(p->progress_user,
                                       (float)p->n_quant_done / (float)p->n_quant) != 0) {
            return pg__error(PG_ERR_CANCELLED, "model load cancelled by the progress callback");
        }
        return PG_OK;
    }
    if (tied_head || !misaligned(t)) {
        return PG_OK; /* used in place; a tied head follows the embedding afterwards */
    }
    size_t bytes = plain_bytes(t);
    void *dst = reserve(p, bytes);
    if (p->fill) {
        memcpy(dst, t->data, bytes);
        t->data = dst;
        p->n_copied++;
    }
    return PG_OK;
}

typedef struct stats {
    const pg_model *m;
    uint64_t bytes;
    uint64_t elems_by_dtype[8];
} stats;

static pg_status visit_stats(void *user, pg__tensor *t, bool matmul)
{
    (void)matmul;
    stats *s = user;
    const pg__decoder_weights *d = &s->m->decoder;
    if (t == &d->lm_head && t->data == d->embed.data) {
        return PG_OK; /* tied: stored once */
    }
    uint64_t elems = (uint64_t)t->rows * (uint64_t)t->cols;
    if (t->dtype == PG__Q8 || t->dtype == PG__Q4) {
        s->bytes += pg__quant_size(t->dtype, t->rows, t->cols);
    } else {
        s->bytes += elems * elem_size(t->dtype);
    }
    if ((unsigned)t->dtype < 8) {
        s->elems_by_dtype[t->dtype] += elems;
    }
    return PG_OK;
}

/* weight_bytes = bytes as used; weight_dtype = the type holding most parameters. */
static void compute_stats(pg_model *m)
{
    stats s = { .m = m };
    pg__model_foreach_tensor(m, visit_stats, &s);
    int32_t best = PG_DTYPE_AUTO;
    for (int32_t dt = 1; dt < 8; dt++) {
        if (s.elems_by_dtype[dt] > 0 &&
            (best == PG_DTYPE_AUTO || s.elems_by_dtype[dt] > s.elems_by_dtype[best])) {
            best = dt;
        }
    }
    m->weight_bytes = m->n_files ? s.bytes : 0;
    m->weight_dtype = best;
}

/* Measures, allocates and fills the owned block (the cache's build function). */
static pg_status run_pass(void *user)
{
    owned_pass *p = user;
    pg_model *m = p->m;
    pg_status st = pg__model_foreach_tensor(m, visit_owned, p);
    if (st == PG_OK && p->off > 0) {
        m->owned = pg__aligned_alloc(p->off);
        if (!m->owned) {
            return PG_ERR_OUT_OF_MEMORY;
        }
        m->owned_size = p->off;
        p->fill = true;
        p->base = m->owned;
        p->off = 0;
        st = pg__model_foreach_tensor(m, visit_owned, p);
    }
    return st;
}

typedef struct slot_list {
    const owned_pass *p;
    pg__tensor **v;
    size_t n, cap;
} slot_list;

/* Collects the slots run_pass would quantize: the tensors the cache file holds. */
static pg_status visit_collect(void *user, pg__tensor *t, bool matmul)
{
    slot_list *l = user;
    if (!t->data || !wants_quant(l->p, t, matmul)) {
        return PG_OK;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        pg__tensor **v = pg__realloc(l->v, cap * sizeof *v);
        if (!v) {
            return PG_ERR_OUT_OF_MEMORY;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = t;
    return PG_OK;
}

/* After a build: did the cache get written (next to the model or in the user's cache)? The
 * cache call is best effort and silent, so look, and warn when the next load will have to
 * quantize again. */
static void log_cache_written(const pg_model *m, pg__dtype qdt, const char *const *paths)
{
    uint64_t key = 0;
    bool written = false;
    if (pg__qcache_key(paths, m->n_files, qdt, &key) == PG_OK) {
        for (int i = 0; i < 2 && !written; i++) {
            char *path = pg__qcache_path(m->path, qdt, key, i == 1);
            pg__qcache *c = NULL;
            written = path && pg__qcache_open(&c, path, key, qdt) == PG_OK;
            if (written) {
                pg__log(&m->logger, PG_LOG_INFO, "%s: wrote the quantized-weight cache %s",
                        m->path, path);
            }
            pg__qcache_close(c);
            free(path);
        }
    }
    pg__error_clear();
    if (!written) {
        pg__log(&m->logger, PG_LOG_WARN, "%s: could not write a quantized-weight cache (neither "
                "the model folder nor the user cache folder is writable); the next load "
                "quantizes again", m->path);
    }
}

/* Quantizes through the cache: maps a valid cache file, else runs the pass and saves one. */
static pg_status run_cached(owned_pass *p)
{
    pg_model *m = p->m;
    slot_list l = { .p = p };
    const char **paths = pg__calloc(m->n_files ? m->n_files : 1, sizeof *paths);
    pg_status st = paths ? pg__model_foreach_tensor(m, visit_collect, &l) : PG_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; paths && i < m->n_files; i++) {
        paths[i] = m->files[i]->path;
    }
    uint32_t flags = m->flags & PG_MODEL_NO_QUANT_CACHE
                         ? PG__QCACHE_NO_READ | PG__QCACHE_NO_WRITE : 0;
    if (st == PG_OK && (l.n == 0 || m->n_files == 0)) {
        st = run_pass(p); /* nothing to cache */
    } else if (st == PG_OK) {
        st = pg__qcache_load_or_build(&m->qcache, m->path, paths, m->n_files, p->qdt, l.v, l.n,
                                      run_pass, p, flags);
    }
    if (st == PG_OK && m->qcache) {
        pg__log(&m->logger, PG_LOG_INFO, "%s: %zu quantized tensors mapped from the cache "
                "(%zu bytes)", m->path, l.n, pg__qcache_size(m->qcache));
        st = run_pass(p); /* the misaligned copies, which the cache does not hold */
    } else if (st == PG_OK && l.n > 0 && !(flags & PG__QCACHE_NO_WRITE)) {
        log_cache_written(m, p->qdt, paths);
    }
    free(l.v);
    free(paths);
    return st;
}

pg_status pg__model_make_owned(pg_model *m, int32_t weight_dtype, int32_t n_threads,
                               pg_progress_fn progress, void *progress_user)
{
    owned_pass p = { .m = m, .n_threads = n_threads > 0 ? n_threads : 1,
                     .progress = progress, .progress_user = progress_user };
    if (weight_dtype == PG_DTYPE_Q8 || weight_dtype == PG_DTYPE_Q4) {
        p.qdt = (pg__dtype)weight_dtype;
    }
    bool tied = m->decoder.lm_head.data == m->decoder.embed.data;
    p.tied = tied;
    pg_status st = p.qdt ? run_cached(&p) : run_pass(&p);
    if (st != PG_OK) {
        return st;
    }
    if (tied && m->decoder.lm_head.dtype != PG__Q8 && m->decoder.lm_head.dtype != PG__Q4) {
        m->decoder.lm_head = m->decoder.embed; /* follows an embedding that was copied */
    }
    compute_stats(m);
    if (p.n_quant_done || p.n_copied) {
        pg__log(&m->logger, PG_LOG_INFO, "%s: %zu tensors quantized, %zu copied for alignment "
                "(%zu bytes owned)", m->path, p.n_quant_done, p.n_copied, m->owned_size);
    }
    return PG_OK;
}
