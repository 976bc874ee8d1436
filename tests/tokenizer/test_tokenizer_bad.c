/*
 * Bad input: truncated and corrupted tokenizer.model / tokenizer.json, unsupported models
 * and normalizers, vocabularies lacking pieces, ids out of range on decode, embedded NULs,
 * invalid UTF-8, megabyte inputs (finishing is the test; speed is benchmarked elsewhere),
 * and argument checks of every public tokenizer function.
 */
#include "harness.h"
#include "tok_util.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static const char *tiny(const char *name)
{
    return pg_test_path(pg_test_path(pg_test_data_dir(), "tokenizer/tiny"), name);
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

/* Writes bytes to a temp file and loads it; returns the status (tokenizer freed). */
static pg_status load_bytes(const void *data, size_t n, const char *name, pg_tokenizer **keep)
{
    const char *path = pg_test_path(tmpdir, name);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
    pg_tokenizer *tok = NULL;
    pg_status st = pg_tokenizer_load(&tok, path);
    CHECK((st == PG_OK) == (tok != NULL));
    if (tok) {
        /* Whatever loads must also encode and decode without trouble. */
        size_t k;
        int32_t *ids = tt_encode(tok, "a b\n<bos>\xff", 10, 0, &k);
        CHECK(ids != NULL);
        size_t len;
        char *text = ids ? tt_decode(tok, ids, k, 0, &len) : NULL;
        CHECK(text != NULL);
        free(text);
        free(ids);
    }
    if (keep) {
        *keep = tok;
    } else {
        pg_tokenizer_free(tok);
    }
    unlink(path);
    return st;
}

static void truncated_and_corrupt(const char *file, const char *name)
{
    size_t n;
    unsigned char *data = read_all(tiny(file), &n);
    CHECK(data != NULL);
    if (!data) {
        return;
    }
    int failed = 0, tried = 0;
    for (size_t cut = 0; cut < n; cut += 1 + cut / 3 + 37) {
        pg_status st = load_bytes(data, cut, name, NULL);
        CHECK_MSG(st == PG_OK || st == PG_ERR_FORMAT || st == PG_ERR_UNSUPPORTED,
                  "%s cut at %zu: status %d (%s)", file, cut, st, pg_last_error());
        failed += st != PG_OK;
        tried++;
    }
    CHECK_MSG(failed >= tried - 2, "%s: %d of %d truncations loaded", file, tried - failed,
              tried);
    /* Random byte flips (fixed seed): any outcome but a crash or a wrong status. */
    unsigned seed = 12345;
    unsigned char *copy = malloc(n);
    for (int round = 0; round < 40; round++) {
        memcpy(copy, data, n);
        for (int k = 0; k < 8; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % n;
            seed = seed * 1103515245u + 12345u;
            copy[at] = (unsigned char)(seed >> 16);
        }
        pg_status st = load_bytes(copy, n, name, NULL);
        CHECK_MSG(st == PG_OK || st == PG_ERR_FORMAT || st == PG_ERR_UNSUPPORTED,
                  "%s corrupted (round %d): status %d (%s)", file, round, st, pg_last_error());
    }
    free(copy);
    free(data);
}

/* ---- a tiny protobuf writer for hand-made ModelProtos ---- */

typedef struct buf {
    unsigned char b[8192];
    size_t n;
} buf;

static void put_varint(buf *o, uint64_t v)
{
    while (v >= 0x80) {
        o->b[o->n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    o->b[o->n++] = (unsigned char)v;
}

static void put_bytes(buf *o, unsigned field, const void *p, size_t len)
{
    put_varint(o, (uint64_t)field << 3 | 2);
    put_varint(o, len);
    memcpy(o->b + o->n, p, len);
    o->n += len;
}

static void put_int(buf *o, unsigned field, int64_t v)
{
    put_varint(o, (uint64_t)field << 3);
    put_varint(o, (uint64_t)v);
}

static void put_piece(buf *o, const char *text, float score, int type)
{
    buf p = {.n = 0};
    put_bytes(&p, 1, text, strlen(text));
    put_varint(&p, 2 << 3 | 5);
    memcpy(p.b + p.n, &score, 4);
    p.n += 4;
    put_int(&p, 3, type);
    put_bytes(o, 1, p.b, p.n);
}

/* A minimal BPE model: <unk>, <s>, </s>, a, b, ab, with options. */
static void small_model(buf *o, int model_type, bool byte_fallback, bool charsmap,
                        bool with_unk)
{
    o->n = 0;
    put_piece(o, with_unk ? "<unk>" : "<notunk>", 0, with_unk ? 2 : 3);
    put_piece(o, "<s>", 0, 3);
    put_piece(o, "</s>", 0, 3);
    put_piece(o, "a", -1, 1);
    put_piece(o, "b", -2, 1);
    put_piece(o, "ab", -0.5f, 1);
    put_piece(o, "\xE2\x96\x81", -3, 1);
    buf t = {.n = 0};
    put_int(&t, 3, model_type);
    put_int(&t, 35, byte_fallback);
    put_int(&t, 99, 7); /* an unknown field: skipped */
    put_bytes(o, 2, t.b, t.n);
    buf nz = {.n = 0};
    put_bytes(&nz, 1, "identity", 8);
    if (charsmap) {
        put_bytes(&nz, 2, "\x01\x02\x03", 3);
    }
    put_int(&nz, 3, 0);
    put_int(&nz, 4, 0);
    put_bytes(o, 3, nz.b, nz.n);
    put_bytes(o, 17, "future", 6); /* an unknown top-level field */
}

static void hand_made_models(void)
{
    buf o;
    pg_tokenizer *tok = NULL;
    small_model(&o, 2, false, false, true);
    CHECK_OK(load_bytes(o.b, o.n, "small.model", &tok));
    if (tok) {
        size_t n;
        int32_t *ids = tt_encode(tok, "ab a\xC3\xA9", 7, 0, &n);
        /* ab, U+2581, a, then the unknown é as <unk> (no byte fallback) */
        CHECK(ids && n == 4 && ids[0] == 5 && ids[1] == 6 && ids[2] == 3 && ids[3] == 0);
        free(ids);
        /* Consecutive unknown characters fuse into one <unk>. */
        ids = tt_encode(tok, "\xC3\xA9\xC3\xA9", 4, 0, &n);
        CHECK(ids && n == 1 && ids[0] == 0);
        free(ids);
        /* The vocabulary lacks "\n", <image>, <loc0000>, <seg000>. */
        CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_NEWLINE), -1);
        CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_IMAGE), -1);
        CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_LOC0), -1);
        CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_SEG0), -1);
        CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_PAD), -1); /* proto2 default -1 */
        pg_tokenizer_free(tok);
    }
    small_model(&o, 1, false, false, true);
    CHECK_EQ_INT(load_bytes(o.b, o.n, "unigram.model", NULL), PG_ERR_UNSUPPORTED);
    CHECK(strstr(pg_last_error(), "model type") != NULL);
    small_model(&o, 2, false, true, true);
    CHECK_EQ_INT(load_bytes(o.b, o.n, "nfkc.model", NULL), PG_ERR_UNSUPPORTED);
    CHECK(strstr(pg_last_error(), "precompiled") != NULL);
    small_model(&o, 2, true, false, true);
    CHECK_EQ_INT(load_bytes(o.b, o.n, "nobytes.model", NULL), PG_ERR_FORMAT);
    CHECK(strstr(pg_last_error(), "byte") != NULL);
    small_model(&o, 2, false, false, false);
    CHECK_EQ_INT(load_bytes(o.b, o.n, "nounk.model", NULL), PG_ERR_FORMAT);
    /* A duplicate piece. */
    small_model(&o, 2, false, false, true);
    put_piece(&o, "ab", 0, 1);
    CHECK_EQ_INT(load_bytes(o.b, o.n, "dup.model", NULL), PG_ERR_FORMAT);
    /* A piece that is not UTF-8, an empty piece, an unknown type. */
    small_model(&o, 2, false, false, true);
    put_piece(&o, "\xff", 0, 1);
    CHECK_EQ_INT(load_bytes(o.b, o.n, "utf8.model", NULL), PG_ERR_FORMAT);
    small_model(&o, 2, false, false, true);
    put_piece(&o, "", 0, 1);
    CHECK_EQ_INT(load_bytes(o.b, o.n, "empty.model", NULL), PG_ERR_FORMAT);
    small_model(&o, 2, false, false, true);
    put_piece(&o, "zz", 0, 9);
    CHECK_EQ_INT(load_bytes(o.b, o.n, "type.model", NULL), PG_ERR_FORMAT);
    /* Empty file, garbage, a huge length prefix. */
    CHECK_EQ_INT(load_bytes("", 0, "zero.model", NULL), PG_ERR_FORMAT);
    CHECK_EQ_INT(load_bytes("\x0a\xff\xff\xff\xff\x0f", 6, "len.model", NULL), PG_ERR_FORMAT);
    CHECK_EQ_INT(load_bytes("\x0b\x00", 2, "group.model", NULL), PG_ERR_FORMAT);
}

