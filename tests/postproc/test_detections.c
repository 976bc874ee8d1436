/*
 * pg_detections_*: well-formed detection and segmentation answers (boxes checked against
 * hand-computed pixel values), garbage and truncated tokens, out-of-range values, empty and
 * huge inputs, NULL arguments and bad struct_size values.
 *
 * Hand arithmetic used below: a coordinate is loc / 1024 * side, so for a 640x480 image
 * loc 128 -> x 80, loc 896 -> x 560, loc 256 -> y 120, loc 768 -> y 360, loc 1023 -> x 639.375
 * and y 479.53125. All of them are exact in float, so the checks compare exactly.
 */
#include "harness.h"
#include "paligemma.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pg_detections *parse(const char *text, uint32_t w, uint32_t h)
{
    pg_detections *d = NULL;
    CHECK_OK(pg_detections_parse(&d, text, strlen(text), w, h));
    return d;
}

static pg_detection_info get(const pg_detections *d, size_t i)
{
    pg_detection_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK_OK(pg_detections_get(d, i, &info));
    return info;
}

static int label_is(const pg_detection_info *info, const char *want)
{
    return info->label && info->label_len == strlen(want) &&
           memcmp(info->label, want, info->label_len) == 0 && info->label[info->label_len] == 0;
}

static void check_box(const pg_detection_info *info, float x0, float y0, float x1, float y1)
{
    CHECK_MSG(info->x_min == x0 && info->y_min == y0 && info->x_max == x1 && info->y_max == y1,
              "box (%g %g %g %g), want (%g %g %g %g)", (double)info->x_min,
              (double)info->y_min, (double)info->x_max, (double)info->y_max, (double)x0,
              (double)y0, (double)x1, (double)y1);
}

static void test_detect_two_objects(void)
{
    pg_detections *d = parse("<loc0256><loc0128><loc0768><loc0896> cat ; "
                             "<loc0000><loc0000><loc1023><loc1023> dog",
                             640, 480);
    CHECK_EQ_INT(pg_detections_count(d), 2);
    pg_detection_info a = get(d, 0), b = get(d, 1);
    check_box(&a, 80.0f, 120.0f, 560.0f, 360.0f);
    CHECK(a.loc[0] == 256 && a.loc[1] == 128 && a.loc[2] == 768 && a.loc[3] == 896);
    CHECK(label_is(&a, "cat"));
    CHECK(a.n_seg == 0 && a.seg_codes == NULL);
    check_box(&b, 0.0f, 0.0f, 639.375f, 479.53125f);
    CHECK(label_is(&b, "dog"));
    CHECK_EQ_INT(a.struct_size, sizeof a);
    pg_detections_free(d);
}

static void test_segmentation(void)
{
    char text[512];
    size_t n = (size_t)snprintf(text, sizeof text, "<loc0100><loc0200><loc0300><loc0400>");
    for (int i = 0; i < 16; i++) {
        n += (size_t)snprintf(text + n, sizeof text - n, "<seg%03d>", i * 8 + 7); /* 7..127 */
    }
    snprintf(text + n, sizeof text - n, " %s", "cat ; <loc0000><loc0000><loc0512><loc0512>");
    pg_detections *d = parse(text, 1024, 512);
    CHECK_EQ_INT(pg_detections_count(d), 2);
    pg_detection_info a = get(d, 0), b = get(d, 1);
    check_box(&a, 200.0f, 50.0f, 400.0f, 150.0f);
    CHECK(label_is(&a, "cat"));
    CHECK_EQ_INT(a.n_seg, 16);
    for (int i = 0; a.seg_codes && i < 16; i++) {
        CHECK_EQ_INT(a.seg_codes[i], i * 8 + 7);
    }
    check_box(&b, 0.0f, 0.0f, 512.0f, 256.0f);
    CHECK(label_is(&b, "") && b.n_seg == 0 && b.seg_codes == NULL);
    pg_detections_free(d);
}

