/*
 * pg caption / ask / generate: image + prompt in, text out (streamed, or one JSON line per
 * image with --json), optionally dumping the intermediate tensors as .npy files.
 */
#include "pg.h"

#include "batch_run.h"

#include "paligemma.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_IMAGES 4096

typedef struct gen_args {
    const char *model;
    const char *backend;
    int threads;
    const char *images[MAX_IMAGES];
    int n_images;
    const char *prompt;
    int32_t *prompt_ids;
    size_t n_prompt_ids;
    bool has_prompt_ids;
    uint32_t max_new;
    float temperature, top_p;
    uint32_t top_k;
    uint64_t seed;
    bool sampling;
    bool json;
    const char *dump_dir;
    const char *stops[16];
    uint32_t n_stops;
    uint32_t n_ctx;
    uint32_t batch; /* --batch; 0 = chosen from the machine */
} gen_args;

static pg_session *volatile g_session; /* for the SIGINT handler */

static void on_sigint(int sig)
{
    (void)sig;
    if (g_session) {
        pg_session_interrupt(g_session); /* an atomic store: safe in a handler */
    }
}

static int usage_generate(FILE *f)
{
    fprintf(f,
            "usage: pg generate -m MODEL (-p PROMPT | --prompt-ids IDS) [-i] IMAGE [IMAGE...]\n"
            "                   [-n MAX] [--temperature T --top-k K --top-p P --seed S]\n"
            "                   [--stop TEXT] [--json] [--dump-dir DIR] [--backend NAME]\n"
            "                   [--threads N] [--n-ctx N] [--batch N]\n"
            "       pg caption -m MODEL [options] IMAGE...\n"
            "       pg ask -m MODEL [options] IMAGE... \"question\"\n"
            "\n"
            "  -p PROMPT          the prompt, e.g. \"caption en\" (the session adds <image>s,\n"
            "                     <bos> and the \"\\n\" separator)\n"
            "  --prompt-ids IDS   comma-separated ids after the image tokens, verbatim\n"
            "                     (<bos> and the \"\\n\" id included), e.g. 2,5,108\n"
            "  -n MAX             most new tokens (default 256; also --max-tokens)\n"
            "  --temperature T, --top-k K, --top-p P, --seed S   sample (default: greedy)\n"
            "  --json             one JSON line per image: text, ids, prompt_ids,\n"
            "                     stop_reason, timings\n"
            "  --dump-dir DIR     write pixel_values, vision_out, projector_out,\n"
            "                     prefill_logits_last and generated_ids as .npy files\n"
            "                     (in DIR/<image name>/ when there are several images)\n"
            "  --backend NAME     cpu (default), cpu-bf16 (faster, less exact) or ref;\n"
            "  --threads N        compute threads\n"
            "  --batch N          with several images: generate N at once through a\n"
            "                     pg_batch (1..64; default: up to 8, fewer when memory is\n"
            "                     short; 1 = one after the other, streaming). Output stays in\n"
            "                     input order; with --json a failed image prints\n"
            "                     {\"image\", \"error\"}\n");
    return f == stderr ? 2 : 0;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        return false;
    }
    *out = v;
    return true;
}

static bool parse_u32(const char *s, uint32_t *out)
{
    uint64_t v;
    if (!parse_u64(s, &v) || v > UINT32_MAX) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

static bool parse_float(const char *s, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end) {
        return false;
    }
    *out = v;
    return true;
}

/* "2,5,108" -> ids. */
static bool parse_ids(const char *s, gen_args *a)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++) {
        cap += *p == ',';
    }
    free(a->prompt_ids); /* --prompt-ids given twice: the last one counts */
    a->prompt_ids = malloc(cap * sizeof *a->prompt_ids);
    if (!a->prompt_ids) {
        return false;
    }
    a->n_prompt_ids = 0;
    a->has_prompt_ids = true;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            return false;
        }
        a->prompt_ids[a->n_prompt_ids++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    return true;
}

/* The value after option argv[*i], or NULL (with a message) when it is missing. */
static const char *value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "pg: %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

