/* Finds and maps the safetensors files of a Hugging Face model folder (spec §2.1-2.2). */
#include "io/safetensors.h"
#include "model/loader.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SINGLE_FILE "model.safetensors"
#define INDEX_FILE "model.safetensors.index.json"
#define MAX_INDEX_BYTES ((size_t)64 * 1024 * 1024)

static bool is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Appends one opened shard to m->files. */
static pg_status add_file(pg_model *m, const char *path)
{
    pg__st_file **files = pg__realloc(m->files, (m->n_files + 1) * sizeof *files);
    if (!files) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    m->files = files;
    pg__st_file *f;
    pg_status st = pg__st_open(&f, path);
    if (st != PG_OK) {
        return st;
    }
    m->files[m->n_files++] = f;
    return PG_OK;
}

/* Shard names come from an untrusted index: plain file names inside the folder only. */
static bool shard_name_ok(const char *s)
{
    return s[0] != '\0' && s[0] != '.' && !strchr(s, '/') && !strchr(s, '\\');
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The distinct shard names of weight_map, sorted (borrowed from the JSON). */
static pg_status shard_names(const json_t *map, const char *ipath, const char ***names,
                             size_t *n)
{
    size_t cap = json_object_size(map);
    const char **v = pg__malloc_array(cap ? cap : 1, sizeof *v);
    if (!v) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)map, key, val) {
        if (!json_is_string(val) || !shard_name_ok(json_string_value(val))) {
            free(v);
            return pg__error(PG_ERR_FORMAT,
                             "%s: weight_map entry '%s' does not name a shard file in the "
                             "model folder",
                             ipath, key);
        }
        v[k++] = json_string_value(val);
    }
    qsort(v, k, sizeof *v, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < k; i++) {
        if (u == 0 || strcmp(v[u - 1], v[i]) != 0) {
            v[u++] = v[i];
        }
    }
    *names = v;
    *n = u;
    return PG_OK;
}

/* Every tensor of every shard is in weight_map under that shard, and nothing else is. */
static pg_status check_index_matches(pg_model *m, const json_t *map, const char *ipath)
{
    size_t total = 0;
    for (size_t i = 0; i < m->n_files; i++) {
        const pg__st_file *f = m->files[i];
        const char *base = strrchr(f->path, '/');
        base = base ? base + 1 : f->path;
        for (size_t j = 0; j < f->n_tensors; j++) {
            const char *name = f->tensors[j].name;
            const json_t *where = json_object_get(map, name);
            if (!where) {
                return pg__error(PG_ERR_FORMAT,
                                 "%s: tensor '%s' is not listed in %s (extra tensor)", f->path,
                                 name, ipath);
            }
            if (strcmp(json_string_value(where), base) != 0) {
                return pg__error(PG_ERR_FORMAT,
                                 "%s: tensor '%s' is also stored here, but %s places it in %s "
                                 "(duplicate or misplaced tensor)",
                                 f->path, name, ipath, json_string_value(where));
            }
        }
        total += f->n_tensors;
    }
    if (total == json_object_size(map)) {
        return PG_OK;
    }
    /* Fewer stored than listed: name the first listed tensor its shard lacks. */
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)map, key, val) {
        for (size_t i = 0; i < m->n_files; i++) {
            const char *base = strrchr(m->files[i]->path, '/');
            base = base ? base + 1 : m->files[i]->path;
            if (strcmp(base, json_string_value(val)) == 0 && !pg__st_find(m->files[i], key)) {
                return pg__error(PG_ERR_NOT_FOUND, "%s: tensor '%s' listed in %s is missing",
                                 m->files[i]->path, key, ipath);
            }
        }
    }
    return pg__error(PG_ERR_INTERNAL, "%s: tensor count mismatch", ipath);
}

static pg_status open_indexed(pg_model *m, const char *dir, const char *ipath)
{
    char *text;
    size_t len;
    pg_status st = pg__read_file(ipath, MAX_INDEX_BYTES, &text, &len);
    if (st != PG_OK) {
        return st;
    }
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root) {
        return pg__error(PG_ERR_FORMAT, "%s: not valid JSON (line %d, column %d: %s)", ipath,
                         jerr.line, jerr.column, jerr.text);
    }
    const json_t *map = json_object_get(root, "weight_map");
    const char **names = NULL;
    size_t n_names = 0;
    if (!json_is_object(root) || !json_is_object(map)) {
        st = pg__error(PG_ERR_FORMAT, "%s: no \"weight_map\" object", ipath);
    } else if (json_object_size(map) == 0) {
        st = pg__error(PG_ERR_FORMAT, "%s: \"weight_map\" is empty", ipath);
    } else {
        st = shard_names(map, ipath, &names, &n_names);
    }
    for (size_t i = 0; st == PG_OK && i < n_names; i++) {
        char *spath = pg__path_join(dir, names[i]);
        if (!spath) {
            st = PG_ERR_OUT_OF_MEMORY;
            break;
        }
        st = add_file(m, spath);
        if (st != PG_OK) {
            pg__error_prefix("shard named by %s", ipath);
        }
        free(spath);
    }
    if (st == PG_OK) {
        st = check_index_matches(m, map, ipath);
    }
    free(names);
    json_decref(root);
    return st;
}

pg_status pg__model_open_shards(pg_model *m, const char *dir)
{
    char *single = pg__path_join(dir, SINGLE_FILE);
    char *index = pg__path_join(dir, INDEX_FILE);
    pg_status st;
    if (!single || !index) {
        st = PG_ERR_OUT_OF_MEMORY;
    } else if (is_file(single)) {
        /* transformers also prefers the single file when both exist */
        st = add_file(m, single);
    } else if (is_file(index)) {
        st = open_indexed(m, dir, index);
    } else {
        st = pg__error(PG_ERR_NOT_FOUND, "%s: no %s or %s in the model folder", dir,
                       SINGLE_FILE, INDEX_FILE);
    }
    free(single);
    free(index);
    return st;
}
