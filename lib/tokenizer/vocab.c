/*
 * The piece table: texts in one blob, per-id score/type/attributes, an open-addressing hash
 * from text to id, the merge table of tokenizer.json, and the checks and derived tables
 * (byte fallback, special ids, tries) built once after a reader has filled the pieces.
 */
#include "tokenizer/tok_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* Ids are int32 and lengths uint32: far above any real vocabulary (257k pieces). */
#define PG__TOK_MAX_PIECES (1u << 24)
#define PG__TOK_MAX_BLOB ((size_t)1 << 31)

pg_tokenizer *pg__tok_new(void)
{
    pg_tokenizer *tok = pg__calloc(1, sizeof *tok);
    if (!tok) {
        return NULL;
    }
    tok->unk = tok->bos = tok->eos = tok->pad = -1;
    tok->image = tok->newline = tok->loc0 = tok->seg0 = -1;
    tok->escape_whitespace = true;
    for (int b = 0; b < 256; b++) {
        tok->byte_id[b] = -1;
    }
    if (pg__trie_init(&tok->raw_trie) || pg__trie_init(&tok->frozen_hf) ||
        pg__trie_init(&tok->frozen_spm)) {
        pg__tokenizer_free(tok);
        return NULL;
    }
    return tok;
}

void pg__tokenizer_free(pg_tokenizer *tok)
{
    if (!tok) {
        return;
    }
    free(tok->blob);
    free(tok->off);
    free(tok->len);
    free(tok->score);
    free(tok->type);
    free(tok->attr);
    free(tok->byte_val);
    free(tok->slots);
    free(tok->merges);
    free(tok->pairs);
    pg__trie_free(&tok->raw_trie);
    pg__trie_free(&tok->frozen_hf);
    pg__trie_free(&tok->frozen_spm);
    free(tok);
}

static pg_status grow_arrays(pg_tokenizer *tok, uint32_t cap)
{
    void *p;
#define PG__GROW(field)                                                                    \
    p = realloc(tok->field, (size_t)cap * sizeof *tok->field);                             \
    if (!p) {                                                                              \
        return pg__error(PG_ERR_OUT_OF_MEMORY, "out of memory for %u pieces", cap);        \
    }                                                                                      \
    tok->field = p;
    PG__GROW(off)
    PG__GROW(len)
    PG__GROW(score)
    PG__GROW(type)
    PG__GROW(attr)
#undef PG__GROW
    tok->cap = cap;
    return PG_OK;
}

pg_status pg__tok_add_piece(pg_tokenizer *tok, const char *piece, size_t len, float score,
                            int type, unsigned attr)
{
    if (tok->n >= PG__TOK_MAX_PIECES) {
        return pg__error(PG_ERR_LIMIT, "more than %u pieces", PG__TOK_MAX_PIECES);
    }
    if (len >= PG__TOK_MAX_BLOB || tok->blob_len + len + 1 > PG__TOK_MAX_BLOB) {
        return pg__error(PG_ERR_LIMIT, "piece texts exceed %zu bytes", PG__TOK_MAX_BLOB);
    }
    if (tok->n == tok->cap && grow_arrays(tok, tok->cap ? tok->cap * 2 : 1024)) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    if (tok->blob_len + len + 1 > tok->blob_cap) {
        size_t cap = tok->blob_cap ? tok->blob_cap : 65536;
        while (cap < tok->blob_len + len + 1) {
            cap *= 2;
        }
        char *b = pg__realloc(tok->blob, cap);
        if (!b) {
            return PG_ERR_OUT_OF_MEMORY;
        }
        tok->blob = b;
        tok->blob_cap = cap;
    }
    memcpy(tok->blob + tok->blob_len, piece, len);
    tok->blob[tok->blob_len + len] = '\0';
    uint32_t id = tok->n++;
    tok->off[id] = (uint32_t)tok->blob_len;
    tok->len[id] = (uint32_t)len;
    tok->score[id] = score;
    tok->type[id] = (uint8_t)type;
    tok->attr[id] = (uint8_t)attr;
    tok->blob_len += len + 1;
    return PG_OK;
}