static void bad_json(void)
{
    static const struct {
        const char *json;
        pg_status want;
    } cases[] = {
        {"{", PG_ERR_FORMAT},
        {"[]", PG_ERR_FORMAT},
        {"{\"model\": 3}", PG_ERR_FORMAT},
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", PG_ERR_UNSUPPORTED},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}", PG_ERR_FORMAT},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 2}, \"merges\": [],"
         " \"byte_fallback\": false, \"unk_token\": \"a\"}}",
         PG_ERR_FORMAT}, /* id 1 missing */
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}",
         PG_ERR_FORMAT}, /* one id, two pieces */
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -4}, \"merges\": []}}",
         PG_ERR_FORMAT},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"<unk>\": 0, \"a\": 1}, "
         "\"merges\": [\"a c\"], \"unk_token\": \"<unk>\"}}",
         PG_ERR_FORMAT}, /* merge of an unknown piece */
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"<unk>\": 0, \"a\": 1}, "
         "\"merges\": [\"a a\"], \"unk_token\": \"<unk>\"}}",
         PG_ERR_FORMAT}, /* merge result not in the vocabulary */
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"<unk>\": 0, \"a\": 1}, "
         "\"merges\": [], \"unk_token\": \"<unk>\"}, \"normalizer\": {\"type\": \"NFKC\"}}",
         PG_ERR_UNSUPPORTED},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"<unk>\": 0, \"a\": 1}, "
         "\"merges\": [], \"unk_token\": \"<unk>\"}, \"pre_tokenizer\": {\"type\": "
         "\"ByteLevel\"}}",
         PG_ERR_UNSUPPORTED},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"<unk>\": 0, \"a\": 1}, "
         "\"merges\": [], \"unk_token\": \"<unk>\", \"byte_fallback\": true}}",
         PG_ERR_FORMAT}, /* byte fallback without byte pieces */
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
         PG_ERR_FORMAT}, /* neither <unk> nor byte fallback */
        {"{\"added_tokens\": [{\"id\": 1, \"content\": \"x\"}], \"model\": {\"type\": \"BPE\","
         " \"vocab\": {\"<unk>\": 0, \"a\": 1}, \"merges\": [], \"unk_token\": \"<unk>\"}}",
         PG_ERR_FORMAT}, /* added token disagrees with the vocab */
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"<unk>\": 0, \"a\": 1, \"b\": 2, "
         "\"ab\": 3}, \"merges\": [\"a b\", [\"a\", \"b\"]], \"unk_token\": \"<unk>\"}}",
         PG_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pg_status st = load_bytes(cases[i].json, strlen(cases[i].json), "t.json", NULL);
        CHECK_MSG(st == cases[i].want, "json case %zu: status %d, want %d (%s)", i, st,
                  cases[i].want, pg_last_error());
    }
}

