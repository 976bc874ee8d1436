/*
 * HTTP plumbing on libmicrohttpd: one thread per connection (a request thread blocks while
 * its generation runs in the model's batch), request bodies up to --max-body, the optional
 * bearer key, routing, JSON and streamed replies, and the process's start and stop.
 */
#include "serve.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

typedef struct conn_ctx {
    char *body;
    size_t len, cap;
    bool too_big;
    bool oom;
    uint64_t t_start_ns;
} conn_ctx;

static void add_common_headers(struct MHD_Response *r, const char *content_type)
{
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
}

enum MHD_Result srv_reply_json(srv_req *req, unsigned status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) return MHD_NO;
    size_t n = strlen(text);
    struct MHD_Response *r = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    add_common_headers(r, "application/json; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(req->conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Ollama's {"error": "..."}, or OpenAI's {"error": {"message", "type", "code"}} under /v1/. */
enum MHD_Result srv_reply_error(srv_req *req, unsigned status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *body;
    if (!strncmp(req->url, "/v1/", 4)) {
        const char *type = status == 401 ? "authentication_error"
                         : status >= 500 ? "server_error" : "invalid_request_error";
        body = json_pack("{s:{s:s, s:s, s:n}}", "error", "message", msg, "type", type, "code");
    } else {
        body = json_pack("{s:s}", "error", msg);
    }
    return srv_reply_json(req, status, body);
}

char *srv_json_line(json_t *obj, const char *prefix, const char *suffix)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text) return NULL;
    size_t a = strlen(prefix), b = strlen(text), c = strlen(suffix);
    char *line = malloc(a + b + c + 1);
    if (line) {
        memcpy(line, prefix, a);
        memcpy(line + a, text, b);
        memcpy(line + a + b, suffix, c + 1);
    }
    free(text);
    return line;
}

void srv_rfc3339(char *buf, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char head[32];
    strftime(head, sizeof head, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%09ldZ", head, ts.tv_nsec);
}

/* ---- streamed replies ---- */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    srv_stream *st = cls;
    while (st->out_pos == st->out_len) {
        free(st->out);
        st->out = NULL;
        st->out_len = st->out_pos = 0;
        if (st->finished) return MHD_CONTENT_READER_END_OF_STREAM;
        char *text = NULL;
        size_t len = 0;
        bool done = false;
        srv_job_next(st->job, &text, &len, &done);
        if (text) {
            st->out = st->piece(st, text, len);
            free(text);
        } else {
            st->out = st->final(st);
            st->finished = true;
        }
        if (!st->out) return MHD_CONTENT_READER_END_WITH_ERROR;
        st->out_len = strlen(st->out);
    }
    size_t n = st->out_len - st->out_pos;
    if (n > max) n = max;
    memcpy(buf, st->out + st->out_pos, n);
    st->out_pos += n;
    return (ssize_t)n;
}

/* The reply ended (sent, or the client went away): the job ends too. */
static void stream_free(void *cls)
{
    srv_stream *st = cls;
    srv_job_finish(st->job);
    if (st->free_ctx) st->free_ctx(st->ctx);
    free(st->out);
    free(st);
}

