/*
 * The tiny PaliGemma-style tokenizer of the tiny model fixtures (2176 SentencePiece pieces
 * + <image>): tokenizer_tests.json goldens (transformers' GemmaTokenizer) through the model
 * folder (tokenizer.model + tokenizer_config.json), tokenizer.json and the bare .model;
 * pieces, decoding, streaming decoding, special ids, and .model == .json on a corpus.
 */
#include "harness.h"
#include "tok_util.h"
#include "tokenizer/tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *tiny(const char *name)
{
    return pg_test_path(pg_test_path(pg_test_data_dir(), "tokenizer/tiny"), name);
}

static void check_pieces(const pg_tokenizer *tok, const int32_t *ids, size_t n,
                         const json_t *pieces, const char *text)
{
    CHECK_EQ_INT(n, json_array_size(pieces));
    for (size_t i = 0; i < n && i < json_array_size(pieces); i++) {
        char buf[256];
        size_t len;
        CHECK_OK(pg_token_to_piece(tok, ids[i], buf, sizeof buf, &len));
        const char *want = json_string_value(json_array_get(pieces, i));
        /* tokenizer.json spells the byte piece <0x09> as the tab itself (id 226 in both). */
        if (strcmp(want, "<0x09>") == 0 && len == 1 && buf[0] == '\t') {
            want = "\t";
        }
        CHECK_MSG(len == strlen(want) && memcmp(buf, want, len) == 0,
                  "piece %zu of \"%s\": \"%s\" != \"%s\"", i, text, buf, want);
        int32_t back;
        CHECK_OK(pg_piece_to_token(tok, want, strlen(want), &back));
        CHECK_EQ_INT(back, ids[i]);
    }
}

/* Streaming decode one id at a time must equal the whole decode, and never emit a partial
 * UTF-8 character. */
static void check_stream(const pg_tokenizer *tok, const int32_t *ids, size_t n,
                         const char *want)
{
    pg__detok_stream st;
    pg__detok_stream_init(&st, 0);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (size_t i = 0; i < n; i++) {
        size_t before = len;
        CHECK_OK(pg__detok_stream_push(tok, &st, ids[i], &buf, &len, &cap));
        /* Whatever came out is complete UTF-8 on its own. */
        for (size_t k = before; k < len;) {
            size_t m = pg__utf8_valid_prefix((const unsigned char *)buf + k, len - k);
            CHECK(m > 0);
            k += m ? m : 1;
        }
    }
    CHECK_OK(pg__detok_stream_finish(tok, &st, &buf, &len, &cap));
    CHECK_MSG(len == strlen(want) && (len == 0 || memcmp(buf, want, len) == 0),
              "stream decode \"%s\" != \"%s\"", buf ? buf : "", want);
    free(buf);
}

static void run_goldens(const pg_tokenizer *tok, const char *label, bool has_image)
{
    json_error_t err;
    json_t *root = json_load_file(tiny("tokenizer_tests.json"), 0, &err);
    CHECK_MSG(root != NULL, "tokenizer_tests.json: %s", err.text);
    const json_t *tests = json_object_get(root, "tests");
    size_t i;
    const json_t *t;
    int n_run = 0;
    json_array_foreach(tests, i, t) {
        const char *text = json_string_value(json_object_get(t, "text"));
        size_t len = json_string_length(json_object_get(t, "text"));
        if (!has_image && strstr(text, "<image>")) {
            continue; /* <image> exists only as an added token of the folder / json */
        }
        size_t n;
        int32_t *ids = tt_encode(tok, text, len, 0, &n);
        const json_t *want = json_object_get(t, "ids");
        bool ok = ids && tt_ids_equal(ids, n, want);
        CHECK_MSG(ok, "%s: ids of \"%s\"", label, text);
        if (!ok && ids) {
            tt_print_ids(label, ids, n, want);
        }
        if (ok) {
            check_pieces(tok, ids, n, json_object_get(t, "pieces"), text);
            size_t dlen;
            char *dec = tt_decode(tok, ids, n, 0, &dlen);
            const char *dwant = json_string_value(json_object_get(t, "decoded"));
            CHECK_MSG(dec && dlen == strlen(dwant) && memcmp(dec, dwant, dlen) == 0,
                      "%s: decode of \"%s\" gave \"%s\"", label, text, dec ? dec : "(null)");
            check_stream(tok, ids, n, dec);
            free(dec);
        }
        free(ids);
        n_run++;
    }
    CHECK(n_run >= 30);
    json_decref(root);
}

/* tokenizer.model (folder) and tokenizer.json agree on every line of the corpus and on the
 * whole corpus at once, in both modes. */
static void check_corpus(const pg_tokenizer *a, const pg_tokenizer *b)
{
    FILE *f = fopen(tiny("corpus.txt"), "rb");
    CHECK(f != NULL);
    if (!f) {
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lines = 0, differ = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        for (uint32_t flags = 0; flags <= PG_TOKENIZE_NO_PARSE_SPECIAL; flags++) {
            size_t na, nb;
            int32_t *ia = tt_encode(a, line, (size_t)got, flags, &na);
            int32_t *ib = tt_encode(b, line, (size_t)got, flags, &nb);
            bool same = ia && ib && na == nb && memcmp(ia, ib, na * sizeof *ia) == 0;
            if (!same && differ++ < 5) {
                fprintf(stderr, "corpus line %d (flags %u) differs: %s", lines, flags, line);
            }
            free(ia);
            free(ib);
        }
        lines++;
    }
    free(line);
    fclose(f);
    CHECK(lines > 100);
    CHECK_EQ_INT(differ, 0);
}

int main(void)
{
    pg_tokenizer *dir = NULL, *json = NULL, *model = NULL;
    CHECK_OK(pg_tokenizer_load(&dir, pg_test_path(pg_test_data_dir(), "tokenizer/tiny")));
    CHECK_OK(pg_tokenizer_load(&json, tiny("tokenizer.json")));
    CHECK_OK(pg_tokenizer_load(&model, tiny("tokenizer.model")));
    if (!dir || !json || !model) {
        return pg_test_finish();
    }
    run_goldens(dir, "folder", true);
    run_goldens(json, "json", true);
    run_goldens(model, "model", false);
    check_corpus(dir, json);

    /* Special ids (vocab_summary.json of the fixture). */
    for (int k = 0; k < 2; k++) {
        const pg_tokenizer *tok = k ? json : dir;
        CHECK_EQ_INT(pg_tokenizer_vocab_size(tok), 2177);
        CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_PAD), 0);
        CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_EOS), 1);
        CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_BOS), 2);
        CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_UNK), 3);
        CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_NEWLINE), 108);
        CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_IMAGE), 2176);
        CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_LOC0), 1024);
        CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_SEG0), 2048);
        CHECK_EQ_INT(pg_tokenizer_special_id(tok, 99), -1);
    }
    CHECK_EQ_INT(pg_tokenizer_vocab_size(model), 2176);
    CHECK_EQ_INT(pg_tokenizer_special_id(model, PG_TOKEN_IMAGE), -1);

    pg_tokenizer_free(dir);
    pg_tokenizer_free(json);
    pg_tokenizer_free(model);
    return pg_test_finish();
}
