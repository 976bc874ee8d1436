/*
 * pg segment -m MODEL --vae vae-oid.npz IMAGE "cat ; dog" [--json] [--png-out DIR]
 *            [--overlay FILE] [--threads N] [--max-tokens N] [--answer TEXT]
 *
 * Runs "segment cat ; dog" greedily, parses the answer (pg_detections_parse) and decodes each
 * object's mask with big_vision's VQ-VAE decoder (pg_detections_mask). Prints one line per
 * object (label, box in pixels, mask area), or with --json one line
 *   {"text", "status", "objects": [{"label", "box": [x_min, y_min, x_max, y_max] (pixels),
 *    "box_normalized": [...] (0..1), "loc", "seg", "mask_box": [x0, y0, x1, y1],
 *    "mask": {"size": [height, width], "counts": COCO RLE string} or null}]}
 * --png-out DIR writes DIR/mask_<i>.png (0/255, image-sized) per object with a mask;
 * --overlay FILE an RGB PNG of the image with the masks tinted and the boxes outlined.
 * --answer TEXT post-processes TEXT instead of running the model (-m is then not needed).
 */
#include "pg.h"

#include "mask_out.h"

#include "paligemma.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct segment_args {
    const char *model, *vae, *image, *png_dir, *overlay, *answer;
    const char *objects[64];
    int n_objects;
    int32_t threads;
    uint32_t max_tokens;
    bool json;
} segment_args;

static int usage(FILE *f)
{
    fprintf(f, "usage: pg segment -m MODEL --vae vae-oid.npz IMAGE \"cat ; dog\" [--json]\n"
               "                  [--png-out DIR] [--overlay FILE] [--threads N]\n"
               "                  [--max-tokens N] [--answer TEXT]\n"
               "  --vae FILE        big_vision's mask decoder weights (vae-oid.npz)\n"
               "  --json            one JSON line: text, status, objects with label, box\n"
               "                    (pixels), box_normalized, loc, seg, mask_box, mask (COCO RLE)\n"
               "  --png-out DIR     write DIR/mask_<i>.png per object (0/255, image-sized)\n"
               "  --overlay FILE    write the image with masks and boxes drawn (PNG)\n"
               "  --answer TEXT     post-process this answer instead of running the model\n"
               "Boxes are x_min y_min x_max y_max in pixels of IMAGE (after EXIF rotation).\n");
    return f == stderr ? 2 : 0;
}

static int parse_args(int argc, char **argv, segment_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            return -1;
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
                fprintf(stderr, "pg segment: too many arguments\n");
                return 2;
            }
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "pg segment: %s needs a value\n", o);
            return 2;
        }
        const char *v = argv[++i];
        unsigned long n = 0;
        if (!strcmp(o, "-m") || !strcmp(o, "--model")) {
            a->model = v;
        } else if (!strcmp(o, "--vae")) {
            a->vae = v;
        } else if (!strcmp(o, "--png-out")) {
            a->png_dir = v;
        } else if (!strcmp(o, "--overlay")) {
            a->overlay = v;
        } else if (!strcmp(o, "--answer")) {
            a->answer = v;
        } else if (!strcmp(o, "--threads") && pg_cli_parse_uint(v, 4096, &n)) {
            a->threads = (int32_t)n;
        } else if (!strcmp(o, "--max-tokens") && pg_cli_parse_uint(v, 1u << 20, &n)) {
            a->max_tokens = (uint32_t)n;
        } else {
            fprintf(stderr, "pg segment: unknown option or bad value '%s %s'\n", o, v);
            return 2;
        }
    }
    if ((!a->model && !a->answer) || !a->vae || !a->image || (a->n_objects == 0 && !a->answer)) {
        fprintf(stderr, "pg segment: needs -m MODEL, --vae FILE, an IMAGE and the objects\n");
        return usage(stderr);
    }
    return 0;
}

/* "segment " + the objects joined with " ; " (malloc'd). */
static char *make_prompt(const segment_args *a)
{
    size_t len = strlen("segment ") + 1;
    for (int i = 0; i < a->n_objects; i++) {
        len += strlen(a->objects[i]) + 3;
    }
    char *p = malloc(len);
    if (p) {
        strcpy(p, "segment ");
        for (int i = 0; i < a->n_objects; i++) {
            strcat(p, i ? " ; " : "");
            strcat(p, a->objects[i]);
        }
    }
    return p;
}

