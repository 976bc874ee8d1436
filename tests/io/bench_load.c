/*
 * Load-time benchmark: pg_model_load of full-size 3B-448 bf16 checkpoints (random values,
 * real tensor shapes, fewer layers) is O(header): the time does not grow with the file size
 * and the weight bytes are not read.
 *
 * For each layer count a checkpoint is written once into the build folder (st_write.c; kept
 * for later runs). Before every timed load the shards' pages are dropped from the page cache
 * (they are clean after the writer's fdatasync), so each load starts cold. After the load,
 * mincore() over the mapped shards counts the resident pages: only the headers should be
 * there. For contrast, a load with PG_MODEL_PREFAULT (which touches every page) is timed too.
 *
 * usage: bench_load OUT_DIR [n_layers...]   (default layer counts: 1 8)
 */
#include "io/safetensors.h"
#include "model/model.h"
#include "st_write.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define VARIANT "3b-448"
#define SEED 1234
#define RUNS 5

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* The checkpoint for n layers, written once (a COMPLETE marker tells a finished one). */
static int checkpoint(const char *root, int n_layers, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/bench-load-%s-L%d-s%d", root, VARIANT, n_layers, SEED);
    char marker[4200];
    snprintf(marker, sizeof marker, "%s/COMPLETE", dir);
    if (exists(marker)) {
        return 0;
    }
    mkdir(root, 0755);
    mkdir(dir, 0755);
    fprintf(stderr, "writing a %s checkpoint with %d layers to %s (once)...\n", VARIANT,
            n_layers, dir);
    double t0 = pg__now_ms();
    if (pg_write_random_checkpoint(dir, VARIANT, n_layers, SEED) != 0) {
        return -1;
    }
    fprintf(stderr, "  written in %.1f s\n", (pg__now_ms() - t0) / 1e3);
    FILE *f = fopen(marker, "w");
    return f && fclose(f) == 0 ? 0 : -1;
}

/* Drops the shards' cached pages (cold start for the next load). */
static void drop_cache(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strstr(e->d_name, ".safetensors")) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            int fd = open(path, O_RDONLY);
            if (fd >= 0) {
                fdatasync(fd);
                posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
                close(fd);
            }
        }
    }
    if (d) {
        closedir(d);
    }
}

typedef struct residency {
    uint64_t file_bytes, header_bytes, resident_bytes;
} residency;

static residency measure(const pg_model *m)
{
    residency r = { 0 };
    long page = sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < m->n_files; i++) {
        const pg__st_file *f = m->files[i];
        size_t pages = (f->map_size + (size_t)page - 1) / (size_t)page;
        unsigned char *vec = malloc(pages);
        if (vec && mincore(f->map, f->map_size, vec) == 0) {
            for (size_t p = 0; p < pages; p++) {
                r.resident_bytes += (vec[p] & 1) ? (uint64_t)page : 0;
            }
        }
        free(vec);
        r.file_bytes += f->map_size;
        r.header_bytes += 8 + f->header_size;
    }
    return r;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median time of `runs` cold loads with `flags`; residency after the last one. */
static int bench(const char *dir, uint32_t flags, int runs, double *median_ms, residency *res)
{
    double t[RUNS];
    for (int i = 0; i < runs; i++) {
        drop_cache(dir);
        pg_model_options o;
        PG_MODEL_OPTIONS_INIT(&o);
        o.backend = "ref";
        o.n_threads = 1;
        o.flags = flags;
        pg_model *m = NULL;
        double t0 = pg__now_ms();
        pg_status st = pg_model_load(&m, dir, &o);
        t[i] = pg__now_ms() - t0;
        if (st != PG_OK) {
            fprintf(stderr, "load failed: %s\n", pg_last_error());
            return -1;
        }
        if (i == runs - 1) {
            *res = measure(m);
            /* the checkpoint is what it claims to be */
            if (strcmp(m->variant, VARIANT) != 0 || m->n_files != 2) {
                fprintf(stderr, "unexpected model: variant %s, %zu files\n", m->variant,
                        m->n_files);
                pg_model_free(m);
                return -1;
            }
        }
        pg_model_free(m);
    }
    qsort(t, (size_t)runs, sizeof t[0], cmp_double);
    *median_ms = t[runs / 2];
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_load OUT_DIR [n_layers...]\n");
        return 2;
    }
    int layers[16] = { 1, 8 }, n_layers = 2;
    if (argc > 2) {
        n_layers = 0;
        for (int i = 2; i < argc && n_layers < 16; i++) {
            layers[n_layers++] = atoi(argv[i]);
        }
    }
    printf("pg_model_load of %s bf16 checkpoints (2 shards), cold page cache, median of %d\n",
           VARIANT, RUNS);
    printf("%7s %10s %10s %12s %14s %16s\n", "layers", "file MB", "load ms", "resident MB",
           "resident %", "prefault load ms");
    for (int i = 0; i < n_layers; i++) {
        char dir[4096];
        if (checkpoint(argv[1], layers[i], dir, sizeof dir) != 0) {
            fprintf(stderr, "cannot write the checkpoint\n");
            return 1;
        }
        double ms, pf_ms;
        residency r, pf;
        /* one prefaulting load (it reads everything) is enough for the contrast */
        if (bench(dir, 0, RUNS, &ms, &r) != 0 ||
            bench(dir, PG_MODEL_PREFAULT, 1, &pf_ms, &pf) != 0) {
            return 1;
        }
        printf("%7d %10.1f %10.2f %12.2f %13.3f%% %16.1f\n", layers[i], r.file_bytes / 1e6, ms,
               r.resident_bytes / 1e6, 100.0 * (double)r.resident_bytes / (double)r.file_bytes,
               pf_ms);
        printf("        (headers: %.1f KB; resident after the prefaulting load: %.1f%%)\n",
               r.header_bytes / 1e3, 100.0 * (double)pf.resident_bytes / (double)pf.file_bytes);
        drop_cache(dir);
    }
    return 0;
}
