/*
 * The public pg_image_* API: argument checks, options, caller pixel layouts, memory input,
 * format sniffing, limits (refused from the header), EXIF orientation against Pillow's
 * exif_transpose, DCT-domain scaling, the TF bilinear variant's defining properties, and the
 * [-1, 1] mapping.
 */
#include "harness.h"
#include "image/image.h"
#include "paligemma.h"
#include "sha256.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *data_file(const char *rel)
{
    return pg_test_path(pg_test_path(pg_test_data_dir(), "image/files"), rel);
}

static int read_all(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc(n > 0 ? (size_t)n : 1);
    *size = fread(*data, 1, (size_t)n, f);
    fclose(f);
    return *size == (size_t)n ? 0 : -1;
}

static void test_options(void)
{
    pg_image_options o;
    memset(&o, 0xab, sizeof o);
    PG_IMAGE_OPTIONS_INIT(&o);
    CHECK_EQ_INT(o.struct_size, sizeof o);
    CHECK_EQ_INT(o.flags, 0);
    CHECK_EQ_INT(o.max_dimension, 65535);
    CHECK_EQ_INT(o.max_pixels, 100000000);
    CHECK_EQ_INT(o.target_size, 896);
    pg_image_options_init(NULL, sizeof o); /* must not crash */

    pg_image *img = NULL;
    uint8_t px[3] = { 1, 2, 3 };
    o.flags = 1u << 7;
    CHECK_EQ_INT(pg_image_from_pixels(&img, px, 1, 1, 0, PG_PIXEL_RGB8, &o),
                 PG_ERR_INVALID_ARGUMENT);
    PG_IMAGE_OPTIONS_INIT(&o);
    o.struct_size = 3;
    CHECK_EQ_INT(pg_image_from_pixels(&img, px, 1, 1, 0, PG_PIXEL_RGB8, &o),
                 PG_ERR_INVALID_ARGUMENT);
    CHECK(img == NULL);
    /* An older caller's smaller struct (flags only) is accepted. */
    PG_IMAGE_OPTIONS_INIT(&o);
    o.struct_size = sizeof(size_t) + sizeof(uint32_t);
    CHECK_OK(pg_image_from_pixels(&img, px, 1, 1, 0, PG_PIXEL_RGB8, &o));
    pg_image_free(img);
}

static void test_null_arguments(void)
{
    pg_image *img = (pg_image *)1;
    uint8_t px[4] = { 0 };
    float out[3];
    CHECK_EQ_INT(pg_image_load_file(NULL, "x.png", NULL), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_image_load_file(&img, NULL, NULL), PG_ERR_INVALID_ARGUMENT);
    CHECK(img == NULL);
    CHECK_EQ_INT(pg_image_load_memory(NULL, px, 4, NULL), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_image_load_memory(&img, NULL, 4, NULL), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_image_load_memory(&img, px, 0, NULL), PG_ERR_FORMAT);
    CHECK_EQ_INT(pg_image_from_pixels(NULL, px, 1, 1, 0, PG_PIXEL_RGB8, NULL),
                 PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_image_from_pixels(&img, NULL, 1, 1, 0, PG_PIXEL_RGB8, NULL),
                 PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_image_from_pixels(&img, px, 0, 1, 0, PG_PIXEL_RGB8, NULL),
                 PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_image_from_pixels(&img, px, 1, 1, 0, 99, NULL), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_image_from_pixels(&img, px, 2, 1, 5, PG_PIXEL_RGB8, NULL),
                 PG_ERR_INVALID_ARGUMENT); /* stride below a row */
    CHECK_EQ_INT(pg_image_preprocess(NULL, 1, 0, out, 3), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_image_load_file(&img, "/nonexistent/x.png", NULL), PG_ERR_NOT_FOUND);
    pg_image_free(NULL);
    CHECK_EQ_INT(pg_image_width(NULL), 0);
    CHECK_EQ_INT(pg_image_height(NULL), 0);
    CHECK(pg_image_pixels(NULL) == NULL);
}

