#include "tok_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int32_t *tt_encode(const pg_tokenizer *tok, const char *text, size_t len, uint32_t flags,
                   size_t *n)
{
    *n = 0;
    size_t need = 0;
    pg_status st = pg_tokenize(tok, text, len, flags, NULL, 0, &need);
    if (st != PG_OK && st != PG_ERR_LIMIT) {
        fprintf(stderr, "pg_tokenize: %s\n", pg_last_error());
        return NULL;
    }
    int32_t *ids = malloc((need ? need : 1) * sizeof *ids);
    if (!ids || pg_tokenize(tok, text, len, flags, ids, need, n) != PG_OK || *n != need) {
        fprintf(stderr, "pg_tokenize (second call): %s\n", pg_last_error());
        free(ids);
        return NULL;
    }
    return ids;
}

char *tt_decode(const pg_tokenizer *tok, const int32_t *ids, size_t n, uint32_t flags,
                size_t *len)
{
    size_t need = 0;
    pg_status st = pg_detokenize(tok, ids, n, flags, NULL, 0, &need);
    if (st != PG_OK && st != PG_ERR_LIMIT) {
        fprintf(stderr, "pg_detokenize: %s\n", pg_last_error());
        return NULL;
    }
    char *text = malloc(need + 1);
    if (!text || pg_detokenize(tok, ids, n, flags, text, need + 1, len) != PG_OK) {
        fprintf(stderr, "pg_detokenize (second call): %s\n", pg_last_error());
        free(text);
        return NULL;
    }
    return text;
}

bool tt_ids_equal(const int32_t *ids, size_t n, const json_t *expected)
{
    if (!json_is_array(expected) || json_array_size(expected) != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (json_integer_value(json_array_get(expected, i)) != ids[i]) {
            return false;
        }
    }
    return true;
}

void tt_print_ids(const char *label, const int32_t *ids, size_t n, const json_t *expected)
{
    fprintf(stderr, "  %s got     [", label);
    for (size_t i = 0; i < n; i++) {
        fprintf(stderr, "%s%d", i ? ", " : "", ids[i]);
    }
    fprintf(stderr, "]\n  %s expected [", label);
    for (size_t i = 0; i < json_array_size(expected); i++) {
        fprintf(stderr, "%s%lld", i ? ", " : "",
                (long long)json_integer_value(json_array_get(expected, i)));
    }
    fprintf(stderr, "]\n");
}

unsigned char *tt_unhex(const char *hex, size_t *n)
{
    size_t len = strlen(hex) / 2;
    unsigned char *b = malloc(len + 1);
    for (size_t i = 0; b && i < len; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        b[i] = (unsigned char)v;
    }
    *n = len;
    return b;
}

json_t *tt_load_jsonl(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    json_t *arr = json_array();
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) > 0) {
        json_error_t err;
        json_t *v = json_loadb(line, (size_t)got, JSON_ALLOW_NUL, &err);
        if (v) {
            json_array_append_new(arr, v);
        } else if (got > 1) {
            fprintf(stderr, "%s: bad line: %s\n", path, err.text);
        }
    }
    free(line);
    fclose(f);
    return arr;
}

int tt_system(const char *cmd)
{
    int rc = system(cmd);
    return rc;
}

double tt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}
