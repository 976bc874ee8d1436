/*
 * pg index -m MODEL DIR... [--db FILE] [--tasks caption,detect:"person ; dog"] [--prompt P]
 *          [--xmp] [--batch N] [--rescan] [--quiet] [--threads N] [--max-tokens N]
 * pg search --db FILE "dog on a beach" [--json] [--limit N]
 *
 * Front ends of pg_index_run / pg_index_search (docs/index.md; schema docs/index-schema.md).
 * Progress goes to stderr: a bar redrawn in place on a terminal (done/total, images/min, ETA),
 * one plain line per finished file otherwise, nothing but errors with --quiet. Notes
 * (skipped files, unreadable folders, failed images) are printed as lines in every mode but
 * --quiet; failed images are printed even then.
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
#include <time.h>
#include <unistd.h>

#define MAX_DIRS 256

typedef struct index_args {
    const char *model;
    const char *dirs[MAX_DIRS];
    int n_dirs;
    const char *db, *tasks, *prompt;
    uint32_t batch, max_tokens;
    int32_t threads;
    bool xmp, rescan, quiet;
} index_args;

typedef struct progress {
    bool tty, quiet, drawn;
    double last_draw_ms;
} progress;

static volatile sig_atomic_t g_stop;

static void on_sigint(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int index_usage(FILE *f)
{
    fprintf(f,
            "usage: pg index -m MODEL DIR... [--db FILE] [--tasks LIST] [--prompt P] [--xmp]\n"
            "                [--batch N] [--rescan] [--quiet] [--threads N] [--max-tokens N]\n"
            "  -m MODEL        a model folder\n"
            "  DIR...          folders walked recursively for JPEG/PNG files\n"
            "  --db FILE       the catalogue (default DIR/.paligemma.sqlite of the first DIR)\n"
            "  --tasks LIST    comma-separated: caption, detect:\"person ; dog\",\n"
            "                  segment:\"cat\" (default caption)\n"
            "  --prompt P      the caption task's prompt (default \"caption en\")\n"
            "  --xmp           write/update NAME.EXT.xmp sidecars\n"
            "  --batch N       images decoded together (1..64; default up to 8 by memory)\n"
            "  --rescan        re-hash every file and retry images that failed before\n"
            "  --quiet         print only errors\n"
            "  --max-tokens N  generation budget per result (default 64)\n"
            "Files whose content already has results for this model, task and prompt are\n"
            "skipped; each finished image is committed at once, so an interrupted run resumes.\n");
    return f == stderr ? 2 : 0;
}

static int parse_index_args(int argc, char **argv, index_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            index_usage(stdout);
            return -1;
        }
        if (!strcmp(o, "--xmp") || !strcmp(o, "--rescan") || !strcmp(o, "--quiet") ||
            !strcmp(o, "-q")) {
            *(o[2] == 'x' ? &a->xmp : o[2] == 'r' ? &a->rescan : &a->quiet) = true;
            continue;
        }
        if (o[0] != '-' || !o[1]) {
            if (a->n_dirs >= MAX_DIRS) {
                fprintf(stderr, "pg index: too many folders\n");
                return 2;
            }
            a->dirs[a->n_dirs++] = o;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "pg index: %s needs a value\n", o);
            return 2;
        }
        const char *v = argv[++i];
        unsigned long n = 0;
        if (!strcmp(o, "-m") || !strcmp(o, "--model")) {
            a->model = v;
        } else if (!strcmp(o, "--db")) {
            a->db = v;
        } else if (!strcmp(o, "--tasks")) {
            a->tasks = v;
        } else if (!strcmp(o, "--prompt")) {
            a->prompt = v;
        } else if (!strcmp(o, "--batch") && pg_cli_parse_batch(v, &a->batch)) {
        } else if (!strcmp(o, "--max-tokens") && pg_cli_parse_uint(v, 1u << 16, &n) && n > 0) {
            a->max_tokens = (uint32_t)n;
        } else if (!strcmp(o, "--threads") && pg_cli_parse_uint(v, 4096, &n)) {
            a->threads = (int32_t)n;
        } else {
            fprintf(stderr, "pg index: unknown option or bad value '%s %s'\n", o, v);
            return 2;
        }
    }
    if (!a->model || a->n_dirs == 0) {
        fprintf(stderr, "pg index: a model (-m) and at least one folder are needed\n");
        return index_usage(stderr);
    }
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void format_eta(char *buf, size_t cap, double s)
{
    if (s < 0) {
        snprintf(buf, cap, "--:--");
    } else if (s < 3600) {
        snprintf(buf, cap, "%02d:%02d", (int)s / 60, (int)s % 60);
    } else {
        snprintf(buf, cap, "%dh%02d", (int)s / 3600, (int)s % 3600 / 60);
    }
}

/* images/min counts only images that needed the model (a resumed run's skips are instant). */
static void rate(const pg_index_stats *s, double *per_min, double *eta_s)
{
    double min = s->elapsed_ms / 60000.0;
    *per_min = min > 0 && s->files_indexed ? (double)s->files_indexed / min : 0;
    uint64_t left = s->files_total - s->files_done;
    *eta_s = *per_min > 0 ? (double)left / *per_min * 60.0 : (left ? -1 : 0);
}

