/*
 * pg_index_search: FTS5 over the captions (results_fts, docs/index-schema.md). The query's
 * words are each quoted (so FTS5 syntax characters in them are plain text) and joined by OR:
 * a file matches when its caption holds any word, and bm25 ranks those holding more / rarer
 * words first. Read-only connection: works while pg_index_run writes (WAL).
 */
#include "index/index.h"

#include "core/core.h"

#include <stdlib.h>
#include <string.h>

/* "dog on" -> "\"dog\" OR \"on\"" (malloc'd); NULL when no words (or no memory: *oom). */
static char *fts_query(const char *q, bool *oom)
{
    size_t n = strlen(q);
    char *out = pg__malloc(3 * n + 8 * (n / 2 + 1) + 1);
    *oom = out == NULL;
    if (!out) {
        return NULL;
    }
    size_t k = 0;
    bool any = false;
    for (size_t i = 0; i < n;) {
        while (i < n && (q[i] == ' ' || q[i] == '\t' || q[i] == '\n')) {
            i++;
        }
        if (i == n) {
            break;
        }
        if (any) {
            memcpy(out + k, " OR ", 4);
            k += 4;
        }
        out[k++] = '"';
        while (i < n && q[i] != ' ' && q[i] != '\t' && q[i] != '\n') {
            if (q[i] == '"') {
                out[k++] = '"';
            }
            out[k++] = q[i++];
        }
        out[k++] = '"';
        any = true;
    }
    out[k] = '\0';
    if (!any) {
        free(out);
        return NULL;
    }
    return out;
}

PG_API pg_status pg_index_search(const char *db_path, const char *query, uint32_t limit,
                                 pg_index_hit_fn fn, void *user)
{
    if (!db_path || !query || !fn) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "pg_index_search: database path, query and callback are needed");
    }
    pg__error_clear();
    bool oom = false;
    char *match = fts_query(query, &oom);
    if (!match) {
        return oom ? pg__error(PG_ERR_OUT_OF_MEMORY, "no memory")
                   : pg__error(PG_ERR_INVALID_ARGUMENT, "pg_index_search: the query has no words");
    }
    pg__db d;
    memset(&d, 0, sizeof d);
    d.path = (char *)db_path;
    pg_status st = PG_OK;
    if (sqlite3_open_v2(db_path, &d.db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        st = pg__db_error(&d, "open");
    }
    int v = 0;
    sqlite3_stmt *q = NULL;
    if (st == PG_OK) {
        sqlite3_busy_timeout(d.db, 5000);
        if (sqlite3_prepare_v2(d.db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK ||
            sqlite3_step(q) != SQLITE_ROW) {
            st = pg__db_error(&d, "read the schema version");
        } else if ((v = sqlite3_column_int(q, 0)) < 1) {
            st = pg__error(PG_ERR_FORMAT, "catalogue %s: not a pg index catalogue (schema "
                           "version 0)", db_path);
        }
        sqlite3_finalize(q);
        q = NULL;
    }
    if (st == PG_OK &&
        sqlite3_prepare_v2(d.db,
                           /* bm25() is not allowed inside an aggregate: rank first, then
                            * keep each path's best row (SQLite's bare columns with min()). */
                           "WITH hits AS MATERIALIZED"
                           " (SELECT f.path AS path, r.text AS text, bm25(results_fts) AS score"
                           "  FROM results_fts JOIN results r ON r.id = results_fts.rowid"
                           "  JOIN files f ON f.hash = r.hash WHERE results_fts MATCH ?1)"
                           " SELECT path, text, min(score) AS best FROM hits"
                           " GROUP BY path ORDER BY best, path LIMIT ?2",
                           -1, &q, NULL) != SQLITE_OK) {
        st = pg__db_error(&d, "search");
    }
    if (st == PG_OK) {
        sqlite3_bind_text(q, 1, match, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, limit ? limit : 20);
        int rc;
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
            const char *path = (const char *)sqlite3_column_text(q, 0);
            const char *text = (const char *)sqlite3_column_text(q, 1);
            if (fn(user, path ? path : "", text ? text : "", sqlite3_column_double(q, 2))) {
                break;
            }
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            st = pg__db_error(&d, "search");
        }
    }
    sqlite3_finalize(q);
    sqlite3_close(d.db);
    free(match);
    return st;
}
