/*
 * pg_detections_*: the objects of a `detect ...` / `segment ...` answer (spec section 9.2).
 *
 * The parser follows the reference demo's regular expression (big_vision PaliGemma space):
 *   (.*?) <locDDDD>{4} \s* (<segDDD>{16})? \s* ([^;<>]+)? ' '? ('; ')?
 * applied repeatedly from the start. It is written as a hand scanner, linear in the input:
 * the lazy prefix `(.*?)` means "the first '<' from which four loc tokens follow", and a
 * failed attempt advances by one byte. Out-of-range values and empty boxes drop the object
 * (big_vision's validity rule) instead of failing the call: model output is untrusted text.
 */
#include "core/core.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define N_LOC 4
#define N_SEG 16
#define LOC_BINS 1024 /* <loc0000>..<loc1023> */
#define SEG_CODES 128 /* <seg000>..<seg127> */
#define MAX_IMAGE_SIDE (1u << 24) /* every pixel coordinate is exact in a float */
#define NO_SEG ((size_t)-1)

/* One object; label and seg are offsets into the handle's shared buffers (which may move
 * while parsing), turned into pointers only in pg_detections_get. */
typedef struct det {
    float box[4]; /* x_min, y_min, x_max, y_max in pixels */
    int32_t loc[N_LOC];
    size_t label_off, label_len;
    size_t seg_off; /* NO_SEG when the object has no segmentation codes */
} det;

struct pg_detections {
    det *items;
    size_t n, cap;
    char *labels; /* every label, each NUL-terminated */
    size_t labels_len, labels_cap;
    int32_t *seg; /* N_SEG codes per segmented object */
    size_t seg_len, seg_cap;
};

/* A growable buffer of `elem`-byte items: makes room for `more` after `len`. */
static pg_status reserve(void **buf, size_t *cap, size_t len, size_t more, size_t elem)
{
    size_t need;
    if (!pg__add_size(len, more, &need)) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "pg_detections_parse: result too large");
    }
    if (need <= *cap) {
        return PG_OK;
    }
    size_t cap2 = *cap ? *cap : 16, bytes;
    while (cap2 < need) {
        if (!pg__mul_size(cap2, 2, &cap2)) {
            return pg__error(PG_ERR_OUT_OF_MEMORY, "pg_detections_parse: result too large");
        }
    }
    if (!pg__mul_size(cap2, elem, &bytes)) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "pg_detections_parse: result too large");
    }
    void *p = pg__realloc(*buf, bytes);
    if (!p) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    *buf = p;
    *cap = cap2;
    return PG_OK;
}

/* Python's `\s` for ASCII, the whitespace the reference pattern skips. */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Reads `<NAME` + exactly `digits` decimal digits + `>` at s[*pos]; advances past it. */
static bool read_token(const char *s, size_t len, size_t *pos, const char *name,
                       size_t digits, int32_t *value)
{
    const size_t name_len = strlen(name);
    size_t p = *pos;
    if (len - p < 1 + name_len + digits + 1 || s[p] != '<' ||
        memcmp(s + p + 1, name, name_len) != 0) {
        return false;
    }
    p += 1 + name_len;
    int32_t v = 0;
    for (size_t i = 0; i < digits; i++, p++) {
        if (s[p] < '0' || s[p] > '9') {
            return false;
        }
        v = v * 10 + (s[p] - '0');
    }
    if (s[p] != '>') {
        return false;
    }
    *pos = p + 1;
    *value = v;
    return true;
}

/* Reads `count` consecutive tokens; *pos moves only when all of them are there. */
static bool read_tokens(const char *s, size_t len, size_t *pos, const char *name,
                        size_t digits, size_t count, int32_t *values)
{
    size_t p = *pos;
    for (size_t i = 0; i < count; i++) {
        if (!read_token(s, len, &p, name, digits, &values[i])) {
            return false;
        }
    }
    *pos = p;
    return true;
}

static size_t skip_space(const char *s, size_t len, size_t p)
{
    while (p < len && is_space(s[p])) {
        p++;
    }
    return p;
}

/* Pixels of a loc value along a side of `size` pixels, clamped to [0, size]. */
static float loc_to_pixels(int32_t loc, uint32_t size)
{
    double v = (double)loc / LOC_BINS * (double)size;
    return (float)(v < 0 ? 0 : v > size ? size : v);
}

/* big_vision's validity rule: values in range and a non-empty box. */
static bool object_valid(const int32_t loc[N_LOC], const int32_t *seg)
{
    for (size_t i = 0; i < N_LOC; i++) {
        if (loc[i] >= LOC_BINS) {
            return false;
        }
    }
    for (size_t i = 0; seg && i < N_SEG; i++) {
        if (seg[i] >= SEG_CODES) {
            return false;
        }
    }
    return loc[2] > loc[0] && loc[3] > loc[1];
}

