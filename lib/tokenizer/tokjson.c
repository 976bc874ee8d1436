/*
 * tokenizer.json (Hugging Face `tokenizers`), spec §10.6, read with jansson:
 *   model: type "BPE", vocab {piece: id}, merges ["a b", ...] or [["a", "b"], ...] (earlier =
 *          better), byte_fallback, unk_token;
 *   added_tokens: [{id, content, special, normalized, ...}], split out of the text first;
 *   normalizer / pre_tokenizer: only what maps onto SentencePiece's ' ' -> U+2581 (Replace,
 *          Prepend, Metaspace without splitting, the no-op Split on ' '); others are refused.
 * Added tokens get SentencePiece types so that PG_TOKENIZE_NO_PARSE_SPECIAL behaves as with
 * tokenizer.model: the unk token is UNKNOWN; <bos>/<eos>/<pad>, and special tokens that are
 * not in the BPE vocabulary (<image>), are CONTROL; all other added tokens are USER_DEFINED.
 *
 * Also here: the added_tokens_decoder of a tokenizer_config.json read beside a
 * tokenizer.model (how Hugging Face's slow tokenizer gets <image>).
 */
#include "tokenizer/tok_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct name {
    const char *s;
    size_t len;
    int type;
    unsigned attr;
    bool set;
} name;

static bool str_is(const json_t *v, const char *s)
{
    return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

static pg_status unsupported(const char *what, const char *part, const json_t *v)
{
    const char *type = json_string_value(json_object_get(v, "type"));
    return pg__error(PG_ERR_UNSUPPORTED, "%s: %s \"%s\" is not supported", what, part,
                     type ? type : "?");
}

static bool is_space_pattern(const json_t *pattern)
{
    return str_is(json_object_get(pattern, "String"), " ");
}

static pg_status read_normalizer(pg_tokenizer *tok, const json_t *n, const char *what)
{
    if (!n || json_is_null(n)) {
        return PG_OK;
    }
    const json_t *type = json_object_get(n, "type");
    if (str_is(type, "Sequence")) {
        const json_t *list = json_object_get(n, "normalizers");
        size_t i;
        const json_t *item;
        if (!json_is_array(list)) {
            return pg__error(PG_ERR_FORMAT, "%s: normalizer Sequence without a list", what);
        }
        json_array_foreach(list, i, item) {
            pg_status st = read_normalizer(tok, item, what);
            if (st) {
                return st;
            }
        }
        return PG_OK;
    }
    if (str_is(type, "Replace") && is_space_pattern(json_object_get(n, "pattern")) &&
        str_is(json_object_get(n, "content"), "\xE2\x96\x81")) {
        tok->escape_whitespace = true;
        return PG_OK;
    }
    if (str_is(type, "Prepend") && str_is(json_object_get(n, "prepend"), "\xE2\x96\x81")) {
        tok->add_dummy_prefix = true;
        return PG_OK;
    }
    return unsupported(what, "normalizer", n);
}

static pg_status read_pre_tokenizer(pg_tokenizer *tok, const json_t *p, const char *what)
{
    if (!p || json_is_null(p)) {
        return PG_OK;
    }
    const json_t *type = json_object_get(p, "type");
    if (str_is(type, "Sequence")) {
        const json_t *list = json_object_get(p, "pretokenizers");
        size_t i;
        const json_t *item;
        if (!json_is_array(list)) {
            return pg__error(PG_ERR_FORMAT, "%s: pre_tokenizer Sequence without a list", what);
        }
        json_array_foreach(list, i, item) {
            pg_status st = read_pre_tokenizer(tok, item, what);
            if (st) {
                return st;
            }
        }
        return PG_OK;
    }
    /* Splitting on ' ' after the normalizer turned every ' ' into U+2581 finds nothing. */
    if (str_is(type, "Split") && is_space_pattern(json_object_get(p, "pattern")) &&
        tok->escape_whitespace && !json_is_true(json_object_get(p, "invert"))) {
        return PG_OK;
    }
    if (str_is(type, "Metaspace") && str_is(json_object_get(p, "replacement"), "\xE2\x96\x81") &&
        !json_is_true(json_object_get(p, "split"))) {
        const json_t *scheme = json_object_get(p, "prepend_scheme");
        tok->escape_whitespace = true;
        if (str_is(scheme, "always") || str_is(scheme, "first") ||
            json_is_true(json_object_get(p, "add_prefix_space"))) {
            tok->add_dummy_prefix = true;
        }
        return PG_OK;
    }
    return unsupported(what, "pre_tokenizer", p);
}

static pg_status check_model(const json_t *model, const char *what)
{
    if (!json_is_object(model)) {
        return pg__error(PG_ERR_FORMAT, "%s: no \"model\" object", what);
    }
    if (!str_is(json_object_get(model, "type"), "BPE")) {
        return unsupported(what, "model type", model);
    }
    const json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) && json_number_value(dropout) != 0.0) {
        return pg__error(PG_ERR_UNSUPPORTED, "%s: BPE dropout is not supported", what);
    }
    const char *keys[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const json_t *v = json_object_get(model, keys[i]);
        if (v && !json_is_null(v) && !str_is(v, "")) {
            return pg__error(PG_ERR_UNSUPPORTED, "%s: BPE %s is not supported", what, keys[i]);
        }
    }
    if (json_is_true(json_object_get(model, "ignore_merges"))) {
        return pg__error(PG_ERR_UNSUPPORTED, "%s: BPE ignore_merges is not supported", what);
    }
    if (!json_is_object(json_object_get(model, "vocab"))) {
        return pg__error(PG_ERR_FORMAT, "%s: model.vocab is not an object", what);
    }
    if (!json_is_array(json_object_get(model, "merges"))) {
        return pg__error(PG_ERR_FORMAT, "%s: model.merges is not a list", what);
    }
    return PG_OK;
}

