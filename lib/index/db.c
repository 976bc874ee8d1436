/*
 * The catalogue database (docs/index-schema.md): schema version 1, WAL, prepared statements
 * and the per-image transaction. The schema text below IS the documented one; change both.
 */
#include "index/index.h"

#include "core/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char schema_v1[] =
    "CREATE TABLE files ("
    " id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, size INTEGER NOT NULL,"
    " mtime_ns INTEGER NOT NULL, hash TEXT NOT NULL, width INTEGER, height INTEGER,"
    " error TEXT, seen_at TEXT NOT NULL);"
    "CREATE INDEX files_hash ON files(hash);"
    "CREATE TABLE results ("
    " id INTEGER PRIMARY KEY, hash TEXT NOT NULL, model_variant TEXT NOT NULL,"
    " model_id TEXT NOT NULL, task TEXT NOT NULL, prompt TEXT NOT NULL, status TEXT NOT NULL,"
    " error TEXT, text TEXT, token_ids TEXT, stop_reason INTEGER, preprocess_ms REAL,"
    " vision_ms REAL, prefill_ms REAL, decode_ms REAL, prefill_tokens INTEGER,"
    " decode_tokens INTEGER, created_at TEXT NOT NULL,"
    " UNIQUE (hash, model_id, task, prompt));"
    "CREATE TABLE boxes ("
    " id INTEGER PRIMARY KEY,"
    " result_id INTEGER NOT NULL REFERENCES results(id) ON DELETE CASCADE,"
    " idx INTEGER NOT NULL, label TEXT NOT NULL,"
    " x_min REAL NOT NULL, y_min REAL NOT NULL, x_max REAL NOT NULL, y_max REAL NOT NULL,"
    " nx_min REAL NOT NULL, ny_min REAL NOT NULL, nx_max REAL NOT NULL, ny_max REAL NOT NULL,"
    " UNIQUE (result_id, idx));"
    "CREATE VIRTUAL TABLE results_fts USING fts5(text, content='results', content_rowid='id');"
    "CREATE TRIGGER results_fts_ai AFTER INSERT ON results"
    " WHEN new.status = 'ok' AND new.task = 'caption' AND new.text IS NOT NULL BEGIN"
    " INSERT INTO results_fts(rowid, text) VALUES (new.id, new.text); END;"
    "CREATE TRIGGER results_fts_ad AFTER DELETE ON results"
    " WHEN old.status = 'ok' AND old.task = 'caption' AND old.text IS NOT NULL BEGIN"
    " INSERT INTO results_fts(results_fts, rowid, text) VALUES ('delete', old.id, old.text);"
    " END;"
    "PRAGMA user_version = 1;";

/* SQLite's message, with a hint for the causes people meet (read-only file or folder). */
static pg_status sql_error(sqlite3 *db, const char *path, const char *what)
{
    int code = db ? sqlite3_extended_errcode(db) : SQLITE_NOMEM;
    const char *msg = db ? sqlite3_errmsg(db) : "out of memory";
    int prim = code & 0xff;
    if (prim == SQLITE_READONLY || prim == SQLITE_CANTOPEN || prim == SQLITE_PERM) {
        const char *hint = prim == SQLITE_CANTOPEN
                               ? "check that the folder exists and is writable"
                               : "the database or its folder is read-only (WAL needs to create "
                                 "FILE-wal and FILE-shm next to it)";
        return pg__error(PG_ERR_IO, "catalogue %s: cannot %s: %s (%s)", path, what, msg, hint);
    }
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED) {
        return pg__error(PG_ERR_IO, "catalogue %s: cannot %s: %s (another program holds a "
                         "write lock)", path, what, msg);
    }
    if (prim == SQLITE_NOTADB || prim == SQLITE_CORRUPT) {
        return pg__error(PG_ERR_FORMAT, "catalogue %s: cannot %s: %s", path, what, msg);
    }
    return pg__error(prim == SQLITE_NOMEM ? PG_ERR_OUT_OF_MEMORY : PG_ERR_IO,
                     "catalogue %s: cannot %s: %s", path, what, msg);
}

pg_status pg__db_error(const pg__db *d, const char *what)
{
    return sql_error(d->db, d->path, what);
}

static pg_status exec(sqlite3 *db, const char *path, const char *sql, const char *what)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        return sql_error(db, path, what);
    }
    return PG_OK;
}

