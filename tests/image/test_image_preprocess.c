/*
 * Preprocessing against the references, exactly (no tolerance):
 *  1. Pillow BICUBIC: for every bicubic entry of preprocess_golden.json, the resized 8-bit
 *     RGB has Pillow 9.4's sha256 (inputs from tests/data/image/files or ../shared).
 *  2. pixel_values goldens of the model oracle (HF transformers): tiny (56 px) and tiny_b
 *     (70 px) from tests/data/image/models; full (448) and tiny896 from ../shared if present.
 */
#include "harness.h"
#include "image/image.h"
#include "npy.h"
#include "paligemma.h"
#include "sha256.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *find_input(const char *rel)
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

static int check_pillow_goldens(void)
{
    FILE *f = fopen(pg_test_path(pg_test_data_dir(), "image/preprocess_expected.tsv"), "r");
    if (!f) {
        CHECK_MSG(0, "preprocess_expected.tsv missing");
        return 0;
    }
    pg_image_options opts;
    PG_IMAGE_OPTIONS_INIT(&opts);
    opts.flags = PG_IMAGE_NO_EXIF_ROTATE; /* the goldens were made without exif_transpose */
    char line[1024];
    int done = 0;
    while (fgets(line, sizeof line, f)) {
        char in[512], rs[32], sha[80];
        unsigned size;
        if (line[0] == '#' || sscanf(line, "%511s %u %31s %79s", in, &size, rs, sha) != 4 ||
            strcmp(rs, "bicubic") != 0) {
            continue;
        }
        const char *path = find_input(in);
        if (!path) {
            printf("skip %s (not available)\n", in);
            continue;
        }
        pg_image *img = NULL;
        CHECK_OK(pg_image_load_file(&img, path, &opts));
        if (!img) {
            continue;
        }
        uint8_t *out = malloc((size_t)size * size * 3);
        CHECK_OK(pg__resize_bicubic_pil(pg_image_pixels(img), pg_image_width(img),
                                        pg_image_height(img), out, size, size));
        char hex[65];
        pg_test_sha256_hex(out, (size_t)size * size * 3, hex);
        CHECK_MSG(strncmp(hex, sha, 16) == 0, "%s -> %u: sha256 %.16s, Pillow %s", in, size, hex,
                  sha);
        done++;
        free(out);
        pg_image_free(img);
    }
    fclose(f);
    return done;
}

/* pixel_values [1,3,S,S] of `npy` vs pg_image_preprocess of `png`; returns 1 if compared. */
static int check_pixel_values(const char *png, const char *npy)
{
    struct stat st;
    if (stat(png, &st) != 0 || stat(npy, &st) != 0) {
        return 0;
    }
    npy_array a;
    if (npy_load(npy, &a) != 0) {
        CHECK_MSG(0, "cannot read %s", npy);
        return 0;
    }
    CHECK(a.dtype == 'f' && a.ndim == 4 && a.shape[1] == 3 && a.shape[2] == a.shape[3]);
    uint32_t size = (uint32_t)a.shape[2];
    pg_image *img = NULL;
    CHECK_OK(pg_image_load_file(&img, png, NULL));
    float *out = malloc(a.count * sizeof *out);
    CHECK_OK(pg_image_preprocess(img, size, PG_RESIZE_BICUBIC_PIL, out, a.count));
    size_t diff = 0;
    for (size_t i = 0; i < a.count; i++) {
        diff += memcmp(&out[i], (const float *)a.data + i, sizeof(float)) != 0;
    }
    CHECK_MSG(diff == 0, "%s: %zu of %zu values differ (max |d| %g)", npy, diff, a.count,
              pg_test_max_abs_diff(out, a.data, a.count));
    free(out);
    pg_image_free(img);
    npy_free(&a);
    return 1;
}

static int check_model_goldens(void)
{
    static const char *const images[] = { "cat_chelsea",         "coffee",
                                          "synth_checker_97x61", "synth_gradient_320x240",
                                          "synth_noise_448",     NULL };
    static const char *const local_cfgs[] = { "tiny", "tiny_b", NULL };
    static const char *const shared_cfgs[] = { "full", "tiny896", NULL };
    const char *mdir = pg_test_path(pg_test_data_dir(), "image/models");
    int n = 0;
    char png[1024], npy[1024];
    for (int c = 0; local_cfgs[c]; c++) {
        for (int i = 0; images[i]; i++) {
            snprintf(png, sizeof png, "%s/%s.png", mdir, images[i]);
            snprintf(npy, sizeof npy, "%s/%s__image_%s__pixel_values.npy", mdir, local_cfgs[c],
                     images[i]);
            n += check_pixel_values(png, npy);
        }
    }
    const char *shared = pg_test_shared_dir();
    for (int c = 0; shared && shared_cfgs[c]; c++) {
        for (int i = 0; images[i]; i++) {
            snprintf(png, sizeof png, "%s/models/images/%s.png", shared, images[i]);
            snprintf(npy, sizeof npy, "%s/models/golden/%s/image_%s/pixel_values.npy", shared,
                     shared_cfgs[c], images[i]);
            n += check_pixel_values(png, npy);
        }
    }
    return n;
}

int main(void)
{
    int pil = check_pillow_goldens();
    int model = check_model_goldens();
    printf("Pillow BICUBIC goldens identical: %d checked; pixel_values goldens: %d checked%s\n",
           pil, model, pg_test_shared_dir() ? "" : " (../shared absent: 448/896 skipped)");
    CHECK(model >= 10);
    return pg_test_finish();
}