/* The number of ids: one past the largest id in the vocab and the added tokens. */
static pg_status count_ids(const json_t *vocab, const json_t *added, size_t *n, const char *what)
{
    int64_t max = -1;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= (1 << 24)) {
            return pg__error(PG_ERR_FORMAT, "%s: vocab entry \"%.40s\" has a bad id", what, key);
        }
        if (json_integer_value(v) > max) {
            max = json_integer_value(v);
        }
    }
    size_t i;
    json_array_foreach(added, i, v) {
        const json_t *id = json_object_get(v, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= (1 << 24) ||
            !json_is_string(json_object_get(v, "content"))) {
            return pg__error(PG_ERR_FORMAT, "%s: added_tokens[%zu] lacks a valid id or content",
                             what, i);
        }
        if (json_integer_value(id) > max) {
            max = json_integer_value(id);
        }
    }
    if (max < 0) {
        return pg__error(PG_ERR_FORMAT, "%s: the vocabulary is empty", what);
    }
    *n = (size_t)max + 1;
    return PG_OK;
}

static pg_status fill_vocab(name *names, const json_t *vocab, const char *what)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)vocab, key, v) {
        size_t id = (size_t)json_integer_value(v);
        if (names[id].set) {
            return pg__error(PG_ERR_FORMAT, "%s: id %zu is given to two pieces", what, id);
        }
        names[id] = (name){key, json_object_iter_key_len(json_object_key_to_iter(key)),
                           PG__PIECE_NORMAL, 0, true};
        if (pg__parse_byte_piece(key, names[id].len) >= 0) {
            names[id].type = PG__PIECE_BYTE;
        }
    }
    return PG_OK;
}

static pg_status fill_added(name *names, const json_t *added, const json_t *unk_token,
                            const char *what)
{
    size_t i;
    const json_t *v;
    json_array_foreach(added, i, v) {
        size_t id = (size_t)json_integer_value(json_object_get(v, "id"));
        const json_t *content = json_object_get(v, "content");
        const char *s = json_string_value(content);
        size_t len = json_string_length(content);
        if (json_is_true(json_object_get(v, "lstrip")) ||
            json_is_true(json_object_get(v, "rstrip")) ||
            json_is_true(json_object_get(v, "single_word"))) {
            return pg__error(PG_ERR_UNSUPPORTED,
                             "%s: added token \"%.40s\" uses lstrip/rstrip/single_word", what, s);
        }
        bool in_vocab = names[id].set;
        if (in_vocab && (names[id].len != len || memcmp(names[id].s, s, len) != 0)) {
            return pg__error(PG_ERR_FORMAT, "%s: added token %zu \"%.40s\" differs from vocab",
                             what, id, s);
        }
        bool special = json_is_true(json_object_get(v, "special"));
        bool normalized = json_is_true(json_object_get(v, "normalized"));
        int type = PG__PIECE_USER_DEFINED;
        if (json_is_string(unk_token) && strcmp(json_string_value(unk_token), s) == 0) {
            type = PG__PIECE_UNKNOWN;
        } else if (special && (!in_vocab || !strcmp(s, "<bos>") || !strcmp(s, "<eos>") ||
                               !strcmp(s, "<pad>"))) {
            type = PG__PIECE_CONTROL;
        }
        names[id] = (name){s, len, type,
                           (special ? PG__ATTR_SPECIAL : 0u) |
                               (normalized ? PG__ATTR_MATCH_NORM : PG__ATTR_MATCH_RAW),
                           true};
    }
    return PG_OK;
}