static void draw_bar(progress *p, const pg_index_stats *s)
{
    double per_min, eta;
    rate(s, &per_min, &eta);
    char eta_s[16];
    format_eta(eta_s, sizeof eta_s, eta);
    int width = 30;
    int fill = s->files_total ? (int)(width * s->files_done / s->files_total) : width;
    char bar[64];
    for (int i = 0; i < width; i++) {
        bar[i] = i < fill ? '#' : '.';
    }
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %llu/%llu  %.1f images/min  ETA %s  ", bar,
            (unsigned long long)s->files_done, (unsigned long long)s->files_total, per_min,
            eta_s);
    fflush(stderr);
    p->drawn = true;
}

static void clear_bar(progress *p)
{
    if (p->tty && p->drawn) {
        fprintf(stderr, "\r\033[K");
        p->drawn = false;
    }
}

static int on_progress(void *user, const pg_index_stats *s, const char *path, const char *note)
{
    progress *p = user;
    if (note) {
        bool failed = path && strstr(note, "JPEG or PNG") == NULL &&
                      strstr(note, "symbolic link") == NULL;
        if (!p->quiet || failed) {
            clear_bar(p);
            if (path && !strstr(note, path)) {
                fprintf(stderr, "pg index: %s: %s\n", path, note);
            } else {
                fprintf(stderr, "pg index: %s\n", note);
            }
        }
    } else if (path && !p->quiet && !p->tty) {
        double per_min, eta;
        rate(s, &per_min, &eta);
        fprintf(stderr, "pg index: %llu/%llu %s (%.1f images/min)\n",
                (unsigned long long)s->files_done, (unsigned long long)s->files_total, path,
                per_min);
    }
    if (p->tty && !p->quiet) {
        double t = now_ms();
        if (path || t - p->last_draw_ms > 250) {
            draw_bar(p, s);
            p->last_draw_ms = t;
        }
    }
    return g_stop ? 1 : 0;
}

