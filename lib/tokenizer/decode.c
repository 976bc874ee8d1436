/*
 * Decoding (spec §10.5): each id becomes bytes (a BYTE piece its byte, any other piece its
 * text with U+2581 turned back into ' '), and the byte stream is made valid UTF-8: a byte
 * that starts no valid sequence becomes U+FFFD (one per byte, as SentencePiece does).
 * Special tokens (<bos>, <eos>, <image>, ...) are written as their text unless
 * PG_DETOKENIZE_SKIP_SPECIAL is set (Hugging Face's decode(skip_special_tokens=...)).
 *
 * With a dummy prefix or whitespace cleanup in the normalizer (not Gemma's), the U+2581 that
 * starts the first piece of the text is dropped, as SentencePiece does.
 *
 * The same code serves whole-sequence and streaming decoding: an incomplete but so far valid
 * UTF-8 sequence at the end is held back in the stream until the next id completes (or
 * breaks) it, or until finish() turns it into U+FFFD.
 */
#include "tokenizer/tok_impl.h"

#include <stdlib.h>
#include <string.h>

#define REPLACEMENT "\xEF\xBF\xBD"

/* Stream state kept in the high bit of pg__detok_stream.flags: some text has come out. */
#define STREAM_STARTED (1u << 31)

static pg_status append(char **buf, size_t *len, size_t *cap, const void *data, size_t n)
{
    size_t need;
    if (!pg__add_size(*len, n, &need) || !pg__add_size(need, 1, &need)) {
        return pg__error(PG_ERR_LIMIT, "decoded text too long");
    }
    if (need > *cap) {
        size_t c = *cap ? *cap : 64;
        while (c < need) {
            if (!pg__mul_size(c, 2, &c)) {
                return pg__error(PG_ERR_LIMIT, "decoded text too long");
            }
        }
        char *p = pg__realloc(*buf, c);
        if (!p) {
            return PG_ERR_OUT_OF_MEMORY;
        }
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
    return PG_OK;
}

typedef struct sink {
    char **buf;
    size_t *len, *cap;
} sink;

/* Emits the complete sequences held in the stream; with `final`, also the incomplete
 * remainder, as U+FFFD per byte. */
static pg_status drain(pg__detok_stream *st, const sink *o, bool final)
{
    pg_status s = PG_OK;
    while (st->n_pending && !s) {
        int k = pg__utf8_check(st->pending, st->n_pending);
        if (k < 0 && !final) {
            break;
        }
        size_t used = k > 0 ? (size_t)k : 1;
        s = k > 0 ? append(o->buf, o->len, o->cap, st->pending, used)
                  : append(o->buf, o->len, o->cap, REPLACEMENT, 3);
        memmove(st->pending, st->pending + used, st->n_pending - used);
        st->n_pending -= used;
    }
    return s;
}

static pg_status feed(pg__detok_stream *st, const sink *o, const unsigned char *p, size_t n)
{
    if (n) {
        st->flags |= STREAM_STARTED;
    }
    size_t i = 0;
    while (i < n) {
        if (st->n_pending == 0) {
            /* Fast path: copy the run of complete sequences at once. */
            size_t j = i;
            for (;;) {
                if (j < n && p[j] < 0x80) {
                    j++;
                    continue;
                }
                int k = j < n ? pg__utf8_check(p + j, n - j) : 0;
                if (k <= 0) {
                    break;
                }
                j += (size_t)k;
            }
            if (j > i) {
                pg_status s = append(o->buf, o->len, o->cap, p + i, j - i);
                if (s) {
                    return s;
                }
                i = j;
                continue;
            }
        }
        st->pending[st->n_pending++] = p[i++];
        pg_status s = drain(st, o, false);
        if (s) {
            return s;
        }
    }
    return PG_OK;
}

void pg__detok_stream_init(pg__detok_stream *st, uint32_t flags)
{
    memset(st, 0, sizeof *st);
    st->flags = flags;
}

static pg_status push_piece(const pg_tokenizer *tok, pg__detok_stream *st, int32_t id,
                            const sink *o)
{
    if ((st->flags & PG_DETOKENIZE_SKIP_SPECIAL) && (tok->attr[id] & PG__ATTR_SPECIAL)) {
        return PG_OK;
    }
    if (tok->byte_val[id] >= 0) {
        unsigned char b = (unsigned char)tok->byte_val[id];
        return feed(st, o, &b, 1);
    }
    const unsigned char *p = (const unsigned char *)tok->blob + tok->off[id];
    size_t n = tok->len[id];
    size_t from = 0;
    bool at_start = !(st->flags & STREAM_STARTED) && st->n_pending == 0;
    if (at_start && (tok->add_dummy_prefix || tok->remove_extra_whitespace) &&
        tok->escape_whitespace && n >= 3 && memcmp(p, "\xE2\x96\x81", 3) == 0) {
        p += 3; /* the dummy prefix */
        n -= 3;
    }
    for (size_t i = 0; tok->escape_whitespace && i + 3 <= n; i++) {
        if (p[i] == 0xE2 && p[i + 1] == 0x96 && p[i + 2] == 0x81) {
            pg_status s = feed(st, o, p + from, i - from);
            if (!s) {
                s = feed(st, o, (const unsigned char *)" ", 1);
            }
            if (s) {
                return s;
            }
            i += 2;
            from = i + 1;
        }
    }
    return feed(st, o, p + from, n - from);
}

pg_status pg__detok_stream_push(const pg_tokenizer *tok, pg__detok_stream *st, int32_t id,
                                char **buf, size_t *len, size_t *cap)
{
    if (id < 0 || (uint32_t)id >= tok->n) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "token id %d is outside the vocabulary (%u)",
                         id, tok->n);
    }
    sink o = {buf, len, cap};
    return push_piece(tok, st, id, &o);
}

pg_status pg__detok_stream_finish(const pg_tokenizer *tok, pg__detok_stream *st, char **buf,
                                  size_t *len, size_t *cap)
{
    (void)tok;
    sink o = {buf, len, cap};
    return drain(st, &o, true);
}

PG_API pg_status pg_detokenize(const pg_tokenizer *tok, const int32_t *ids, size_t n_ids,
                               uint32_t flags, char *text, size_t cap, size_t *len_out)
{
    if (len_out) {
        *len_out = 0;
    }
    if (!tok || !len_out || (n_ids && !ids) || (cap && !text)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_detokenize: NULL argument");
    }
    if (flags & ~(uint32_t)PG_DETOKENIZE_SKIP_SPECIAL) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_detokenize: unknown flags 0x%x", flags);
    }
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= tok->n) {
            return pg__error(PG_ERR_INVALID_ARGUMENT,
                             "pg_detokenize: ids[%zu] = %d is outside the vocabulary (%u)", i,
                             ids[i], tok->n);
        }
    }
    pg__detok_stream st;
    pg__detok_stream_init(&st, flags);
    char *buf = NULL;
    size_t len = 0, bcap = 0;
    pg_status s = PG_OK;
    sink o = {&buf, &len, &bcap};
    for (size_t i = 0; i < n_ids && !s; i++) {
        s = push_piece(tok, &st, ids[i], &o);
    }
    if (!s) {
        s = drain(&st, &o, true);
    }
    if (s) {
        free(buf);
        return s;
    }
    *len_out = len;
    if (cap < len) {
        free(buf);
        return pg__error(PG_ERR_LIMIT, "pg_detokenize: %zu bytes needed, buffer holds %zu", len,
                         cap);
    }
    if (len) {
        memcpy(text, buf, len);
    }
    if (cap > len) {
        text[len] = '\0';
    }
    free(buf);
    return PG_OK;
}
