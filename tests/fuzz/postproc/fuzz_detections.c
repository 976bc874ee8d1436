/*
 * Fuzz target: pg_detections_parse on arbitrary bytes. The first four input bytes pick the
 * image size (1..65536 per side); the rest is the model's answer. Checks the documented
 * invariants of every object: loc values 0..1023 with a non-empty box, pixel coordinates
 * within the image and in order, seg codes 0..127 (exactly 16 or none), and a borrowed label
 * that lies inside the result, is NUL-terminated and has no surrounding whitespace.
 */
#include "paligemma.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void check_object(const pg_detection_info *o, uint32_t w, uint32_t h)
{
    for (int k = 0; k < 4; k++) {
        if (o->loc[k] < 0 || o->loc[k] > 1023) {
            abort();
        }
    }
    if (!(o->loc[2] > o->loc[0] && o->loc[3] > o->loc[1])) {
        abort();
    }
    if (!(o->x_min >= 0 && o->x_min < o->x_max && o->x_max <= (float)w && o->y_min >= 0 &&
          o->y_min < o->y_max && o->y_max <= (float)h)) {
        abort();
    }
    if ((o->n_seg != 0 && o->n_seg != 16) || (o->n_seg == 0) != (o->seg_codes == NULL)) {
        abort();
    }
    for (uint32_t k = 0; k < o->n_seg; k++) {
        if (o->seg_codes[k] < 0 || o->seg_codes[k] > 127) {
            abort();
        }
    }
    if (!o->label || o->label[o->label_len] != '\0' ||
        (o->label_len && (is_space(o->label[0]) || is_space(o->label[o->label_len - 1])))) {
        abort();
    }
    for (size_t k = 0; k < o->label_len; k++) {
        if (o->label[k] == ';' || o->label[k] == '<' || o->label[k] == '>') {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) {
        return 0;
    }
    const uint32_t w = 1u + ((uint32_t)data[0] | (uint32_t)data[1] << 8);
    const uint32_t h = 1u + ((uint32_t)data[2] | (uint32_t)data[3] << 8);
    /* A copy of exactly the text, so reading past `len` is caught by ASan. */
    const size_t len = size - 4;
    char *text = malloc(len ? len : 1);
    if (!text) {
        return 0;
    }
    memcpy(text, data + 4, len);
    pg_detections *d = NULL;
    if (pg_detections_parse(&d, text, len, w, h) == PG_OK) {
        const size_t n = pg_detections_count(d);
        if (n > len / 36) { /* every object needs its four 9-byte loc tokens */
            abort();
        }
        for (size_t i = 0; i < n; i++) {
            pg_detection_info info;
            memset(&info, 0, sizeof info);
            info.struct_size = sizeof info;
            if (pg_detections_get(d, i, &info) != PG_OK) {
                abort();
            }
            check_object(&info, w, h);
        }
        pg_detection_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        if (pg_detections_get(d, n, &info) != PG_ERR_INVALID_ARGUMENT) {
            abort();
        }
        /* The status is clean exactly when no problem was counted; each problem starts at
         * its own '<'. */
        const size_t problems = pg_detections_problem_count(d);
        if ((pg_detections_status(d) == PG_OK) != (problems == 0) || problems > len) {
            abort();
        }
    } else {
        abort(); /* valid arguments never fail except for memory */
    }
    pg_detections_free(d);
    free(text);
    return 0;
}
