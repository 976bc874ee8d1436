/*
 * The Ollama API: /api/generate and /api/chat (streamed NDJSON or one object, with the
 * final fields Ollama sends: done, done_reason, total_duration, load_duration,
 * prompt_eval_count, prompt_eval_duration, eval_count, eval_duration in nanoseconds),
 * /api/tags, /api/version, /api/show, /api/ps.
 */
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_CAP 512

/* options{temperature, top_p, top_k, seed, num_predict, stop}; others (num_ctx...) ignored. */
static int parse_options(json_t *opts, srv_gen *g, char *msg)
{
    if (!opts || json_is_null(opts)) return 0;
    if (!json_is_object(opts)) return snprintf(msg, MSG_CAP, "\"options\" must be an object"), -1;
    json_t *v;
    if ((v = json_object_get(opts, "temperature")) && !json_is_null(v)) {
        if (!json_is_number(v) || json_number_value(v) < 0)
            return snprintf(msg, MSG_CAP, "options.temperature must be a number >= 0"), -1;
        g->go.temperature = (float)json_number_value(v);
    }
    if ((v = json_object_get(opts, "top_p")) && !json_is_null(v)) {
        if (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 1)
            return snprintf(msg, MSG_CAP, "options.top_p must be a number in (0, 1]"), -1;
        g->go.top_p = (float)json_number_value(v);
    }
    if ((v = json_object_get(opts, "top_k")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return snprintf(msg, MSG_CAP, "options.top_k must be an integer >= 0"), -1;
        g->go.top_k = (uint32_t)json_integer_value(v);
    }
    if ((v = json_object_get(opts, "seed")) && !json_is_null(v)) {
        if (!json_is_integer(v)) return snprintf(msg, MSG_CAP, "options.seed must be an integer"), -1;
        g->go.seed = (uint64_t)json_integer_value(v);
    }
    if ((v = json_object_get(opts, "num_predict")) && !json_is_null(v)) {
        if (!json_is_integer(v))
            return snprintf(msg, MSG_CAP, "options.num_predict must be an integer"), -1;
        json_int_t n = json_integer_value(v); /* -1 / -2 (unbounded) -> the server's cap */
        g->go.max_new_tokens = n <= 0 || n > SRV_MAX_NEW_TOKENS ? SRV_MAX_NEW_TOKENS
                                                                : (uint32_t)n;
    }
    if ((v = json_object_get(opts, "stop")) && !json_is_null(v)) {
        if (!json_is_array(v) || json_array_size(v) > SRV_MAX_STOPS)
            return snprintf(msg, MSG_CAP, "options.stop must be an array of up to %d strings",
                            SRV_MAX_STOPS), -1;
        size_t i;
        json_t *s;
        json_array_foreach(v, i, s) {
            if (!json_is_string(s) || !json_string_length(s))
                return snprintf(msg, MSG_CAP, "options.stop must hold non-empty strings"), -1;
            g->stops[g->n_stops++] = json_string_value(s);
        }
    }
    return 0;
}

static int parse_images(srv_req *req, json_t *images, srv_gen *g, char *msg)
{
    if (!images || json_is_null(images)) return 0;
    if (!json_is_array(images)) return snprintf(msg, MSG_CAP, "\"images\" must be an array"), -1;
    size_t i;
    json_t *v;
    json_array_foreach(images, i, v) {
        if (!json_is_string(v))
            return snprintf(msg, MSG_CAP, "\"images\" must hold base64 strings"), -1;
        if (srv_add_image(g, json_string_value(v), req->srv->cfg.max_body, msg, MSG_CAP))
            return -1;
    }
    return 0;
}

typedef struct ollama_ctx {
    char model[256];
    bool chat;
    bool json_format;   /* "format": the whole text is sent as one JSON document */
} ollama_ctx;

/* format "json" (or a schema object): the response must be JSON. PaliGemma cannot be
 * constrained, so text that is not already JSON is sent as a JSON string. */
static char *json_text(const char *text)
{
    json_t *probe = json_loads(text, JSON_DECODE_ANY, NULL);
    if (probe) {
        json_decref(probe);
        return strdup(text);
    }
    json_t *s = json_string(text);
    char *out = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    json_decref(s);
    return out;
}

static json_t *chunk_object(const ollama_ctx *c, const char *text, bool done)
{
    char ts[64];
    srv_rfc3339(ts, sizeof ts);
    if (c->chat) {
        return json_pack("{s:s, s:s, s:{s:s, s:s}, s:b}", "model", c->model, "created_at", ts,
                         "message", "role", "assistant", "content", text, "done", done);
    }
    return json_pack("{s:s, s:s, s:s, s:b}", "model", c->model, "created_at", ts, "response",
                     text, "done", done);
}

static json_t *final_object(const ollama_ctx *c, srv_job *job, const char *text)
{
    srv_result r;
    srv_job_result(job, &r);
    json_t *o = chunk_object(c, text, true);
    json_object_set_new(o, "done_reason", json_string(r.done_reason));
    json_object_set_new(o, "total_duration", json_integer((json_int_t)r.total_ns));
    json_object_set_new(o, "load_duration", json_integer((json_int_t)r.load_ns));
    json_object_set_new(o, "prompt_eval_count", json_integer(r.prompt_tokens));
    json_object_set_new(o, "prompt_eval_duration", json_integer((json_int_t)r.prompt_ns));
    json_object_set_new(o, "eval_count", json_integer(r.output_tokens));
    json_object_set_new(o, "eval_duration", json_integer((json_int_t)r.eval_ns));
    return o;
}

/* The job ended badly: the message to report, or NULL when it ended normally. */
static const char *job_failure(srv_job *job, unsigned *status)
{
    if (job->timed_out) return *status = 504, "the request ran past its deadline (--timeout)";
    if (job->result != PG_OK && job->result != PG_ERR_CANCELLED) {
        *status = job->result == PG_ERR_LIMIT ? 400 : 500;
        return job->result == PG_ERR_LIMIT ? "prompt too long for the context"
                                           : pg_status_string(job->result);
    }
    return NULL;
}

static char *stream_piece(srv_stream *st, const char *text, size_t len)
{
    (void)len;
    ollama_ctx *c = st->ctx;
    if (c->json_format) return strdup(""); /* sent whole at the end */
    return srv_json_line(chunk_object(c, text, false), "", "\n");
}

static char *stream_final(srv_stream *st)
{
    ollama_ctx *c = st->ctx;
    unsigned status = 0;
    const char *fail = job_failure(st->job, &status);
    if (fail) return srv_json_line(json_pack("{s:s}", "error", fail), "", "\n");
    char *head = NULL;
    if (c->json_format) {
        char *whole = json_text(pg_session_text(st->job->session, NULL));
        head = whole ? srv_json_line(chunk_object(c, whole, false), "", "\n") : NULL;
        free(whole);
        if (!head) return NULL;
    }
    char *tail = srv_json_line(final_object(c, st->job, ""), head ? head : "", "\n");
    free(head);
    return tail;
}

static enum MHD_Result run_job(srv_req *req, srv_model *m, srv_gen *g, ollama_ctx *c,
                               bool stream)
{
    int http = 500;
    char msg[MSG_CAP];
    srv_job *job = srv_job_start(m, g, req->fd, req->t_start_ns, req->srv->cfg.timeout_s, &http,
                                 msg, sizeof msg);
    if (!job) return srv_reply_error(req, (unsigned)http, "%s", msg);
    if (stream) {
        srv_stream *st = calloc(1, sizeof *st);
        ollama_ctx *cc = malloc(sizeof *cc);
        if (!st || !cc) {
            free(st);
            free(cc);
            srv_job_finish(job);
            return srv_reply_error(req, 503, "out of memory");
        }
        *cc = *c;
        st->job = job;
        st->piece = stream_piece;
        st->final = stream_final;
        st->ctx = cc;
        st->free_ctx = free;
        return srv_reply_stream(req, "application/x-ndjson", st);
    }
    srv_job_wait(job);
    unsigned status = 0;
    const char *fail = job_failure(job, &status);
    enum MHD_Result ret;
    if (fail) {
        ret = srv_reply_error(req, status, "%s", fail);
    } else {
        const char *text = pg_session_text(job->session, NULL);
        char *t = c->json_format ? json_text(text) : strdup(text);
        ret = t ? srv_reply_json(req, 200, final_object(c, job, t))
                : srv_reply_error(req, 503, "out of memory");
        free(t);
    }
    srv_job_finish(job);
    return ret;
}

/* Fields both endpoints share: model (found), stream, format, options. */
static srv_model *common_fields(srv_req *req, json_t *body, srv_gen *g, ollama_ctx *c,
                                bool *stream, enum MHD_Result *ret)
{
    char msg[MSG_CAP];
    json_t *model = json_object_get(body, "model");
    if (!json_is_string(model)) {
        *ret = srv_reply_error(req, 400, "\"model\" is required (a string)");
        return NULL;
    }
    srv_model *m = srv_find_model(req->srv, json_string_value(model));
    if (!m) {
        *ret = atomic_load(&req->srv->ready)
                   ? srv_reply_error(req, 404, "model '%s' not found", json_string_value(model))
                   : srv_reply_error(req, 503, "models are still loading");
        return NULL;
    }
    snprintf(c->model, sizeof c->model, "%s", json_string_value(model));
    json_t *s = json_object_get(body, "stream");
    *stream = true; /* Ollama streams unless told not to */
    if (s && !json_is_null(s)) {
        if (!json_is_boolean(s)) {
            *ret = srv_reply_error(req, 400, "\"stream\" must be true or false");
            return NULL;
        }
        *stream = json_is_true(s);
    }
    json_t *f = json_object_get(body, "format");
    if (f && !json_is_null(f) && !(json_is_string(f) && !json_string_length(f))) {
        if (!(json_is_string(f) && !strcmp(json_string_value(f), "json")) && !json_is_object(f)) {
            *ret = srv_reply_error(req, 400, "\"format\" must be \"json\" or a JSON schema");
            return NULL;
        }
        c->json_format = true;
    }
    if (parse_options(json_object_get(body, "options"), g, msg)) {
        *ret = srv_reply_error(req, 400, "%s", msg);
        return NULL;
    }
    return m;
}

static bool prompt_ok(srv_req *req, const char *p, enum MHD_Result *ret)
{
    if (strlen(p) <= SRV_MAX_PROMPT_BYTES) return true;
    *ret = srv_reply_error(req, 400, "prompt too long: %zu bytes (at most %d)", strlen(p),
                           SRV_MAX_PROMPT_BYTES);
    return false;
}

enum MHD_Result srv_ollama_generate(srv_req *req)
{
    enum MHD_Result ret = MHD_NO;
    json_t *body = srv_parse_body(req, &ret);
    if (!body) return ret;
    srv_gen g;
    srv_gen_init(&g);
    ollama_ctx c = { .chat = false };
    bool stream = true;
    char msg[MSG_CAP];
    srv_model *m = common_fields(req, body, &g, &c, &stream, &ret);
    json_t *prompt = json_object_get(body, "prompt");
    if (!m) {
        /* reply sent */
    } else if (prompt && !json_is_string(prompt)) {
        ret = srv_reply_error(req, 400, "\"prompt\" must be a string");
    } else if (parse_images(req, json_object_get(body, "images"), &g, msg)) {
        ret = srv_reply_error(req, 400, "%s", msg);
    } else {
        g.prompt = prompt ? json_string_value(prompt) : "";
        /* "system" is accepted and not used: PaliGemma has no system turn */
        if (prompt_ok(req, g.prompt, &ret)) ret = run_job(req, m, &g, &c, stream);
    }
    srv_gen_clear(&g);
    json_decref(body);
    return ret;
}

/* The prompt is the last user message; the images those of the last message that has any. */
enum MHD_Result srv_ollama_chat(srv_req *req)
{
    enum MHD_Result ret = MHD_NO;
    json_t *body = srv_parse_body(req, &ret);
    if (!body) return ret;
    srv_gen g;
    srv_gen_init(&g);
    ollama_ctx c = { .chat = true };
    bool stream = true;
    char msg[MSG_CAP];
    srv_model *m = common_fields(req, body, &g, &c, &stream, &ret);
    json_t *msgs = json_object_get(body, "messages");
    if (!m) goto out;
    if (!json_is_array(msgs) || !json_array_size(msgs)) {
        ret = srv_reply_error(req, 400, "\"messages\" must be a non-empty array");
        goto out;
    }
    const char *prompt = NULL;
    json_t *images = NULL;
    for (size_t i = json_array_size(msgs); i-- > 0;) {
        json_t *mm = json_array_get(msgs, i);
        json_t *role = json_object_get(mm, "role"), *content = json_object_get(mm, "content");
        if (!json_is_object(mm) || !json_is_string(role) ||
            (content && !json_is_string(content))) {
            ret = srv_reply_error(req, 400, "messages[%zu] needs a string role and content", i);
            goto out;
        }
        if (!prompt && !strcmp(json_string_value(role), "user"))
            prompt = content ? json_string_value(content) : "";
        json_t *im = json_object_get(mm, "images");
        if (!images && json_is_array(im) && json_array_size(im)) images = im;
    }
    if (!prompt) {
        ret = srv_reply_error(req, 400, "no message with role \"user\"");
    } else if (parse_images(req, images, &g, msg)) {
        ret = srv_reply_error(req, 400, "%s", msg);
    } else {
        g.prompt = prompt;
        if (prompt_ok(req, g.prompt, &ret)) ret = run_job(req, m, &g, &c, stream);
    }
out:
    srv_gen_clear(&g);
    json_decref(body);
    return ret;
}

static const char *dtype_name(int32_t dt)
{
    switch (dt) {
    case PG_DTYPE_F32: return "F32";
    case PG_DTYPE_F16: return "F16";
    case PG_DTYPE_BF16: return "BF16";
    case PG_DTYPE_Q8: return "Q8_0";
    case PG_DTYPE_Q4: return "Q4_0";
    default: return "unknown";
    }
}

static json_t *details(const srv_model *m)
{
    const pg_model_info *in = srv_model_info(m);
    char params[32];
    double n = (double)in->n_params;
    if (n >= 1e9) snprintf(params, sizeof params, "%.1fB", n / 1e9);
    else snprintf(params, sizeof params, "%.1fM", n / 1e6);
    return json_pack("{s:s, s:s, s:s, s:[s], s:s, s:s}", "parent_model", "", "format",
                     "safetensors", "family", "paligemma", "families", "paligemma",
                     "parameter_size", params, "quantization_level",
                     dtype_name(in->weight_dtype));
}

static json_t *model_entry(const srv_model *m, bool ps)
{
    char digest[65];
    /* a stable stand-in for Ollama's blob digest: FNV-1a of the path, repeated */
    uint64_t h = 1469598103934665603ull;
    for (const char *p = srv_model_path(m); *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    snprintf(digest, sizeof digest, "%016llx%016llx%016llx%016llx", (unsigned long long)h,
             (unsigned long long)~h, (unsigned long long)(h * 31), (unsigned long long)(h ^ 0x5555));
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:o}", "name", srv_model_name(m), "model",
                          srv_model_name(m), "size", (json_int_t)srv_model_size(m), "digest",
                          digest, "details", details(m));
    char ts[64];
    srv_rfc3339(ts, sizeof ts);
    if (ps) {
        json_object_set_new(o, "expires_at", json_string("2099-01-01T00:00:00Z"));
        json_object_set_new(o, "size_vram", json_integer(0));
    } else {
        json_object_set_new(o, "modified_at", json_string(ts));
    }
    return o;
}

