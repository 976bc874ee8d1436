/*
 * Image benchmark driver (run by bench_image.py, which also measures Pillow in the same run):
 *   bench_image FILE SIZE REPEATS [fast]
 * prints one line of JSON: best-of-REPEATS wall times (decode, preprocess) and CPU time
 * (both) in ms, and the peak resident set size of this process in MiB.
 */
#include "paligemma.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

/* Peak RSS of this process image in MiB (VmHWM: unlike ru_maxrss, not inherited from the
 * parent across fork + exec). */
static double peak_rss_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            kib = atof(line + 6);
        }
    }
    if (f) {
        fclose(f);
    }
    return kib / 1024;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s FILE SIZE REPEATS [fast]\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    uint32_t size = (uint32_t)atoi(argv[2]);
    int repeats = atoi(argv[3]);
    pg_image_options o;
    PG_IMAGE_OPTIONS_INIT(&o);
    if (argc > 4 && strcmp(argv[4], "fast") == 0) {
        o.flags |= PG_IMAGE_FAST_JPEG_SCALE;
        o.target_size = size;
    }
    size_t n = (size_t)3 * size * size;
    float *out = malloc(n * sizeof *out);
    double best_dec = 1e30, best_pre = 1e30, best_cpu = 1e30;
    uint32_t w = 0, h = 0;
    for (int r = 0; r < repeats; r++) {
        pg_image *img = NULL;
        double c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
        double t0 = now_ms();
        if (pg_image_load_file(&img, path, &o) != PG_OK) {
            fprintf(stderr, "%s: %s\n", path, pg_last_error());
            return 1;
        }
        double t1 = now_ms();
        if (pg_image_preprocess(img, size, PG_RESIZE_BICUBIC_PIL, out, n) != PG_OK) {
            fprintf(stderr, "preprocess: %s\n", pg_last_error());
            return 1;
        }
        double t2 = now_ms();
        double c2 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
        best_cpu = c2 - c0 < best_cpu ? c2 - c0 : best_cpu;
        w = pg_image_width(img);
        h = pg_image_height(img);
        pg_image_free(img);
        best_dec = t1 - t0 < best_dec ? t1 - t0 : best_dec;
        best_pre = t2 - t1 < best_pre ? t2 - t1 : best_pre;
    }
    printf("{\"width\": %u, \"height\": %u, \"decode_ms\": %.2f, \"preprocess_ms\": %.2f, "
           "\"cpu_ms\": %.2f, \"peak_rss_mib\": %.1f}\n",
           w, h, best_dec, best_pre, best_cpu, peak_rss_mib());
    free(out);
    return 0;
}
