/*
 * The serving engine: each model has one pg_batch, a pool of sessions (as many as the batch
 * holds, so a request waits for a free one instead of allocating a KV cache of its own) and
 * one stepping thread. Request threads start jobs; the stepping thread steps the batch and
 * hands finished sessions back to their jobs (pg_batch_take_finished pops any session, so
 * only this thread takes them).
 */
#include "serve.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct srv_model {
    char name[256];
    char path[1024];
    pg_model *model;
    pg_model_info info;
    pg_batch *batch;
    uint32_t n_slots;
    pg_session **sessions;   /* created on first use */
    srv_job **jobs;          /* the job holding each slot, NULL when free */
    pthread_mutex_t mu;      /* sessions, jobs */
    pthread_cond_t slot_free;
    pthread_t stepper;
    atomic_bool stop;
};

uint64_t srv_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += ms * 1000000L;
    ts->tv_sec += ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

/* The session the batch gave back -> its job, woken. */
static void deliver_finished(srv_model *m, pg_session *s, pg_status result)
{
    srv_job *job = NULL;
    pthread_mutex_lock(&m->mu);
    for (uint32_t i = 0; i < m->n_slots; i++) {
        if (m->sessions[i] == s) {
            job = m->jobs[i];
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (!job) return; /* cannot happen: a slot keeps its job until the job is done */
    pthread_mutex_lock(&job->mu);
    job->done = true;
    job->result = result;
    pthread_cond_broadcast(&job->cv);
    pthread_mutex_unlock(&job->mu);
}

static void *stepper_main(void *arg)
{
    srv_model *m = arg;
    while (!atomic_load(&m->stop)) {
        uint32_t active = 0;
        pg_batch_wait(m->batch, 200, &active);
        if (active) pg_batch_step(m->batch, NULL);
        pg_session *s = NULL;
        pg_status r = PG_OK;
        while (pg_batch_take_finished(m->batch, 0, &s, &r) == PG_OK && s) {
            deliver_finished(m, s, r);
            s = NULL;
        }
    }
    return NULL;
}

static void name_from_path(srv_model *m, const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (eq && eq != spec) { /* -m NAME=PATH */
        snprintf(m->name, sizeof m->name, "%.*s", (int)(eq - spec), spec);
        snprintf(m->path, sizeof m->path, "%s", eq + 1);
    } else {
        snprintf(m->path, sizeof m->path, "%s", spec);
        size_t n = strlen(m->path);
        while (n > 1 && m->path[n - 1] == '/') m->path[--n] = '\0';
        const char *base = strrchr(m->path, '/');
        snprintf(m->name, sizeof m->name, "%s", base ? base + 1 : m->path);
    }
    if (!strchr(m->name, ':')) strncat(m->name, ":latest", sizeof m->name - strlen(m->name) - 1);
}

pg_status srv_model_load(srv_model **out, const char *spec, const srv_config *cfg)
{
    *out = NULL;
    srv_model *m = calloc(1, sizeof *m);
    if (!m) return PG_ERR_OUT_OF_MEMORY;
    name_from_path(m, spec);
    pg_model_options mo;
    PG_MODEL_OPTIONS_INIT(&mo);
    mo.backend = cfg->backend;
    mo.n_threads = cfg->threads;
    pg_status st = pg_model_load(&m->model, m->path, &mo);
    if (st == PG_OK) {
        m->info.struct_size = sizeof m->info;
        st = pg_model_get_info(m->model, &m->info);
    }
    pg_batch_options bo;
    PG_BATCH_OPTIONS_INIT(&bo);
    bo.max_batch = cfg->batch;
    bo.max_sessions = cfg->batch * 2;
    if (st == PG_OK) st = pg_batch_new(&m->batch, m->model, &bo);
    if (st != PG_OK) {
        fprintf(stderr, "pg serve: %s: %s\n", m->path, pg_last_error());
        pg_model_free(m->model);
        free(m);
        return st;
    }
    m->n_slots = bo.max_sessions;
    m->sessions = calloc(m->n_slots, sizeof *m->sessions);
    m->jobs = calloc(m->n_slots, sizeof *m->jobs);
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->slot_free, NULL);
    if (!m->sessions || !m->jobs || pthread_create(&m->stepper, NULL, stepper_main, m)) {
        free(m->sessions);
        free(m->jobs);
        pg_batch_free(m->batch);
        pg_model_free(m->model);
        free(m);
        return PG_ERR_OUT_OF_MEMORY;
    }
    *out = m;
    return PG_OK;
}

void srv_model_free(srv_model *m)
{
    if (!m) return;
    atomic_store(&m->stop, true);
    pg_batch_wake(m->batch);
    pthread_join(m->stepper, NULL);
    pg_batch_free(m->batch); /* detaches sessions still in it (none once requests ended) */
    for (uint32_t i = 0; i < m->n_slots; i++) pg_session_free(m->sessions[i]);
    free(m->sessions);
    free(m->jobs);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->slot_free);
    pg_model_free(m->model);
    free(m);
}

