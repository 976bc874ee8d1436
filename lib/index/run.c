/*
 * pg_index_run: the folder walk's files go through a pg_batch, one image per session.
 *
 * Before any model work a file is stat'ed, hashed (unless its size and mtime match its row)
 * and its resume keys looked up (docs/index-schema.md); only the tasks without a result run.
 * An image's tasks run one after another on the same session, so the vision tower runs once
 * (the session's encoded-image cache). When its last task finishes the image is written in ONE
 * transaction (files row, results, boxes), then its XMP sidecar: a crash loses only images
 * in flight. Width + 1 sessions circulate so the batch can prefill one image while `width`
 * others decode (docs/batch.md).
 */
#include "index/index.h"

#include "core/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_WIDTH 64u
#define MAX_TASKS 16u

typedef struct task_out {
    char *text;
    int32_t *ids;
    size_t n_ids;
    int32_t stop;
    pg_timings timings;
    char *error;
} task_out;

typedef struct slot {
    pg_session *s;
    bool busy;
    pg__file_row row;
    char *path;
    uint32_t todo[MAX_TASKS];  /* task indices still to run, in order */
    uint32_t n_todo, next;     /* next: the one in the batch now */
    task_out out[MAX_TASKS];   /* by task index */
} slot;

typedef struct indexer {
    pg_model *model;
    const pg_index_options *o;
    pg_index_stats *stats;
    pg__walk walk;
    pg__task *tasks;
    size_t n_tasks;
    pg__db db;
    char model_id[PG__HEX128];
    const char *variant;
    pg_batch *batch;
    pg_generate_options go;
    slot slots[MAX_WIDTH + 1];
    uint32_t n_slots;
    size_t next_file;
    double t0;
    bool cancelled;
} indexer;

static void notify(indexer *x, const char *path, const char *note)
{
    x->stats->elapsed_ms = pg__now_ms() - x->t0;
    if (x->o->progress_fn && x->o->progress_fn(x->o->progress_user, x->stats, path, note)) {
        x->cancelled = true;
    }
}

static void slot_clear(slot *sl)
{
    for (uint32_t i = 0; i < MAX_TASKS; i++) {
        free(sl->out[i].text);
        free(sl->out[i].ids);
        free(sl->out[i].error);
    }
    memset(sl->out, 0, sizeof sl->out);
    sl->busy = false;
    sl->n_todo = sl->next = 0;
    sl->path = NULL;
    memset(&sl->row, 0, sizeof sl->row);
}

/* ---- XMP: the sidecar mirrors this model's results for the file's content ---- */

typedef struct xmp_data {
    char *description;
    char **subjects;
    size_t n_subjects;
    pg__xmp_region *regions;
    size_t n_regions;
} xmp_data;

static void xmp_data_free(xmp_data *x)
{
    free(x->description);
    for (size_t i = 0; i < x->n_subjects; i++) {
        free(x->subjects[i]);
    }
    for (size_t i = 0; i < x->n_regions; i++) {
        free((char *)x->regions[i].label);
    }
    free(x->subjects);
    free(x->regions);
}

static pg_status xmp_add_box(xmp_data *x, sqlite3_stmt *q)
{
    const char *label = (const char *)sqlite3_column_text(q, 0);
    label = label ? label : "";
    pg__xmp_region *r = pg__realloc(x->regions, (x->n_regions + 1) * sizeof *r);
    if (!r) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
    }
    x->regions = r;
    r += x->n_regions;
    r->nx = (float)sqlite3_column_double(q, 1);
    r->ny = (float)sqlite3_column_double(q, 2);
    r->nw = (float)sqlite3_column_double(q, 3) - r->nx;
    r->nh = (float)sqlite3_column_double(q, 4) - r->ny;
    if (!(r->label = pg__strdup(label))) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
    }
    x->n_regions++;
    for (size_t i = 0; i < x->n_subjects; i++) {
        if (!strcmp(x->subjects[i], label)) {
            return PG_OK;
        }
    }
    char **s = label[0] ? pg__realloc(x->subjects, (x->n_subjects + 1) * sizeof *s) : NULL;
    if (label[0] && (!s || !(s[x->n_subjects] = pg__strdup(label)))) {
        if (s) {
            x->subjects = s;
        }
        return pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
    }
    if (s) {
        x->subjects = s;
        x->n_subjects++;
    }
    return PG_OK;
}