static enum MHD_Result list_models(srv_req *req, bool ps)
{
    json_t *arr = json_array();
    if (atomic_load(&req->srv->ready)) {
        for (int i = 0; i < req->srv->n_models; i++)
            json_array_append_new(arr, model_entry(req->srv->models[i], ps));
    }
    return srv_reply_json(req, 200, json_pack("{s:o}", "models", arr));
}

enum MHD_Result srv_ollama_tags(srv_req *req) { return list_models(req, false); }
enum MHD_Result srv_ollama_ps(srv_req *req) { return list_models(req, true); }

enum MHD_Result srv_ollama_version(srv_req *req)
{
    return srv_reply_json(req, 200, json_pack("{s:s}", "version", SRV_OLLAMA_VERSION));
}

enum MHD_Result srv_ollama_show(srv_req *req)
{
    enum MHD_Result ret = MHD_NO;
    json_t *body = srv_parse_body(req, &ret);
    if (!body) return ret;
    json_t *name = json_object_get(body, "model");
    if (!name) name = json_object_get(body, "name"); /* older clients */
    srv_model *m = json_is_string(name) ? srv_find_model(req->srv, json_string_value(name)) : NULL;
    if (!json_is_string(name)) {
        ret = srv_reply_error(req, 400, "\"model\" is required (a string)");
    } else if (!m) {
        ret = srv_reply_error(req, 404, "model '%s' not found", json_string_value(name));
    } else {
        const pg_model_info *in = srv_model_info(m);
        json_t *info = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:s}", "general.architecture",
                                 "paligemma", "general.parameter_count",
                                 (json_int_t)in->n_params, "paligemma.image_size",
                                 (json_int_t)in->image_size, "paligemma.image_tokens",
                                 (json_int_t)in->image_tokens, "paligemma.block_count",
                                 (json_int_t)in->text_layers, "paligemma.embedding_length",
                                 (json_int_t)in->text_hidden, "paligemma.variant",
                                 in->variant ? in->variant : "custom");
        ret = srv_reply_json(req, 200,
                             json_pack("{s:s, s:s, s:s, s:o, s:o, s:[s,s]}", "modelfile", "",
                                       "parameters", "", "template", "{{ .Prompt }}",
                                       "details", details(m), "model_info", info,
                                       "capabilities", "completion", "vision"));
    }
    json_decref(body);
    return ret;
}