const char *srv_model_name(const srv_model *m) { return m->name; }
const char *srv_model_path(const srv_model *m) { return m->path; }
const pg_model_info *srv_model_info(const srv_model *m) { return &m->info; }
uint64_t srv_model_size(const srv_model *m) { return m->info.weight_bytes; }

/* "name", "name:latest" and the listed name all find a model. */
static bool name_matches(const char *listed, const char *asked)
{
    size_t n = strlen(asked);
    if (!strcmp(listed, asked)) return true;
    return !strncmp(listed, asked, n) && !strcmp(listed + n, ":latest");
}

srv_model *srv_find_model(srv_server *srv, const char *name)
{
    if (!name || !atomic_load(&srv->ready)) return NULL;
    for (int i = 0; i < srv->n_models; i++) {
        if (name_matches(srv->models[i]->name, name)) return srv->models[i];
    }
    return NULL;
}

/* ---- jobs ---- */

static int on_token(void *user, const pg_token_event *ev)
{
    srv_job *job = user;
    if (!ev->text_len) return 0;
    pthread_mutex_lock(&job->mu);
    if (job->pending_len + ev->text_len + 1 > job->pending_cap) {
        size_t cap = (job->pending_len + ev->text_len + 1) * 2;
        char *p = realloc(job->pending, cap);
        if (!p) {
            pthread_mutex_unlock(&job->mu);
            return 1; /* out of memory: stop this generation rather than lose text */
        }
        job->pending = p;
        job->pending_cap = cap;
    }
    memcpy(job->pending + job->pending_len, ev->text, ev->text_len);
    job->pending_len += ev->text_len;
    job->pending[job->pending_len] = '\0';
    pthread_cond_broadcast(&job->cv);
    pthread_mutex_unlock(&job->mu);
    return 0;
}

/* The client closed its end (reads would give EOF) or the socket failed. */
static bool client_gone(int fd)
{
    if (fd < 0) return false;
    struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) return true;
    char c;
    return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static bool past(uint64_t deadline_ns) { return srv_now_ns() >= deadline_ns; }

/* A free slot (its session created on first use), or -1 at the deadline / hang-up. */
static int take_slot(srv_model *m, int fd, uint64_t deadline_ns, int *http, char *msg,
                     size_t cap)
{
    pthread_mutex_lock(&m->mu);
    for (;;) {
        for (uint32_t i = 0; i < m->n_slots; i++) {
            if (!m->jobs[i]) {
                m->jobs[i] = (srv_job *)1; /* reserved until the job is set */
                pthread_mutex_unlock(&m->mu);
                if (!m->sessions[i]) {
                    pg_session_options so;
                    PG_SESSION_OPTIONS_INIT(&so);
                    if (pg_session_new(&m->sessions[i], m->model, &so) != PG_OK) {
                        snprintf(msg, cap, "cannot create a session: %s", pg_last_error());
                        *http = 503;
                        pthread_mutex_lock(&m->mu);
                        m->jobs[i] = NULL;
                        pthread_cond_signal(&m->slot_free);
                        pthread_mutex_unlock(&m->mu);
                        return -1;
                    }
                }
                return (int)i;
            }
        }
        if (past(deadline_ns) || client_gone(fd)) break;
        struct timespec ts;
        deadline_in(&ts, 100);
        pthread_cond_timedwait(&m->slot_free, &m->mu, &ts);
    }
    pthread_mutex_unlock(&m->mu);
    *http = 503;
    snprintf(msg, cap, "the server is busy: no session became free before the deadline");
    return -1;
}

static void give_slot(srv_model *m, int slot)
{
    pthread_mutex_lock(&m->mu);
    m->jobs[slot] = NULL;
    pthread_cond_signal(&m->slot_free);
    pthread_mutex_unlock(&m->mu);
}

static int status_http(pg_status st)
{
    return st == PG_ERR_OUT_OF_MEMORY ? 503 : 400;
}

