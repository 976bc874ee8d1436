/*
 * backend/cpu/pool: a persistent thread pool for the CPU backend.
 *
 * pg__pool_run(p, fn, ctx, n) runs fn(ctx, task, thread) for every task in [0, n) on the
 * calling thread (thread index 0) and the pool's workers (1 .. n_threads-1), and returns
 * when all tasks are done. Tasks are claimed one at a time from a shared counter, so a
 * worker that the OS has descheduled (another process busy on its core) simply claims
 * fewer tasks: the run degrades towards single-thread speed instead of stalling on a
 * barrier. Idle workers spin briefly (the next op usually follows within microseconds)
 * and then sleep on a condition variable, so an idle pool costs no CPU.
 *
 * One run at a time: callers serialise pg__pool_run themselves (the CPU backend holds its
 * call lock around it).
 */
#ifndef PG_BACKEND_CPU_POOL_H
#define PG_BACKEND_CPU_POOL_H

#include "core/core.h"

typedef void (*pg__pool_fn)(void *ctx, int64_t task, int thread);
typedef struct pg__pool pg__pool;

/* Starts n_threads - 1 workers (n_threads >= 1). */
pg_status pg__pool_create(pg__pool **out, int n_threads);
/* Stops and joins the workers (NULL is fine). */
void pg__pool_destroy(pg__pool *p);
/* Threads including the caller. */
int pg__pool_threads(const pg__pool *p);
/* Runs tasks [0, n_tasks) (n_tasks < 2^31); see above. */
void pg__pool_run(pg__pool *p, pg__pool_fn fn, void *ctx, int64_t n_tasks);

#endif