int pg_cmd_index(int argc, char **argv)
{
    index_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_index_args(argc, argv, &a);
    if (rc) {
        return rc < 0 ? 0 : rc;
    }
    pg_model_options mo;
    PG_MODEL_OPTIONS_INIT(&mo);
    mo.n_threads = a.threads;
    pg_model *model = NULL;
    if (pg_model_load(&model, a.model, &mo) != PG_OK) {
        fprintf(stderr, "pg index: %s\n", pg_last_error());
        return 1;
    }
    progress p = { .tty = isatty(2) == 1, .quiet = a.quiet };
    pg_index_options o;
    PG_INDEX_OPTIONS_INIT(&o);
    o.db_path = a.db;
    o.tasks = a.tasks;
    o.prompt = a.prompt;
    o.batch = a.batch ? a.batch : pg_cli_default_batch(model, 8, 0);
    o.max_new_tokens = a.max_tokens;
    o.flags = (a.xmp ? PG_INDEX_XMP : 0) | (a.rescan ? PG_INDEX_RESCAN : 0);
    o.progress_fn = on_progress;
    o.progress_user = &p;
    pg_index_stats s = { .struct_size = sizeof s };
    g_stop = 0;
    void (*old)(int) = signal(SIGINT, on_sigint);
    pg_status st = pg_index_run(model, a.dirs, (size_t)a.n_dirs, &o, &s);
    signal(SIGINT, old);
    clear_bar(&p);
    pg_model_free(model);
    if (st != PG_OK) {
        fprintf(stderr, "pg index: %s\n", st == PG_ERR_CANCELLED ? "interrupted (finished "
                "images are saved; run again to resume)" : pg_last_error());
        return st == PG_ERR_CANCELLED ? 130 : 1;
    }
    if (!a.quiet) {
        double per_min, eta;
        rate(&s, &per_min, &eta);
        fprintf(stderr, "pg index: %llu files: %llu indexed, %llu already done, %llu failed, "
                "%llu not images; %llu results written; %.1f images/min\n",
                (unsigned long long)s.files_total, (unsigned long long)s.files_indexed,
                (unsigned long long)s.files_skipped, (unsigned long long)s.files_failed,
                (unsigned long long)s.files_other, (unsigned long long)s.results_written,
                per_min);
    }
    return s.files_failed ? 1 : 0;
}

/* ---- pg search ---- */

typedef struct search_out {
    bool json;
    unsigned n;
} search_out;

static int on_hit(void *user, const char *path, const char *text, double score)
{
    search_out *o = user;
    o->n++;
    if (o->json) {
        json_t *j = json_pack("{s:s, s:s, s:f}", "path", path, "text", text, "score", score);
        char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (s) {
            puts(s);
        }
        free(s);
        json_decref(j);
    } else {
        /* one line per hit: the caption's own newlines and tabs print as spaces */
        fputs(path, stdout);
        putchar('\t');
        for (const char *c = text; *c; c++) {
            putchar(*c == '\n' || *c == '\t' || *c == '\r' ? ' ' : *c);
        }
        putchar('\n');
    }
    return 0;
}

static int search_usage(FILE *f)
{
    fprintf(f, "usage: pg search --db FILE \"dog on a beach\" [--json] [--limit N]\n"
               "  prints the paths whose caption matches any word, best match first\n"
               "  (text: PATH<TAB>CAPTION; --json: one {\"path\", \"text\", \"score\"} line\n"
               "  each, score = bm25, lower is better)\n");
    return f == stderr ? 2 : 0;
}

int pg_cmd_search(int argc, char **argv)
{
    const char *db = NULL, *query = NULL;
    unsigned long limit = 20;
    search_out out = { 0 };
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            return search_usage(stdout);
        } else if (!strcmp(o, "--json")) {
            out.json = true;
        } else if (!strcmp(o, "--db") && i + 1 < argc) {
            db = argv[++i];
        } else if (!strcmp(o, "--limit") && i + 1 < argc && pg_cli_parse_uint(argv[i + 1],
                                                                               1u << 20, &limit) &&
                   limit) {
            i++;
        } else if (o[0] != '-' && !query) {
            query = o;
        } else {
            fprintf(stderr, "pg search: unknown option or bad value '%s'\n", o);
            return search_usage(stderr);
        }
    }
    if (!db || !query) {
        fprintf(stderr, "pg search: --db FILE and a query are needed\n");
        return search_usage(stderr);
    }
    if (access(db, R_OK) != 0) {
        fprintf(stderr, "pg search: %s: %s\n", db, strerror(errno));
        return 1;
    }
    if (pg_index_search(db, query, (uint32_t)limit, on_hit, &out) != PG_OK) {
        fprintf(stderr, "pg search: %s\n", pg_last_error());
        return 1;
    }
    return 0;
}
