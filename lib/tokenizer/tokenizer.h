/*
 * tokenizer: the Gemma / PaliGemma SentencePiece-BPE tokenizer (spec §10), loaded from
 * tokenizer.model (protobuf) or tokenizer.json, encode (Hugging Face or SentencePiece
 * special-token handling), decode, and an incremental decoder for streaming.
 * struct pg_tokenizer is the public opaque handle; it is immutable after load.
 */
#ifndef PG_TOKENIZER_H
#define PG_TOKENIZER_H

#include "core/core.h"

typedef struct pg_tokenizer pg_tokenizer;

/* Loads from a file (.model or .json, by content) or a model folder. */
pg_status pg__tokenizer_load(pg_tokenizer **out, const char *path);
void pg__tokenizer_free(pg_tokenizer *tok);
/* Marks a model's tokenizer: the public pg_tokenizer_free then ignores it (the model frees it). */
void pg__tokenizer_mark_owned(pg_tokenizer *tok);

/* Encodes into a new array (free with free()); flags are PG_TOKENIZE_*. */
pg_status pg__tokenizer_encode(const pg_tokenizer *tok, const char *text, size_t len,
                               uint32_t flags, int32_t **ids, size_t *n);

/* Number of pieces; id of a PG_TOKEN_* kind (-1 if absent). */
uint32_t pg__tokenizer_size(const pg_tokenizer *tok);
int32_t pg__tokenizer_special(const pg_tokenizer *tok, int32_t kind);
/* True for control tokens (<bos>, <eos>, <pad>, <image>, ...) that decode to nothing when
 * skipping specials. */
bool pg__tokenizer_is_control(const pg_tokenizer *tok, int32_t id);

/*
 * Incremental decoding for streaming: feed ids one at a time; each call appends to `out`
 * only the text that became complete UTF-8 (a token ending inside a multi-byte character
 * yields nothing until the character is complete). finish() flushes a dangling partial
 * sequence as U+FFFD.
 */
typedef struct pg__detok_stream {
    unsigned char pending[8]; /* bytes of an incomplete UTF-8 character */
    size_t n_pending;
    uint32_t flags;           /* PG_DETOKENIZE_*; the top bit is decoder state */
} pg__detok_stream;

void pg__detok_stream_init(pg__detok_stream *st, uint32_t flags);
/* Appends the newly complete text for `id` to *buf (a growable malloc'd buffer of *len bytes,
 * capacity *cap, kept NUL-terminated). */
pg_status pg__detok_stream_push(const pg_tokenizer *tok, pg__detok_stream *st, int32_t id,
                                char **buf, size_t *len, size_t *cap);
pg_status pg__detok_stream_finish(const pg_tokenizer *tok, pg__detok_stream *st, char **buf,
                                  size_t *len, size_t *cap);

#endif /* PG_TOKENIZER_H */