/* Parses the options shared by the three commands; positional arguments go to pos[]. */
static int parse_args(int argc, char **argv, gen_args *a, const char **pos, int *n_pos)
{
    *n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = NULL;
        bool ok = true;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            return usage_generate(stdout) + 100;
        } else if (!strcmp(o, "--json")) {
            a->json = true;
        } else if (o[0] != '-' || !strcmp(o, "-")) {
            if (*n_pos >= MAX_IMAGES) {
                fprintf(stderr, "pg: too many arguments\n");
                return 2;
            }
            pos[(*n_pos)++] = o;
        } else if (!(v = value(argc, argv, &i))) {
            return 2;
        } else if (!strcmp(o, "-m") || !strcmp(o, "--model")) {
            a->model = v;
        } else if (!strcmp(o, "-i") || !strcmp(o, "--image")) {
            ok = a->n_images < MAX_IMAGES;
            if (ok) {
                a->images[a->n_images++] = v;
            }
        } else if (!strcmp(o, "-p") || !strcmp(o, "--prompt")) {
            a->prompt = v;
        } else if (!strcmp(o, "--prompt-ids")) {
            ok = parse_ids(v, a);
        } else if (!strcmp(o, "-n") || !strcmp(o, "--max-new-tokens") ||
                   !strcmp(o, "--max-tokens")) {
            ok = parse_u32(v, &a->max_new);
        } else if (!strcmp(o, "--temperature")) {
            ok = parse_float(v, &a->temperature) && a->temperature >= 0;
            a->sampling = true;
        } else if (!strcmp(o, "--top-k")) {
            ok = parse_u32(v, &a->top_k);
            a->sampling = true;
        } else if (!strcmp(o, "--top-p")) {
            ok = parse_float(v, &a->top_p);
            a->sampling = true;
        } else if (!strcmp(o, "--seed")) {
            ok = parse_u64(v, &a->seed);
            a->sampling = true;
        } else if (!strcmp(o, "--stop")) {
            ok = a->n_stops < 16;
            if (ok) {
                a->stops[a->n_stops++] = v;
            }
        } else if (!strcmp(o, "--dump-dir")) {
            a->dump_dir = v;
        } else if (!strcmp(o, "--backend")) {
            a->backend = v;
        } else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) {
            uint32_t t;
            ok = parse_u32(v, &t) && t <= 1024;
            a->threads = (int)t;
        } else if (!strcmp(o, "--n-ctx")) {
            ok = parse_u32(v, &a->n_ctx);
        } else if (!strcmp(o, "--batch")) {
            ok = pg_cli_parse_batch(v, &a->batch);
        } else {
            fprintf(stderr, "pg: unknown option '%s'\n", o);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "pg: bad value '%s' for %s\n", v, o);
            return 2;
        }
    }
    if (!a->model) {
        fprintf(stderr, "pg: -m MODEL is required\n");
        return 2;
    }
    return 0;
}

/* ---- .npy output (--dump-dir) ---- */

