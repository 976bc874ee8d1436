/*
 * pg serve: the Ollama- and OpenAI-compatible HTTP server (docs/server.md). The server
 * itself lives in serve/; this file parses the command line.
 */
#include "pg.h"

#include "batch_run.h"
#include "serve/serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage_serve(FILE *f)
{
    fprintf(f,
            "usage: pg serve -m MODEL [-m MODEL2 ...] [--host 127.0.0.1] [--port 11434]\n"
            "                [--api-key KEY] [--max-body MB] [--batch N] [--timeout S]\n"
            "                [--threads N] [--backend NAME]\n"
            "\n"
            "  -m MODEL        a model folder; NAME=FOLDER names it (default: the folder's\n"
            "                  name), listed as NAME:latest by /api/tags\n"
            "  --host ADDR     address to bind (default 127.0.0.1: this machine only)\n"
            "  --port N        port (default 11434, Ollama's; 0 picks a free one)\n"
            "  --api-key KEY   require \"Authorization: Bearer KEY\" (all but /health);\n"
            "                  also read from PG_SERVE_API_KEY\n"
            "  --max-body MB   largest request body (default 32)\n"
            "  --batch N       sessions decoded together per model (1..64, default 4);\n"
            "                  twice as many requests are held, more wait\n"
            "  --timeout S     per-request deadline in seconds (default 300)\n"
            "  --threads N     compute threads (default: all CPUs)\n"
            "  --backend NAME  cpu (default), cpu-bf16 or ref\n"
            "\n"
            "Endpoints: POST /api/generate /api/chat /api/show, GET /api/tags /api/version\n"
            "/api/ps; POST /v1/chat/completions, GET /v1/models /health.\n");
    return f == stderr ? 2 : 0;
}

int pg_cmd_serve(int argc, char **argv)
{
    static srv_server srv; /* large and process-long */
    srv_config *c = &srv.cfg;
    c->host = "127.0.0.1";
    c->port = 11434;
    c->max_body = 32u << 20;
    c->batch = 4;
    c->timeout_s = 300;
    c->api_key = getenv("PG_SERVE_API_KEY");
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) return usage_serve(stdout);
        if (i + 1 >= argc) {
            fprintf(stderr, "pg serve: %s needs a value (or is unknown)\n", o);
            return usage_serve(stderr);
        }
        const char *v = argv[++i];
        unsigned long n = 0;
        if (!strcmp(o, "-m") || !strcmp(o, "--model")) {
            if (c->n_models == SRV_MAX_MODELS) {
                fprintf(stderr, "pg serve: at most %d models\n", SRV_MAX_MODELS);
                return 2;
            }
            c->model_paths[c->n_models++] = v;
        } else if (!strcmp(o, "--host")) {
            c->host = v;
        } else if (!strcmp(o, "--port") && pg_cli_parse_uint(v, 65535, &n)) {
            c->port = (uint16_t)n;
        } else if (!strcmp(o, "--api-key")) {
            c->api_key = *v ? v : NULL;
        } else if (!strcmp(o, "--max-body") && pg_cli_parse_uint(v, 4096, &n) && n >= 1) {
            c->max_body = (size_t)n << 20;
        } else if (!strcmp(o, "--batch") && pg_cli_parse_batch(v, &c->batch)) {
        } else if (!strcmp(o, "--timeout") && pg_cli_parse_uint(v, 86400, &n) && n >= 1) {
            c->timeout_s = (uint32_t)n;
        } else if (!strcmp(o, "--threads") && pg_cli_parse_uint(v, 1024, &n)) {
            c->threads = (int)n;
        } else if (!strcmp(o, "--backend")) {
            c->backend = v;
        } else {
            fprintf(stderr, "pg serve: bad option or value: %s %s\n", o, v);
            return usage_serve(stderr);
        }
    }
    if (!c->n_models) {
        fprintf(stderr, "pg serve: -m MODEL is required\n");
        return usage_serve(stderr);
    }
    return srv_run(&srv);
}