static void test_labels_and_separators(void)
{
    /* Leading text is skipped; labels are trimmed; a bare ';' and no spaces are accepted;
     * a label stops at '<' and '>'; UTF-8 labels are kept byte for byte. */
    pg_detections *d = parse("boxes:\n<loc0001><loc0002><loc0003><loc0004>   big  cat \t;"
                             "<loc0001><loc0002><loc0003><loc0004>chat noir\xC3\xA9>tail;"
                             "<loc0001><loc0002><loc0003><loc0004> \xE7\x8C\xAB<eos>",
                             1024, 1024);
    CHECK_EQ_INT(pg_detections_count(d), 3);
    pg_detection_info a = get(d, 0), b = get(d, 1), c = get(d, 2);
    CHECK(label_is(&a, "big  cat"));
    CHECK(label_is(&b, "chat noir\xC3\xA9"));
    CHECK(label_is(&c, "\xE7\x8C\xAB"));
    check_box(&a, 2.0f, 1.0f, 4.0f, 3.0f);
    pg_detections_free(d);
}

static void test_malformed(void)
{
    static const char *const none[] = {
        "",
        "a caption without any box",
        "<loc0001><loc0002><loc0003>",           /* truncated: three loc tokens */
        "<loc0001><loc0002><loc0003><loc0004",   /* truncated token */
        "<loc12><loc0001><loc0002><loc0003>",    /* two digits */
        "<loc00001><loc0001><loc0002><loc0003>", /* five digits */
        "<loc0001><loc0002><loc0003><locabcd> x",
        "<LOC0001><LOC0002><LOC0003><LOC0004> x",
        "<loc0001> <loc0002><loc0003><loc0004> x", /* no space allowed between locs */
        "<loc1024><loc0000><loc0500><loc0500> out of range",
        "<loc0000><loc9999><loc0500><loc0500> out of range",
        "<loc0500><loc0000><loc0100><loc0500> inverted y",
        "<loc0000><loc0500><loc0500><loc0500> empty x",
        "<<<<<<<<<<>>>>>>>>;;;;;;;; <seg001>",
    };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        pg_detections *d = parse(none[i], 100, 100);
        CHECK_MSG(d && pg_detections_count(d) == 0, "case %zu: %zu objects", i,
                  pg_detections_count(d));
        pg_detections_free(d);
    }

    /* A dropped object does not hide the next one. */
    pg_detections *d = parse("<loc1024><loc0000><loc0500><loc0500> bad ; "
                             "<loc0000><loc0000><loc0512><loc0512> good",
                             100, 100);
    CHECK_EQ_INT(pg_detections_count(d), 1);
    pg_detection_info g = get(d, 0);
    CHECK(label_is(&g, "good"));
    pg_detections_free(d);

    /* A seg code above 127 drops the object; fewer than 16 seg tokens leave a plain box
     * (the reference pattern's optional group does not match) and the label then is empty. */
    d = parse("<loc0000><loc0000><loc0512><loc0512><seg128><seg000><seg000><seg000><seg000>"
              "<seg000><seg000><seg000><seg000><seg000><seg000><seg000><seg000><seg000>"
              "<seg000><seg000> x ; <loc0000><loc0000><loc0512><loc0512><seg001><seg002> y",
              100, 100);
    CHECK_EQ_INT(pg_detections_count(d), 1);
    g = get(d, 0);
    CHECK(g.n_seg == 0 && g.seg_codes == NULL && label_is(&g, ""));
    pg_detections_free(d);

    /* The length bounds the text: no NUL needed, nothing read past len. */
    const char text[] = "<loc0000><loc0000><loc0512><loc0512> cat ; <loc0001><loc";
    char *exact = malloc(sizeof text - 1);
    memcpy(exact, text, sizeof text - 1);
    d = NULL;
    CHECK_OK(pg_detections_parse(&d, exact, sizeof text - 1, 10, 10));
    CHECK_EQ_INT(pg_detections_count(d), 1);
    g = get(d, 0);
    CHECK(label_is(&g, "cat"));
    pg_detections_free(d);
    d = NULL;
    CHECK_OK(pg_detections_parse(&d, exact, 39, 10, 10)); /* "...<loc0512> ca" */
    g = get(d, 0);
    CHECK(label_is(&g, "ca"));
    pg_detections_free(d);
    free(exact);
}

