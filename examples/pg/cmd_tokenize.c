/*
 * pg tokenize (-m MODEL_DIR | -t TOKENIZER_FILE) [--no-parse-special] [--bos] (TEXT | --stdin)
 *
 * Prints one JSON line {"ids": [...], "pieces": [...]}. With --stdin the raw bytes of
 * standard input are tokenized unchanged (NULs and invalid UTF-8 included). -m loads only
 * the model folder's config and tokenizer (PG_MODEL_TOKENIZER_ONLY: no weights are read).
 */
#include "pg.h"

#include "paligemma.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(FILE *f)
{
    fprintf(f, "usage: pg tokenize (-m MODEL_DIR | -t TOKENIZER_FILE) [--no-parse-special] "
               "[--bos] (TEXT | --stdin)\n"
               "  -m MODEL_DIR        a model folder (only config.json and the tokenizer are read)\n"
               "  -t TOKENIZER_FILE   tokenizer.model, tokenizer.json or a folder holding one\n"
               "  --no-parse-special  control-token text such as \"<bos>\" stays text "
               "(SentencePiece)\n"
               "  --bos               prepend <bos>\n"
               "  --stdin             tokenize the raw bytes of standard input\n");
    return f == stderr ? 2 : 0;
}

static char *read_stdin(size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) {
            break;
        }
        if (n == cap) {
            char *p = cap < ((size_t)1 << 40) ? realloc(buf, cap * 2) : NULL;
            if (!p) {
                free(buf);
                return NULL;
            }
            buf = p;
            cap *= 2;
        }
    }
    if (buf && ferror(stdin)) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Builds and prints {"ids": [...], "pieces": [...]}. */
static int print_json(const pg_tokenizer *tok, const int32_t *ids, size_t n)
{
    json_t *root = json_object(), *jids = json_array(), *jpieces = json_array();
    json_object_set_new(root, "ids", jids);
    json_object_set_new(root, "pieces", jpieces);
    char small[256], *buf = small;
    size_t cap = sizeof small;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        pg_status st = pg_token_to_piece(tok, ids[i], buf, cap, &len);
        if (st == PG_ERR_LIMIT) { /* a long piece: grow the buffer to the size it needs */
            char *p = malloc(len);
            if (buf != small) {
                free(buf);
            }
            buf = p;
            cap = p ? len : 0;
            st = p ? pg_token_to_piece(tok, ids[i], buf, cap, &len) : PG_ERR_OUT_OF_MEMORY;
        }
        /* A piece that is not UTF-8 (a hostile tokenizer file) cannot be a JSON string. */
        json_t *piece = st == PG_OK ? json_stringn(buf, len) : NULL;
        if (!piece) {
            fprintf(stderr, "pg tokenize: id %d: %s\n", (int)ids[i],
                    st == PG_OK ? "the piece is not UTF-8" : pg_last_error());
            if (buf != small) {
                free(buf);
            }
            json_decref(root);
            return 1;
        }
        json_array_append_new(jids, json_integer(ids[i]));
        json_array_append_new(jpieces, piece);
    }
    if (buf != small) {
        free(buf);
    }
    char *s = json_dumps(root, JSON_PRESERVE_ORDER | JSON_INDENT(0));
    json_decref(root);
    if (!s) {
        fprintf(stderr, "pg tokenize: out of memory\n");
        return 1;
    }
    puts(s);
    free(s);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int tokenize(const pg_tokenizer *tok, const char *text, size_t len, uint32_t flags)
{
    size_t n = 0;
    pg_status st = pg_tokenize(tok, text, len, flags, NULL, 0, &n);
    if (st != PG_OK && st != PG_ERR_LIMIT) {
        fprintf(stderr, "pg tokenize: %s\n", pg_last_error());
        return 1;
    }
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids || pg_tokenize(tok, text, len, flags, ids, n, &n) != PG_OK) {
        fprintf(stderr, "pg tokenize: %s\n", ids ? pg_last_error() : "out of memory");
        free(ids);
        return 1;
    }
    int rc = print_json(tok, ids, n);
    free(ids);
    return rc;
}

int pg_cmd_tokenize(int argc, char **argv)
{
    const char *model_dir = NULL, *tok_file = NULL, *text = NULL;
    bool from_stdin = false;
    uint32_t flags = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            return usage(stdout);
        } else if (!strcmp(a, "-m") && i + 1 < argc) {
            model_dir = argv[++i];
        } else if (!strcmp(a, "-t") && i + 1 < argc) {
            tok_file = argv[++i];
        } else if (!strcmp(a, "--no-parse-special")) {
            flags |= PG_TOKENIZE_NO_PARSE_SPECIAL;
        } else if (!strcmp(a, "--bos")) {
            flags |= PG_TOKENIZE_ADD_BOS;
        } else if (!strcmp(a, "--stdin")) {
            from_stdin = true;
        } else if (!strcmp(a, "--")) {
            if (i + 2 != argc || text) {
                return usage(stderr);
            }
            text = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "pg tokenize: unknown option '%s'\n", a);
            return usage(stderr);
        } else if (!text) {
            text = a;
        } else {
            return usage(stderr);
        }
    }
    if (!model_dir == !tok_file || from_stdin == (text != NULL)) {
        return usage(stderr);
    }

    pg_model *model = NULL;
    pg_tokenizer *own = NULL;
    const pg_tokenizer *tok = NULL;
    if (model_dir) {
        pg_model_options opts;
        PG_MODEL_OPTIONS_INIT(&opts);
        opts.flags |= PG_MODEL_TOKENIZER_ONLY;
        if (pg_model_load(&model, model_dir, &opts) == PG_OK) {
            tok = pg_model_tokenizer(model);
            if (!tok) {
                fprintf(stderr, "pg tokenize: %s has no tokenizer\n", model_dir);
            }
        } else {
            fprintf(stderr, "pg tokenize: %s\n", pg_last_error());
        }
    } else if (pg_tokenizer_load(&own, tok_file) == PG_OK) {
        tok = own;
    } else {
        fprintf(stderr, "pg tokenize: %s\n", pg_last_error());
    }
    int rc = 1;
    if (tok) {
        size_t len = 0;
        char *input = from_stdin ? read_stdin(&len) : NULL;
        if (from_stdin && !input) {
            fprintf(stderr, "pg tokenize: cannot read standard input\n");
        } else {
            rc = tokenize(tok, from_stdin ? input : text, from_stdin ? len : strlen(text),
                          flags);
        }
        free(input);
    }
    pg_tokenizer_free(own);
    pg_model_free(model);
    return rc;
}