static void test_pixels(void)
{
    /* 2x2 image, stride 16 with garbage padding, in every layout. */
    const uint8_t rgb[4][3] = { { 10, 20, 30 }, { 40, 50, 60 }, { 70, 80, 90 }, { 100, 110, 120 } };
    const int32_t fmts[] = { PG_PIXEL_RGB8, PG_PIXEL_RGBA8, PG_PIXEL_BGR8, PG_PIXEL_BGRA8,
                             PG_PIXEL_GRAY8 };
    for (int f = 0; f < 5; f++) {
        uint8_t buf[32];
        memset(buf, 0xee, sizeof buf);
        int bpp = f == 4 ? 1 : (f == 1 || f == 3) ? 4 : 3;
        for (int i = 0; i < 4; i++) {
            uint8_t *p = buf + (i / 2) * 16 + (i % 2) * bpp;
            if (f == 4) {
                p[0] = rgb[i][0];
            } else if (f == 2 || f == 3) {
                p[0] = rgb[i][2], p[1] = rgb[i][1], p[2] = rgb[i][0];
            } else {
                p[0] = rgb[i][0], p[1] = rgb[i][1], p[2] = rgb[i][2];
            }
            if (bpp == 4) {
                p[3] = 7; /* alpha: dropped without compositing */
            }
        }
        pg_image *img = NULL;
        CHECK_OK(pg_image_from_pixels(&img, buf, 2, 2, 16, fmts[f], NULL));
        if (!img) {
            continue;
        }
        CHECK_EQ_INT(pg_image_width(img), 2);
        CHECK_EQ_INT(pg_image_height(img), 2);
        const uint8_t *px = pg_image_pixels(img);
        int same = 1;
        for (int i = 0; i < 4; i++) {
            for (int c = 0; c < 3; c++) {
                same &= px[3 * i + c] == (f == 4 ? rgb[i][0] : rgb[i][c]);
            }
        }
        CHECK_MSG(same, "pixel format %d", (int)fmts[f]);
        pg_image_free(img);
    }
}

static void test_memory_equals_file(void)
{
    const char *path = data_file("derived/coffee_q90_420_baseline.jpg");
    uint8_t *data;
    size_t size;
    if (read_all(path, &data, &size) != 0) {
        CHECK_MSG(0, "cannot read %s", path);
        return;
    }
    pg_image *a = NULL, *b = NULL;
    CHECK_OK(pg_image_load_file(&a, path, NULL));
    CHECK_OK(pg_image_load_memory(&b, data, size, NULL));
    CHECK(a && b && pg_image_width(a) == 600 && pg_image_height(a) == 400 &&
          memcmp(pg_image_pixels(a), pg_image_pixels(b), 600 * 400 * 3) == 0);
    pg_image_free(a);
    pg_image_free(b);
    /* A truncated copy is an error with a message, never a crash. */
    for (size_t cut = 0; cut < size; cut += size / 7 + 1) {
        CHECK(pg_image_load_memory(&a, data, cut, NULL) != PG_OK && a == NULL);
    }
    free(data);
}

static void test_formats(void)
{
    pg_image *img = NULL;
    const uint8_t bmp[] = { 'B', 'M', 0x36, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0 };
    const uint8_t gif[] = "GIF89a\x01\x00\x01\x00";
    const uint8_t tiff[] = { 'I', 'I', 42, 0, 8, 0, 0, 0 };
    const uint8_t text[] = "hello, world";
    CHECK_EQ_INT(pg_image_load_memory(&img, bmp, sizeof bmp, NULL), PG_ERR_UNSUPPORTED);
    CHECK(strstr(pg_last_error(), "BMP") != NULL);
    CHECK_EQ_INT(pg_image_load_memory(&img, gif, sizeof gif, NULL), PG_ERR_UNSUPPORTED);
    CHECK_EQ_INT(pg_image_load_memory(&img, tiff, sizeof tiff, NULL), PG_ERR_UNSUPPORTED);
    CHECK_EQ_INT(pg_image_load_file(&img, data_file("derived/coffee.webp"), NULL),
                 PG_ERR_UNSUPPORTED);
    CHECK(strstr(pg_last_error(), "WebP") != NULL);
    CHECK_EQ_INT(pg_image_load_memory(&img, text, sizeof text, NULL), PG_ERR_FORMAT);
    CHECK(img == NULL);
}