static pg_status xmp_gather(indexer *x, const char *hash, xmp_data *out)
{
    sqlite3 *db = x->db.db;
    sqlite3_stmt *q = NULL;
    pg_status st = PG_OK;
    /* The caption of the first caption task that has one. */
    for (size_t t = 0; t < x->n_tasks && !out->description; t++) {
        if (strcmp(x->tasks[t].name, "caption")) {
            continue;
        }
        if (sqlite3_prepare_v2(db, "SELECT text FROM results WHERE hash = ?1 AND model_id = ?2"
                               " AND task = 'caption' AND prompt = ?3 AND status = 'ok'", -1,
                               &q, NULL) != SQLITE_OK) {
            return pg__db_error(&x->db, "read results");
        }
        sqlite3_bind_text(q, 1, hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, x->model_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, x->tasks[t].prompt, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0)) {
            out->description = pg__strdup((const char *)sqlite3_column_text(q, 0));
        }
        sqlite3_finalize(q);
    }
    if (sqlite3_prepare_v2(db, "SELECT b.label, b.nx_min, b.ny_min, b.nx_max, b.ny_max FROM"
                           " boxes b JOIN results r ON r.id = b.result_id WHERE r.hash = ?1"
                           " AND r.model_id = ?2 AND r.status = 'ok' ORDER BY r.id, b.idx",
                           -1, &q, NULL) != SQLITE_OK) {
        return pg__db_error(&x->db, "read boxes");
    }
    sqlite3_bind_text(q, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, x->model_id, -1, SQLITE_STATIC);
    while (st == PG_OK && sqlite3_step(q) == SQLITE_ROW) {
        st = xmp_add_box(out, q);
    }
    sqlite3_finalize(q);
    return st;
}

/* A sidecar problem is a note, never a failed run: the catalogue holds the results. */
static void write_sidecar(indexer *x, const char *path, const char *hash, bool only_if_missing)
{
    if (!(x->o->flags & PG_INDEX_XMP)) {
        return;
    }
    if (only_if_missing) {
        char *side = pg__malloc(strlen(path) + 5);
        struct stat sb;
        bool have = side && (sprintf(side, "%s.xmp", path), stat(side, &sb) == 0);
        free(side);
        if (have) {
            return;
        }
    }
    xmp_data d;
    memset(&d, 0, sizeof d);
    pg_status st = xmp_gather(x, hash, &d);
    if (st == PG_OK) {
        st = pg__xmp_write(path, d.description, (const char *const *)d.subjects, d.n_subjects,
                           d.regions, d.n_regions);
    }
    xmp_data_free(&d);
    if (st != PG_OK) {
        notify(x, path, pg__error_message());
    }
}

/* ---- rows ---- */

static pg_status put_boxes(indexer *x, int64_t result_id, const task_out *o, uint32_t w,
                           uint32_t h)
{
    pg_detections *det = NULL;
    PG__TRY(pg_detections_parse(&det, o->text, strlen(o->text), w, h));
    pg_status st = PG_OK;
    for (size_t i = 0; st == PG_OK && i < pg_detections_count(det); i++) {
        pg_detection_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        if ((st = pg_detections_get(det, i, &info)) != PG_OK) {
            break;
        }
        const float px[4] = { info.x_min, info.y_min, info.x_max, info.y_max };
        const float norm[4] = { info.x_min / (float)w, info.y_min / (float)h,
                                info.x_max / (float)w, info.y_max / (float)h };
        st = pg__db_box_put(&x->db, result_id, (int)i, info.label, px, norm);
    }
    pg_detections_free(det);
    return st;
}

/* Writes the file row and the results of tasks todo[0..n) (outputs in out[task]). */
static pg_status write_image(indexer *x, const pg__file_row *row, const uint32_t *todo,
                             uint32_t n, const task_out *out)
{
    PG__TRY(pg__db_begin(&x->db));
    pg_status st = pg__db_file_put(&x->db, row);
    for (uint32_t k = 0; st == PG_OK && k < n; k++) {
        const pg__task *t = &x->tasks[todo[k]];
        const task_out *o = &out[todo[k]];
        /* --rescan redoes error results: the old row goes in the same transaction. */
        st = pg__db_result_delete(&x->db, row->hash, x->model_id, t->name, t->prompt);
        pg__result_row r = { .hash = row->hash, .model_variant = x->variant,
                             .model_id = x->model_id, .task = t->name, .prompt = t->prompt,
                             .error = o->error, .text = o->text, .ids = o->ids,
                             .n_ids = o->n_ids, .stop_reason = o->stop,
                             .timings = o->timings };
        int64_t id = 0;
        if (st == PG_OK) {
            st = pg__db_result_put(&x->db, &r, &id);
        }
        if (st == PG_OK && id) {
            x->stats->results_written++;
            if (!o->error && strcmp(t->name, "caption")) {
                st = put_boxes(x, id, o, (uint32_t)row->width, (uint32_t)row->height);
            }
        }
    }
    if (st == PG_OK) {
        st = pg__db_commit(&x->db);
    }
    if (st != PG_OK) {
        pg__db_rollback(&x->db);
    }
    return st;
}