static pg_status add_pieces(pg_tokenizer *tok, const name *names, size_t n, const char *what)
{
    size_t bytes = n;
    for (size_t id = 0; id < n; id++) {
        bytes += names[id].len;
    }
    pg_status rs = pg__tok_reserve(tok, n, bytes);
    if (rs) {
        return rs;
    }
    for (size_t id = 0; id < n; id++) {
        if (!names[id].set) {
            return pg__error(PG_ERR_FORMAT, "%s: no piece has id %zu", what, id);
        }
        pg_status st = pg__tok_add_piece(tok, names[id].s, names[id].len, 0.0f, names[id].type,
                                         names[id].attr);
        if (st) {
            return st;
        }
    }
    return PG_OK;
}

/* One merge: "left right" (the older format) or ["left", "right"]. */
static pg_status read_merge(pg_tokenizer *tok, const json_t *m, size_t rank, const char *what)
{
    const char *a, *b;
    size_t la, lb;
    if (json_is_string(m)) {
        a = json_string_value(m);
        const char *sp = strchr(a, ' ');
        if (!sp || strchr(sp + 1, ' ')) {
            return pg__error(PG_ERR_FORMAT, "%s: merge %zu is not \"left right\"", what, rank);
        }
        la = (size_t)(sp - a);
        b = sp + 1;
        lb = json_string_length(m) - la - 1;
    } else if (json_is_array(m) && json_array_size(m) == 2 &&
               json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
        a = json_string_value(json_array_get(m, 0));
        la = json_string_length(json_array_get(m, 0));
        b = json_string_value(json_array_get(m, 1));
        lb = json_string_length(json_array_get(m, 1));
    } else {
        return pg__error(PG_ERR_FORMAT, "%s: merge %zu is neither a string nor a pair", what,
                         rank);
    }
    int32_t left = pg__tok_lookup(tok, a, la), right = pg__tok_lookup(tok, b, lb);
    char joined[512];
    if (left < 0 || right < 0 || la + lb > sizeof joined) {
        return pg__error(PG_ERR_FORMAT, "%s: merge %zu names a piece not in the vocabulary",
                         what, rank);
    }
    memcpy(joined, a, la);
    memcpy(joined + la, b, lb);
    int32_t result = pg__tok_lookup(tok, joined, la + lb);
    if (result < 0) {
        return pg__error(PG_ERR_FORMAT, "%s: merge %zu makes a piece not in the vocabulary",
                         what, rank);
    }
    pg__tok_merge_put(tok, left, right, (uint32_t)rank, result);
    return PG_OK;
}

static pg_status read_merges(pg_tokenizer *tok, const json_t *merges, const char *what)
{
    size_t n = json_array_size(merges);
    if (n >= (1u << 24)) { /* ranks are compared as floats: exact below 2^24 */
        return pg__error(PG_ERR_LIMIT, "%s: %zu merges is too many", what, n);
    }
    pg_status st = pg__tok_merges_init(tok, n);
    for (size_t i = 0; i < n && !st; i++) {
        st = read_merge(tok, json_array_get(merges, i), i, what);
    }
    return st;
}

static pg_status read_root(pg_tokenizer *tok, const json_t *root, const char *what)
{
    const json_t *model = json_object_get(root, "model");
    pg_status st = check_model(model, what);
    if (st) {
        return st;
    }
    const json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_array(added)) {
        return pg__error(PG_ERR_FORMAT, "%s: added_tokens is not a list", what);
    }
    tok->escape_whitespace = false; /* only what the normalizer says */
    if ((st = read_normalizer(tok, json_object_get(root, "normalizer"), what)) ||
        (st = read_pre_tokenizer(tok, json_object_get(root, "pre_tokenizer"), what))) {
        return st;
    }
    const json_t *vocab = json_object_get(model, "vocab");
    const json_t *unk_token = json_object_get(model, "unk_token");
    size_t n = 0;
    if ((st = count_ids(vocab, added, &n, what))) {
        return st;
    }
    name *names = pg__calloc(n, sizeof *names);
    if (!names) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    if (!(st = fill_vocab(names, vocab, what)) &&
        !(st = fill_added(names, added, unk_token, what))) {
        st = add_pieces(tok, names, n, what);
    }
    free(names);
    if (st || (st = pg__tok_build_index(tok, what))) {
        return st;
    }
    tok->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
    if (json_is_string(unk_token)) {
        tok->unk = pg__tok_lookup(tok, json_string_value(unk_token),
                                  json_string_length(unk_token));
        if (tok->unk < 0) {
            return pg__error(PG_ERR_FORMAT, "%s: unk_token is not in the vocabulary", what);
        }
    }
    tok->bos = pg__tok_lookup(tok, "<bos>", 5);
    tok->eos = pg__tok_lookup(tok, "<eos>", 5);
    tok->pad = pg__tok_lookup(tok, "<pad>", 5);
    snprintf(tok->format, sizeof tok->format, "json");
    return read_merges(tok, json_object_get(model, "merges"), what);
}