/* A folder: tiny tokenizer.model + a tokenizer_config.json with the given text. */
static pg_status load_folder_with_config(const char *config, pg_tokenizer **keep)
{
    size_t n;
    unsigned char *model = read_all(tiny("tokenizer.model"), &n);
    char dir[300], path[400];
    snprintf(dir, sizeof dir, "%s/folder", tmpdir);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    FILE *f = fopen(path, "wb");
    fwrite(model, 1, n, f);
    fclose(f);
    free(model);
    char cpath[400];
    snprintf(cpath, sizeof cpath, "%s/tokenizer_config.json", dir);
    f = fopen(cpath, "wb");
    fputs(config, f);
    fclose(f);
    pg_tokenizer *tok = NULL;
    pg_status st = pg_tokenizer_load(&tok, dir);
    if (keep) {
        *keep = tok;
    } else {
        pg_tokenizer_free(tok);
    }
    unlink(path);
    unlink(cpath);
    rmdir(dir);
    return st;
}

static void folder_configs(void)
{
    pg_tokenizer *tok = NULL;
    /* <image> after the 2176 pieces, <bos> marked special again: fine. */
    CHECK_OK(load_folder_with_config(
        "{\"model_max_length\": 1000000000000000019884624838656, \"added_tokens_decoder\": {"
        "\"2176\": {\"content\": \"<image>\", \"special\": true},"
        "\"2\": {\"content\": \"<bos>\", \"special\": true}}}",
        &tok));
    CHECK_EQ_INT(pg_tokenizer_special_id(tok, PG_TOKEN_IMAGE), 2176);
    CHECK(pg__tokenizer_is_control(tok, 2176));
    pg_tokenizer_free(tok);
    /* No added_tokens_decoder at all: the .model alone. */
    CHECK_OK(load_folder_with_config("{}", &tok));
    CHECK_EQ_INT(pg_tokenizer_vocab_size(tok), 2176);
    pg_tokenizer_free(tok);
    /* A gap before the added id, a content that disagrees with the model, a bad key. */
    CHECK_EQ_INT(load_folder_with_config("{\"added_tokens_decoder\": {\"2180\": "
                                         "{\"content\": \"<image>\"}}}",
                                         NULL),
                 PG_ERR_FORMAT);
    CHECK_EQ_INT(load_folder_with_config("{\"added_tokens_decoder\": {\"2\": "
                                         "{\"content\": \"<notbos>\"}}}",
                                         NULL),
                 PG_ERR_FORMAT);
    CHECK_EQ_INT(load_folder_with_config("{\"added_tokens_decoder\": {\"x\": "
                                         "{\"content\": \"<image>\"}}}",
                                         NULL),
                 PG_ERR_FORMAT);
    CHECK_EQ_INT(load_folder_with_config("{\"added_tokens_decoder\": ", NULL), PG_ERR_FORMAT);
}