srv_job *srv_job_start(srv_model *m, const srv_gen *gen, int fd, uint64_t t_start_ns,
                       uint32_t timeout_s, int *http, char *msg, size_t cap)
{
    uint64_t deadline = t_start_ns + (uint64_t)timeout_s * 1000000000u;
    if (gen->n_images == 0) {
        *http = 400;
        snprintf(msg, cap, "PaliGemma needs an image: send one in \"images\" (or an image_url "
                           "part)");
        return NULL;
    }
    int slot = take_slot(m, fd, deadline, http, msg, cap);
    if (slot < 0) return NULL;
    pg_session *s = m->sessions[slot];
    pg_status st = pg_session_set_images(s, (const pg_image *const *)gen->images,
                                         gen->n_images);
    if (st == PG_OK) st = pg_session_set_prompt(s, gen->prompt, strlen(gen->prompt));
    if (st != PG_OK) {
        *http = status_http(st);
        snprintf(msg, cap, "%s%s", st == PG_ERR_LIMIT ? "prompt too long: " : "",
                 pg_session_last_error(s)[0] ? pg_session_last_error(s) : pg_last_error());
        pg_session_reset(s);
        give_slot(m, slot);
        return NULL;
    }
    srv_job *job = calloc(1, sizeof *job);
    if (!job) {
        *http = 503;
        snprintf(msg, cap, "out of memory");
        give_slot(m, slot);
        return NULL;
    }
    job->model = m;
    job->session = s;
    job->slot = slot;
    job->fd = fd;
    job->t_start_ns = t_start_ns;
    job->t_deadline_ns = deadline;
    pthread_mutex_init(&job->mu, NULL);
    pthread_cond_init(&job->cv, NULL);
    pg_generate_options go = gen->go;
    for (uint32_t i = 0; i < gen->n_stops; i++) job->stop_ptrs[i] = gen->stops[i];
    go.stop_strings = gen->n_stops ? job->stop_ptrs : NULL;
    go.n_stop_strings = gen->n_stops;
    go.on_token = on_token;
    go.on_token_user = job;
    pthread_mutex_lock(&m->mu);
    m->jobs[slot] = job;
    pthread_mutex_unlock(&m->mu);
    job->load_ns = srv_now_ns() - t_start_ns;
    st = pg_batch_add(m->batch, s, &go); /* copies the options and stop strings */
    if (st != PG_OK) {
        *http = 503;
        snprintf(msg, cap, "cannot queue the request: %s", pg_last_error());
        job->done = true;
        srv_job_finish(job);
        return NULL;
    }
    return job;
}

/* Under job->mu: interrupts once on a hang-up or at the deadline. */
static void watch(srv_job *job)
{
    if (job->done || job->timed_out || job->client_gone) return;
    if (client_gone(job->fd)) {
        job->client_gone = true;
    } else if (past(job->t_deadline_ns)) {
        job->timed_out = true;
    } else {
        return;
    }
    pg_session_interrupt(job->session);
}

void srv_job_next(srv_job *job, char **text, size_t *len, bool *done)
{
    *text = NULL;
    *len = 0;
    *done = false;
    pthread_mutex_lock(&job->mu);
    for (;;) {
        if (job->pending_len) {
            *text = job->pending;
            *len = job->pending_len;
            job->pending = NULL;
            job->pending_len = job->pending_cap = 0;
            break;
        }
        if (job->done) {
            *done = true;
            break;
        }
        struct timespec ts;
        deadline_in(&ts, 100);
        pthread_cond_timedwait(&job->cv, &job->mu, &ts);
        watch(job);
    }
    pthread_mutex_unlock(&job->mu);
}

void srv_job_wait(srv_job *job)
{
    pthread_mutex_lock(&job->mu);
    while (!job->done) {
        struct timespec ts;
        deadline_in(&ts, 100);
        pthread_cond_timedwait(&job->cv, &job->mu, &ts);
        watch(job);
        job->pending_len = 0; /* nobody streams this one */
    }
    pthread_mutex_unlock(&job->mu);
}

void srv_job_finish(srv_job *job)
{
    if (!job) return;
    pthread_mutex_lock(&job->mu);
    if (!job->done) pg_session_interrupt(job->session);
    while (!job->done) pthread_cond_wait(&job->cv, &job->mu);
    pthread_mutex_unlock(&job->mu);
    pg_session_reset(job->session);
    give_slot(job->model, job->slot);
    pthread_mutex_destroy(&job->mu);
    pthread_cond_destroy(&job->cv);
    free(job->pending);
    free(job);
}

void srv_job_result(srv_job *job, srv_result *r)
{
    memset(r, 0, sizeof *r);
    pg_session *s = job->session;
    r->text = pg_session_text(s, &r->text_len);
    size_t n = 0;
    pg_session_output_ids(s, &n);
    r->output_tokens = (uint32_t)n;
    pg_session_prompt_ids(s, &n);
    r->prompt_tokens = (uint32_t)n;
    pg_timings t = { .struct_size = sizeof t };
    if (pg_session_get_timings(s, &t) == PG_OK) {
        r->prompt_ns = (uint64_t)((t.preprocess_ms + t.vision_ms + t.prefill_ms) * 1e6);
        r->eval_ns = (uint64_t)(t.decode_ms * 1e6);
    }
    r->load_ns = job->load_ns;
    r->total_ns = srv_now_ns() - job->t_start_ns;
    int32_t why = pg_session_stop_reason(s);
    r->done_reason = (why == PG_STOP_MAX_TOKENS || why == PG_STOP_CONTEXT) ? "length" : "stop";
}