static void test_limits(void)
{
    pg_image *img = NULL;
    CHECK_EQ_INT(
        pg_image_load_file(&img, data_file("corrupt/derived_png_claims_100000x100000.png"), NULL),
        PG_ERR_LIMIT);
    CHECK(strstr(pg_last_error(), "100000") != NULL);
    pg_image_options o;
    PG_IMAGE_OPTIONS_INIT(&o);
    o.max_pixels = 600 * 400 - 1;
    CHECK_EQ_INT(pg_image_load_file(&img, data_file("derived/coffee_progressive.jpg"), &o),
                 PG_ERR_LIMIT);
    o.max_pixels = 600 * 400;
    CHECK_OK(pg_image_load_file(&img, data_file("derived/coffee_progressive.jpg"), &o));
    pg_image_free(img);
    img = NULL;
    PG_IMAGE_OPTIONS_INIT(&o);
    o.max_dimension = 599;
    CHECK_EQ_INT(pg_image_load_file(&img, data_file("derived/coffee_progressive.jpg"), &o),
                 PG_ERR_LIMIT);
    CHECK_EQ_INT(pg_image_load_file(&img, data_file("derived/tiny_2x3.png"), &o), PG_OK);
    pg_image_free(img);
    img = NULL;
    uint8_t px[3] = { 0 };
    o.max_dimension = 0; /* default */
    o.max_pixels = 1;
    CHECK_EQ_INT(pg_image_from_pixels(&img, px, 1, 2, 0, PG_PIXEL_GRAY8, &o), PG_ERR_LIMIT);
    /* The 65500x65500 SOF is larger than the default limits (in ../shared only). */
    const char *shared = pg_test_shared_dir();
    if (shared) {
        const char *p =
            pg_test_path(shared, "images/corrupt/derived_coffee_sof_claims_65500x65500.jpg");
        CHECK_EQ_INT(pg_image_load_file(&img, p, NULL), PG_ERR_LIMIT);
    }
}

/* Every file with an EXIF Orientation: default loading must equal Pillow's exif_transpose. */
static void test_exif(void)
{
    FILE *f = fopen(pg_test_path(pg_test_data_dir(), "image/exif_expected.tsv"), "r");
    CHECK(f != NULL);
    if (!f) {
        return;
    }
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char path[512], sha[80];
        unsigned o, w, h;
        if (line[0] == '#' || sscanf(line, "%511s %u %u %u %79s", path, &o, &w, &h, sha) != 5) {
            continue;
        }
        struct stat st;
        const char *file = data_file(path);
        if (stat(file, &st) != 0) {
            const char *shared = pg_test_shared_dir();
            if (!shared) {
                continue;
            }
            file = pg_test_path(pg_test_path(shared, "images"), path);
        }
        pg_image *img = NULL;
        CHECK_OK(pg_image_load_file(&img, file, NULL));
        if (!img) {
            continue;
        }
        char hex[65];
        pg_test_sha256_hex(pg_image_pixels(img),
                           (size_t)pg_image_width(img) * pg_image_height(img) * 3, hex);
        CHECK_MSG(pg_image_width(img) == w && pg_image_height(img) == h &&
                      strncmp(hex, sha, 16) == 0,
                  "%s (orientation %u): %ux%u %.16s, Pillow %ux%u %s", path, o, pg_image_width(img),
                  pg_image_height(img), hex, w, h, sha);
        pg_image_free(img);
        n++;
    }
    fclose(f);
    CHECK(n >= 9);
    /* Switched off: the stored pixels (orientation 6 stores the picture rotated). */
    pg_image_options o;
    PG_IMAGE_OPTIONS_INIT(&o);
    o.flags = PG_IMAGE_NO_EXIF_ROTATE;
    pg_image *img = NULL;
    CHECK_OK(pg_image_load_file(&img, data_file("exif_orientation/orientation_6.jpg"), &o));
    CHECK(img && pg_image_width(img) == 70 && pg_image_height(img) == 50);
    pg_image_free(img);
}

