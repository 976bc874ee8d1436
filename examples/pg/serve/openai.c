/*
 * The OpenAI API as llama.cpp's server speaks it: /v1/chat/completions (text and image_url
 * parts; data: URIs or raw base64; remote URLs refused), streamed as server-sent events that
 * end in "data: [DONE]", with usage; /v1/models; and /health.
 */
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MSG_CAP 512

typedef struct oai_ctx {
    char id[48];
    char model[256];
    long long created;
    bool sent_role;
} oai_ctx;

static json_t *usage(const srv_result *r)
{
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", (int)r->prompt_tokens,
                     "completion_tokens", (int)r->output_tokens, "total_tokens",
                     (int)(r->prompt_tokens + r->output_tokens));
}

static json_t *chunk(const oai_ctx *c, json_t *delta, const char *finish)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:s?}]}", "id", c->id, "object",
                     "chat.completion.chunk", "created", (json_int_t)c->created, "model",
                     c->model, "choices", "index", 0, "delta", delta, "finish_reason", finish);
}

static char *sse_piece(srv_stream *st, const char *text, size_t len)
{
    (void)len;
    oai_ctx *c = st->ctx;
    json_t *delta = c->sent_role ? json_pack("{s:s}", "content", text)
                                 : json_pack("{s:s, s:s}", "role", "assistant", "content", text);
    c->sent_role = true;
    return srv_json_line(chunk(c, delta, NULL), "data: ", "\n\n");
}

static char *sse_final(srv_stream *st)
{
    oai_ctx *c = st->ctx;
    srv_job *job = st->job;
    if (job->timed_out || (job->result != PG_OK && job->result != PG_ERR_CANCELLED)) {
        const char *m = job->timed_out ? "the request ran past its deadline (--timeout)"
                                       : pg_status_string(job->result);
        return srv_json_line(json_pack("{s:{s:s, s:s}}", "error", "message", m, "type",
                                       "server_error"), "data: ", "\n\ndata: [DONE]\n\n");
    }
    srv_result r;
    srv_job_result(job, &r);
    json_t *o = chunk(c, json_object(), r.done_reason);
    json_object_set_new(o, "usage", usage(&r)); /* in the last chunk, as llama.cpp sends it */
    return srv_json_line(o, "data: ", "\n\ndata: [DONE]\n\n");
}

/* Text parts are joined by spaces; image_url parts decoded. */
static int parse_content(srv_req *req, json_t *content, srv_gen *g, char **prompt, char *msg)
{
    if (json_is_string(content)) {
        *prompt = strdup(json_string_value(content));
        return *prompt ? 0 : (snprintf(msg, MSG_CAP, "out of memory"), -1);
    }
    if (!json_is_array(content))
        return snprintf(msg, MSG_CAP, "message content must be a string or an array of parts"), -1;
    size_t cap = 1, i;
    json_t *part;
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");
        if (json_is_string(t)) cap += json_string_length(t) + 1;
    }
    char *p = calloc(1, cap);
    if (!p) return snprintf(msg, MSG_CAP, "out of memory"), -1;
    *prompt = p;
    json_array_foreach(content, i, part) {
        json_t *type = json_object_get(part, "type");
        const char *ty = json_is_string(type) ? json_string_value(type) : "";
        if (!strcmp(ty, "text")) {
            json_t *t = json_object_get(part, "text");
            if (!json_is_string(t)) return snprintf(msg, MSG_CAP, "a text part needs \"text\""), -1;
            if (*p) strcat(p, " ");
            strcat(p, json_string_value(t));
        } else if (!strcmp(ty, "image_url")) {
            json_t *u = json_object_get(part, "image_url");
            if (json_is_object(u)) u = json_object_get(u, "url");
            if (!json_is_string(u))
                return snprintf(msg, MSG_CAP, "an image_url part needs image_url.url"), -1;
            if (srv_add_image(g, json_string_value(u), req->srv->cfg.max_body, msg, MSG_CAP))
                return -1;
        } else {
            return snprintf(msg, MSG_CAP, "unsupported content part type '%s'", ty), -1;
        }
    }
    return 0;
}

static int parse_sampling(json_t *body, srv_gen *g, char *msg)
{
    json_t *v;
    if ((v = json_object_get(body, "max_completion_tokens")) && !json_is_null(v)) {
    } else {
        v = json_object_get(body, "max_tokens");
    }
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return snprintf(msg, MSG_CAP, "max_tokens must be a positive integer"), -1;
        json_int_t n = json_integer_value(v);
        g->go.max_new_tokens = n > SRV_MAX_NEW_TOKENS ? SRV_MAX_NEW_TOKENS : (uint32_t)n;
    }
    if ((v = json_object_get(body, "temperature")) && !json_is_null(v)) {
        if (!json_is_number(v) || json_number_value(v) < 0)
            return snprintf(msg, MSG_CAP, "temperature must be a number >= 0"), -1;
        g->go.temperature = (float)json_number_value(v);
    }
    if ((v = json_object_get(body, "top_p")) && !json_is_null(v)) {
        if (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 1)
            return snprintf(msg, MSG_CAP, "top_p must be a number in (0, 1]"), -1;
        g->go.top_p = (float)json_number_value(v);
    }
    if ((v = json_object_get(body, "seed")) && !json_is_null(v)) {
        if (!json_is_integer(v)) return snprintf(msg, MSG_CAP, "seed must be an integer"), -1;
        g->go.seed = (uint64_t)json_integer_value(v);
    }
    if ((v = json_object_get(body, "stop")) && !json_is_null(v)) {
        if (json_is_string(v)) {
            g->stops[g->n_stops++] = json_string_value(v);
        } else if (json_is_array(v) && json_array_size(v) <= SRV_MAX_STOPS) {
            size_t i;
            json_t *s;
            json_array_foreach(v, i, s) {
                if (!json_is_string(s) || !json_string_length(s))
                    return snprintf(msg, MSG_CAP, "stop must hold non-empty strings"), -1;
                g->stops[g->n_stops++] = json_string_value(s);
            }
        } else {
            return snprintf(msg, MSG_CAP, "stop must be a string or up to %d strings",
                            SRV_MAX_STOPS), -1;
        }
    }
    return 0;
}

