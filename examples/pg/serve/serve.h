/*
 * pg serve: an Ollama- and OpenAI-compatible HTTP server over a pg_batch per model.
 *
 *   http.c     libmicrohttpd plumbing: bodies, limits, the bearer key, routing, JSON and
 *              streamed replies, client-gone detection
 *   engine.c   models, their session pools and stepping threads, jobs (one generation)
 *   ollama.c   /api/generate, /api/chat, /api/tags, /api/version, /api/show, /api/ps
 *   openai.c   /v1/chat/completions, /v1/models, /health
 *   base64.c   base64 and data: URIs
 *   images.c   request images (base64 / data URI) decoded from memory into pg_images
 */
#ifndef PG_SERVE_H
#define PG_SERVE_H

#include "paligemma.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_MAX_MODELS 8
#define SRV_MAX_IMAGES 8
#define SRV_MAX_STOPS 8
#define SRV_MAX_PROMPT_BYTES (64 * 1024)
#define SRV_MAX_NEW_TOKENS 1024
#define SRV_OLLAMA_VERSION "0.6.0" /* the Ollama API level /api/version reports */

typedef struct srv_model srv_model;

typedef struct srv_config {
    const char *model_paths[SRV_MAX_MODELS];
    int n_models;
    const char *host;
    uint16_t port;
    const char *api_key;     /* NULL: no key */
    size_t max_body;         /* bytes */
    uint32_t batch;          /* sessions decoded together per model */
    uint32_t timeout_s;      /* per-request deadline */
    int threads;             /* compute threads per model; 0 = all CPUs */
    const char *backend;
} srv_config;

typedef struct srv_server {
    srv_config cfg;
    srv_model *models[SRV_MAX_MODELS];
    int n_models;
    atomic_bool ready;       /* every model loaded (/health says 503 before) */
    atomic_uint_fast64_t next_id;
    struct MHD_Daemon *daemon;
} srv_server;

/* ---- engine.c ---- */

/* One generation: a pooled session in its model's batch, with what it streamed so far. */
typedef struct srv_job {
    srv_model *model;
    pg_session *session;
    int slot;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *pending;           /* streamed text not yet taken by the HTTP side */
    size_t pending_len, pending_cap;
    bool done;               /* the batch gave the session back */
    pg_status result;
    bool timed_out, client_gone;
    int fd;                  /* the client's socket, polled for a hang-up */
    uint64_t t_start_ns, t_deadline_ns, load_ns;
    char *stops[SRV_MAX_STOPS];
    const char *stop_ptrs[SRV_MAX_STOPS];
} srv_job;

/* A request's generation parameters, as parsed by the Ollama and OpenAI handlers. */
typedef struct srv_gen {
    const char *prompt;
    pg_image *images[SRV_MAX_IMAGES];
    size_t n_images;
    pg_generate_options go;
    const char *stops[SRV_MAX_STOPS];
    uint32_t n_stops;
} srv_gen;

uint64_t srv_now_ns(void);
pg_status srv_model_load(srv_model **out, const char *path, const srv_config *cfg);
void srv_model_free(srv_model *m);
const char *srv_model_name(const srv_model *m); /* "f32:latest" style, as /api/tags lists */
const char *srv_model_path(const srv_model *m);
const pg_model_info *srv_model_info(const srv_model *m);
uint64_t srv_model_size(const srv_model *m);     /* bytes of weights */
srv_model *srv_find_model(srv_server *srv, const char *name);

/* Starts a generation (waits for a free session up to the deadline). On failure returns
 * NULL with an HTTP status and message in *http / msg. Takes nothing from `gen`. */
srv_job *srv_job_start(srv_model *m, const srv_gen *gen, int fd, uint64_t t_start_ns,
                       uint32_t timeout_s, int *http, char *msg, size_t msg_cap);
/* Waits for more text or the end: returns malloc'd text in *text (may be NULL) and sets
 * *done once the generation has ended. Interrupts it when the client hangs up or the
 * deadline passes. */
void srv_job_next(srv_job *job, char **text, size_t *len, bool *done);
/* Waits for the end (interrupting as srv_job_next does). */
void srv_job_wait(srv_job *job);
/* Interrupts if still running, waits, gives the session back, frees. NULL is fine. */
void srv_job_finish(srv_job *job);

/* Results, valid once done. */
typedef struct srv_result {
    const char *text;
    size_t text_len;
    uint32_t prompt_tokens, output_tokens;
    uint64_t total_ns, load_ns, prompt_ns, eval_ns;
    const char *done_reason; /* "stop" or "length" */
} srv_result;
void srv_job_result(srv_job *job, srv_result *r);

/* ---- http.c ---- */

typedef struct srv_req {
    srv_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    char *body;
    size_t len;
    int fd;
    uint64_t t_start_ns;
} srv_req;

/* A streamed reply: piece() formats a text piece, final() the closing chunk(s). */
typedef struct srv_stream {
    srv_job *job;
    char *(*piece)(struct srv_stream *st, const char *text, size_t len);
    char *(*final)(struct srv_stream *st);
    void *ctx;
    void (*free_ctx)(void *ctx);
    char *out;
    size_t out_len, out_pos;
    bool finished;
} srv_stream;

enum MHD_Result srv_reply_json(srv_req *req, unsigned status, json_t *body); /* steals body */
enum MHD_Result srv_reply_error(srv_req *req, unsigned status, const char *fmt, ...);
/* Sends `st` (malloc'd, freed with its job when the reply ends). */
enum MHD_Result srv_reply_stream(srv_req *req, const char *content_type, srv_stream *st);
int srv_run(srv_server *srv); /* binds, loads the models, serves until SIGINT/SIGTERM */
char *srv_json_line(json_t *obj, const char *prefix, const char *suffix); /* steals obj */
void srv_rfc3339(char *buf, size_t cap);

/* ---- ollama.c / openai.c ---- */
enum MHD_Result srv_ollama_generate(srv_req *req);
enum MHD_Result srv_ollama_chat(srv_req *req);
enum MHD_Result srv_ollama_tags(srv_req *req);
enum MHD_Result srv_ollama_ps(srv_req *req);
enum MHD_Result srv_ollama_show(srv_req *req);
enum MHD_Result srv_ollama_version(srv_req *req);
enum MHD_Result srv_openai_chat(srv_req *req);
enum MHD_Result srv_openai_models(srv_req *req);
enum MHD_Result srv_health(srv_req *req);

/* Shared by both: parse a JSON body (400 reply sent on failure -> NULL). */
json_t *srv_parse_body(srv_req *req, enum MHD_Result *ret);
/* Generation options from Ollama "options" / OpenAI fields: 0 or a 400 message. */
void srv_gen_init(srv_gen *g);
void srv_gen_clear(srv_gen *g);
/* Status of a failed srv_job_start etc. -> reply. */

/* ---- base64.c ---- */
/* Decodes standard base64 (whitespace skipped, padding optional). NULL on bad input. */
unsigned char *srv_base64_decode(const char *s, size_t len, size_t *out_len);
/* "data:[mime][;base64],DATA" -> the base64 part; NULL when `s` is not a data URI. */
const char *srv_data_uri_payload(const char *s, size_t *len);

/* ---- images.c ---- */
/* Decodes one request image (raw base64 or data URI) into g->images; 0 or a 400 message
 * written to msg. */
int srv_add_image(srv_gen *g, const char *value, size_t max_bytes, char *msg, size_t cap);

#endif
