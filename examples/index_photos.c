/*
 * index_photos: a program that embeds the photo indexer (pg_index_run) and then searches
 * the catalogue it wrote (pg_index_search): the shape of a DAM plug-in. Not installed.
 *
 *     index_photos MODEL_DIR PHOTO_DIR DB_FILE [QUERY]
 *
 * Captions every JPEG/PNG under PHOTO_DIR into DB_FILE (resumable: run it again and only new
 * or changed photos are captioned), printing one line per finished photo, then the matches
 * of QUERY, best first.
 */
#include <paligemma.h>

#include <stdio.h>

static int on_progress(void *user, const pg_index_stats *s, const char *path, const char *note)
{
    (void)user;
    if (note) {
        fprintf(stderr, "note: %s: %s\n", path ? path : "", note);
    } else if (path) {
        printf("[%llu/%llu] %s\n", (unsigned long long)s->files_done,
               (unsigned long long)s->files_total, path);
    }
    return 0; /* non-zero would stop the run; finished photos stay saved */
}

static int on_hit(void *user, const char *path, const char *text, double score)
{
    (void)user;
    printf("hit %.3f %s: %s\n", score, path, text);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s MODEL_DIR PHOTO_DIR DB_FILE [QUERY]\n", argv[0]);
        return 2;
    }
    pg_model *model = NULL;
    pg_status st = pg_model_load(&model, argv[1], NULL);
    if (st != PG_OK) {
        fprintf(stderr, "%s\n", pg_last_error());
        return 1;
    }
    const char *dirs[] = { argv[2] };
    pg_index_options o;
    PG_INDEX_OPTIONS_INIT(&o);
    o.db_path = argv[3];
    o.tasks = "caption";
    o.max_new_tokens = 32;
    o.progress_fn = on_progress;
    pg_index_stats stats = { .struct_size = sizeof stats };
    st = pg_index_run(model, dirs, 1, &o, &stats);
    pg_model_free(model);
    if (st != PG_OK) {
        fprintf(stderr, "%s\n", pg_last_error());
        return 1;
    }
    printf("indexed %llu, already done %llu, failed %llu\n",
           (unsigned long long)stats.files_indexed, (unsigned long long)stats.files_skipped,
           (unsigned long long)stats.files_failed);
    if (argc == 5 && (st = pg_index_search(argv[3], argv[4], 10, on_hit, NULL)) != PG_OK) {
        fprintf(stderr, "%s\n", pg_last_error());
        return 1;
    }
    return 0;
}