static void decode_bad_ids(const pg_tokenizer *tok)
{
    uint32_t n = pg_tokenizer_vocab_size(tok);
    const int32_t bad[] = {-1, (int32_t)n, INT32_MAX, INT32_MIN};
    char text[64];
    size_t len;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t ids[3] = {534, bad[i], 108};
        CHECK_EQ_INT(pg_detokenize(tok, ids, 3, 0, text, sizeof text, &len),
                     PG_ERR_INVALID_ARGUMENT);
        CHECK_EQ_INT(pg_token_to_piece(tok, bad[i], text, sizeof text, &len),
                     PG_ERR_INVALID_ARGUMENT);
        pg__detok_stream st;
        pg__detok_stream_init(&st, 0);
        char *b = NULL;
        size_t bl = 0, bc = 0;
        CHECK_EQ_INT(pg__detok_stream_push(tok, &st, bad[i], &b, &bl, &bc),
                     PG_ERR_INVALID_ARGUMENT);
        free(b);
    }
    /* Byte pieces that do not form UTF-8: one U+FFFD per bad byte; a dangling lead byte
     * at the end too. 217 + b is the id of <0xb>. */
    int32_t ids[] = {217 + 0xE6, 217 + 0x97, 217 + 'x', 217 + 0xC3};
    CHECK_OK(pg_detokenize(tok, ids, 4, 0, text, sizeof text, &len));
    CHECK(len == 10 && memcmp(text, "\xEF\xBF\xBD\xEF\xBF\xBDx\xEF\xBF\xBD", 10) == 0);
    /* Streaming: a character split over byte pieces comes out once complete. */
    int32_t euro[] = {217 + 0xE2, 217 + 0x82, 217 + 0xAC};
    pg__detok_stream st;
    pg__detok_stream_init(&st, 0);
    char *b = NULL;
    size_t bl = 0, bc = 0;
    CHECK_OK(pg__detok_stream_push(tok, &st, euro[0], &b, &bl, &bc));
    CHECK_EQ_INT(bl, 0);
    CHECK_OK(pg__detok_stream_push(tok, &st, euro[1], &b, &bl, &bc));
    CHECK_EQ_INT(bl, 0);
    CHECK_OK(pg__detok_stream_push(tok, &st, euro[2], &b, &bl, &bc));
    CHECK(bl == 3 && memcmp(b, "\xE2\x82\xAC", 3) == 0);
    CHECK_OK(pg__detok_stream_push(tok, &st, euro[0], &b, &bl, &bc));
    CHECK_OK(pg__detok_stream_finish(tok, &st, &b, &bl, &bc));
    CHECK(bl == 6 && memcmp(b + 3, "\xEF\xBF\xBD", 3) == 0);
    free(b);
    /* Skipping specials. */
    int32_t sp[] = {2176, 2, 534, 1};
    CHECK_OK(pg_detokenize(tok, sp, 4, PG_DETOKENIZE_SKIP_SPECIAL, text, sizeof text, &len));
    CHECK(len == 7 && memcmp(text, "caption", 7) == 0);
    CHECK_OK(pg_detokenize(tok, sp, 4, 0, text, sizeof text, &len));
    CHECK(len == 24 && memcmp(text, "<image><bos>caption<eos>", 24) == 0);
}