pg_status pg__tok_reserve(pg_tokenizer *tok, size_t n_pieces, size_t text_bytes)
{
    if (n_pieces > PG__TOK_MAX_PIECES || text_bytes > PG__TOK_MAX_BLOB) {
        return PG_OK; /* pg__tok_add_piece reports the limit when it is reached */
    }
    if (n_pieces > tok->cap && grow_arrays(tok, (uint32_t)n_pieces)) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    if (text_bytes > tok->blob_cap) {
        char *b = pg__realloc(tok->blob, text_bytes);
        if (!b) {
            return PG_ERR_OUT_OF_MEMORY;
        }
        tok->blob = b;
        tok->blob_cap = text_bytes;
    }
    return PG_OK;
}

static inline uint64_t hash_text(const char *s, size_t len)
{
    return XXH3_64bits(s, len);
}

/* A slot keeps the upper hash bits as a tag, so a probe only touches the piece text when
 * the tags agree (open addressing with linear probing, load factor <= 1/2). */
int32_t pg__tok_lookup(const pg_tokenizer *tok, const char *s, size_t len)
{
    if (len == 1 && (unsigned char)s[0] < 0x80) {
        return tok->ascii_id[(unsigned char)s[0]];
    }
    if (!tok->slots) {
        return -1;
    }
    uint64_t h = hash_text(s, len);
    uint32_t tag = (uint32_t)(h >> 32);
    uint32_t i = (uint32_t)h & tok->slot_mask;
    for (;;) {
        uint64_t v = tok->slots[i];
        if (v == 0) {
            return -1;
        }
        if ((uint32_t)(v >> 32) == tag) {
            uint32_t id = (uint32_t)v - 1;
            if (tok->len[id] == len && memcmp(tok->blob + tok->off[id], s, len) == 0) {
                return (int32_t)id;
            }
        }
        i = (i + 1) & tok->slot_mask;
    }
}

pg_status pg__tok_build_index(pg_tokenizer *tok, const char *what)
{
    if (tok->n == 0) {
        return pg__error(PG_ERR_FORMAT, "%s: the vocabulary has no pieces", what);
    }
    free(tok->slots);
    uint32_t size = 1024;
    while (size < 2 * tok->n) {
        size *= 2;
    }
    tok->slots = pg__calloc(size, sizeof *tok->slots);
    if (!tok->slots) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    tok->slot_mask = size - 1;
    for (int c = 0; c < 128; c++) {
        tok->ascii_id[c] = -1;
    }
    for (uint32_t id = 0; id < tok->n; id++) {
        const char *s = tok->blob + tok->off[id];
        size_t len = tok->len[id];
        uint64_t h = hash_text(s, len);
        uint32_t i = (uint32_t)h & tok->slot_mask;
        while (tok->slots[i]) {
            uint32_t other = (uint32_t)tok->slots[i] - 1;
            if (tok->len[other] == len && memcmp(tok->blob + tok->off[other], s, len) == 0) {
                return pg__error(PG_ERR_FORMAT, "%s: piece %u duplicates piece %u (\"%.40s\")",
                                 what, id, other, s);
            }
            i = (i + 1) & tok->slot_mask;
        }
        tok->slots[i] = (h >> 32 << 32) | (id + 1);
        if (len == 1 && (unsigned char)s[0] < 0x80) {
            tok->ascii_id[(unsigned char)s[0]] = (int32_t)id;
        }
    }
    return PG_OK;
}

/* ---- merges (tokenizer.json) ---- */

static inline uint32_t hash_pair(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (uint32_t)key;
}