static pg_status parse(const char *data, size_t size, size_t flags, const char *what,
                       json_t **root)
{
    json_error_t err;
    *root = json_loadb(data, size, JSON_ALLOW_NUL | flags, &err);
    if (!*root) {
        return pg__error(PG_ERR_FORMAT, "%s: invalid JSON at line %d column %d: %s", what,
                         err.line, err.column, err.text);
    }
    if (!json_is_object(*root)) {
        json_decref(*root);
        return pg__error(PG_ERR_FORMAT, "%s: the JSON is not an object", what);
    }
    return PG_OK;
}

pg_status pg__tokjson_read(pg_tokenizer *tok, const char *data, size_t size, const char *what)
{
    json_t *root;
    pg_status st = parse(data, size, 0, what, &root);
    if (st) {
        return st;
    }
    st = read_root(tok, root, what);
    json_decref(root);
    return st;
}

/* ---- tokenizer_config.json beside a tokenizer.model ---- */

static pg_status config_token(pg_tokenizer *tok, size_t id, const json_t *v, const char *what)
{
    const json_t *content = json_object_get(v, "content");
    if (!json_is_string(content)) {
        return pg__error(PG_ERR_FORMAT, "%s: added token %zu has no content", what, id);
    }
    const char *s = json_string_value(content);
    size_t len = json_string_length(content);
    bool special = json_is_true(json_object_get(v, "special"));
    if (id < tok->n) {
        if (tok->len[id] != len || memcmp(tok->blob + tok->off[id], s, len) != 0) {
            return pg__error(PG_ERR_FORMAT,
                             "%s: added token %zu \"%.40s\" differs from tokenizer.model", what,
                             id, s);
        }
        if (special) {
            tok->attr[id] |= PG__ATTR_SPECIAL;
        }
        return PG_OK;
    }
    if (id != tok->n) {
        return pg__error(PG_ERR_FORMAT, "%s: added token ids leave a gap before %zu", what, id);
    }
    bool normalized = json_is_true(json_object_get(v, "normalized"));
    unsigned attr = (special ? PG__ATTR_SPECIAL : 0u) |
                    (normalized ? PG__ATTR_MATCH_NORM : PG__ATTR_MATCH_RAW);
    return pg__tok_add_piece(tok, s, len, 0.0f,
                             special ? PG__PIECE_CONTROL : PG__PIECE_USER_DEFINED, attr);
}

typedef struct keyed {
    size_t id;
    const json_t *v;
} keyed;

static int by_id(const void *a, const void *b)
{
    size_t x = ((const keyed *)a)->id, y = ((const keyed *)b)->id;
    return (x > y) - (x < y);
}

pg_status pg__tokjson_read_config(pg_tokenizer *tok, const char *data, size_t size,
                                  const char *what)
{
    json_t *root;
    /* Integers are read as doubles: model_max_length is often 1e30, past int64. */
    pg_status st = parse(data, size, JSON_DECODE_INT_AS_REAL, what, &root);
    if (st) {
        return st;
    }
    const json_t *dec = json_object_get(root, "added_tokens_decoder");
    size_t n = json_is_object(dec) ? json_object_size(dec) : 0;
    keyed *items = pg__malloc_array(n ? n : 1, sizeof *items);
    size_t k = 0;
    if (!items) {
        st = PG_ERR_OUT_OF_MEMORY;
    }
    const char *key;
    json_t *v;
    if (!st && n) {
        json_object_foreach((json_t *)dec, key, v) {
            char *end;
            unsigned long id = strtoul(key, &end, 10);
            if (*key < '0' || *key > '9' || *end != '\0' || id >= (1u << 24) ||
                !json_is_object(v)) {
                st = pg__error(PG_ERR_FORMAT, "%s: bad added_tokens_decoder key \"%.20s\"",
                               what, key);
                break;
            }
            items[k++] = (keyed){id, v};
        }
    }
    if (!st) {
        qsort(items, k, sizeof *items, by_id); /* keys are decimal ids in any order */
    }
    for (size_t i = 0; i < k && !st; i++) {
        st = config_token(tok, items[i].id, items[i].v, what);
    }
    free(items);
    json_decref(root);
    return st;
}