/* ---- one file: what is left to do ---- */

static pg_status dims_by_hash(indexer *x, const char *hash, int64_t *w, int64_t *h)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(x->db.db, "SELECT width, height FROM files WHERE hash = ?1 AND"
                           " width IS NOT NULL LIMIT 1", -1, &q, NULL) != SQLITE_OK) {
        return pg__db_error(&x->db, "read files");
    }
    sqlite3_bind_text(q, 1, hash, -1, SQLITE_STATIC);
    *w = *h = 0;
    if (sqlite3_step(q) == SQLITE_ROW) {
        *w = sqlite3_column_int64(q, 0);
        *h = sqlite3_column_int64(q, 1);
    }
    sqlite3_finalize(q);
    return PG_OK;
}

/* Fills sl->row (size, mtime, hash) and sl->todo. *readable false: a note was given. */
static pg_status plan_file(indexer *x, slot *sl, const char *path, bool *readable)
{
    struct stat sb;
    *readable = false;
    if (stat(path, &sb) != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "cannot stat: %s", strerror(errno));
        notify(x, path, msg);
        return PG_OK;
    }
    pg__file_row *row = &sl->row;
    row->path = path;
    row->size = (int64_t)sb.st_size;
    row->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    bool found = false;
    int64_t size = 0, mtime = 0;
    PG__TRY(pg__db_file_get(&x->db, path, &found, &size, &mtime, row->hash));
    if (!found || size != row->size || mtime != row->mtime_ns || !row->hash[0] ||
        (x->o->flags & PG_INDEX_RESCAN)) {
        if (pg__hash_file(path, row->hash) != PG_OK) {
            notify(x, path, pg__error_message());
            return PG_OK;
        }
    }
    *readable = true;
    sl->n_todo = 0;
    for (uint32_t t = 0; t < x->n_tasks; t++) {
        int state = 0;
        PG__TRY(pg__db_result_state(&x->db, row->hash, x->model_id, x->tasks[t].name,
                                    x->tasks[t].prompt, &state));
        if (state == 0 || (state == 2 && (x->o->flags & PG_INDEX_RESCAN))) {
            sl->todo[sl->n_todo++] = t;
        }
    }
    return PG_OK;
}

static void finish_file(indexer *x, const char *path, uint64_t *counter, const char *note)
{
    (*counter)++;
    x->stats->files_done++;
    notify(x, path, note);
}

/* Every task got an error `msg` (the image did not decode). */
static pg_status fail_image(indexer *x, slot *sl, const char *msg)
{
    for (uint32_t k = 0; k < sl->n_todo; k++) {
        free(sl->out[sl->todo[k]].error);
        if (!(sl->out[sl->todo[k]].error = pg__strdup(msg))) {
            return pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
        }
    }
    /* msg may be this thread's error buffer: from here on use the slot's copy. */
    const char *kept = sl->out[sl->todo[0]].error;
    sl->row.error = kept;
    sl->row.width = sl->row.height = 0;
    pg_status st = write_image(x, &sl->row, sl->todo, sl->n_todo, sl->out);
    if (st == PG_OK) {
        finish_file(x, sl->path, &x->stats->files_failed, kept);
    }
    return st;
}

static pg_status start_task(indexer *x, slot *sl)
{
    const pg__task *t = &x->tasks[sl->todo[sl->next]];
    pg_status st = pg_session_set_prompt(sl->s, t->prompt, strlen(t->prompt));
    if (st == PG_OK) {
        st = pg_batch_add(x->batch, sl->s, &x->go);
    }
    return st;
}

/* Takes the next file into `sl`: either done at once (nothing to run, unreadable, corrupt)
 * or its image set and first task in the batch (sl->busy). */