static int write_npy(const char *dir, const char *name, const void *data, const char *descr,
                     size_t elem, const int64_t *shape, int ndim)
{
    char path[4096], dims[128] = "", header[256];
    size_t count = 1, off = 0;
    for (int i = 0; i < ndim; i++) {
        off += (size_t)snprintf(dims + off, sizeof dims - off, "%lld%s", (long long)shape[i],
                                ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
        count *= (size_t)shape[i];
    }
    int hl = snprintf(header, sizeof header,
                      "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims);
    /* Pad with spaces so that magic (6) + version (2) + length (2) + header ends at 64n. */
    int total = 10 + hl + 1;
    int pad = (64 - total % 64) % 64;
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "pg: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    const uint16_t len = (uint16_t)(hl + pad + 1);
    const unsigned char lenb[2] = { (unsigned char)(len & 0xff), (unsigned char)(len >> 8) };
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fwrite(lenb, 1, 2, f);
    fwrite(header, 1, (size_t)hl, f);
    for (int i = 0; i < pad; i++) {
        fputc(' ', f);
    }
    fputc('\n', f);
    fwrite(data, elem, count, f);
    if (fclose(f) != 0) {
        fprintf(stderr, "pg: error writing %s\n", path);
        return 1;
    }
    return 0;
}

static int make_dir(const char *dir)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "pg: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    return 0;
}

static int dump_tensors(pg_session *s, const char *dir)
{
    static const struct {
        int32_t which;
        const char *name;
    } kept[] = {
        { PG_TENSOR_PIXEL_VALUES, "pixel_values" },
        { PG_TENSOR_VISION_OUT, "vision_out" },
        { PG_TENSOR_PROJECTOR_OUT, "projector_out" },
        { PG_TENSOR_PREFILL_LOGITS_LAST, "prefill_logits_last" },
    };
    int rc = make_dir(dir);
    for (size_t i = 0; !rc && i < sizeof kept / sizeof kept[0]; i++) {
        const float *data;
        int64_t shape[4];
        int32_t ndim;
        if (pg_session_get_tensor(s, kept[i].which, &data, shape, &ndim) != PG_OK) {
            fprintf(stderr, "pg: %s: %s\n", kept[i].name, pg_last_error());
            return 1;
        }
        rc = write_npy(dir, kept[i].name, data, "<f4", sizeof(float), shape, ndim);
    }
    size_t n;
    const int32_t *ids = pg_session_output_ids(s, &n);
    const int64_t shape = (int64_t)n;
    static const int32_t none;
    return rc ? rc : write_npy(dir, "generated_ids", n ? (const void *)ids : &none, "<i4",
                               sizeof(int32_t), &shape, 1);
}

/* ---- output ---- */

static const char *stop_name(int32_t r)
{
    switch (r) {
    case PG_STOP_EOS: return "eos";
    case PG_STOP_MAX_TOKENS: return "max_tokens";
    case PG_STOP_STRING: return "stop_string";
    case PG_STOP_CALLBACK: return "callback";
    case PG_STOP_INTERRUPT: return "interrupt";
    case PG_STOP_CONTEXT: return "context";
    default: return "none";
    }
}

static json_t *ids_json(const int32_t *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(a, json_integer(ids[i]));
    }
    return a;
}

/* The --json line of a finished session (malloc'd, with its "\n"), or NULL. */
static char *json_line(const pg_session *s)
{
    size_t len, n_ids, n_prompt;
    const char *text = pg_session_text(s, &len);
    const int32_t *ids = pg_session_output_ids(s, &n_ids);
    const int32_t *prompt = pg_session_prompt_ids(s, &n_prompt);
    pg_timings t;
    memset(&t, 0, sizeof t);
    t.struct_size = sizeof t;
    pg_session_get_timings(s, &t);
    json_t *tj = json_pack("{s:f, s:f, s:f, s:i, s:f, s:i, s:f, s:b}", "preprocess_ms",
                           t.preprocess_ms, "vision_ms", t.vision_ms, "prefill_ms",
                           t.prefill_ms, "prefill_tokens", (json_int_t)t.prefill_tokens,
                           "decode_ms", t.decode_ms, "decode_tokens",
                           (json_int_t)t.decode_tokens, "ttft_ms", t.ttft_ms,
                           "image_cache_hit", (int)t.image_cache_hit);
    json_t *o = json_object();
    json_object_set_new(o, "text", json_stringn(text, len));
    json_object_set_new(o, "ids", ids_json(ids, n_ids));
    json_object_set_new(o, "prompt_ids", ids_json(prompt, n_prompt));
    json_object_set_new(o, "stop_reason", json_string(stop_name(pg_session_stop_reason(s))));
    json_object_set_new(o, "timings", tj);
    char *line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
    json_decref(o);
    char *out = line ? malloc(strlen(line) + 2) : NULL;
    if (out) {
        sprintf(out, "%s\n", line);
    }
    free(line);
    return out;
}

static void print_json(const pg_session *s)
{
    char *line = json_line(s);
    if (line) {
        fputs(line, stdout);
        free(line);
    }
}

/* pg_cli_batch's formatter: the JSON line, or "IMAGE: text". */
static char *format_output(void *user, const char *image, pg_session *s, uint32_t w,
                           uint32_t h)
{
    (void)w;
    (void)h;
    const gen_args *a = user;
    if (a->json) {
        return json_line(s);
    }
    size_t len = 0;
    const char *text = pg_session_text(s, &len);
    char *out = malloc(strlen(image) + len + 4);
    if (out) {
        sprintf(out, "%s: %.*s\n", image, (int)len, text);
    }
    return out;
}