/* Generates the answer on `img` (malloc'd copy of the text), or NULL after a message. */
static char *generate(const segment_args *a, const pg_image *img, size_t *len)
{
    pg_model_options mo;
    PG_MODEL_OPTIONS_INIT(&mo);
    mo.n_threads = a->threads;
    pg_model *m = NULL;
    pg_session *s = NULL;
    char *prompt = make_prompt(a), *out = NULL;
    pg_generate_options go;
    PG_GENERATE_OPTIONS_INIT(&go);
    go.max_new_tokens = a->max_tokens; /* temperature 0: greedy */
    if (!prompt) {
        fprintf(stderr, "pg segment: out of memory\n");
    } else if (pg_model_load(&m, a->model, &mo) != PG_OK || pg_session_new(&s, m, NULL) != PG_OK) {
        fprintf(stderr, "pg segment: %s: %s\n", a->model, pg_last_error());
    } else if (pg_session_set_image(s, img) != PG_OK ||
               pg_session_set_prompt(s, prompt, strlen(prompt)) != PG_OK ||
               pg_session_generate(s, &go) != PG_OK) {
        fprintf(stderr, "pg segment: %s\n", pg_session_last_error(s));
    } else {
        const char *text = pg_session_text(s, len);
        out = malloc(*len + 1);
        if (out) {
            memcpy(out, text, *len);
            out[*len] = '\0';
        }
    }
    free(prompt);
    pg_session_free(s);
    pg_model_free(m);
    return out;
}

static json_t *int_array(const int32_t *v, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, json_integer(v[i]));
    }
    return arr;
}

static json_t *real_array4(double a, double b, double c, double d)
{
    json_t *arr = json_array();
    json_array_append_new(arr, json_real(a));
    json_array_append_new(arr, json_real(b));
    json_array_append_new(arr, json_real(c));
    json_array_append_new(arr, json_real(d));
    return arr;
}

/* One object of the --json line. */
static json_t *object_json(const pg_detection_info *o, const uint8_t *mask, const uint32_t *box,
                           uint32_t w, uint32_t h)
{
    json_t *j = json_object();
    json_t *label = json_stringn(o->label, o->label_len);
    json_object_set_new(j, "label", label ? label : json_string(""));
    json_object_set_new(j, "box", real_array4(o->x_min, o->y_min, o->x_max, o->y_max));
    json_object_set_new(j, "box_normalized",
                        real_array4(o->x_min / (double)w, o->y_min / (double)h,
                                    o->x_max / (double)w, o->y_max / (double)h));
    json_object_set_new(j, "loc", int_array(o->loc, 4));
    json_object_set_new(j, "seg", int_array(o->seg_codes, o->n_seg));
    if (!mask) {
        json_object_set_new(j, "mask_box", json_null());
        json_object_set_new(j, "mask", json_null());
        return j;
    }
    const int32_t mb[4] = { (int32_t)box[0], (int32_t)box[1], (int32_t)box[2], (int32_t)box[3] };
    json_object_set_new(j, "mask_box", int_array(mb, 4));
    char *rle = pg_cli_rle_string(mask, w, h);
    json_t *m = json_object(), *size = json_array();
    json_array_append_new(size, json_integer(h));
    json_array_append_new(size, json_integer(w));
    json_object_set_new(m, "size", size);
    json_object_set_new(m, "counts", rle ? json_string(rle) : json_null());
    json_object_set_new(j, "mask", m);
    free(rle);
    return j;
}