pg_status pg__tok_merges_init(pg_tokenizer *tok, size_t n_merges)
{
    size_t size = 1024;
    while (size < n_merges + n_merges / 2 + 1) {
        if (size > (1u << 30)) {
            return pg__error(PG_ERR_LIMIT, "too many merges (%zu)", n_merges);
        }
        size *= 2;
    }
    tok->merges = pg__malloc_array(size, sizeof *tok->merges);
    if (!tok->merges) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    for (size_t i = 0; i < size; i++) {
        tok->merges[i].key = UINT64_MAX;
    }
    tok->merge_mask = (uint32_t)(size - 1);
    tok->use_merges = true;
    return PG_OK;
}

void pg__tok_merge_put(pg_tokenizer *tok, int32_t left, int32_t right, uint32_t rank,
                       int32_t result)
{
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    uint32_t i = hash_pair(key) & tok->merge_mask;
    while (tok->merges[i].key != UINT64_MAX) {
        if (tok->merges[i].key == key) {
            return; /* a repeated pair keeps its first (best) rank, as in Hugging Face */
        }
        i = (i + 1) & tok->merge_mask;
    }
    tok->merges[i].key = key;
    tok->merges[i].rank = rank;
    tok->merges[i].result = result;
    tok->n_merges++;
}

const pg__merge_slot *pg__tok_merge_get(const pg_tokenizer *tok, int32_t left, int32_t right)
{
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    uint32_t i = hash_pair(key) & tok->merge_mask;
    for (;;) {
        const pg__merge_slot *m = &tok->merges[i];
        if (m->key == key) {
            return m;
        }
        if (m->key == UINT64_MAX) {
            return NULL;
        }
        i = (i + 1) & tok->merge_mask;
    }
}

/* ---- finalize ---- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

int pg__parse_byte_piece(const char *s, size_t len)
{
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') {
        return -1;
    }
    int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static pg_status check_pieces(pg_tokenizer *tok, const char *what)
{
    tok->byte_val = pg__malloc_array(tok->n, sizeof *tok->byte_val);
    if (!tok->byte_val) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    tok->has_unused = false;
    for (uint32_t id = 0; id < tok->n; id++) {
        const char *s = tok->blob + tok->off[id];
        size_t len = tok->len[id];
        if (len == 0) {
            return pg__error(PG_ERR_FORMAT, "%s: piece %u is empty", what, id);
        }
        for (size_t i = 0; i < len;) {
            int k = pg__utf8_check((const unsigned char *)s + i, len - i);
            if (k <= 0) {
                return pg__error(PG_ERR_FORMAT, "%s: piece %u is not valid UTF-8", what, id);
            }
            i += (size_t)k;
        }
        if (tok->type[id] < PG__PIECE_NORMAL || tok->type[id] > PG__PIECE_BYTE) {
            return pg__error(PG_ERR_FORMAT, "%s: piece %u has unknown type %u", what, id,
                             tok->type[id]);
        }
        tok->byte_val[id] = -1;
        if (tok->type[id] == PG__PIECE_BYTE) {
            int b = pg__parse_byte_piece(s, len);
            if (b < 0) {
                return pg__error(PG_ERR_FORMAT, "%s: byte piece %u is not <0xXX>: \"%.20s\"",
                                 what, id, s);
            }
            tok->byte_val[id] = (int16_t)b;
            if (tok->byte_id[b] < 0) {
                tok->byte_id[b] = (int32_t)id;
            }
        }
        if (tok->type[id] == PG__PIECE_UNUSED) {
            tok->has_unused = true;
        }
    }
    return PG_OK;
}

/* Byte fallback: bytes without a <0xXX> piece may still be spelled as a one-byte piece
 * (Gemma's tokenizer.json spells byte 0x09 as "\t"). */