static void nul_and_invalid(const pg_tokenizer *tok)
{
    size_t n, len;
    int32_t *ids = tt_encode(tok, "a\0b", 3, 0, &n);
    CHECK(ids && n == 3 && ids[1] == 217);
    char *text = ids ? tt_decode(tok, ids, n, 0, &len) : NULL;
    CHECK(text && len == 3 && memcmp(text, "a\0b", 3) == 0);
    free(text);
    free(ids);
    /* Invalid UTF-8 becomes U+FFFD per byte (encoded through byte fallback here). */
    size_t n2;
    int32_t *a = tt_encode(tok, "\xE2\x82(", 3, 0, &n);
    int32_t *b = tt_encode(tok, "\xEF\xBF\xBD\xEF\xBF\xBD(", 7, 0, &n2);
    CHECK(a && b && n == n2 && memcmp(a, b, n * sizeof *a) == 0);
    free(a);
    free(b);
}

/* Megabyte inputs: each must finish (BPE is O(n log n)) and round-trip when valid. */
static void long_inputs(const pg_tokenizer *tok)
{
    size_t big = 1u << 20; /* a megabyte */
    char *s = malloc(big);
    const char *fills[] = {"a", " ", "\n", "ab ", "<loc0001>x"};
    for (size_t f = 0; f < sizeof fills / sizeof fills[0]; f++) {
        size_t k = strlen(fills[f]);
        for (size_t i = 0; i < big; i++) {
            s[i] = fills[f][i % k];
        }
        for (uint32_t flags = 0; flags <= 1; flags++) {
            size_t n, len;
            int32_t *ids = tt_encode(tok, s, big, flags, &n);
            CHECK_MSG(ids != NULL, "long input %zu", f);
            char *back = ids ? tt_decode(tok, ids, n, 0, &len) : NULL;
            CHECK_MSG(back && len == big && memcmp(back, s, big) == 0,
                      "long input %zu round trip", f);
            free(back);
            free(ids);
        }
    }
    unsigned seed = 7;
    for (size_t i = 0; i < big; i++) { /* random bytes: mostly invalid UTF-8 */
        seed = seed * 1103515245u + 12345u;
        s[i] = (char)(seed >> 16);
    }
    size_t n;
    int32_t *ids = tt_encode(tok, s, big, 0, &n);
    CHECK(ids != NULL && n > 0);
    free(ids);
    free(s);
}