static void fill_generate_options(const gen_args *a, pg_generate_options *go)
{
    PG_GENERATE_OPTIONS_INIT(go);
    go->max_new_tokens = a->max_new;
    if (a->sampling) {
        go->temperature = a->temperature > 0 ? a->temperature : 1.0f;
        go->top_k = a->top_k;
        go->top_p = a->top_p;
        go->seed = a->seed;
    }
    go->stop_strings = a->stops;
    go->n_stop_strings = a->n_stops;
}

/* Several images through a pg_batch (batch_run.c). */
static int run_batch(gen_args *a, pg_model *m, uint32_t width)
{
    pg_generate_options go;
    fill_generate_options(a, &go);
    pg_cli_batch job = {
        .model = m, .images = a->images, .n_images = (size_t)a->n_images,
        .prompt = a->has_prompt_ids ? NULL : a->prompt, .prompt_ids = a->prompt_ids,
        .n_prompt_ids = a->n_prompt_ids, .go = &go, .n_ctx = a->n_ctx, .width = width,
        .json = a->json, .tool = "pg", .format = format_output, .user = a,
    };
    return pg_cli_run_batch(&job);
}

static int stream_token(void *user, const pg_token_event *ev)
{
    (void)user;
    fwrite(ev->text, 1, ev->text_len, stdout);
    fflush(stdout);
    return 0;
}

/* ---- the run ---- */

/* --json: a failed image still gets its line, so lines match the images one to one. */
static void print_error_line(const gen_args *a, const char *image, const char *message)
{
    char *line = a->json ? pg_cli_error_line(image, message) : NULL;
    if (line) {
        fputs(line, stdout);
        free(line);
    }
}

static int run_one(pg_session *s, const gen_args *a, const char *image_path, const char *dump)
{
    pg_image *img = NULL;
    if (pg_image_load_file(&img, image_path, NULL) != PG_OK) {
        fprintf(stderr, "pg: %s\n", pg_last_error()); /* the message names the file */
        print_error_line(a, image_path, pg_last_error());
        return 1;
    }
    pg_status st = pg_session_set_image(s, img);
    pg_image_free(img);
    if (st == PG_OK) {
        st = a->has_prompt_ids ? pg_session_set_prompt_ids(s, a->prompt_ids, a->n_prompt_ids)
                               : pg_session_set_prompt(s, a->prompt, strlen(a->prompt));
    }
    pg_generate_options go;
    fill_generate_options(a, &go);
    /* Stream unless a stop string may have to be cut out of the text again. */
    const bool stream = !a->json && a->n_stops == 0;
    if (stream) {
        go.on_token = stream_token;
    }
    if (st == PG_OK) {
        if (!a->json && a->n_images > 1) {
            printf("%s: ", image_path);
        }
        st = pg_session_generate(s, &go);
        if (!a->json && !stream) {
            fputs(pg_session_text(s, NULL), stdout);
        }
        if (!a->json) {
            putchar('\n'); /* after the text */
        }
    }
    if (st != PG_OK) {
        fprintf(stderr, "pg: %s: %s\n", image_path, pg_session_last_error(s));
        print_error_line(a, image_path, pg_session_last_error(s));
        return 1;
    }
    if (a->json) {
        print_json(s);
    }
    fflush(stdout);
    return dump ? dump_tensors(s, dump) : 0;
}

/* The dump folder for image k: DIR itself, or DIR/<file name without extension>. */
static void dump_path(const gen_args *a, int k, char *buf, size_t cap)
{
    if (a->n_images == 1) {
        snprintf(buf, cap, "%s", a->dump_dir);
        return;
    }
    const char *base = strrchr(a->images[k], '/');
    base = base ? base + 1 : a->images[k];
    const char *dot = strrchr(base, '.');
    int len = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    snprintf(buf, cap, "%s/%.*s", a->dump_dir, len, base);
}