static pg_status fill_byte_ids(pg_tokenizer *tok, const char *what)
{
    int missing = 0;
    for (int b = 0; b < 256; b++) {
        if (tok->byte_id[b] < 0 && b < 0x80) {
            char c = (char)b;
            tok->byte_id[b] = pg__tok_lookup(tok, &c, 1);
        }
        missing += tok->byte_id[b] < 0;
    }
    if (tok->byte_fallback && missing) {
        return pg__error(PG_ERR_FORMAT,
                         "%s: byte fallback is on but %d of the 256 byte pieces <0xXX> are "
                         "missing",
                         what, missing);
    }
    if (tok->unk < 0 && !tok->byte_fallback) {
        return pg__error(PG_ERR_FORMAT, "%s: the vocabulary has no unknown piece (<unk>)",
                         what);
    }
    return PG_OK;
}

/* First id of the run of `count` pieces <prefixNNN> (`digits` wide), or -1 if any is missing
 * or the run is not contiguous. */
static int32_t find_run(const pg_tokenizer *tok, const char *prefix, int digits, int count)
{
    char name[32];
    snprintf(name, sizeof name, "<%s%0*d>", prefix, digits, 0);
    int32_t first = pg__tok_lookup(tok, name, strlen(name));
    if (first < 0) {
        return -1;
    }
    for (int i = 1; i < count; i++) {
        snprintf(name, sizeof name, "<%s%0*d>", prefix, digits, i);
        if (pg__tok_lookup(tok, name, strlen(name)) != first + i) {
            return -1;
        }
    }
    return first;
}

static pg_status check_special_ids(pg_tokenizer *tok, const char *what)
{
    int32_t *ids[] = {&tok->unk, &tok->bos, &tok->eos, &tok->pad};
    const char *names[] = {"unk", "bos", "eos", "pad"};
    for (int i = 0; i < 4; i++) {
        if (*ids[i] >= (int32_t)tok->n || *ids[i] < -1) {
            return pg__error(PG_ERR_FORMAT, "%s: %s id %d is outside the vocabulary of %u",
                             what, names[i], *ids[i], tok->n);
        }
    }
    tok->image = pg__tok_lookup(tok, "<image>", 7);
    tok->newline = pg__tok_lookup(tok, "\n", 1);
    tok->loc0 = find_run(tok, "loc", 4, 1024);
    tok->seg0 = find_run(tok, "seg", 3, 128);
    return PG_OK;
}

/* ---- the pair set (see bpe.c) ---- */

#define PAIR_EMPTY UINT64_MAX /* packed characters never have all bits set */

static inline uint32_t pair_slot(uint64_t key, uint32_t mask)
{
    return hash_pair(key) & mask;
}

static void pair_insert(uint64_t *table, uint32_t mask, uint64_t key, uint32_t *count)
{
    uint32_t i = pair_slot(key, mask);
    while (table[i] != PAIR_EMPTY) {
        if (table[i] == key) {
            return;
        }
        i = (i + 1) & mask;
    }
    table[i] = key;
    (*count)++;
}

static pg_status pair_grow(pg_tokenizer *tok)
{
    uint32_t size = tok->pairs ? (tok->pair_mask + 1) * 2 : 1u << 16;
    if (size > (1u << 28)) {
        return pg__error(PG_ERR_LIMIT, "too many character pairs in the vocabulary");
    }
    uint64_t *t = pg__malloc_array(size, sizeof *t);
    if (!t) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    for (uint32_t i = 0; i < size; i++) {
        t[i] = PAIR_EMPTY;
    }
    uint32_t count = 0;
    for (uint32_t i = 0; tok->pairs && i <= tok->pair_mask; i++) {
        if (tok->pairs[i] != PAIR_EMPTY) {
            pair_insert(t, size - 1, tok->pairs[i], &count);
        }
    }
    free(tok->pairs);
    tok->pairs = t;
    tok->pair_mask = size - 1;
    tok->n_pairs = count;
    return PG_OK;
}