static pg_status feed_one(indexer *x, slot *sl)
{
    slot_clear(sl);
    sl->path = x->walk.paths[x->next_file++];
    bool readable = false;
    PG__TRY(plan_file(x, sl, sl->path, &readable));
    if (!readable) {
        x->stats->files_failed++;
        x->stats->files_done++;
        return PG_OK;
    }
    if (sl->n_todo == 0) {
        PG__TRY(dims_by_hash(x, sl->row.hash, &sl->row.width, &sl->row.height));
        PG__TRY(write_image(x, &sl->row, NULL, 0, NULL));
        write_sidecar(x, sl->path, sl->row.hash, true);
        finish_file(x, sl->path, &x->stats->files_skipped, NULL);
        return PG_OK;
    }
    pg_image *img = NULL;
    if (pg_image_load_file(&img, sl->path, NULL) != PG_OK) {
        return fail_image(x, sl, pg__error_message());
    }
    sl->row.width = pg_image_width(img);
    sl->row.height = pg_image_height(img);
    pg_status st = pg_session_set_image(sl->s, img);
    pg_image_free(img);
    if (st == PG_OK && (st = start_task(x, sl)) == PG_OK) {
        sl->busy = true;
        return PG_OK;
    }
    if (st == PG_ERR_OUT_OF_MEMORY) {
        return st;
    }
    return fail_image(x, sl, pg_session_last_error(sl->s)[0] ? pg_session_last_error(sl->s)
                                                             : pg__error_message());
}

static pg_status fill(indexer *x)
{
    for (uint32_t k = 0; k < x->n_slots && !x->cancelled; k++) {
        while (!x->slots[k].busy && x->next_file < x->walk.n_paths && !x->cancelled) {
            PG__TRY(feed_one(x, &x->slots[k]));
        }
    }
    return PG_OK;
}

static pg_status keep_output(slot *sl, pg_status result, task_out *o)
{
    if (result != PG_OK) {
        const char *msg = pg_session_last_error(sl->s);
        o->error = pg__strdup(msg[0] ? msg : pg_status_string(result));
        return o->error ? PG_OK : pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
    }
    size_t len = 0, n = 0;
    const char *text = pg_session_text(sl->s, &len);
    const int32_t *ids = pg_session_output_ids(sl->s, &n);
    o->text = pg__strndup(text ? text : "", text ? len : 0);
    o->ids = pg__malloc_array(n ? n : 1, sizeof *ids);
    if (!o->text || !o->ids) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
    }
    memcpy(o->ids, ids, n * sizeof *ids);
    o->n_ids = n;
    o->stop = pg_session_stop_reason(sl->s);
    o->timings.struct_size = sizeof o->timings;
    return pg_session_get_timings(sl->s, &o->timings);
}

static slot *slot_of(indexer *x, const pg_session *s)
{
    for (uint32_t k = 0; k < x->n_slots; k++) {
        if (x->slots[k].s == s) {
            return &x->slots[k];
        }
    }
    return NULL;
}

/* Takes every finished session: its next task goes in, or the image is written. */
static pg_status collect(indexer *x)
{
    pg_session *s = NULL;
    pg_status result = PG_OK;
    while (pg_batch_take_finished(x->batch, 0, &s, &result) == PG_OK && s) {
        slot *sl = slot_of(x, s);
        if (!sl || !sl->busy) {
            continue;
        }
        PG__TRY(keep_output(sl, result, &sl->out[sl->todo[sl->next]]));
        while (++sl->next < sl->n_todo) {
            if (start_task(x, sl) == PG_OK) {
                break;
            }
            task_out *o = &sl->out[sl->todo[sl->next]];
            if (!(o->error = pg__strdup(pg__error_message()))) {
                return pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
            }
        }
        if (sl->next < sl->n_todo) {
            continue;
        }
        PG__TRY(write_image(x, &sl->row, sl->todo, sl->n_todo, sl->out));
        write_sidecar(x, sl->path, sl->row.hash, false);
        finish_file(x, sl->path, &x->stats->files_indexed, NULL);
        slot_clear(sl);
    }
    return PG_OK;
}

static bool any_busy(const indexer *x)
{
    for (uint32_t k = 0; k < x->n_slots; k++) {
        if (x->slots[k].busy) {
            return true;
        }
    }
    return false;
}

/* ---- set-up ---- */

static pg_status read_options(pg_index_options *o, const pg_index_options *user)
{
    pg_index_options_init(o, sizeof *o);
    if (user) {
        PG__TRY(pg__check_struct_size(user, sizeof *user, sizeof *user, "pg_index_options"));
        memcpy(o, user, sizeof *o);
    }
    if (o->batch == 0) {
        o->batch = 4;
    }
    if (o->batch > MAX_WIDTH) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "batch %u is over %u", o->batch, MAX_WIDTH);
    }
    if (o->max_new_tokens == 0) {
        o->max_new_tokens = 64;
    }
    if (o->flags & ~(uint32_t)(PG_INDEX_XMP | PG_INDEX_RESCAN)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "unknown pg_index_options.flags 0x%x",
                         o->flags);
    }
    return PG_OK;
}