static pg_status user_version(sqlite3 *db, const char *path, int *v)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK) {
        return sql_error(db, path, "read the schema version");
    }
    int rc = sqlite3_step(q);
    *v = rc == SQLITE_ROW ? sqlite3_column_int(q, 0) : 0;
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? PG_OK : sql_error(db, path, "read the schema version");
}

/* Whether the file holds any table (a version-0 file with tables is not ours). */
static pg_status has_tables(sqlite3 *db, const char *path, bool *any)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &q, NULL) !=
        SQLITE_OK) {
        return sql_error(db, path, "read the schema");
    }
    int rc = sqlite3_step(q);
    *any = rc == SQLITE_ROW && sqlite3_column_int(q, 0) > 0;
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? PG_OK : sql_error(db, path, "read the schema");
}

pg_status pg__db_schema(sqlite3 *db, const char *path)
{
    PG__TRY(exec(db, path, "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                 "configure the connection"));
    int v = 0;
    PG__TRY(user_version(db, path, &v));
    if (v > PG__INDEX_SCHEMA_VERSION) {
        return pg__error(PG_ERR_UNSUPPORTED,
                         "catalogue %s: schema version %d is newer than this libpaligemma "
                         "supports (%d)", path, v, PG__INDEX_SCHEMA_VERSION);
    }
    if (v == 0) {
        bool any = false;
        PG__TRY(has_tables(db, path, &any));
        if (any) {
            return pg__error(PG_ERR_FORMAT, "catalogue %s: this SQLite file holds other "
                             "tables and is not a pg index catalogue", path);
        }
        /* journal_mode cannot change inside a transaction: set it first (it persists). */
        PG__TRY(exec(db, path, "PRAGMA journal_mode = WAL", "switch to WAL"));
        PG__TRY(exec(db, path, "BEGIN IMMEDIATE", "create the schema"));
        pg_status st = exec(db, path, schema_v1, "create the schema");
        if (st != PG_OK) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return st;
        }
        PG__TRY(exec(db, path, "COMMIT", "create the schema"));
    }
    /* Migrations from version 1 to later ones go here, one transaction each (additive). */
    return exec(db, path, "PRAGMA synchronous = NORMAL", "configure the connection");
}

static pg_status prepare(pg__db *d, sqlite3_stmt **q, const char *sql)
{
    if (sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, q, NULL) != SQLITE_OK) {
        return pg__db_error(d, "prepare a statement");
    }
    return PG_OK;
}

pg_status pg__db_open(pg__db *d, const char *path)
{
    memset(d, 0, sizeof *d);
    if (!(d->path = pg__strdup(path))) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
    }
    int rc = sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        return pg__db_error(d, "open");
    }
    /* A read-only file opens "read-write" and fails only at the first write: ask now. */
    if (sqlite3_db_readonly(d->db, "main") == 1 ||
        (access(path, F_OK) == 0 && access(path, W_OK) != 0)) {
        return pg__error(PG_ERR_IO, "catalogue %s: cannot write: the database file is "
                         "read-only", path);
    }
    PG__TRY(pg__db_schema(d->db, path));
    PG__TRY(prepare(d, &d->file_get,
                    "SELECT size, mtime_ns, hash FROM files WHERE path = ?1"));
    PG__TRY(prepare(d, &d->file_put,
                    "INSERT INTO files (path, size, mtime_ns, hash, width, height, error, seen_at)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (path) DO UPDATE SET"
                    " size = ?2, mtime_ns = ?3, hash = ?4, width = ?5, height = ?6, error = ?7,"
                    " seen_at = ?8"));
    PG__TRY(prepare(d, &d->result_has,
                    "SELECT status FROM results WHERE hash = ?1 AND model_id = ?2 AND task = ?3"
                    " AND prompt = ?4"));
    PG__TRY(prepare(d, &d->result_del,
                    "DELETE FROM results WHERE hash = ?1 AND model_id = ?2 AND task = ?3"
                    " AND prompt = ?4"));
    PG__TRY(prepare(d, &d->result_put,
                    "INSERT OR IGNORE INTO results (hash, model_variant, model_id, task, prompt,"
                    " status, error, text, token_ids, stop_reason, preprocess_ms, vision_ms,"
                    " prefill_ms, decode_ms, prefill_tokens, decode_tokens, created_at) VALUES"
                    " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
                    " ?17)"));
    PG__TRY(prepare(d, &d->box_put,
                    "INSERT INTO boxes (result_id, idx, label, x_min, y_min, x_max, y_max,"
                    " nx_min, ny_min, nx_max, ny_max) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                    " ?9, ?10, ?11)"));
    return PG_OK;
}