static int run(gen_args *a)
{
    pg_model_options mo;
    PG_MODEL_OPTIONS_INIT(&mo);
    mo.backend = a->backend;
    mo.n_threads = a->threads;
    pg_model *m = NULL;
    pg_session *s = NULL;
    int rc = 1;
    if (pg_model_load(&m, a->model, &mo) != PG_OK) {
        fprintf(stderr, "pg: %s: %s\n", a->model, pg_last_error());
        return 1;
    }
    if (a->n_images > 1 && !a->dump_dir) {
        uint32_t width = a->batch ? a->batch
                                  : pg_cli_default_batch(m, (size_t)a->n_images, a->n_ctx);
        if (width > 1) {
            rc = run_batch(a, m, width);
            goto done;
        }
    }
    pg_session_options so;
    PG_SESSION_OPTIONS_INIT(&so);
    so.n_ctx = a->n_ctx;
    so.flags = a->dump_dir ? PG_SESSION_KEEP_TENSORS : 0;
    if (pg_session_new(&s, m, &so) != PG_OK) {
        fprintf(stderr, "pg: %s\n", pg_last_error());
        goto done;
    }
    if (a->dump_dir && make_dir(a->dump_dir)) {
        goto done;
    }
    g_session = s;
    signal(SIGINT, on_sigint);
    rc = 0;
    /* A failed image is reported and the others still run; the exit status says so. */
    for (int k = 0; k < a->n_images; k++) {
        char dump[4096];
        if (a->dump_dir) {
            dump_path(a, k, dump, sizeof dump);
        }
        rc |= run_one(s, a, a->images[k], a->dump_dir ? dump : NULL);
    }
    signal(SIGINT, SIG_DFL);
    g_session = NULL;
done:
    pg_session_free(s);
    pg_model_free(m);
    return rc;
}

static void defaults(gen_args *a)
{
    memset(a, 0, sizeof *a);
    a->top_p = 1.0f;
}

/* Shared tail of the three commands: validates, runs, frees. */
static int finish(gen_args *a, int rc)
{
    if (rc == 0) {
        if (a->n_images == 0) {
            fprintf(stderr, "pg: no image given\n");
            rc = 2;
        } else if (!a->prompt && !a->has_prompt_ids) {
            fprintf(stderr, "pg: give a prompt (-p) or --prompt-ids\n");
            rc = 2;
        } else if (a->prompt && a->has_prompt_ids) {
            fprintf(stderr, "pg: -p and --prompt-ids exclude each other\n");
            rc = 2;
        } else {
            rc = run(a);
        }
    }
    free(a->prompt_ids);
    return rc >= 100 ? rc - 100 : rc;
}

int pg_cmd_generate(int argc, char **argv)
{
    gen_args a;
    const char *pos[MAX_IMAGES];
    int n_pos;
    defaults(&a);
    int rc = parse_args(argc, argv, &a, pos, &n_pos);
    /* Positional arguments are images too, each its own prompt (like -i). */
    for (int k = 0; rc == 0 && k < n_pos; k++) {
        if (a.n_images >= MAX_IMAGES) {
            fprintf(stderr, "pg generate: too many images\n");
            rc = 2;
        } else {
            a.images[a.n_images++] = pos[k];
        }
    }
    return finish(&a, rc);
}

int pg_cmd_caption(int argc, char **argv)
{
    gen_args a;
    int n_pos;
    defaults(&a);
    int rc = parse_args(argc, argv, &a, a.images, &n_pos);
    a.n_images = n_pos;
    a.prompt = "caption en";
    return finish(&a, rc);
}

int pg_cmd_ask(int argc, char **argv)
{
    gen_args a;
    const char *pos[MAX_IMAGES];
    int n_pos;
    char prompt[4096];
    defaults(&a);
    int rc = parse_args(argc, argv, &a, pos, &n_pos);
    if (rc == 0 && n_pos < 2) {
        fprintf(stderr, "usage: pg ask -m MODEL IMAGE... \"question\"\n");
        rc = 2;
    }
    if (rc == 0) { /* the last argument is the question, the others are images */
        for (int k = 0; k + 1 < n_pos; k++) {
            a.images[a.n_images++] = pos[k];
        }
        snprintf(prompt, sizeof prompt, "answer en %s", pos[n_pos - 1]);
        a.prompt = prompt;
    }
    return finish(&a, rc);
}