static pg_status build_pairs(pg_tokenizer *tok)
{
    pg_status st = pair_grow(tok);
    for (uint32_t id = 0; id < tok->n && !st; id++) {
        if (tok->type[id] == PG__PIECE_BYTE) {
            continue; /* never the result of a merge */
        }
        const unsigned char *p = (const unsigned char *)tok->blob + tok->off[id];
        size_t len = tok->len[id];
        uint32_t prev = 0;
        for (size_t i = 0; i < len && !st;) {
            size_t k = (size_t)pg__utf8_check(p + i, len - i); /* pieces are valid UTF-8 */
            uint32_t key = 0;
            for (size_t j = 0; j < k; j++) {
                key = key << 8 | p[i + j];
            }
            if (i > 0) {
                if (tok->n_pairs * 2 > tok->pair_mask) {
                    st = pair_grow(tok);
                }
                pair_insert(tok->pairs, tok->pair_mask, (uint64_t)prev << 32 | key,
                            &tok->n_pairs);
            }
            prev = key;
            i += k;
        }
    }
    return st;
}

bool pg__tok_pair_possible(const pg_tokenizer *tok, uint32_t a, uint32_t b)
{
    uint64_t key = (uint64_t)a << 32 | b;
    uint32_t i = pair_slot(key, tok->pair_mask);
    for (;;) {
        if (tok->pairs[i] == key) {
            return true;
        }
        if (tok->pairs[i] == PAIR_EMPTY) {
            return false;
        }
        i = (i + 1) & tok->pair_mask;
    }
}

/* Inserts `key` into a trie, with ' ' spelled U+2581 when the normalizer does so. */
static pg_status trie_add_normalized(const pg_tokenizer *tok, pg__trie *t, const char *key,
                                     size_t len, int32_t id)
{
    if (!tok->escape_whitespace || !memchr(key, ' ', len)) {
        return pg__trie_add(t, key, len, id);
    }
    char *buf = pg__malloc_array(len, 3);
    if (!buf) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (key[i] == ' ') {
            memcpy(buf + k, "\xE2\x96\x81", 3);
            k += 3;
        } else {
            buf[k++] = key[i];
        }
    }
    pg_status st = pg__trie_add(t, buf, k, id);
    free(buf);
    return st;
}

static pg_status build_tries(pg_tokenizer *tok)
{
    for (uint32_t id = 0; id < tok->n; id++) {
        const char *s = tok->blob + tok->off[id];
        size_t len = tok->len[id];
        pg_status st = PG_OK;
        if (tok->attr[id] & PG__ATTR_MATCH_RAW) {
            st = pg__trie_add(&tok->raw_trie, s, len, (int32_t)id);
        }
        if (!st && (tok->attr[id] & PG__ATTR_MATCH_NORM)) {
            st = trie_add_normalized(tok, &tok->frozen_hf, s, len, (int32_t)id);
        }
        if (!st && tok->type[id] == PG__PIECE_USER_DEFINED) {
            st = pg__trie_add(&tok->frozen_spm, s, len, (int32_t)id);
        }
        if (st) {
            return st;
        }
    }
    return PG_OK;
}

pg_status pg__tok_finalize(pg_tokenizer *tok, const char *what)
{
    pg_status st;
    if (!tok->slots && (st = pg__tok_build_index(tok, what))) {
        return st;
    }
    if ((st = check_pieces(tok, what)) || (st = fill_byte_ids(tok, what)) ||
        (st = check_special_ids(tok, what)) || (st = build_tries(tok)) ||
        (st = build_pairs(tok))) {
        return st;
    }
    return PG_OK;
}

pg_status pg__ids_push(pg__ids *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = pg__malloc_array(cap, sizeof *v);
        if (!v) {
            return PG_ERR_OUT_OF_MEMORY;
        }
        if (ids->n) {
            memcpy(v, ids->v, ids->n * sizeof *v);
        }
        free(ids->v);
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return PG_OK;
}

