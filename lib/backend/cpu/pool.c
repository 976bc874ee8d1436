/*
 * The CPU backend's thread pool (see pool.h).
 *
 * Protocol. `state` packs (generation << 32 | next task index). The caller publishes a job
 * by writing fn/ctx/n_tasks, zeroing `done`, and storing a new generation with index 0.
 * A thread claims task i by a compare-and-swap of (gen, i) -> (gen, i + 1); the CAS fails
 * if the job changed under it, so a late worker can never run a task of the wrong job.
 * The job fields are atomics because a late worker may read them while the caller writes
 * the next job; the caller first moves `state` to a closed generation (no claimable index),
 * so such a worker's CAS fails and it discards what it read. Each job takes two generations.
 *
 * Sleeping uses the usual "announce, then re-check under the mutex" handshake: a worker
 * increments `sleepers` before re-checking `state`, and the caller reads `sleepers` after
 * storing `state` (both sequentially consistent), so a wake-up is never lost. The caller's
 * wait for the last task mirrors it with `caller_waiting` and `done`.
 */
#include "backend/cpu/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

/* Spin iterations before sleeping: ~10-50 us, long enough to catch the next op of a
 * forward pass, short enough not to steal a busy core from another process. */
#define PG_POOL_SPIN 4000

/* Task index of a closed generation (see pg__pool_run): above any n_tasks. */
#define PG_POOL_CLOSED 0xFFFFFFFFu

struct pg__pool {
    int n_threads;
    pthread_t *threads;
    _Atomic uint64_t state;
    _Atomic(pg__pool_fn) fn;
    _Atomic(void *) ctx;
    _Atomic int64_t n_tasks;
    _Atomic int64_t done;
    _Atomic int sleepers;
    _Atomic int caller_waiting;
    _Atomic bool stop;
    pthread_mutex_t mu;
    pthread_cond_t wake;     /* workers wait here for a new job */
    pthread_cond_t finished; /* the caller waits here for the last task */
};

typedef struct worker_arg {
    pg__pool *pool;
    int index;
} worker_arg;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline uint32_t gen_of(uint64_t s)
{
    return (uint32_t)(s >> 32);
}

/* Claims and runs tasks of generation `gen` until none is left. */
static void run_tasks(pg__pool *p, uint32_t gen, int thread)
{
    for (;;) {
        uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
        if (gen_of(s) != gen) {
            return;
        }
        int64_t n = atomic_load_explicit(&p->n_tasks, memory_order_acquire);
        pg__pool_fn fn = atomic_load_explicit(&p->fn, memory_order_acquire);
        void *ctx = atomic_load_explicit(&p->ctx, memory_order_acquire);
        int64_t i = (int64_t)(uint32_t)s;
        if (i >= n) {
            return;
        }
        if (!atomic_compare_exchange_weak_explicit(&p->state, &s, s + 1, memory_order_acq_rel,
                                                   memory_order_acquire)) {
            continue;
        }
        fn(ctx, i, thread);
        if (atomic_fetch_add(&p->done, 1) + 1 == n && atomic_load(&p->caller_waiting)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->finished);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

/* Waits until the generation differs from `seen` (or stop); returns the new generation. */
static uint32_t wait_for_job(pg__pool *p, uint32_t seen)
{
    for (int i = 0; i < PG_POOL_SPIN; i++) {
        uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
        if (gen_of(s) != seen || atomic_load_explicit(&p->stop, memory_order_relaxed)) {
            return gen_of(s);
        }
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    while (gen_of(atomic_load(&p->state)) == seen && !atomic_load(&p->stop)) {
        pthread_cond_wait(&p->wake, &p->mu);
    }
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return gen_of(atomic_load(&p->state));
}

static void *worker_main(void *arg)
{
    worker_arg *wa = arg;
    pg__pool *p = wa->pool;
    int index = wa->index;
    free(wa);
    uint32_t seen = gen_of(atomic_load(&p->state));
    for (;;) {
        seen = wait_for_job(p, seen);
        if (atomic_load(&p->stop)) {
            return NULL;
        }
        run_tasks(p, seen, index);
    }
}

int pg__pool_threads(const pg__pool *p)
{
    return p->n_threads;
}

static void stop_workers(pg__pool *p, int started)
{
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < started; i++) {
        pthread_join(p->threads[i], NULL);
    }
}

pg_status pg__pool_create(pg__pool **out, int n_threads)
{
    *out = NULL;
    pg__pool *p = pg__calloc(1, sizeof *p);
    if (!p) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    p->n_threads = n_threads < 1 ? 1 : n_threads;
    p->threads = pg__calloc((size_t)p->n_threads, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return PG_ERR_OUT_OF_MEMORY;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->finished, NULL);
    for (int i = 1; i < p->n_threads; i++) {
        worker_arg *wa = pg__malloc(sizeof *wa);
        if (wa) {
            wa->pool = p;
            wa->index = i;
        }
        if (!wa || pthread_create(&p->threads[i - 1], NULL, worker_main, wa) != 0) {
            free(wa);
            stop_workers(p, i - 1);
            pthread_cond_destroy(&p->finished);
            pthread_cond_destroy(&p->wake);
            pthread_mutex_destroy(&p->mu);
            free(p->threads);
            free(p);
            return pg__error(PG_ERR_BACKEND, "cpu backend: cannot start worker thread %d", i);
        }
    }
    *out = p;
    return PG_OK;
}

void pg__pool_destroy(pg__pool *p)
{
    if (!p) {
        return;
    }
    stop_workers(p, p->n_threads - 1);
    pthread_cond_destroy(&p->finished);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

void pg__pool_run(pg__pool *p, pg__pool_fn fn, void *ctx, int64_t n_tasks)
{
    if (n_tasks <= 0) {
        return;
    }
    if (p->n_threads == 1 || n_tasks == 1) {
        for (int64_t i = 0; i < n_tasks; i++) {
            fn(ctx, i, 0);
        }
        return;
    }
    /* Close the finished job first: a late worker that read the old (gen, n) state may
     * otherwise read the NEW n_tasks/fn/ctx below and win its CAS on the old state, running
     * a task of the new job early and twice (and overrunning `done`: a hang, or a return
     * while that task still runs). The closed generation has no claimable index. */
    uint32_t closed = gen_of(atomic_load(&p->state)) + 1;
    atomic_store(&p->state, ((uint64_t)closed << 32) | PG_POOL_CLOSED);
    atomic_thread_fence(memory_order_seq_cst);
    atomic_store_explicit(&p->fn, fn, memory_order_release);
    atomic_store_explicit(&p->ctx, ctx, memory_order_release);
    atomic_store_explicit(&p->n_tasks, n_tasks, memory_order_release);
    atomic_store_explicit(&p->done, 0, memory_order_release);
    uint32_t gen = closed + 1;
    atomic_store(&p->state, (uint64_t)gen << 32);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    run_tasks(p, gen, 0);
    for (int i = 0; i < PG_POOL_SPIN; i++) {
        if (atomic_load(&p->done) == n_tasks) {
            return;
        }
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->caller_waiting, 1);
    while (atomic_load(&p->done) != n_tasks) {
        pthread_cond_wait(&p->finished, &p->mu);
    }
    atomic_store(&p->caller_waiting, 0);
    pthread_mutex_unlock(&p->mu);
}