static void test_huge(void)
{
    /* 20000 objects (about 1 MB), then 1 MB of '<' (every byte starts a failed attempt). */
    const char *one = "<loc0000><loc0000><loc0512><loc0512> thing ; ";
    const size_t n_obj = 20000, one_len = strlen(one), lt = (size_t)1 << 20;
    char *text = malloc(n_obj * one_len + lt);
    if (!text) {
        CHECK(0);
        return;
    }
    for (size_t i = 0; i < n_obj; i++) {
        memcpy(text + i * one_len, one, one_len);
    }
    memset(text + n_obj * one_len, '<', lt);
    pg_detections *d = NULL;
    CHECK_OK(pg_detections_parse(&d, text, n_obj * one_len + lt, 4000, 3000));
    CHECK_EQ_INT(pg_detections_count(d), n_obj);
    pg_detection_info last = get(d, n_obj - 1);
    check_box(&last, 0.0f, 0.0f, 2000.0f, 1500.0f);
    CHECK(label_is(&last, "thing"));
    pg_detections_free(d);
    free(text);
}

static void test_arguments(void)
{
    pg_detections *d = (pg_detections *)&d;
    CHECK(pg_detections_parse(NULL, "x", 1, 1, 1) == PG_ERR_INVALID_ARGUMENT);
    CHECK(pg_detections_parse(&d, NULL, 1, 1, 1) == PG_ERR_INVALID_ARGUMENT);
    CHECK(d == NULL);
    CHECK(strstr(pg_last_error(), "text") != NULL);
    CHECK(pg_detections_parse(&d, "x", 1, 0, 1) == PG_ERR_INVALID_ARGUMENT);
    CHECK(pg_detections_parse(&d, "x", 1, 1, 0) == PG_ERR_INVALID_ARGUMENT);
    CHECK(pg_detections_parse(&d, "x", 1, (1u << 24) + 1, 1) == PG_ERR_INVALID_ARGUMENT);
    CHECK(strstr(pg_last_error(), "image size") != NULL);
    CHECK_OK(pg_detections_parse(&d, NULL, 0, 1u << 24, 1u << 24)); /* empty text is fine */
    CHECK(d != NULL && pg_detections_count(d) == 0);
    pg_detections_free(d);
    CHECK_EQ_INT(pg_detections_count(NULL), 0);
    pg_detections_free(NULL);

    d = parse("<loc0000><loc0000><loc0512><loc0512> cat", 10, 10);
    pg_detection_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    CHECK(pg_detections_get(NULL, 0, &info) == PG_ERR_INVALID_ARGUMENT);
    CHECK(pg_detections_get(d, 0, NULL) == PG_ERR_INVALID_ARGUMENT);
    CHECK(pg_detections_get(d, 1, &info) == PG_ERR_INVALID_ARGUMENT);
    CHECK(strstr(pg_last_error(), "out of range") != NULL);
    CHECK(pg_detections_get(d, SIZE_MAX, &info) == PG_ERR_INVALID_ARGUMENT);
    info.struct_size = 0;
    CHECK(pg_detections_get(d, 0, &info) == PG_ERR_INVALID_ARGUMENT);
    info.struct_size = sizeof info - 1;
    CHECK(pg_detections_get(d, 0, &info) == PG_ERR_INVALID_ARGUMENT);
    CHECK(strstr(pg_last_error(), "pg_detection_info") != NULL);
    info.struct_size = 5000;
    CHECK(pg_detections_get(d, 0, &info) == PG_ERR_INVALID_ARGUMENT);

    /* A newer caller's larger struct: zero trailing fields are fine, set ones are refused. */
    struct {
        pg_detection_info info;
        uint64_t newer_field;
    } big;
    memset(&big, 0, sizeof big);
    big.info.struct_size = sizeof big;
    CHECK_OK(pg_detections_get(d, 0, &big.info));
    CHECK(label_is(&big.info, "cat") && big.newer_field == 0);
    big.newer_field = 1;
    CHECK(pg_detections_get(d, 0, &big.info) == PG_ERR_UNSUPPORTED);
    pg_detections_free(d);
}

/* pg_detections_status: PG_OK for clean answers (captions included), PG_ERR_FORMAT naming the
 * kind of the first problem and its byte offset otherwise; problem_count counts each. */
static void check_status(const char *text, pg_status want, size_t problems, const char *msg)
{
    pg_detections *d = parse(text, 100, 100);
    pg_status st = pg_detections_status(d);
    CHECK_MSG(st == want, "'%s': status %d, want %d (%s)", text, (int)st, (int)want,
              pg_last_error());
    CHECK_MSG(pg_detections_problem_count(d) == problems, "'%s': %zu problems, want %zu", text,
              pg_detections_problem_count(d), problems);
    if (msg) {
        CHECK_MSG(strstr(pg_last_error(), msg) != NULL, "'%s': message '%s' lacks '%s'", text,
                  pg_last_error(), msg);
    }
    pg_detections_free(d);
}

