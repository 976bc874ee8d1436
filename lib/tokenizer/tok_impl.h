/*
 * Internals of the tokenizer room, shared by its source files (not by other rooms, which use
 * tokenizer/tokenizer.h).
 *
 * The tokenizer holds one piece table whatever file it came from:
 *   - tokenizer.model (SentencePiece ModelProto, spm_proto.c): pieces with scores and types;
 *     BPE merges any adjacent pair whose concatenation is a mergeable piece, best score first.
 *   - tokenizer.json (Hugging Face, tokjson.c): vocab + ordered merges; BPE merges an adjacent
 *     pair listed in `merges`, lowest rank first. Added tokens get SentencePiece-like types.
 * Encoding (encode.c) = optional split on added-token text in the raw input (Hugging Face
 * "parse special" behaviour), normalization (' ' -> U+2581), then BPE (bpe.c) with frozen
 * user-defined pieces, then byte fallback. Decoding is in decode.c.
 */
#ifndef PG_TOK_IMPL_H
#define PG_TOK_IMPL_H

#include "tokenizer/tokenizer.h"

/* SentencePiece piece types (sentencepiece_model.proto), values as in the file. */
enum {
    PG__PIECE_NORMAL = 1,
    PG__PIECE_UNKNOWN = 2,
    PG__PIECE_CONTROL = 3,
    PG__PIECE_USER_DEFINED = 4,
    PG__PIECE_UNUSED = 5,
    PG__PIECE_BYTE = 6
};

/* Per-id attributes. */
enum {
    PG__ATTR_SPECIAL = 1,    /* left out by PG_DETOKENIZE_SKIP_SPECIAL */
    PG__ATTR_MATCH_RAW = 2,  /* parse-special mode: cut out of the raw input text */
    PG__ATTR_MATCH_NORM = 4  /* parse-special mode: frozen when found in normalized text */
};

/* A byte trie for leftmost-longest matching of added / user-defined pieces. */
typedef struct pg__trie_node {
    uint32_t child;   /* index of the first child, 0 = none (node 0 is the root) */
    uint32_t sibling; /* index of the next sibling, 0 = none */
    int32_t id;       /* piece id ending here, -1 = none */
    uint8_t byte;
} pg__trie_node;

typedef struct pg__trie {
    pg__trie_node *nodes;
    uint32_t n, cap;
    uint32_t n_keys;
    uint8_t first[32]; /* bitmap of the first bytes of all keys: a fast "no match here" */
} pg__trie;

pg_status pg__trie_init(pg__trie *t);
void pg__trie_free(pg__trie *t);
/* Adds a key (non-empty); a later duplicate key keeps the first id. */
pg_status pg__trie_add(pg__trie *t, const char *key, size_t len, int32_t id);
/* Longest key that is a prefix of s[0..n): returns its id and sets *match_len, or -1. */
int32_t pg__trie_longest(const pg__trie *t, const unsigned char *s, size_t n,
                         size_t *match_len);

/* One merge of tokenizer.json: the pair (left id, right id) -> result id, by rank. */
typedef struct pg__merge_slot {
    uint64_t key; /* (left << 32) | right; UINT64_MAX = empty */
    uint32_t rank;
    int32_t result;
} pg__merge_slot;

struct pg_tokenizer {
    uint32_t n;             /* number of ids (pieces, plus added tokens beyond them) */
    uint32_t cap;           /* allocated entries of the per-id arrays */
    char *blob;             /* all piece texts, each NUL-terminated */
    size_t blob_len, blob_cap;
    uint32_t *off, *len;    /* piece text = blob + off[id], len[id] bytes */
    float *score;           /* merge priority: SentencePiece score, or -rank for merges */
    uint8_t *type;          /* PG__PIECE_* */
    uint8_t *attr;          /* PG__ATTR_* bits */
    int16_t *byte_val;      /* for BYTE pieces the byte value, else -1 */

    uint64_t *slots;        /* piece text -> (hash tag << 32) | (id + 1); 0 = empty */
    uint32_t slot_mask;
    int32_t ascii_id[128];  /* id of each one-byte piece, -1 = none (the commonest lookup) */

    uint64_t *pairs;        /* set of (char, next char) found inside pieces; see bpe.c */
    uint32_t pair_mask, n_pairs;

