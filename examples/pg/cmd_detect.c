/*
 * pg detect -m MODEL IMAGE [IMAGE...] "cat ; dog" [--json] [--threads N] [--max-tokens N]
 *           [--batch N]
 *
 * Runs the prompt "detect cat ; dog" greedily through the public session API and prints the
 * boxes in pixels of IMAGE (as loaded, after EXIF rotation): one line per object, or with
 * --json one line
 *   {"text": ..., "detections": [{"label", "box": [x_min, y_min, x_max, y_max], "loc": [...],
 *    "seg": [...]}]}
 * Several object arguments are joined with " ; " (pg detect -m M img.jpg cat dog).
 * Several images: the positional arguments after the first that name existing files, up
 * to the first that does not, are images too (or give them with -i); they run through a
 * pg_batch (batch_run.c) and print in input order, the text form prefixed "IMAGE: ".
 */
#include "pg.h"

#include "batch_run.h"
#include "mask_out.h"

#include "paligemma.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_DETECT_IMAGES 4096

typedef struct detect_args {
    const char *model;
    const char *images[MAX_DETECT_IMAGES];
    int n_images;
    uint32_t batch; /* 0 = chosen from the machine */
    const char *objects[64];
    int n_objects;
    int32_t threads;
    uint32_t max_tokens;
    bool json;
    const char *overlay; /* --overlay FILE: the image with the boxes drawn (one image) */
} detect_args;

static int usage(FILE *f)
{
    fprintf(f, "usage: pg detect -m MODEL IMAGE [IMAGE...] \"cat ; dog\" [--json] "
               "[--threads N] [--max-tokens N] [--batch N]\n"
               "  -m MODEL          a model folder\n"
               "  --json            print one JSON line (text, detections with box, loc, seg)\n"
               "  --threads N       compute threads (default: one per CPU)\n"
               "  --max-tokens N    generation budget (default 256)\n"
               "  -i IMAGE          one more image (also: leading arguments naming files)\n"
               "  --batch N         several images: N at once through a pg_batch (1..64;\n"
               "                    default up to 8); output in input order, one line (JSON)\n"
               "                    or one block (text, prefixed IMAGE: ) per image\n"
               "  --overlay FILE    one image: also write it with the boxes drawn (PNG)\n"
               "Boxes are x_min y_min x_max y_max in pixels of IMAGE.\n");
    return f == stderr ? 2 : 0;
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
            struct stat st;
            if (a->n_images == 0 ||
                (a->n_objects == 0 && stat(o, &st) == 0 && S_ISREG(st.st_mode))) {
                if (a->n_images >= MAX_DETECT_IMAGES) {
                    fprintf(stderr, "pg detect: too many images\n");
                    return 2;
                }
                a->images[a->n_images++] = o;
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
        } else if (!strcmp(o, "--threads") && pg_cli_parse_uint(v, 4096, &n)) {
            a->threads = (int32_t)n;
        } else if (!strcmp(o, "--max-tokens") && pg_cli_parse_uint(v, 1u << 20, &n)) {
            a->max_tokens = (uint32_t)n;
        } else if (!strcmp(o, "--overlay")) {
            a->overlay = v;
        } else if (!strcmp(o, "--batch") && pg_cli_parse_batch(v, &a->batch)) {
        } else if ((!strcmp(o, "-i") || !strcmp(o, "--image")) &&
                   a->n_images < MAX_DETECT_IMAGES) {
            a->images[a->n_images++] = v;
        } else {
            fprintf(stderr, "pg detect: unknown option or bad value '%s %s'\n", o, v);
            return 2;
        }
    }
    if (a->overlay && a->n_images > 1) {
        fprintf(stderr, "pg detect: --overlay takes one image\n");
        return 2;
    }
    if (!a->model || a->n_images == 0 || a->n_objects == 0) {
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

/* The --json line (malloc'd, with "\n"), or NULL after a message. */
static char *json_line(const char *text, size_t len, const pg_detections *d)
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
    char *line = s ? malloc(strlen(s) + 2) : NULL;
    if (line) {
        sprintf(line, "%s\n", s);
    } else {
        fprintf(stderr, "pg detect: cannot write JSON (invalid UTF-8 or out of memory)\n");
    }
    free(s);
    return line;
}