static void test_exif_parser(void)
{
    /* Little-endian TIFF, IFD0 at 8 with one entry: Orientation SHORT 1 = 6. */
    uint8_t le[26] = { 'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0 };
    CHECK_EQ_INT(pg__exif_orientation(le, sizeof le), 6);
    CHECK_EQ_INT(pg__exif_orientation(le, 21), 0); /* entry cut short */
    /* What Pillow 9.4 does with odd entries (checked with Image.getexif on edited files):
     * count 2 -> warns, keeps the first value; count 0 -> None; BYTE -> bytes (ignored);
     * SSHORT -> the integer. */
    le[14] = 2;
    CHECK_EQ_INT(pg__exif_orientation(le, sizeof le), 6);
    le[14] = 0;
    CHECK_EQ_INT(pg__exif_orientation(le, sizeof le), 0);
    le[14] = 1;
    le[12] = 1; /* BYTE */
    CHECK_EQ_INT(pg__exif_orientation(le, sizeof le), 0);
    le[12] = 8; /* SSHORT */
    CHECK_EQ_INT(pg__exif_orientation(le, sizeof le), 6);
    le[12] = 3;
    le[18] = 9; /* out of range */
    CHECK_EQ_INT(pg__exif_orientation(le, sizeof le), 0);
    le[18] = 6;
    /* Two entries: the last readable one wins; an entry of unknown type is skipped. */
    uint8_t two[48] = { 'I', 'I', 42, 0, 8, 0, 0,    0,    2, 0, 0x12, 0x01, 3, 0, 1, 0,
                        0,   0,   6,  0, 0, 0, 0x12, 0x01, 3, 0, 1,    0,    0, 0, 3, 0 };
    CHECK_EQ_INT(pg__exif_orientation(two, sizeof two), 3);
    two[24] = 99; /* unknown type: skipped */
    CHECK_EQ_INT(pg__exif_orientation(two, sizeof two), 6);
    two[24] = 3;
    two[26] = 5; /* 5 SHORTs (10 bytes) live at an offset: 36, where the value is 8 */
    two[30] = 36, two[31] = 0, two[32] = 0, two[33] = 0, two[36] = 8;
    CHECK_EQ_INT(pg__exif_orientation(two, sizeof two), 8);
    two[30] = 39; /* the 10 bytes would end past the block: skipped */
    CHECK_EQ_INT(pg__exif_orientation(two, sizeof two), 6);
    /* Big-endian, LONG. */
    uint8_t be[26] = {
        'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 4, 0, 0, 0, 1, 0, 0, 0, 3
    };
    CHECK_EQ_INT(pg__exif_orientation(be, sizeof be), 3);
    /* IFD offset 0xFFFFFFFF, huge entry count, garbage header. */
    uint8_t bomb[16] = { 'M', 'M', 0, 42, 0xff, 0xff, 0xff, 0xff };
    CHECK_EQ_INT(pg__exif_orientation(bomb, sizeof bomb), 0);
    uint8_t many[12] = { 'I', 'I', 42, 0, 8, 0, 0, 0, 0xff, 0xff, 0, 0 };
    CHECK_EQ_INT(pg__exif_orientation(many, sizeof many), 0);
    CHECK_EQ_INT(pg__exif_orientation(NULL, 100), 0);
    CHECK_EQ_INT(pg__exif_orientation((const uint8_t *)"XX*\0\0\0\0\0", 8), 0);
}

static void test_fast_jpeg_scale(void)
{
    pg_image_options o;
    PG_IMAGE_OPTIONS_INIT(&o);
    o.flags = PG_IMAGE_FAST_JPEG_SCALE;
    o.target_size = 100; /* 600x400 -> 1/2 keeps both sides >= 100 ... up to 1/4 (150x100) */
    pg_image *img = NULL;
    CHECK_OK(pg_image_load_file(&img, data_file("derived/coffee_q90_444_baseline.jpg"), &o));
    CHECK(img && pg_image_width(img) == 150 && pg_image_height(img) == 100);
    pg_image_free(img);
    o.target_size = 224; /* 400/2 < 224: no scaling */
    CHECK_OK(pg_image_load_file(&img, data_file("derived/coffee_q90_444_baseline.jpg"), &o));
    CHECK(img && pg_image_width(img) == 600 && pg_image_height(img) == 400);
    pg_image_free(img);
}

static void test_resize_properties(void)
{
    enum {
        W = 37,
        H = 23
    };
    uint8_t src[W * H * 3], dst[W * H * 3], small[18 * 11 * 3];
    uint32_t seed = 12345;
    for (size_t i = 0; i < sizeof src; i++) {
        seed = seed * 1103515245u + 12345u;
        src[i] = (uint8_t)(seed >> 24);
    }
    /* Same size: both methods are the identity. */
    CHECK_OK(pg__resize_bilinear_tf(src, W, H, dst, W, H));
    CHECK(memcmp(src, dst, sizeof src) == 0);
    CHECK_OK(pg__resize_bicubic_pil(src, W, H, dst, W, H));
    CHECK(memcmp(src, dst, sizeof src) == 0);
    /* TF half-pixel bilinear at exactly 1/2 is the truncated mean of each 2x2 block. */
    uint8_t even[36 * 22 * 3];
    for (int y = 0; y < 22; y++) {
        memcpy(even + y * 36 * 3, src + y * W * 3, 36 * 3);
    }
    CHECK_OK(pg__resize_bilinear_tf(even, 36, 22, small, 18, 11));
    int ok = 1;
    for (int y = 0; y < 11; y++) {
        for (int x = 0; x < 18; x++) {
            for (int c = 0; c < 3; c++) {
                const uint8_t *p = even + ((2 * y) * 36 + 2 * x) * 3 + c;
                int sum = p[0] + p[3] + p[36 * 3] + p[36 * 3 + 3];
                ok &= small[(y * 18 + x) * 3 + c] == sum / 4;
            }
        }
    }
    CHECK_MSG(ok, "TF bilinear 2x downscale is not the 2x2 mean");
    /* A constant image stays constant under both resamplers, up and down. */
    memset(src, 77, sizeof src);
    uint8_t big[50 * 41 * 3];
    CHECK_OK(pg__resize_bicubic_pil(src, W, H, big, 50, 41));
    int c1 = 1;
    for (size_t i = 0; i < sizeof big; i++) {
        c1 &= big[i] == 77;
    }
    CHECK_OK(pg__resize_bilinear_tf(src, W, H, small, 18, 11));
    for (size_t i = 0; i < sizeof small; i++) {
        c1 &= small[i] == 77;
    }
    CHECK(c1);
}

static void test_value_mapping(void)
{
    uint8_t px[6] = { 0, 255, 128, 1, 2, 3 };
    pg_image *img = NULL;
    CHECK_OK(pg_image_from_pixels(&img, px, 1, 2, 0, PG_PIXEL_RGB8, NULL));
    float out[6];
    CHECK_EQ_INT(pg_image_preprocess(img, 1, 0, out, 2), PG_ERR_LIMIT);
    CHECK_EQ_INT(pg_image_preprocess(img, 0, 0, out, 6), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_image_preprocess(img, 1, 9, out, 6), PG_ERR_INVALID_ARGUMENT);
    pg_image_free(img);
    CHECK_OK(pg_image_from_pixels(&img, px, 1, 1, 0, PG_PIXEL_RGB8, NULL));
    CHECK_OK(pg_image_preprocess(img, 1, PG_RESIZE_BICUBIC_PIL, out, 3));
    CHECK(out[0] == -1.0f && out[1] == 1.0f);
    CHECK(fabsf(out[2] - (128 / 127.5f - 1)) < 1e-6f);
    CHECK_OK(pg_image_preprocess(img, 1, PG_RESIZE_BILINEAR_TF, out, 3));
    CHECK(out[0] == -1.0f && out[1] == 1.0f);
    CHECK(fabsf(out[2] - (128 / 127.5f - 1)) < 1e-6f);
    pg_image_free(img);
}

/* The 8000x6000 JPEG of ../shared must pass the default limits. */
static void test_large(void)
{
    const char *shared = pg_test_shared_dir();
    if (!shared) {
        printf("skip 8000x6000 (../shared absent)\n");
        return;
    }
    pg_image *img = NULL;
    CHECK_OK(pg_image_load_file(&img, pg_test_path(shared, "images/derived/coffee_8000x6000.jpg"),
                                NULL));
    CHECK(img && pg_image_width(img) == 8000 && pg_image_height(img) == 6000);
    pg_image_free(img);
}

int main(void)
{
    test_options();
    test_null_arguments();
    test_pixels();
    test_memory_equals_file();
    test_formats();
    test_limits();
    test_exif();
    test_exif_parser();
    test_fast_jpeg_scale();
    test_resize_properties();
    test_value_mapping();
    test_large();
    return pg_test_finish();
}