    bool use_merges;        /* tokenizer.json: rank merges by list order (Hugging Face BPE) */
    pg__merge_slot *merges;
    uint32_t merge_mask;
    uint32_t n_merges;

    bool byte_fallback;
    bool owned_by_model;    /* a model's tokenizer: pg_tokenizer_free leaves it alone */
    bool has_unused;        /* some piece is UNUSED: merged UNUSED pieces are split back */
    bool ignore_merges;     /* Hugging Face BPE: a whole word found in the vocab is one id */
    /* normalizer */
    bool escape_whitespace; /* ' ' -> U+2581 */
    bool add_dummy_prefix;  /* prepend U+2581 to each normalized segment */
    bool remove_extra_whitespace;

    int32_t byte_id[256];   /* byte fallback: byte -> id, -1 = none */
    int32_t unk, bos, eos, pad, image, newline, loc0, seg0;

    pg__trie raw_trie;      /* parse-special mode: added tokens cut out of the raw text */
    pg__trie frozen_hf;     /* parse-special mode: pieces frozen in the normalized text */
    pg__trie frozen_spm;    /* SentencePiece mode: USER_DEFINED pieces, frozen */
    char format[8];         /* "model" or "json" */
};

/* Piece table building (vocab.c). */
pg_tokenizer *pg__tok_new(void);
/* Reserves room for n pieces of text_bytes in all (a hint: adding more still works). */
pg_status pg__tok_reserve(pg_tokenizer *tok, size_t n_pieces, size_t text_bytes);
/* Appends a piece as the next id; no duplicate check (done by pg__tok_finalize). */
pg_status pg__tok_add_piece(pg_tokenizer *tok, const char *piece, size_t len, float score,
                            int type, unsigned attr);
/* Builds the text -> id index (rejects duplicates); done by finalize if not yet. */
pg_status pg__tok_build_index(pg_tokenizer *tok, const char *what);
/* Builds the byte-fallback table, special ids and tries; validates. */
pg_status pg__tok_finalize(pg_tokenizer *tok, const char *what);
/* The byte of a "<0xXX>" piece text, or -1. */
int pg__parse_byte_piece(const char *s, size_t len);
/* Id of an exact piece text, or -1. */
int32_t pg__tok_lookup(const pg_tokenizer *tok, const char *s, size_t len);
/* Merge table (tokenizer.json). */
pg_status pg__tok_merges_init(pg_tokenizer *tok, size_t n_merges);
void pg__tok_merge_put(pg_tokenizer *tok, int32_t left, int32_t right, uint32_t rank,
                       int32_t result);
const pg__merge_slot *pg__tok_merge_get(const pg_tokenizer *tok, int32_t left, int32_t right);

/* Whether some piece holds the character `a` (its UTF-8 bytes packed big-endian into an
 * integer) directly followed by `b`; if not, no merge crosses between them. */
bool pg__tok_pair_possible(const pg_tokenizer *tok, uint32_t a, uint32_t b);

static inline bool pg__tok_mergeable(const pg_tokenizer *tok, int32_t id)
{
    uint8_t t = tok->type[id];
    return t == PG__PIECE_NORMAL || t == PG__PIECE_USER_DEFINED || t == PG__PIECE_UNUSED;
}

/* Readers: fill a new tokenizer from file contents (not yet finalized). */
pg_status pg__spm_proto_read(pg_tokenizer *tok, const unsigned char *data, size_t size,
                             const char *what);
pg_status pg__tokjson_read(pg_tokenizer *tok, const char *data, size_t size, const char *what);
/* Applies the added_tokens_decoder of a tokenizer_config.json beside a tokenizer.model:
 * ids past the pieces are appended (e.g. <image>), `special` marks are taken over. */
pg_status pg__tokjson_read_config(pg_tokenizer *tok, const char *data, size_t size,
                                  const char *what);

/* A growable id vector. */
typedef struct pg__ids {
    int32_t *v;
    size_t n, cap;
} pg__ids;
pg_status pg__ids_push(pg__ids *ids, int32_t id);

/* BPE over already normalized text (valid UTF-8); appends ids. `frozen` may be NULL. */
pg_status pg__bpe_encode(const pg_tokenizer *tok, const unsigned char *s, size_t n,
                         const pg__trie *frozen, pg__ids *out);

#endif /* PG_TOK_IMPL_H */
