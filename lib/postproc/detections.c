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
#include "postproc/postproc.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
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

/* The first problem met while parsing (pg_detections_status). */
typedef enum problem_kind { PROBLEM_NONE, PROBLEM_TRUNCATED, PROBLEM_MALFORMED, PROBLEM_INVALID } problem_kind;

struct pg_detections {
    uint32_t width, height; /* the image size the boxes refer to (masks need it) */
    size_t dropped;         /* objects skipped: malformed, truncated or invalid */
    problem_kind problem;
    char problem_msg[160];
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

/* Reads up to `count` consecutive tokens; returns how many were complete and moves *pos past
 * them. */
static size_t read_tokens(const char *s, size_t len, size_t *pos, const char *name,
                          size_t digits, size_t count, int32_t *values)
{
    size_t n = 0;
    while (n < count && read_token(s, len, pos, name, digits, &values[n])) {
        n++;
    }
    return n;
}

/* True when s[p..len) begins a `<NAME` token: "<NAME" is there, or the text ends inside it
 * (at least "<" plus one letter of NAME). */
static bool token_starts(const char *s, size_t len, size_t p, const char *name)
{
    const size_t name_len = strlen(name), avail = len - p;
    if (avail < 2 || s[p] != '<') {
        return false;
    }
    const size_t n = avail < 1 + name_len ? avail - 1 : name_len;
    return memcmp(s + p + 1, name, n) == 0;
}

/* True when the text ends inside a `<NAME` + digits token that starts at p, or nothing but
 * whitespace follows p: what a cut-off generation leaves. */
static bool cut_short(const char *s, size_t len, size_t p, const char *name, size_t digits)
{
    const size_t name_len = strlen(name), full = 1 + name_len + digits + 1;
    while (p < len && is_space(s[p])) {
        p++;
    }
    if (p == len) {
        return true;
    }
    if (len - p >= full || !token_starts(s, len, p, name)) {
        return false;
    }
    for (size_t i = p + 1 + name_len; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

/* Counts a malformed, truncated or invalid piece and keeps the first one's description. */
PG__PRINTF(4, 5)
static void note_problem(pg_detections *d, problem_kind kind, size_t at, const char *fmt, ...)
{
    d->dropped++;
    if (d->problem != PROBLEM_NONE) {
        return;
    }
    d->problem = kind;
    int n = snprintf(d->problem_msg, sizeof d->problem_msg, "%s at byte %zu: ",
                     kind == PROBLEM_TRUNCATED ? "truncated object"
                     : kind == PROBLEM_MALFORMED ? "malformed object"
                                                 : "invalid object",
                     at);
    if (n > 0 && (size_t)n < sizeof d->problem_msg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->problem_msg + n, sizeof d->problem_msg - (size_t)n, fmt, ap);
        va_end(ap);
    }
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

/* big_vision's validity rule: values in range and a non-empty box. Returns NULL when the
 * object is valid, else why not. */
static const char *object_invalid(const int32_t loc[N_LOC], const int32_t *seg)
{
    for (size_t i = 0; i < N_LOC; i++) {
        if (loc[i] >= LOC_BINS) {
            return "a <loc> value above 1023";
        }
    }
    for (size_t i = 0; seg && i < N_SEG; i++) {
        if (seg[i] >= SEG_CODES) {
            return "a <seg> value above 127";
        }
    }
    return loc[2] > loc[0] && loc[3] > loc[1] ? NULL : "an empty or inverted box";
}

static pg_status add_object(pg_detections *d, const int32_t loc[N_LOC], const int32_t *seg,
                            const char *label, size_t label_len)
{
    const uint32_t w = d->width, h = d->height;
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

/* Called when no four loc tokens start at s[p] (a '<'): notes a problem when a loc or seg
 * token starts there, and returns where scanning goes on. Skipping the complete tokens read
 * finds the same objects as the reference pattern (none can start inside them) and counts a
 * broken sequence once. */
static size_t no_object(pg_detections *d, const char *s, size_t len, size_t p)
{
    int32_t v[N_SEG];
    size_t q = p;
    size_t n = read_tokens(s, len, &q, "loc", 4, N_LOC, v);
    if (n > 0 || token_starts(s, len, p, "loc")) {
        const bool cut = cut_short(s, len, q, "loc", 4);
        note_problem(d, cut ? PROBLEM_TRUNCATED : PROBLEM_MALFORMED, p,
                     "%zu of 4 <locDDDD> tokens%s", n, cut ? " before the end of the text" : "");
        if (cut) {
            return len; /* only the cut-off token (or whitespace) is left */
        }
    } else if ((n = read_tokens(s, len, &q, "seg", 3, N_SEG, v)) > 0 ||
               token_starts(s, len, p, "seg")) {
        note_problem(d, PROBLEM_MALFORMED, p, "<segDDD> tokens without a box");
    }
    return n > 0 ? q : p + 1;
}

/* Tries one object at s[p] (a '<'). Returns the position after it, or where scanning goes
 * on if none starts there; *st is set only by an allocation failure. */
static size_t parse_object(pg_detections *d, const char *s, size_t len, size_t p, pg_status *st)
{
    int32_t loc[N_LOC], seg[N_SEG];
    size_t q = p;
    if (read_tokens(s, len, &q, "loc", 4, N_LOC, loc) < N_LOC) {
        return no_object(d, s, len, p);
    }
    q = skip_space(s, len, q);
    const size_t seg_at = q, n_seg = read_tokens(s, len, &q, "seg", 3, N_SEG, seg);
    const bool has_seg = n_seg == N_SEG;
    if (n_seg > 0 && !has_seg) {
        /* The reference pattern keeps a plain box with an empty label (the label stops at the
         * first stray '<'); the stray seg tokens cannot start an object and are skipped. */
        const bool cut = cut_short(s, len, q, "seg", 3);
        note_problem(d, cut ? PROBLEM_TRUNCATED : PROBLEM_MALFORMED, p,
                     "%zu of 16 <segDDD> tokens%s", n_seg,
                     cut ? " before the end of the text" : "");
        if (!object_invalid(loc, NULL)) {
            *st = add_object(d, loc, NULL, s + seg_at, 0);
        }
        return cut ? len : q;
    } else if (n_seg == 0 && token_starts(s, len, q, "seg") && cut_short(s, len, q, "seg", 3)) {
        note_problem(d, PROBLEM_TRUNCATED, p, "0 of 16 <segDDD> tokens before the end of the text");
        if (!object_invalid(loc, NULL)) {
            *st = add_object(d, loc, NULL, s + seg_at, 0);
        }
        return len;
    }
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
    const char *why = object_invalid(loc, has_seg ? seg : NULL);
    if (why) {
        note_problem(d, PROBLEM_INVALID, p, "%s", why);
    } else {
        *st = add_object(d, loc, has_seg ? seg : NULL, s + start, end - start);
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
    d->width = image_width;
    d->height = image_height;
    pg_status st = PG_OK;
    size_t pos = 0;
    while (pos < len && !st) {
        const char *lt = memchr(text + pos, '<', len - pos);
        if (!lt) {
            break;
        }
        pos = parse_object(d, text, len, (size_t)(lt - text), &st);
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

PG_API pg_status pg_detections_status(const pg_detections *detections)
{
    if (!detections) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_detections_status: detections is NULL");
    }
    if (detections->problem == PROBLEM_NONE) {
        return PG_OK;
    }
    return pg__error(PG_ERR_FORMAT, "%s%s", detections->problem_msg,
                     detections->dropped > 1 ? " (and more)" : "");
}

PG_API size_t pg_detections_problem_count(const pg_detections *detections)
{
    return detections ? detections->dropped : 0;
}

void pg__detections_image_size(const pg_detections *d, uint32_t *width, uint32_t *height)
{
    *width = d->width;
    *height = d->height;
}
