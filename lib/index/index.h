/*
 * index: the photo catalogue behind pg_index_run / pg_index_search (docs/index-schema.md).
 *
 *   walk.c   the folders -> a sorted list of JPEG/PNG paths (others and unreadable folders
 *            become notes)
 *   hash.c   XXH3-128 of a file's bytes; the model's weights identity
 *   tasks.c  "caption,detect:a ; b" -> tasks with their prompts
 *   db.c     the schema (create / migrate), prepared statements, one transaction per image
 *   run.c    pg_index_run: files -> sessions in a pg_batch -> rows
 *   xmp.c    NAME.EXT.xmp sidecars through exempi
 *   search.c pg_index_search over the FTS5 table
 */
#ifndef PG_INDEX_H
#define PG_INDEX_H

#include "paligemma.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PG__INDEX_SCHEMA_VERSION 1
#define PG__HEX128 33 /* 32 hex digits + NUL */

/* ---- walk.c ---- */
typedef struct pg__walk_note {
    char *path;
    char *note;
} pg__walk_note;

typedef struct pg__walk {
    char **paths;          /* absolute, sorted */
    size_t n_paths, cap_paths;
    pg__walk_note *notes;  /* skipped files, unreadable folders */
    size_t n_notes, cap_notes;
    char **roots;          /* the walked folders, absolute (for pruning vanished files) */
    size_t n_roots;
    bool incomplete;       /* some folder or entry could not be read: prune nothing */
} pg__walk;

/* Walks every folder. PG_ERR_NOT_FOUND / PG_ERR_IO when a top folder does not exist or is not
 * a folder or cannot be read; unreadable subfolders are notes. */
pg_status pg__walk_dirs(pg__walk *w, const char *const *dirs, size_t n_dirs);
void pg__walk_free(pg__walk *w);
/* Whether `path` names a JPEG or PNG by its extension. */
bool pg__walk_is_image_name(const char *path);

/* ---- hash.c ---- */
/* XXH3-128 of the file at `path` (canonical hex). PG_ERR_IO with the reason. */
pg_status pg__hash_file(const char *path, char hex[PG__HEX128]);
pg_status pg__model_id(const pg_model *model, char hex[PG__HEX128]);

/* ---- tasks.c ---- */
typedef struct pg__task {
    char *name;    /* "caption", "detect", "segment" */
    char *prompt;  /* the text given to the model */
} pg__task;

pg_status pg__tasks_parse(const char *spec, const char *caption_prompt, pg__task **out,
                          size_t *n_out);
void pg__tasks_free(pg__task *t, size_t n);

/* ---- db.c ---- */
typedef struct pg__db {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *file_get;     /* path -> size, mtime_ns, hash */
    sqlite3_stmt *file_put;     /* upsert by path */
    sqlite3_stmt *result_has;   /* (hash, model_id, task, prompt) -> status */
    sqlite3_stmt *result_del;   /* delete by key */
    sqlite3_stmt *result_put;
    sqlite3_stmt *box_put;
} pg__db;

/* Opens (creating if needed) and migrates; read-write. Errors name the file and the cause. */
pg_status pg__db_open(pg__db *d, const char *path);
void pg__db_close(pg__db *d);
pg_status pg__db_begin(pg__db *d);
pg_status pg__db_commit(pg__db *d);
void pg__db_rollback(pg__db *d);
/* Error status from the connection's last error, prefixed by `what`. */
pg_status pg__db_error(const pg__db *d, const char *what);

/* A row of files, as found. */
typedef struct pg__file_row {
    const char *path;
    int64_t size, mtime_ns;
    char hash[PG__HEX128];
    int64_t width, height;   /* <= 0: NULL */
    const char *error;       /* NULL: none */
} pg__file_row;

/* Looks up `path`: *found false when absent; else size/mtime/hash filled. */
pg_status pg__db_file_get(pg__db *d, const char *path, bool *found, int64_t *size,
                          int64_t *mtime_ns, char hash[PG__HEX128]);
pg_status pg__db_file_put(pg__db *d, const pg__file_row *f);
/* 0: no result; 1: an ok result; 2: an error result. */
pg_status pg__db_result_state(pg__db *d, const char *hash, const char *model_id,
                              const char *task, const char *prompt, int *state);
pg_status pg__db_result_delete(pg__db *d, const char *hash, const char *model_id,
                               const char *task, const char *prompt);

typedef struct pg__result_row {
    const char *hash, *model_variant, *model_id, *task, *prompt;
    const char *error;          /* NULL: status ok */
    const char *text;
    const int32_t *ids;
    size_t n_ids;
    int32_t stop_reason;
    pg_timings timings;
} pg__result_row;

/* Inserts (OR IGNORE); *result_id = 0 when the key existed already. */
pg_status pg__db_result_put(pg__db *d, const pg__result_row *r, int64_t *result_id);
pg_status pg__db_box_put(pg__db *d, int64_t result_id, int idx, const char *label,
                         const float px[4], const float norm[4]);
/* Deletes files rows under `root` whose path is not in the sorted `keep` list. */
pg_status pg__db_prune(pg__db *d, const char *root, char *const *keep, size_t n_keep);
/* Applies PRAGMAs and the schema to an open connection (used by pg__db_open). */
pg_status pg__db_schema(sqlite3 *db, const char *path);

/* ---- xmp.c ---- */
typedef struct pg__xmp_region {
    const char *label;
    float nx, ny, nw, nh;   /* relative to the image, 0..1 */
} pg__xmp_region;

/* Writes / updates `image_path`.xmp: description, subjects, regions (keeps every other
 * property of an existing sidecar). PG_ERR_IO / PG_ERR_FORMAT with a message. */
pg_status pg__xmp_write(const char *image_path, const char *description,
                        const char *const *subjects, size_t n_subjects,
                        const pg__xmp_region *regions, size_t n_regions);

#endif
