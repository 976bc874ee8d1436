/*
 * pg detect -m MODEL IMAGE "cat ; dog" [--json] [--threads N] [--max-tokens N]
 *
 * Runs the prompt "detect cat ; dog" greedily through the public session API and prints the
 * boxes in pixels of IMAGE (as loaded, after EXIF rotation): one line per object, or with
 * --json one line
 *   {"text": ..., "detections": [{"label", "box": [x_min, y_min, x_max, y_max], "loc": [...],
 *    "seg": [...]}]}
 * Several object arguments are joined with " ; " (pg detect -m M img.jpg cat dog).
 */
#include "pg.h"

#include "paligemma.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct detect_args {
    const char *model;
    const char *image;
    const char *objects[64];
    int n_objects;
    int32_t threads;
    uint32_t max_tokens;
    bool json;
} detect_args;

static int usage(FILE *f)
{
    fprintf(f, "usage: pg detect -m MODEL IMAGE \"cat ; dog\" [--json] [--threads N] "
               "[--max-tokens N]\n"
               "  -m MODEL          a model folder\n"
               "  --json            print one JSON line (text, detections with box, loc, seg)\n"
               "  --threads N       compute threads (default: one per CPU)\n"
               "  --max-tokens N    generation budget (default 256)\n"
               "Boxes are x_min y_min x_max y_max in pixels of IMAGE.\n");
    return f == stderr ? 2 : 0;
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* Parses argv into *a: 0 to run, -1 after --help, otherwise the exit code. */
static int parse_args(int argc, char **argv, detect_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return -1; /* done: exit 0 */
        }
        if (!strcmp(o, "--json")) {
            a->json = true;
            continue;
        }
        if (o[0] != '-' || !o[1]) {
            if (!a->image) {
                a->image = o;
            } else if (a->n_objects < (int)(sizeof a->objects / sizeof a->objects[0])) {
                a->objects[a->n_objects++] = o;
            } else {
                fprintf(stderr, "pg detect: too many arguments\n");
                return 2;
            }
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "pg detect: %s needs a value\n", o);
            return 2;
        }
        const char *v = argv[++i];
        unsigned long n = 0;
        if (!strcmp(o, "-m") || !strcmp(o, "--model")) {
            a->model = v;
        } else if (!strcmp(o, "--threads") && parse_uint(v, 4096, &n)) {
            a->threads = (int32_t)n;
        } else if (!strcmp(o, "--max-tokens") && parse_uint(v, 1u << 20, &n)) {
            a->max_tokens = (uint32_t)n;
        } else {
            fprintf(stderr, "pg detect: unknown option or bad value '%s %s'\n", o, v);
            return 2;
        }
    }
    if (!a->model || !a->image || a->n_objects == 0) {
        fprintf(stderr, "pg detect: needs -m MODEL, an IMAGE and the objects to find\n");
        return usage(stderr);
    }
    return 0;
}

/* "detect " + the objects joined with " ; " (malloc'd). */
static char *make_prompt(const detect_args *a)
{
    size_t len = strlen("detect ") + 1;
    for (int i = 0; i < a->n_objects; i++) {
        len += strlen(a->objects[i]) + 3;
    }
    char *p = malloc(len);
    if (!p) {
        return NULL;
    }
    strcpy(p, "detect ");
    for (int i = 0; i < a->n_objects; i++) {
        if (i) {
            strcat(p, " ; ");
        }
        strcat(p, a->objects[i]);
    }
    return p;
}

static json_t *int_array(const int32_t *v, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, json_integer(v[i]));
    }
    return arr;
}