static enum MHD_Result complete(srv_req *req, srv_model *m, srv_gen *g, oai_ctx *c, bool stream)
{
    int http = 500;
    char msg[MSG_CAP];
    srv_job *job = srv_job_start(m, g, req->fd, req->t_start_ns, req->srv->cfg.timeout_s, &http,
                                 msg, sizeof msg);
    if (!job) return srv_reply_error(req, (unsigned)http, "%s", msg);
    if (stream) {
        srv_stream *st = calloc(1, sizeof *st);
        oai_ctx *cc = malloc(sizeof *cc);
        if (!st || !cc) {
            free(st);
            free(cc);
            srv_job_finish(job);
            return srv_reply_error(req, 503, "out of memory");
        }
        *cc = *c;
        st->job = job;
        st->piece = sse_piece;
        st->final = sse_final;
        st->ctx = cc;
        st->free_ctx = free;
        return srv_reply_stream(req, "text/event-stream", st);
    }
    srv_job_wait(job);
    enum MHD_Result ret;
    if (job->timed_out) {
        ret = srv_reply_error(req, 504, "the request ran past its deadline (--timeout)");
    } else if (job->result != PG_OK && job->result != PG_ERR_CANCELLED) {
        ret = srv_reply_error(req, job->result == PG_ERR_LIMIT ? 400 : 500, "%s",
                              job->result == PG_ERR_LIMIT ? "prompt too long for the context"
                                                          : pg_status_string(job->result));
    } else {
        srv_result r;
        srv_job_result(job, &r);
        json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:o}", "id",
                              c->id, "object", "chat.completion", "created",
                              (json_int_t)c->created, "model", c->model, "choices", "index", 0,
                              "message", "role", "assistant", "content", r.text,
                              "finish_reason", r.done_reason, "usage", usage(&r));
        ret = srv_reply_json(req, 200, o);
    }
    srv_job_finish(job);
    return ret;
}

enum MHD_Result srv_openai_chat(srv_req *req)
{
    enum MHD_Result ret = MHD_NO;
    json_t *body = srv_parse_body(req, &ret);
    if (!body) return ret;
    srv_gen g;
    srv_gen_init(&g);
    char msg[MSG_CAP];
    char *prompt = NULL;
    oai_ctx c = { .created = (long long)time(NULL) };
    snprintf(c.id, sizeof c.id, "chatcmpl-%llu",
             (unsigned long long)atomic_fetch_add(&req->srv->next_id, 1));
    json_t *model = json_object_get(body, "model");
    json_t *msgs = json_object_get(body, "messages");
    json_t *stream = json_object_get(body, "stream");
    srv_model *m = json_is_string(model) ? srv_find_model(req->srv, json_string_value(model))
                                         : NULL;
    if (!json_is_string(model)) {
        ret = srv_reply_error(req, 400, "\"model\" is required (a string)");
        goto out;
    }
    if (!m) {
        ret = atomic_load(&req->srv->ready)
                  ? srv_reply_error(req, 404, "model '%s' not found", json_string_value(model))
                  : srv_reply_error(req, 503, "models are still loading");
        goto out;
    }
    snprintf(c.model, sizeof c.model, "%s", json_string_value(model));
    if (stream && !json_is_null(stream) && !json_is_boolean(stream)) {
        ret = srv_reply_error(req, 400, "\"stream\" must be true or false");
        goto out;
    }
    if (!json_is_array(msgs) || !json_array_size(msgs)) {
        ret = srv_reply_error(req, 400, "\"messages\" must be a non-empty array");
        goto out;
    }
    json_t *last = NULL;
    for (size_t i = json_array_size(msgs); i-- > 0 && !last;) {
        json_t *mm = json_array_get(msgs, i), *role = json_object_get(mm, "role");
        if (json_is_string(role) && !strcmp(json_string_value(role), "user")) last = mm;
    }
    if (!last) {
        ret = srv_reply_error(req, 400, "no message with role \"user\"");
    } else if (parse_sampling(body, &g, msg) ||
               parse_content(req, json_object_get(last, "content"), &g, &prompt, msg)) {
        ret = srv_reply_error(req, 400, "%s", msg);
    } else if (strlen(prompt) > SRV_MAX_PROMPT_BYTES) {
        ret = srv_reply_error(req, 400, "prompt too long: %zu bytes (at most %d)", strlen(prompt),
                              SRV_MAX_PROMPT_BYTES);
    } else {
        g.prompt = prompt;
        ret = complete(req, m, &g, &c, json_is_true(stream));
    }
out:
    free(prompt);
    srv_gen_clear(&g);
    json_decref(body);
    return ret;
}

enum MHD_Result srv_openai_models(srv_req *req)
{
    json_t *data = json_array();
    if (atomic_load(&req->srv->ready)) {
        for (int i = 0; i < req->srv->n_models; i++) {
            json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s}", "id",
                                                  srv_model_name(req->srv->models[i]), "object",
                                                  "model", "created", (json_int_t)time(NULL),
                                                  "owned_by", "libpaligemma"));
        }
    }
    return srv_reply_json(req, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

enum MHD_Result srv_health(srv_req *req)
{
    if (!atomic_load(&req->srv->ready))
        return srv_reply_json(req, 503, json_pack("{s:s}", "status", "loading"));
    return srv_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}