/* Decodes every object's mask (masks[i] NULL for objects without seg codes) and prints. */
static int emit(const segment_args *a, const pg_image *img, const char *text, size_t len,
                const pg_detections *d, const pg_mask_decoder *dec)
{
    const uint32_t w = pg_image_width(img), h = pg_image_height(img);
    const size_t n = pg_detections_count(d);
    uint8_t **masks = calloc(n ? n : 1, sizeof *masks);
    uint32_t (*boxes)[4] = calloc(n ? n : 1, sizeof *boxes);
    json_t *root = json_object(), *list = json_array();
    int rc = masks && boxes ? 0 : 1;
    pg_status st = pg_detections_status(d);
    json_t *jt = json_stringn(text, len);
    json_object_set_new(root, "text", jt ? jt : json_null());
    json_object_set_new(root, "status", json_string(st == PG_OK ? "ok" : pg_last_error()));
    if (st != PG_OK && !a->json) {
        fprintf(stderr, "pg segment: warning: %s\n", pg_last_error());
    }
    for (size_t i = 0; i < n && !rc; i++) {
        pg_detection_info o = { .struct_size = sizeof o };
        rc = pg_detections_get(d, i, &o) != PG_OK;
        if (!rc && o.n_seg == 16) {
            masks[i] = malloc((size_t)w * h);
            if (!masks[i] ||
                pg_detections_mask(d, i, dec, NULL, masks[i], (size_t)w * h, boxes[i]) != PG_OK) {
                fprintf(stderr, "pg segment: object %zu: %s\n", i,
                        masks[i] ? pg_last_error() : "out of memory");
                rc = 1;
                break;
            }
        }
        size_t area = 0;
        for (size_t p = 0; masks[i] && p < (size_t)w * h; p++) {
            area += masks[i][p];
        }
        if (a->json) {
            json_array_append_new(list, object_json(&o, masks[i], boxes[i], w, h));
        } else {
            printf("%.*s\t%.1f %.1f %.1f %.1f\t%s%zu\n", (int)o.label_len, o.label,
                   (double)o.x_min, (double)o.y_min, (double)o.x_max, (double)o.y_max,
                   masks[i] ? "mask pixels " : "no mask ", area);
        }
        if (a->png_dir && masks[i]) {
            char path[4096];
            snprintf(path, sizeof path, "%s/mask_%zu.png", a->png_dir, i);
            rc = pg_cli_write_gray_png(path, masks[i], w, h, 1);
        }
    }
    json_object_set_new(root, "objects", list);
    if (!rc && a->json) {
        char *s = json_dumps(root, JSON_PRESERVE_ORDER | JSON_COMPACT);
        if (s) {
            printf("%s\n", s);
        } else {
            fprintf(stderr, "pg segment: cannot write JSON (invalid UTF-8 or out of memory)\n");
            rc = 1;
        }
        free(s);
    }
    if (!rc && !a->json && n == 0) {
        fprintf(stderr, "pg segment: no object found\n");
    }
    if (!rc && a->overlay) {
        rc = pg_cli_write_overlay(a->overlay, img, d, masks);
    }
    json_decref(root);
    for (size_t i = 0; masks && i < n; i++) {
        free(masks[i]);
    }
    free(masks);
    free(boxes);
    return rc;
}

int pg_cmd_segment(int argc, char **argv)
{
    segment_args a = { 0 };
    int rc = parse_args(argc, argv, &a);
    if (rc) {
        return rc < 0 ? 0 : rc;
    }
    pg_image *img = NULL;
    pg_mask_decoder *dec = NULL;
    pg_detections *d = NULL;
    char *text = NULL;
    size_t len = 0;
    rc = 1;
    if (pg_image_load_file(&img, a.image, NULL) != PG_OK) {
        fprintf(stderr, "pg segment: %s\n", pg_last_error());
    } else if (pg_mask_decoder_load(&dec, a.vae) != PG_OK) {
        fprintf(stderr, "pg segment: %s\n", pg_last_error());
    } else if (a.answer ? !(text = strdup(a.answer)) : !(text = generate(&a, img, &len))) {
        if (a.answer) {
            fprintf(stderr, "pg segment: out of memory\n");
        }
    } else if (pg_detections_parse(&d, text, a.answer ? strlen(text) : len, pg_image_width(img),
                                   pg_image_height(img)) != PG_OK) {
        fprintf(stderr, "pg segment: %s\n", pg_last_error());
    } else {
        rc = emit(&a, img, text, a.answer ? strlen(text) : len, d, dec);
    }
    pg_detections_free(d);
    free(text);
    pg_mask_decoder_free(dec);
    pg_image_free(img);
    return rc;
}