static int print_json(const char *text, size_t len, const pg_detections *d)
{
    json_t *root = json_object(), *list = json_array();
    json_t *jtext = json_stringn(text, len);
    int rc = jtext ? 0 : 1;
    json_object_set_new(root, "text", jtext ? jtext : json_null());
    json_object_set_new(root, "detections", list);
    for (size_t i = 0; i < pg_detections_count(d) && !rc; i++) {
        pg_detection_info info = { .struct_size = sizeof info };
        json_t *label = NULL;
        if (pg_detections_get(d, i, &info) != PG_OK ||
            !(label = json_stringn(info.label, info.label_len))) {
            rc = 1;
            break;
        }
        json_t *o = json_object(), *box = json_array();
        json_object_set_new(o, "label", label);
        json_array_append_new(box, json_real(info.x_min));
        json_array_append_new(box, json_real(info.y_min));
        json_array_append_new(box, json_real(info.x_max));
        json_array_append_new(box, json_real(info.y_max));
        json_object_set_new(o, "box", box);
        json_object_set_new(o, "loc", int_array(info.loc, 4));
        json_object_set_new(o, "seg", int_array(info.seg_codes, info.n_seg));
        json_array_append_new(list, o);
    }
    char *s = rc ? NULL : json_dumps(root, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(root);
    if (!s) {
        fprintf(stderr, "pg detect: cannot write JSON (invalid UTF-8 or out of memory)\n");
        return 1;
    }
    puts(s);
    free(s);
    return 0;
}

static int print_text(const pg_detections *d)
{
    for (size_t i = 0; i < pg_detections_count(d); i++) {
        pg_detection_info info = { .struct_size = sizeof info };
        if (pg_detections_get(d, i, &info) != PG_OK) {
            fprintf(stderr, "pg detect: %s\n", pg_last_error());
            return 1;
        }
        printf("%.*s\t%.1f %.1f %.1f %.1f%s\n", (int)info.label_len, info.label,
               (double)info.x_min, (double)info.y_min, (double)info.x_max, (double)info.y_max,
               info.n_seg ? "\t(+16 seg codes)" : "");
    }
    if (pg_detections_count(d) == 0) {
        fprintf(stderr, "pg detect: no object found\n");
    }
    return 0;
}

/* Generates on a ready session, parses the answer and prints it. */
static int detect_and_print(pg_session *s, const pg_image *img, const detect_args *a)
{
    pg_generate_options go;
    PG_GENERATE_OPTIONS_INIT(&go);
    go.max_new_tokens = a->max_tokens; /* temperature 0: greedy */
    if (pg_session_generate(s, &go) != PG_OK) {
        fprintf(stderr, "pg detect: %s\n", pg_session_last_error(s));
        return 1;
    }
    size_t len = 0;
    const char *text = pg_session_text(s, &len);
    pg_detections *d = NULL;
    if (pg_detections_parse(&d, text, len, pg_image_width(img), pg_image_height(img)) !=
        PG_OK) {
        fprintf(stderr, "pg detect: %s\n", pg_last_error());
        return 1;
    }
    int rc = a->json ? print_json(text, len, d) : print_text(d);
    pg_detections_free(d);
    return rc;
}

static int run(const detect_args *a, const char *prompt)
{
    pg_model_options mo;
    PG_MODEL_OPTIONS_INIT(&mo);
    mo.n_threads = a->threads;
    pg_model *m = NULL;
    pg_image *img = NULL;
    pg_session *s = NULL;
    int rc = 1;
    if (pg_model_load(&m, a->model, &mo) != PG_OK) {
        fprintf(stderr, "pg detect: %s: %s\n", a->model, pg_last_error());
    } else if (pg_image_load_file(&img, a->image, NULL) != PG_OK ||
               pg_session_new(&s, m, NULL) != PG_OK) {
        fprintf(stderr, "pg detect: %s\n", pg_last_error());
    } else if (pg_session_set_image(s, img) != PG_OK ||
               pg_session_set_prompt(s, prompt, strlen(prompt)) != PG_OK) {
        fprintf(stderr, "pg detect: %s\n", pg_session_last_error(s));
    } else {
        rc = detect_and_print(s, img, a);
    }
    pg_session_free(s);
    pg_image_free(img);
    pg_model_free(m);
    return rc;
}

int pg_cmd_detect(int argc, char **argv)
{
    detect_args a = { 0 };
    int rc = parse_args(argc, argv, &a);
    if (rc) {
        return rc < 0 ? 0 : rc;
    }
    char *prompt = make_prompt(&a);
    if (!prompt) {
        fprintf(stderr, "pg detect: out of memory\n");
        return 1;
    }
    rc = run(&a, prompt);
    free(prompt);
    return rc;
}
