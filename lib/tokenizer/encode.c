/*
 * The encoding pipeline (spec §10.4): invalid UTF-8 -> U+FFFD per invalid byte (as
 * SentencePiece's normalizer does), then
 *   parse-special mode (default, Hugging Face): added tokens are cut out of the raw text
 *     first (leftmost-longest), each remaining segment is normalized and BPE-encoded with
 *     the "normalized" added tokens frozen;
 *   PG_TOKENIZE_NO_PARSE_SPECIAL (SentencePiece): the whole text is normalized and
 *     BPE-encoded with the USER_DEFINED pieces frozen; control-token text stays text.
 * Normalization: ' ' -> U+2581 (escape_whitespace), optional dummy prefix and whitespace
 * cleanup as the file's normalizer says (the readers refuse normalizers this cannot do).
 */
#include "tokenizer/tok_impl.h"

#include <stdlib.h>
#include <string.h>

#define SPACE_MARK "\xE2\x96\x81" /* U+2581 */

/* Copies the text with every byte that starts no valid UTF-8 sequence replaced by U+FFFD;
 * *out = NULL when the text is valid (use it as is). */
static pg_status sanitize(const unsigned char *s, size_t n, unsigned char **out,
                          size_t *out_len)
{
    *out = NULL;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int k = pg__utf8_check(s + i, n - i);
        if (k <= 0) {
            break;
        }
        i += (size_t)k;
    }
    if (i == n) {
        return PG_OK;
    }
    unsigned char *buf = pg__malloc_array(n, 3);
    if (!buf) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    memcpy(buf, s, i);
    size_t o = i;
    while (i < n) {
        int k = pg__utf8_check(s + i, n - i);
        if (k <= 0) {
            memcpy(buf + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(buf + o, s + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        }
    }
    *out = buf;
    *out_len = o;
    return PG_OK;
}

/* Normalizes one segment into *buf (grown as needed; 3 bytes per input byte at most,
 * plus a dummy prefix). */
static pg_status normalize(const pg_tokenizer *tok, const unsigned char *s, size_t n,
                           unsigned char **buf, size_t *cap, size_t *out_len)
{
    size_t need;
    if (!pg__mul_size(n, 3, &need) || !pg__add_size(need, 3, &need)) {
        return pg__error(PG_ERR_LIMIT, "text of %zu bytes is too long", n);
    }
    if (need > *cap) {
        unsigned char *b = pg__malloc(need);
        if (!b) {
            return PG_ERR_OUT_OF_MEMORY;
        }
        free(*buf);
        *buf = b;
        *cap = need;
    }
    if (tok->remove_extra_whitespace) { /* leading and trailing spaces go */
        while (n && s[0] == ' ') {
            s++;
            n--;
        }
        while (n && s[n - 1] == ' ') {
            n--;
        }
    }
    unsigned char *o = *buf;
    if (tok->add_dummy_prefix && n) {
        memcpy(o, SPACE_MARK, 3);
        o += 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ') {
            *o++ = s[i];
            continue;
        }
        if (tok->remove_extra_whitespace && i > 0 && s[i - 1] == ' ') {
            continue; /* runs of spaces collapse to one */
        }
        if (tok->escape_whitespace) {
            memcpy(o, SPACE_MARK, 3);
            o += 3;
        } else {
            *o++ = ' ';
        }
    }
    if (tok->remove_extra_whitespace) {
        /* SentencePiece strips trailing whitespace from the normalized text, where a U+2581
         * typed in the input looks the same as an escaped space. */
        size_t k = tok->escape_whitespace ? 3 : 1;
        const char *mark = tok->escape_whitespace ? SPACE_MARK : " ";
        while ((size_t)(o - *buf) >= k && memcmp(o - k, mark, k) == 0) {
            o -= k;
        }
    }
    *out_len = (size_t)(o - *buf);
    return PG_OK;
}

typedef struct encoder {
    const pg_tokenizer *tok;
    const pg__trie *frozen;
    unsigned char *norm;
    size_t norm_cap;
    pg__ids ids;
} encoder;

static pg_status encode_segment(encoder *e, const unsigned char *s, size_t n)
{
    if (n == 0) {
        return PG_OK;
    }
    size_t len = 0;
    pg_status st = normalize(e->tok, s, n, &e->norm, &e->norm_cap, &len);
    if (!st) {
        st = pg__bpe_encode(e->tok, e->norm, len, e->frozen, &e->ids);
    }
    return st;
}

/* Parse-special mode: cut the raw-matched added tokens out, encode the text between. */
static pg_status encode_with_added(encoder *e, const unsigned char *s, size_t n)
{
    const pg__trie *raw = &e->tok->raw_trie;
    size_t seg = 0;
    for (size_t i = 0; i < n;) {
        size_t mlen = 0;
        int32_t id = pg__trie_longest(raw, s + i, n - i, &mlen);
        if (id < 0) {
            i++;
            continue;
        }
        pg_status st = encode_segment(e, s + seg, i - seg);
        if (!st) {
            st = pg__ids_push(&e->ids, id);
        }
        if (st) {
            return st;
        }
        i += mlen;
        seg = i;
    }
    return encode_segment(e, s + seg, n - seg);
}

pg_status pg__tokenizer_encode(const pg_tokenizer *tok, const char *text, size_t len,
                               uint32_t flags, int32_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    bool parse_special = !(flags & PG_TOKENIZE_NO_PARSE_SPECIAL);
    encoder e = {.tok = tok, .frozen = parse_special ? &tok->frozen_hf : &tok->frozen_spm};
    unsigned char *clean = NULL;
    const unsigned char *s = (const unsigned char *)text;
    pg_status st = sanitize(s, len, &clean, &len);
    if (clean) {
        s = clean;
    }
    if (!st && (flags & PG_TOKENIZE_ADD_BOS)) {
        st = tok->bos >= 0 ? pg__ids_push(&e.ids, tok->bos)
                           : pg__error(PG_ERR_NOT_FOUND, "the vocabulary has no <bos>");
    }
    if (!st) {
        st = parse_special && tok->raw_trie.n_keys ? encode_with_added(&e, s, len)
                                                   : encode_segment(&e, s, len);
    }
    free(clean);
    free(e.norm);
    if (st) {
        free(e.ids.v);
        return st;
    }
    *ids = e.ids.v;
    *n = e.ids.n;
    return PG_OK;
}