static void arguments(const pg_tokenizer *tok)
{
    size_t n = 99;
    int32_t ids[2];
    CHECK_EQ_INT(pg_tokenizer_load(NULL, "x"), PG_ERR_INVALID_ARGUMENT);
    pg_tokenizer *t = (pg_tokenizer *)1;
    CHECK_EQ_INT(pg_tokenizer_load(&t, NULL), PG_ERR_INVALID_ARGUMENT);
    CHECK(t == NULL);
    CHECK_EQ_INT(pg_tokenizer_load(&t, pg_test_path(tmpdir, "nothing")), PG_ERR_NOT_FOUND);
    CHECK_EQ_INT(pg_tokenizer_load(&t, tmpdir), PG_ERR_NOT_FOUND); /* folder without files */
    pg_tokenizer_free(NULL);
    CHECK_EQ_INT(pg_tokenize(NULL, "a", 1, 0, ids, 2, &n), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_tokenize(tok, NULL, 1, 0, ids, 2, &n), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_tokenize(tok, "a", 1, 0, NULL, 2, &n), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_tokenize(tok, "a", 1, 0, ids, 2, NULL), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_tokenize(tok, "a", 1, 1u << 7, ids, 2, &n), PG_ERR_INVALID_ARGUMENT);
    CHECK_OK(pg_tokenize(tok, NULL, 0, 0, NULL, 0, &n));
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(pg_tokenize(tok, "caption en\n", 11, 0, ids, 2, &n), PG_ERR_LIMIT);
    CHECK_EQ_INT(n, 3);
    char text[4];
    size_t len;
    int32_t three[] = {534, 491, 108};
    CHECK_EQ_INT(pg_detokenize(tok, three, 3, 0, text, sizeof text, &len), PG_ERR_LIMIT);
    CHECK_EQ_INT(len, 11);
    CHECK_EQ_INT(pg_detokenize(tok, NULL, 3, 0, text, sizeof text, &len),
                 PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_detokenize(tok, three, 3, 8, text, sizeof text, &len),
                 PG_ERR_INVALID_ARGUMENT);
    CHECK_OK(pg_detokenize(tok, NULL, 0, 0, text, sizeof text, &len));
    CHECK(len == 0 && text[0] == '\0');
    CHECK_EQ_INT(pg_token_to_piece(tok, 534, text, 3, &len), PG_ERR_LIMIT);
    CHECK_EQ_INT(len, 7);
    int32_t id = 5;
    CHECK_EQ_INT(pg_piece_to_token(tok, "no such piece", 13, &id), PG_ERR_NOT_FOUND);
    CHECK_EQ_INT(id, -1);
    CHECK_EQ_INT(pg_piece_to_token(tok, NULL, 3, &id), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_tokenizer_vocab_size(NULL), 0);
    CHECK_EQ_INT(pg_tokenizer_special_id(NULL, PG_TOKEN_BOS), -1);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pg_tok_bad_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        return pg_test_skip("cannot make a temp folder");
    }
    double t0 = tt_now_ms();
    truncated_and_corrupt("tokenizer.model", "cut.model");
    double t1 = tt_now_ms();
    truncated_and_corrupt("tokenizer.json", "cut.json");
    double t2 = tt_now_ms();
    hand_made_models();
    bad_json();
    folder_configs();
    printf("truncated/corrupt .model %.0f ms, .json %.0f ms\n", t1 - t0, t2 - t1);
    pg_tokenizer *tok = NULL;
    CHECK_OK(pg_tokenizer_load(&tok, pg_test_path(pg_test_data_dir(), "tokenizer/tiny")));
    if (tok) {
        decode_bad_ids(tok);
        nul_and_invalid(tok);
        t0 = tt_now_ms();
        long_inputs(tok);
        printf("long inputs %.0f ms\n", tt_now_ms() - t0);
        arguments(tok);
    }
    pg_tokenizer_free(tok);
    rmdir(tmpdir);
    return pg_test_finish();
}
