/*
 * The folder walk of pg_index_run: every JPEG/PNG (by extension) below the given folders,
 * as absolute paths, sorted so a run visits files in a stable order. Hidden entries (".x":
 * the catalogue itself, its -wal/-shm files, editor droppings) are passed over silently;
 * other non-images and unreadable subfolders become notes. Symbolic links to folders are
 * not followed (no cycles); links to files are.
 */
#include "index/index.h"

#include "core/core.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_DEPTH 64

static pg_status push_path(pg__walk *w, const char *path)
{
    if (w->n_paths == w->cap_paths) {
        size_t cap = w->cap_paths ? 2 * w->cap_paths : 64;
        char **p = pg__realloc(w->paths, cap * sizeof *p);
        if (!p) {
            return pg__error(PG_ERR_OUT_OF_MEMORY, "no memory for the file list");
        }
        w->paths = p;
        w->cap_paths = cap;
    }
    if (!(w->paths[w->n_paths] = pg__strdup(path))) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "no memory for the file list");
    }
    w->n_paths++;
    return PG_OK;
}

static pg_status push_note(pg__walk *w, const char *path, const char *note)
{
    if (w->n_notes == w->cap_notes) {
        size_t cap = w->cap_notes ? 2 * w->cap_notes : 16;
        pg__walk_note *p = pg__realloc(w->notes, cap * sizeof *p);
        if (!p) {
            return pg__error(PG_ERR_OUT_OF_MEMORY, "no memory for the file list");
        }
        w->notes = p;
        w->cap_notes = cap;
    }
    pg__walk_note *n = &w->notes[w->n_notes];
    n->path = pg__strdup(path);
    n->note = pg__strdup(note);
    if (!n->path || !n->note) {
        free(n->path);
        free(n->note);
        return pg__error(PG_ERR_OUT_OF_MEMORY, "no memory for the file list");
    }
    w->n_notes++;
    return PG_OK;
}

bool pg__walk_is_image_name(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) {
        return false;
    }
    return !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png");
}

static pg_status walk_dir(pg__walk *w, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d) {
        char msg[300];
        snprintf(msg, sizeof msg, "cannot read this folder: %s", strerror(errno));
        w->incomplete = true;
        return push_note(w, dir, msg);
    }
    pg_status st = PG_OK;
    struct dirent *e;
    while (st == PG_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char *path = pg__path_join(dir, e->d_name);
        if (!path) {
            st = pg__error(PG_ERR_OUT_OF_MEMORY, "no memory for the file list");
            break;
        }
        struct stat sb, lsb;
        if (lstat(path, &lsb) != 0 || stat(path, &sb) != 0) {
            char msg[300];
            snprintf(msg, sizeof msg, "cannot stat: %s", strerror(errno));
            w->incomplete = true;
            st = push_note(w, path, msg);
        } else if (S_ISDIR(sb.st_mode)) {
            if (S_ISLNK(lsb.st_mode)) {
                st = push_note(w, path, "symbolic link to a folder: not followed");
            } else if (depth >= MAX_DEPTH) {
                st = push_note(w, path, "folders nested too deep: not entered");
            } else {
                st = walk_dir(w, path, depth + 1);
            }
        } else if (S_ISREG(sb.st_mode)) {
            if (pg__walk_is_image_name(path)) {
                st = push_path(w, path);
            } else if (strcasecmp(strrchr(path, '.') ? strrchr(path, '.') : "", ".xmp") != 0) {
                st = push_note(w, path, "not a JPEG or PNG: skipped");
            }
        }
        free(path);
    }
    closedir(d);
    return st;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

pg_status pg__walk_dirs(pg__walk *w, const char *const *dirs, size_t n_dirs)
{
    memset(w, 0, sizeof *w);
    if (!(w->roots = pg__calloc(n_dirs, sizeof *w->roots))) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "no memory for the file list");
    }
    for (size_t i = 0; i < n_dirs; i++) {
        struct stat sb;
        if (stat(dirs[i], &sb) != 0) {
            return pg__error(errno == ENOENT ? PG_ERR_NOT_FOUND : PG_ERR_IO, "%s: %s", dirs[i],
                             strerror(errno));
        }
        if (!S_ISDIR(sb.st_mode)) {
            return pg__error(PG_ERR_INVALID_ARGUMENT, "%s: not a folder", dirs[i]);
        }
        char *abs = realpath(dirs[i], NULL);
        if (!abs) {
            return pg__error(PG_ERR_IO, "%s: %s", dirs[i], strerror(errno));
        }
        w->roots[w->n_roots++] = abs;
        DIR *d = opendir(abs);
        if (!d) {
            return pg__error(PG_ERR_IO, "%s: cannot read this folder: %s", dirs[i],
                             strerror(errno));
        }
        closedir(d);
        PG__TRY(walk_dir(w, abs, 0));
    }
    qsort(w->paths, w->n_paths, sizeof *w->paths, cmp_str);
    /* The same folder given twice (or nested folders) must not list a file twice. */
    size_t k = 0;
    for (size_t i = 0; i < w->n_paths; i++) {
        if (k && !strcmp(w->paths[k - 1], w->paths[i])) {
            free(w->paths[i]);
        } else {
            w->paths[k++] = w->paths[i];
        }
    }
    w->n_paths = k;
    return PG_OK;
}

void pg__walk_free(pg__walk *w)
{
    for (size_t i = 0; i < w->n_paths; i++) {
        free(w->paths[i]);
    }
    for (size_t i = 0; i < w->n_notes; i++) {
        free(w->notes[i].path);
        free(w->notes[i].note);
    }
    for (size_t i = 0; i < w->n_roots; i++) {
        free(w->roots[i]);
    }
    free(w->paths);
    free(w->notes);
    free(w->roots);
    memset(w, 0, sizeof *w);
}