void pg__db_close(pg__db *d)
{
    sqlite3_finalize(d->file_get);
    sqlite3_finalize(d->file_put);
    sqlite3_finalize(d->result_has);
    sqlite3_finalize(d->result_del);
    sqlite3_finalize(d->result_put);
    sqlite3_finalize(d->box_put);
    sqlite3_close(d->db);
    free(d->path);
    memset(d, 0, sizeof *d);
}

pg_status pg__db_begin(pg__db *d)
{
    return exec(d->db, d->path, "BEGIN IMMEDIATE", "start a transaction");
}

pg_status pg__db_commit(pg__db *d)
{
    return exec(d->db, d->path, "COMMIT", "commit");
}

void pg__db_rollback(pg__db *d)
{
    if (!sqlite3_get_autocommit(d->db)) {
        sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
    }
}

/* Runs a bound statement that returns no rows, then resets it. */
static pg_status run(pg__db *d, sqlite3_stmt *q, const char *what)
{
    int rc = sqlite3_step(q);
    pg_status st = rc == SQLITE_DONE ? PG_OK : pg__db_error(d, what);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return st;
}

static void now_iso(char buf[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

pg_status pg__db_file_get(pg__db *d, const char *path, bool *found, int64_t *size,
                          int64_t *mtime_ns, char hash[PG__HEX128])
{
    sqlite3_stmt *q = d->file_get;
    sqlite3_bind_text(q, 1, path, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    *found = rc == SQLITE_ROW;
    if (*found) {
        *size = sqlite3_column_int64(q, 0);
        *mtime_ns = sqlite3_column_int64(q, 1);
        const unsigned char *h = sqlite3_column_text(q, 2);
        snprintf(hash, PG__HEX128, "%s", h ? (const char *)h : "");
    }
    pg_status st = rc == SQLITE_ROW || rc == SQLITE_DONE ? PG_OK : pg__db_error(d, "read");
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return st;
}

pg_status pg__db_file_put(pg__db *d, const pg__file_row *f)
{
    sqlite3_stmt *q = d->file_put;
    char now[32];
    now_iso(now);
    sqlite3_bind_text(q, 1, f->path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, f->size);
    sqlite3_bind_int64(q, 3, f->mtime_ns);
    sqlite3_bind_text(q, 4, f->hash, -1, SQLITE_STATIC);
    if (f->width > 0 && f->height > 0) {
        sqlite3_bind_int64(q, 5, f->width);
        sqlite3_bind_int64(q, 6, f->height);
    }
    if (f->error) {
        sqlite3_bind_text(q, 7, f->error, -1, SQLITE_STATIC);
    }
    sqlite3_bind_text(q, 8, now, -1, SQLITE_TRANSIENT);
    return run(d, q, "write a files row");
}

static void bind_key(sqlite3_stmt *q, const char *hash, const char *model_id, const char *task,
                     const char *prompt)
{
    sqlite3_bind_text(q, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, model_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, task, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, prompt, -1, SQLITE_STATIC);
}

pg_status pg__db_result_state(pg__db *d, const char *hash, const char *model_id,
                              const char *task, const char *prompt, int *state)
{
    sqlite3_stmt *q = d->result_has;
    bind_key(q, hash, model_id, task, prompt);
    int rc = sqlite3_step(q);
    *state = 0;
    if (rc == SQLITE_ROW) {
        const unsigned char *s = sqlite3_column_text(q, 0);
        *state = s && !strcmp((const char *)s, "ok") ? 1 : 2;
    }
    pg_status st = rc == SQLITE_ROW || rc == SQLITE_DONE ? PG_OK : pg__db_error(d, "read");
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return st;
}

pg_status pg__db_result_delete(pg__db *d, const char *hash, const char *model_id,
                               const char *task, const char *prompt)
{
    bind_key(d->result_del, hash, model_id, task, prompt);
    return run(d, d->result_del, "delete a result");
}

/* "[1,2,3]" (malloc'd). */
static char *ids_json(const int32_t *ids, size_t n)
{
    char *s = pg__malloc(n * 12 + 3);
    if (!s) {
        return NULL;
    }
    size_t k = 0;
    s[k++] = '[';
    for (size_t i = 0; i < n; i++) {
        k += (size_t)sprintf(s + k, i ? ",%d" : "%d", (int)ids[i]);
    }
    s[k++] = ']';
    s[k] = '\0';
    return s;
}

pg_status pg__db_result_put(pg__db *d, const pg__result_row *r, int64_t *result_id)
{
    sqlite3_stmt *q = d->result_put;
    char now[32];
    now_iso(now);
    char *ids = r->error ? NULL : ids_json(r->ids, r->n_ids);
    if (!r->error && !ids) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
    }
    bind_key(q, r->hash, r->model_id, r->task, r->prompt);
    /* bind_key's order is hash, model_id, task, prompt = ?1..?4; the insert wants the
     * variant second, so rebind 2..5 in the insert's order. */
    sqlite3_bind_text(q, 2, r->model_variant, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, r->model_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, r->task, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, r->prompt, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 6, r->error ? "error" : "ok", -1, SQLITE_STATIC);
    if (r->error) {
        sqlite3_bind_text(q, 7, r->error, -1, SQLITE_STATIC);
    } else {
        const pg_timings *t = &r->timings;
        sqlite3_bind_text(q, 8, r->text ? r->text : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 9, ids, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 10, r->stop_reason);
        sqlite3_bind_double(q, 11, t->preprocess_ms);
        sqlite3_bind_double(q, 12, t->vision_ms);
        sqlite3_bind_double(q, 13, t->prefill_ms);
        sqlite3_bind_double(q, 14, t->decode_ms);
        sqlite3_bind_int64(q, 15, t->prefill_tokens);
        sqlite3_bind_int64(q, 16, t->decode_tokens);
    }
    sqlite3_bind_text(q, 17, now, -1, SQLITE_TRANSIENT);
    pg_status st = run(d, q, "write a results row");
    *result_id = st == PG_OK && sqlite3_changes(d->db) == 1 ? sqlite3_last_insert_rowid(d->db)
                                                            : 0;
    free(ids);
    return st;
}

pg_status pg__db_box_put(pg__db *d, int64_t result_id, int idx, const char *label,
                         const float px[4], const float norm[4])
{
    sqlite3_stmt *q = d->box_put;
    sqlite3_bind_int64(q, 1, result_id);
    sqlite3_bind_int(q, 2, idx);
    sqlite3_bind_text(q, 3, label, -1, SQLITE_STATIC);
    for (int i = 0; i < 4; i++) {
        sqlite3_bind_double(q, 4 + i, px[i]);
        sqlite3_bind_double(q, 8 + i, norm[i]);
    }
    return run(d, q, "write a boxes row");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

pg_status pg__db_prune(pg__db *d, const char *root, char *const *keep, size_t n_keep)
{
    sqlite3_stmt *sel = NULL, *del = NULL;
    if (sqlite3_prepare_v2(d->db, "SELECT id, path FROM files WHERE substr(path, 1, ?2) = ?1",
                           -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(d->db, "DELETE FROM files WHERE id = ?1", -1, &del, NULL) !=
            SQLITE_OK) {
        sqlite3_finalize(sel);
        return pg__db_error(d, "prepare a statement");
    }
    char *prefix = pg__malloc(strlen(root) + 2);
    pg_status st = prefix ? PG_OK : pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
    if (st == PG_OK) {
        sprintf(prefix, "%s/", strcmp(root, "/") ? root : "");
        sqlite3_bind_text(sel, 1, prefix, -1, SQLITE_STATIC);
        sqlite3_bind_int(sel, 2, (int)strlen(prefix));
        st = pg__db_begin(d);
    }
    int rc = SQLITE_DONE;
    while (st == PG_OK && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
        const char *path = (const char *)sqlite3_column_text(sel, 1);
        if (path && !bsearch(&path, keep, n_keep, sizeof *keep, cmp_str)) {
            sqlite3_bind_int64(del, 1, sqlite3_column_int64(sel, 0));
            st = run(d, del, "delete a vanished file");
        }
    }
    if (st == PG_OK && rc != SQLITE_DONE) {
        st = pg__db_error(d, "read");
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(del);
    free(prefix);
    if (st == PG_OK) {
        return pg__db_commit(d);
    }
    pg__db_rollback(d);
    return st;
}

PG_API pg_status pg_index_db_init(const char *db_path)
{
    if (!db_path || !db_path[0]) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_index_db_init: no database path");
    }
    pg__error_clear();
    pg__db d;
    pg_status st = pg__db_open(&d, db_path);
    pg__db_close(&d);
    return st;
}