enum MHD_Result srv_reply_stream(srv_req *req, const char *content_type, srv_stream *st)
{
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, st,
                                          stream_free);
    if (!r) {
        stream_free(st);
        return MHD_NO;
    }
    add_common_headers(r, content_type);
    if (!strcmp(content_type, "text/event-stream")) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    }
    enum MHD_Result ret = MHD_queue_response(req->conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- requests ---- */

json_t *srv_parse_body(srv_req *req, enum MHD_Result *ret)
{
    json_error_t err;
    json_t *j = json_loadb(req->body ? req->body : "", req->len, 0, &err);
    if (!j) {
        *ret = srv_reply_error(req, 400, "malformed JSON body: %s (line %d, column %d)",
                               err.text, err.line, err.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *ret = srv_reply_error(req, 400, "the JSON body must be an object");
        return NULL;
    }
    return j;
}

typedef struct route {
    const char *method;
    const char *path;
    enum MHD_Result (*fn)(srv_req *);
} route;

static const route routes[] = {
    { "POST", "/api/generate", srv_ollama_generate },
    { "POST", "/api/chat", srv_ollama_chat },
    { "GET", "/api/tags", srv_ollama_tags },
    { "GET", "/api/version", srv_ollama_version },
    { "POST", "/api/show", srv_ollama_show },
    { "GET", "/api/ps", srv_ollama_ps },
    { "POST", "/v1/chat/completions", srv_openai_chat },
    { "GET", "/v1/models", srv_openai_models },
    { "GET", "/health", srv_health },
};

static bool authorized(srv_req *req)
{
    const char *key = req->srv->cfg.api_key;
    if (!key || !strcmp(req->url, "/health")) return true;
    const char *h = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    return h && !strncmp(h, "Bearer ", 7) && !strcmp(h + 7, key);
}

static enum MHD_Result dispatch(srv_req *req)
{
    if (!authorized(req)) {
        return srv_reply_error(req, 401, "missing or wrong API key (Authorization: Bearer KEY)");
    }
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(req->url, routes[i].path)) continue;
        path_known = true;
        if (!strcmp(req->method, routes[i].method) ||
            (!strcmp(req->method, "HEAD") && !strcmp(routes[i].method, "GET"))) {
            return routes[i].fn(req);
        }
    }
    if (!strcmp(req->url, "/") && !strcmp(req->method, "GET")) { /* Ollama's liveness text */
        const char *t = "Ollama is running";
        struct MHD_Response *r = MHD_create_response_from_buffer(strlen(t), (void *)t,
                                                                 MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ret = MHD_queue_response(req->conn, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (path_known) return srv_reply_error(req, 405, "method %s not allowed here", req->method);
    return srv_reply_error(req, 404, "no such endpoint: %s %s", req->method, req->url);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **req_cls)
{
    (void)version;
    srv_server *srv = cls;
    conn_ctx *c = *req_cls;
    srv_req req = { .srv = srv, .conn = conn, .method = method, .url = url, .fd = -1 };
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) return MHD_NO;
        c->t_start_ns = srv_now_ns();
        *req_cls = c;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > srv->cfg.max_body) {
            /* answered before the body is read; libmicrohttpd then closes the connection */
            return srv_reply_error(&req, 413, "request body larger than --max-body (%zu bytes)",
                                   srv->cfg.max_body);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (c->too_big || c->oom) return MHD_YES;
        if (c->len + n > srv->cfg.max_body) {
            c->too_big = true;
            free(c->body);
            c->body = NULL;
            c->len = c->cap = 0;
            return MHD_YES;
        }
        if (c->len + n + 1 > c->cap) {
            size_t cap = (c->len + n + 1) * 2;
            if (cap > srv->cfg.max_body + 1) cap = srv->cfg.max_body + 1;
            char *p = realloc(c->body, cap);
            if (!p) {
                c->oom = true;
                return MHD_YES;
            }
            c->body = p;
            c->cap = cap;
        }
        memcpy(c->body + c->len, upload, n);
        c->len += n;
        c->body[c->len] = '\0';
        return MHD_YES;
    }
    if (c->too_big) {
        return srv_reply_error(&req, 413, "request body larger than --max-body (%zu bytes)",
                               srv->cfg.max_body);
    }
    if (c->oom) return srv_reply_error(&req, 503, "out of memory reading the body");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    req.fd = ci ? ci->connect_fd : -1;
    req.body = c->body;
    req.len = c->len;
    req.t_start_ns = c->t_start_ns;
    return dispatch(&req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    conn_ctx *c = *req_cls;
    if (c) {
        free(c->body);
        free(c);
    }
    *req_cls = NULL;
}

static bool fill_addr(const char *host, uint16_t port, struct sockaddr_storage *ss,
                      bool *v6)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (!strcmp(host, "localhost")) host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *v6 = false;
        return true;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *v6 = true;
        return true;
    }
    return false;
}

int srv_run(srv_server *srv)
{
    struct sockaddr_storage ss;
    bool v6 = false;
    if (!fill_addr(srv->cfg.host, srv->cfg.port, &ss, &v6)) {
        fprintf(stderr, "pg serve: --host %s: not an IPv4 or IPv6 address\n", srv->cfg.host);
        return 2;
    }
    /* SIGINT/SIGTERM are taken by sigwait below; every thread started from here blocks them */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | (v6 ? MHD_USE_IPv6 : 0);
    srv->daemon = MHD_start_daemon(flags, srv->cfg.port, NULL, NULL, on_request, srv,
                                   MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                   MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
                                   MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                                   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)600,
                                   MHD_OPTION_END);
    if (!srv->daemon) {
        fprintf(stderr, "pg serve: cannot listen on %s:%u (in use, or not allowed)\n",
                srv->cfg.host, srv->cfg.port);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = di ? di->port : srv->cfg.port;
    fprintf(stderr, "pg serve: listening on http://%s%s%s:%u/ (loading models)\n",
            v6 ? "[" : "", srv->cfg.host, v6 ? "]" : "", port);
    int rc = 0;
    for (int i = 0; i < srv->cfg.n_models; i++) {
        if (srv_model_load(&srv->models[i], srv->cfg.model_paths[i], &srv->cfg) != PG_OK) {
            rc = 1;
            break;
        }
        srv->n_models = i + 1;
    }
    if (rc == 0) {
        atomic_store(&srv->ready, true);
        for (int i = 0; i < srv->n_models; i++) {
            fprintf(stderr, "pg serve: model %s (%s)\n", srv_model_name(srv->models[i]),
                    srv_model_path(srv->models[i]));
        }
        fprintf(stderr, "pg serve: ready on port %u\n", port);
        int sig = 0;
        sigwait(&sigs, &sig);
        fprintf(stderr, "pg serve: stopping\n");
    }
    atomic_store(&srv->ready, false);
    MHD_stop_daemon(srv->daemon); /* waits for the connection threads, so jobs end first */
    for (int i = 0; i < srv->n_models; i++) srv_model_free(srv->models[i]);
    return rc;
}