static pg_status setup(indexer *x, const char *db_path)
{
    pg_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    PG__TRY(pg_model_get_info(x->model, &info));
    x->variant = info.variant;
    PG__TRY(pg__model_id(x->model, x->model_id));
    PG__TRY(pg__db_open(&x->db, db_path));
    pg_batch_options bo;
    PG_BATCH_OPTIONS_INIT(&bo);
    bo.max_batch = x->o->batch;
    bo.max_sessions = x->o->batch + 1;
    PG__TRY(pg_batch_new(&x->batch, x->model, &bo));
    PG_GENERATE_OPTIONS_INIT(&x->go);
    x->go.max_new_tokens = x->o->max_new_tokens;
    size_t want = x->walk.n_paths < x->o->batch + 1 ? x->walk.n_paths : x->o->batch + 1;
    for (uint32_t k = 0; k < want; k++) {
        PG__TRY(pg_session_new(&x->slots[k].s, x->model, NULL));
        x->n_slots++;
    }
    return PG_OK;
}

static void teardown(indexer *x)
{
    pg_batch_free(x->batch); /* detaches sessions still inside: in-flight images are dropped */
    for (uint32_t k = 0; k < x->n_slots; k++) {
        slot_clear(&x->slots[k]);
        pg_session_free(x->slots[k].s);
    }
    pg__db_close(&x->db);
    pg__tasks_free(x->tasks, x->n_tasks);
    pg__walk_free(&x->walk);
}

static pg_status run_loop(indexer *x)
{
    for (size_t i = 0; i < x->walk.n_notes && !x->cancelled; i++) {
        if (strstr(x->walk.notes[i].note, "JPEG or PNG")) {
            x->stats->files_other++;
        }
        notify(x, x->walk.notes[i].path, x->walk.notes[i].note);
    }
    while (!x->cancelled) {
        PG__TRY(fill(x));
        if (!any_busy(x) || x->cancelled) {
            break;
        }
        PG__TRY(pg_batch_step(x->batch, NULL));
        PG__TRY(collect(x));
        notify(x, NULL, NULL);
    }
    if (x->cancelled) {
        return pg__error(PG_ERR_CANCELLED, "pg_index_run: stopped by the progress callback");
    }
    /* Rows of paths that vanished go, unless part of the tree could not be read this time
     * (its files are not gone, only unseen). */
    for (size_t r = 0; !x->walk.incomplete && r < x->walk.n_roots; r++) {
        PG__TRY(pg__db_prune(&x->db, x->walk.roots[r], x->walk.paths, x->walk.n_paths));
    }
    return PG_OK;
}

PG_API void pg_index_options_init(pg_index_options *opts, size_t struct_size)
{
    pg_index_options d;
    memset(&d, 0, sizeof d);
    pg__options_init(opts, struct_size, &d, sizeof d);
}

static char *default_db_path(const char *dir)
{
    return pg__path_join(dir, ".paligemma.sqlite");
}

PG_API pg_status pg_index_run(pg_model *model, const char *const *dirs, size_t n_dirs,
                              const pg_index_options *opts, pg_index_stats *stats)
{
    if (!model || !dirs || n_dirs == 0) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_index_run: a model and folders are needed");
    }
    for (size_t i = 0; i < n_dirs; i++) {
        if (!dirs[i] || !dirs[i][0]) {
            return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_index_run: folder %zu is empty", i);
        }
    }
    pg_index_stats local;
    if (stats) {
        PG__TRY(pg__check_struct_size(stats, sizeof *stats, sizeof *stats, "pg_index_stats"));
    }
    memset(&local, 0, sizeof local);
    local.struct_size = sizeof local;
    pg__error_clear();
    pg_index_options o;
    PG__TRY(read_options(&o, opts));
    indexer *x = pg__calloc(1, sizeof *x);
    if (!x) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
    }
    x->model = model;
    x->o = &o;
    x->stats = &local;
    x->t0 = pg__now_ms();
    pg_status st = pg__tasks_parse(o.tasks, o.prompt, &x->tasks, &x->n_tasks);
    if (st == PG_OK) {
        st = pg__walk_dirs(&x->walk, dirs, n_dirs);
    }
    char *db_path = NULL;
    if (st == PG_OK && !o.db_path && !(db_path = default_db_path(dirs[0]))) {
        st = pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
    }
    if (st == PG_OK) {
        local.files_total = x->walk.n_paths;
        st = setup(x, o.db_path ? o.db_path : db_path);
    }
    if (st == PG_OK) {
        st = run_loop(x);
    }
    local.elapsed_ms = pg__now_ms() - x->t0;
    teardown(x);
    free(x);
    free(db_path);
    if (stats) {
        memcpy(stats, &local, sizeof local);
    }
    return st;
}