static void test_status(void)
{
    char seg16[256] = "<loc0000><loc0000><loc0512><loc0512>";
    for (int i = 0; i < 16; i++) {
        snprintf(seg16 + strlen(seg16), sizeof seg16 - strlen(seg16), "<seg%03d>", i);
    }
    char buf[600];
    check_status("", PG_OK, 0, NULL);
    check_status("a caption <with> angle brackets < and <eos>", PG_OK, 0, NULL);
    check_status("<loc0000><loc0000><loc0512><loc0512> cat ; "
                 "<loc0001><loc0002><loc0600><loc0700> dog",
                 PG_OK, 0, NULL);
    snprintf(buf, sizeof buf, "%s cat ; %s dog", seg16, seg16);
    check_status(buf, PG_OK, 0, NULL);

    /* Truncated: the text ends inside the tokens of the last object. */
    check_status("<loc0000><loc0000><loc0512><loc0512> cat ; <loc0001><loc0002><loc0003>",
                 PG_ERR_FORMAT, 1, "truncated object at byte 43: 3 of 4 <locDDDD> tokens");
    check_status("<loc0001><loc0002><loc0003><loc0004", PG_ERR_FORMAT, 1,
                 "truncated object at byte 0: 3 of 4");
    check_status("<loc0001><lo", PG_ERR_FORMAT, 1, "truncated object at byte 0: 1 of 4");
    check_status("<loc0000><loc0000><loc0512><loc0512><seg001><seg002><seg0", PG_ERR_FORMAT, 1,
                 "truncated object at byte 0: 2 of 16 <segDDD> tokens");
    check_status("<loc0000><loc0000><loc0512><loc0512><se", PG_ERR_FORMAT, 1,
                 "truncated object at byte 0: 0 of 16 <segDDD>");
    snprintf(buf, sizeof buf, "%s cat ; %.*s", seg16, (int)strlen(seg16) - 3, seg16);
    check_status(buf, PG_ERR_FORMAT, 1, "truncated object at byte 171: 15 of 16 <segDDD>");

    /* Malformed: broken tokens with text after them; each broken sequence counts once. */
    check_status("<loc0001><loc0002><loc0003> x", PG_ERR_FORMAT, 1,
                 "malformed object at byte 0: 3 of 4 <locDDDD> tokens");
    check_status("<loc12><loc0001><loc0002><loc0003><loc0600> x", PG_ERR_FORMAT, 1,
                 "malformed object at byte 0: 0 of 4");
    check_status("<loc0000><loc0000><loc0512><loc0512><seg001><seg002> y ; <seg003> z",
                 PG_ERR_FORMAT, 2, "malformed object at byte 0: 2 of 16 <segDDD> tokens");
    check_status("text <seg005><seg006> more", PG_ERR_FORMAT, 1,
                 "malformed object at byte 5: <segDDD> tokens without a box");

    /* Invalid: dropped by big_vision's rule; the next object still counts. */
    check_status("<loc1024><loc0000><loc0500><loc0500> bad ; "
                 "<loc0000><loc0000><loc0512><loc0512> good",
                 PG_ERR_FORMAT, 1, "invalid object at byte 0: a <loc> value above 1023");
    check_status("x <loc0500><loc0000><loc0100><loc0500> inverted", PG_ERR_FORMAT, 1,
                 "invalid object at byte 2: an empty or inverted box");
    snprintf(buf, sizeof buf, "%s", seg16);
    memcpy(strstr(buf, "<seg003>"), "<seg128>", 8);
    check_status(buf, PG_ERR_FORMAT, 1, "a <seg> value above 127");
    check_status("<loc1024><loc0000><loc0500><loc0500> a ; <loc1024><loc0000><loc0500><loc0500>",
                 PG_ERR_FORMAT, 2, "(and more)");

    CHECK_EQ_INT(pg_detections_status(NULL), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_detections_problem_count(NULL), 0);
}

int main(void)
{
    test_detect_two_objects();
    test_segmentation();
    test_labels_and_separators();
    test_malformed();
    test_huge();
    test_arguments();
    test_status();
    return pg_test_finish();
}
