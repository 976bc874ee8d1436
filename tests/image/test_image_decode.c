/*
 * Decoding against Pillow: every file of ../shared/fixtures/images/MANIFEST.json (copied to
 * tests/data/image/files when small) is decoded without EXIF rotation, and the sha256 of the
 * RGB bytes must equal Pillow 9.4's convert("RGB") hash. Files Pillow refuses must give a
 * status (never a crash); files Pillow accepts must decode, except the documented cases
 * where decoders legitimately disagree (see `lenient` below and docs/images.md).
 */
#include "harness.h"
#include "paligemma.h"
#include "sha256.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Files on which decoders disagree: Pillow decodes them, we may refuse (or the reverse). */
static const char *const lenient[] = {
    "corrupt/invalid-noend.png", "corrupt/invalid-trunc.png", "corrupt/invalid-palette.png",
    "corrupt/video-001.progressive.truncated.jpeg", "corrupt/derived_coffee_bitflips_200.jpg",
    "corrupt/goexif_infinite_loop_exif.jpg",
    /* Pillow 9.4 cannot decode arithmetic coding; libjpeg-turbo can. */
    "derived/coffee_arithmetic.jpg", NULL
};

static int is_lenient(const char *path)
{
    for (int i = 0; lenient[i]; i++) {
        if (strcmp(lenient[i], path) == 0) {
            return 1;
        }
    }
    return 0;
}

static const char *find_file(const char *rel)
{
    struct stat st;
    const char *p = pg_test_path(pg_test_path(pg_test_data_dir(), "image/files"), rel);
    if (stat(p, &st) == 0) {
        return p;
    }
    const char *shared = pg_test_shared_dir();
    if (shared) {
        p = pg_test_path(pg_test_path(shared, "images"), rel);
        if (stat(p, &st) == 0) {
            return p;
        }
    }
    return NULL;
}

int main(void)
{
    const char *tsv = pg_test_path(pg_test_data_dir(), "image/decode_expected.tsv");
    FILE *f = fopen(tsv, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", tsv);
        return 1;
    }
    pg_image_options opts;
    PG_IMAGE_OPTIONS_INIT(&opts);
    opts.flags = PG_IMAGE_NO_EXIF_ROTATE;
    char line[1024];
    int matched = 0, refused = 0, missing = 0, unsupported = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') {
            continue;
        }
        char path[512], pil[16], mode[16], sha[80];
        unsigned w, h;
        if (sscanf(line, "%511s %15s %u %u %15s %79s", path, pil, &w, &h, mode, sha) != 6) {
            continue;
        }
        const char *file = find_file(path);
        if (!file) {
            missing++;
            continue;
        }
        pg_image *img = NULL;
        pg_status st = pg_image_load_file(&img, file, &opts);
        const int pil_ok = strcmp(pil, "ok") == 0;
        if (st == PG_OK) {
            CHECK(img != NULL && pg_image_width(img) > 0 && pg_image_pixels(img) != NULL);
        } else {
            CHECK_MSG(img == NULL && pg_last_error()[0] != '\0', "%s: no message", path);
        }
        if (st == PG_ERR_UNSUPPORTED) {
            unsupported++;
            CHECK_MSG(!pil_ok || strstr(path, ".bmp") || strstr(path, ".webp") ||
                          strstr(path, ".gif"),
                      "%s: unsupported: %s", path, pg_last_error());
        } else if (is_lenient(path)) {
            /* either outcome is fine; only a crash or a leak would be a failure */
        } else if (pil_ok) {
            CHECK_MSG(st == PG_OK, "%s: Pillow decodes it, we fail: %s", path, pg_last_error());
            if (st == PG_OK) {
                char hex[65];
                pg_test_sha256_hex(pg_image_pixels(img),
                                   (size_t)pg_image_width(img) * pg_image_height(img) * 3, hex);
                CHECK_MSG(pg_image_width(img) == w && pg_image_height(img) == h,
                          "%s: size %ux%u, Pillow %ux%u", path, pg_image_width(img),
                          pg_image_height(img), w, h);
                CHECK_MSG(strncmp(hex, sha, 16) == 0, "%s (%s): rgb sha256 %.16s, Pillow %s", path,
                          mode, hex, sha);
                matched += strncmp(hex, sha, 16) == 0;
            }
        } else {
            CHECK_MSG(st != PG_OK, "%s: Pillow refuses it, we decode %ux%u", path,
                      pg_image_width(img), pg_image_height(img));
            refused += st != PG_OK;
        }
        pg_image_free(img);
    }
    fclose(f);
    printf("decoded identically to Pillow: %d, refused like Pillow: %d, unsupported: %d, "
           "not available: %d\n",
           matched, refused, unsupported, missing);
    return pg_test_finish();
}