static pg_status add_object(pg_detections *d, const int32_t loc[N_LOC], const int32_t *seg,
                            const char *label, size_t label_len, uint32_t w, uint32_t h)
{
    void *items = d->items, *labels = d->labels, *segs = d->seg;
    size_t label_bytes;
    pg_status st = reserve(&items, &d->cap, d->n, 1, sizeof *d->items);
    d->items = items;
    if (!st && !pg__add_size(label_len, 1, &label_bytes)) {
        st = pg__error(PG_ERR_OUT_OF_MEMORY, "pg_detections_parse: result too large");
    }
    if (!st) {
        st = reserve(&labels, &d->labels_cap, d->labels_len, label_bytes, 1);
        d->labels = labels;
    }
    if (!st && seg) {
        st = reserve(&segs, &d->seg_cap, d->seg_len, N_SEG, sizeof *d->seg);
        d->seg = segs;
    }
    if (st) {
        return st;
    }
    det *o = &d->items[d->n++];
    o->box[0] = loc_to_pixels(loc[1], w);
    o->box[1] = loc_to_pixels(loc[0], h);
    o->box[2] = loc_to_pixels(loc[3], w);
    o->box[3] = loc_to_pixels(loc[2], h);
    memcpy(o->loc, loc, sizeof o->loc);
    o->label_off = d->labels_len;
    o->label_len = label_len;
    if (label_len) {
        memcpy(d->labels + d->labels_len, label, label_len);
    }
    d->labels[d->labels_len + label_len] = '\0';
    d->labels_len += label_len + 1;
    o->seg_off = NO_SEG;
    if (seg) {
        o->seg_off = d->seg_len;
        memcpy(d->seg + d->seg_len, seg, N_SEG * sizeof *seg);
        d->seg_len += N_SEG;
    }
    return PG_OK;
}

/* Tries one object at s[p] (a '<'). Returns the position after it, or p + 1 if none starts
 * there; *st is set only by an allocation failure. */
static size_t parse_object(pg_detections *d, const char *s, size_t len, size_t p, uint32_t w,
                           uint32_t h, pg_status *st)
{
    int32_t loc[N_LOC], seg[N_SEG];
    size_t q = p;
    if (!read_tokens(s, len, &q, "loc", 4, N_LOC, loc)) {
        return p + 1;
    }
    q = skip_space(s, len, q);
    const bool has_seg = read_tokens(s, len, &q, "seg", 3, N_SEG, seg);
    size_t start = skip_space(s, len, q), end = start;
    while (end < len && s[end] != ';' && s[end] != '<' && s[end] != '>') {
        end++;
    }
    q = end;
    while (end > start && is_space(s[end - 1])) {
        end--;
    }
    if (q < len && s[q] == ';') { /* the separator "; " (a bare ';' too) */
        q++;
        if (q < len && s[q] == ' ') {
            q++;
        }
    }
    if (object_valid(loc, has_seg ? seg : NULL)) {
        *st = add_object(d, loc, has_seg ? seg : NULL, s + start, end - start, w, h);
    }
    return q;
}

PG_API pg_status pg_detections_parse(pg_detections **out, const char *text, size_t len,
                                     uint32_t image_width, uint32_t image_height)
{
    if (!out) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_detections_parse: out is NULL");
    }
    *out = NULL;
    if (!text && len) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_detections_parse: text is NULL");
    }
    if (image_width == 0 || image_height == 0 || image_width > MAX_IMAGE_SIDE ||
        image_height > MAX_IMAGE_SIDE) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "pg_detections_parse: image size %ux%u is not in 1..%u",
                         (unsigned)image_width, (unsigned)image_height, MAX_IMAGE_SIDE);
    }
    pg_detections *d = pg__calloc(1, sizeof *d);
    if (!d) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    pg_status st = PG_OK;
    size_t pos = 0;
    while (pos < len && !st) {
        const char *lt = memchr(text + pos, '<', len - pos);
        if (!lt) {
            break;
        }
        pos = parse_object(d, text, len, (size_t)(lt - text), image_width, image_height, &st);
    }
    if (st) {
        pg_detections_free(d);
        return st;
    }
    *out = d;
    return PG_OK;
}

PG_API size_t pg_detections_count(const pg_detections *detections)
{
    return detections ? detections->n : 0;
}

PG_API pg_status pg_detections_get(const pg_detections *detections, size_t index,
                                   pg_detection_info *info)
{
    if (!detections || !info) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_detections_get: NULL argument");
    }
    pg_status st = pg__check_struct_size(info, sizeof *info, sizeof *info, "pg_detection_info");
    if (st) {
        return st;
    }
    if (index >= detections->n) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "pg_detections_get: index %zu out of range (%zu objects)", index,
                         detections->n);
    }
    const det *o = &detections->items[index];
    /* Only the known fields are written; check_struct_size made sure any newer trailing
     * fields of the caller's struct are zero, which is their "absent" value. */
    info->x_min = o->box[0];
    info->y_min = o->box[1];
    info->x_max = o->box[2];
    info->y_max = o->box[3];
    memcpy(info->loc, o->loc, sizeof info->loc);
    info->label = detections->labels + o->label_off;
    info->label_len = o->label_len;
    info->n_seg = o->seg_off == NO_SEG ? 0 : N_SEG;
    info->seg_codes = o->seg_off == NO_SEG ? NULL : detections->seg + o->seg_off;
    return PG_OK;
}

PG_API void pg_detections_free(pg_detections *detections)
{
    if (!detections) {
        return;
    }
    free(detections->items);
    free(detections->labels);
    free(detections->seg);
    free(detections);
}
