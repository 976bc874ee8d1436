/*
 * pg bench: the random-weight checkpoint cache. A checkpoint is defined by (variant, layer
 * count, seed, writer version); its folder is named by a hash of those, and a COMPLETE
 * marker written last tells a finished checkpoint from an interrupted one. Full-size
 * checkpoints are gigabytes, so making a new one first removes the other pg bench
 * checkpoints in the same cache folder (only folders named pgbench-*, only their files).
 */
#include "bench_support.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "st_write.h"

/* Bump when the writer's output changes, so old cached checkpoints are not reused. */
#define BENCH_CHECKPOINT_VERSION "1"

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 1099511628211u;
    }
    return h;
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int default_root(char *out, size_t cap)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && *xdg) {
        n = snprintf(out, cap, "%s/paligemma-bench", xdg);
    } else if (home && *home) {
        n = snprintf(out, cap, "%s/.cache/paligemma-bench", home);
    } else {
        n = snprintf(out, cap, "build/paligemma-bench");
    }
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* Removes the plain files of `dir` and then the folder itself. */
static void remove_checkpoint_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        return;
    }
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
            continue;
        }
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path &&
            lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

/* Removes every pgbench-* checkpoint folder in root except `keep`. */
static void remove_others(const char *root, const char *keep_name, bool verbose)
{
    DIR *d = opendir(root);
    if (!d) {
        return;
    }
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "pgbench-", 8) != 0 || !strcmp(e->d_name, keep_name)) {
            continue;
        }
        if (snprintf(path, sizeof path, "%s/%s", root, e->d_name) < (int)sizeof path) {
            if (verbose) {
                fprintf(stderr, "pg bench: removing the older checkpoint %s\n", path);
            }
            remove_checkpoint_dir(path);
        }
    }
    closedir(d);
}

static bool file_exists(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    return snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path &&
           stat(path, &st) == 0;
}

int bench_checkpoint(const char *variant, int n_layers, uint64_t seed, const char *cache_dir,
                     bool verbose, char *dir_out, size_t cap)
{
    char root[4096], key[512], name[256];
    if (cache_dir) {
        snprintf(root, sizeof root, "%s", cache_dir);
    } else if (default_root(root, sizeof root) != 0) {
        fprintf(stderr, "pg bench: no cache folder (set --cache-dir)\n");
        return -1;
    }
    for (const char *c = variant; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-')) {
            fprintf(stderr, "pg bench: bad variant name '%s'\n", variant);
            return -1;
        }
    }
    snprintf(key, sizeof key, "%s|%d|%llu|" BENCH_CHECKPOINT_VERSION, variant, n_layers,
             (unsigned long long)seed);
    snprintf(name, sizeof name, "pgbench-%s-%016llx", variant, (unsigned long long)fnv1a(key));
    if (snprintf(dir_out, cap, "%s/%s", root, name) >= (int)cap) {
        fprintf(stderr, "pg bench: cache path too long\n");
        return -1;
    }
    if (file_exists(dir_out, "COMPLETE")) {
        if (verbose) {
            fprintf(stderr, "pg bench: reusing the checkpoint %s\n", dir_out);
        }
        return 0;
    }
    if (mkdir_p(root) != 0) {
        fprintf(stderr, "pg bench: cannot create %s: %s\n", root, strerror(errno));
        return -1;
    }
    remove_others(root, name, verbose);
    remove_checkpoint_dir(dir_out); /* an interrupted earlier attempt */
    if (mkdir_p(dir_out) != 0) {
        fprintf(stderr, "pg bench: cannot create %s: %s\n", dir_out, strerror(errno));
        return -1;
    }
    if (verbose) {
        fprintf(stderr, "pg bench: writing a random %s checkpoint to %s (once)...\n", variant,
                dir_out);
    }
    double t0 = bench_now_ms();
    if ((int)pg_write_random_checkpoint(dir_out, variant, n_layers, seed) != 0) {
        fprintf(stderr, "pg bench: writing the checkpoint failed\n");
        remove_checkpoint_dir(dir_out);
        return -1;
    }
    char marker[4096];
    snprintf(marker, sizeof marker, "%s/COMPLETE", dir_out);
    FILE *f = fopen(marker, "w");
    if (!f || fprintf(f, "%s\n", key) < 0 || fclose(f) != 0) {
        fprintf(stderr, "pg bench: cannot write %s\n", marker);
        return -1;
    }
    if (verbose) {
        fprintf(stderr, "pg bench: checkpoint written in %.1f s\n", (bench_now_ms() - t0) / 1e3);
    }
    return 0;
}