/* The text form: one line per object (each prefixed "IMAGE: " when prefix is set),
 * malloc'd; NULL after a message. */
static char *text_lines(const pg_detections *d, const char *prefix)
{
    char *out = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&out, &size);
    if (!f) {
        fprintf(stderr, "pg detect: out of memory\n");
        return NULL;
    }
    int rc = 0;
    for (size_t i = 0; i < pg_detections_count(d) && !rc; i++) {
        pg_detection_info info = { .struct_size = sizeof info };
        if (pg_detections_get(d, i, &info) != PG_OK) {
            fprintf(stderr, "pg detect: %s\n", pg_last_error());
            rc = 1;
            break;
        }
        fprintf(f, "%s%s%.*s\t%.1f %.1f %.1f %.1f%s\n", prefix ? prefix : "", prefix ? ": " : "",
                (int)info.label_len, info.label, (double)info.x_min, (double)info.y_min,
                (double)info.x_max, (double)info.y_max, info.n_seg ? "\t(+16 seg codes)" : "");
    }
    if (pg_detections_count(d) == 0) {
        fprintf(stderr, "pg detect: %s%sno object found\n", prefix ? prefix : "",
                prefix ? ": " : "");
    }
    if (fclose(f) != 0 || rc) {
        free(out);
        return NULL;
    }
    return out;
}

/* Parses a finished session's answer into its output (JSON line or text lines). */
static char *format_answer(const detect_args *a, const char *prefix, pg_session *s,
                           uint32_t width, uint32_t height)
{
    size_t len = 0;
    const char *text = pg_session_text(s, &len);
    pg_detections *d = NULL;
    if (pg_detections_parse(&d, text, len, width, height) != PG_OK) {
        fprintf(stderr, "pg detect: %s\n", pg_last_error());
        return NULL;
    }
    char *out = a->json ? json_line(text, len, d) : text_lines(d, prefix);
    pg_detections_free(d);
    return out;
}

static char *format_batch(void *user, const char *image, pg_session *s, uint32_t width,
                          uint32_t height)
{
    return format_answer(user, image, s, width, height);
}

/* Several images through a pg_batch. */
static int run_many(const detect_args *a, pg_model *m, const char *prompt)
{
    pg_generate_options go;
    PG_GENERATE_OPTIONS_INIT(&go);
    go.max_new_tokens = a->max_tokens; /* temperature 0: greedy */
    pg_cli_batch job = {
        .model = m, .images = a->images, .n_images = (size_t)a->n_images, .prompt = prompt,
        .go = &go, .width = a->batch ? a->batch
                                     : pg_cli_default_batch(m, (size_t)a->n_images, 0),
        .json = a->json, .tool = "pg detect", .format = format_batch, .user = (void *)a,
    };
    return pg_cli_run_batch(&job);
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
    char *out = format_answer(a, NULL, s, pg_image_width(img), pg_image_height(img));
    if (!out) {
        return 1;
    }
    fputs(out, stdout);
    free(out);
    if (a->overlay) {
        size_t len = 0;
        const char *text = pg_session_text(s, &len);
        pg_detections *d = NULL;
        int rc = 1;
        if (pg_detections_parse(&d, text, len, pg_image_width(img), pg_image_height(img)) !=
            PG_OK) {
            fprintf(stderr, "pg detect: %s\n", pg_last_error());
        } else {
            rc = pg_cli_write_overlay(a->overlay, img, d, NULL);
        }
        pg_detections_free(d);
        return rc;
    }
    return 0;
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
    } else if (a->n_images > 1) {
        rc = run_many(a, m, prompt); /* --batch 1: a batch of one, one after the other */
    } else if (pg_image_load_file(&img, a->images[0], NULL) != PG_OK ||
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
