/*
 * Fuzz target: the encoder and decoder on arbitrary bytes, with a small built-in vocabulary
 * (byte fallback, merges with scores, user-defined and control pieces, an UNUSED piece).
 * The first input byte picks the flags; the rest is the text. Checks: ids in range, and
 * decode(encode(text)) == text with invalid UTF-8 bytes turned into U+FFFD (inputs holding
 * a raw U+2581 are exempt: it decodes to ' ').
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pg_tokenizer *make_vocab(void)
{
    static const struct {
        const char *piece;
        float score;
        int type;
    } pieces[] = {
        {"<unk>", 0, PG__PIECE_UNKNOWN}, {"<bos>", 0, PG__PIECE_CONTROL},
        {"<eos>", 0, PG__PIECE_CONTROL}, {"<loc0000>", 0, PG__PIECE_USER_DEFINED},
        {"\n", 0, PG__PIECE_USER_DEFINED}, {"\xE2\x96\x81\xE2\x96\x81", 0, PG__PIECE_USER_DEFINED},
        {"a", -1, 1}, {"b", -2, 1}, {"c", -3, 1}, {"\xE2\x96\x81", -4, 1}, {"ab", -5, 1},
        {"abc", -6, 1}, {"\xE2\x96\x81" "a", -7, 1}, {"bc", -8, 1}, {"ca", -9, 1},
        {"cab", -10, PG__PIECE_UNUSED}, {"\xC3\xA9", -11, 1}, {"a\xC3\xA9", -12, 1},
        {"<", -13, 1}, {">", -14, 1}, {"bos", -15, 1},
    };
    pg_tokenizer *tok = pg__tok_new();
    if (!tok) {
        return NULL;
    }
    pg_status st = PG_OK;
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0] && !st; i++) {
        int t = pieces[i].type;
        unsigned attr = t == PG__PIECE_CONTROL || t == PG__PIECE_UNKNOWN
                            ? PG__ATTR_SPECIAL | PG__ATTR_MATCH_RAW
                            : t == PG__PIECE_USER_DEFINED ? PG__ATTR_MATCH_RAW | PG__ATTR_MATCH_NORM
                                                          : 0u;
        st = pg__tok_add_piece(tok, pieces[i].piece, strlen(pieces[i].piece), pieces[i].score,
                               t, attr);
    }
    for (int b = 0; b < 256 && !st; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        st = pg__tok_add_piece(tok, name, 6, 0, PG__PIECE_BYTE, 0);
    }
    tok->unk = 0;
    tok->bos = 1;
    tok->eos = 2;
    tok->byte_fallback = true;
    if (st || pg__tok_finalize(tok, "fuzz vocabulary")) {
        pg__tokenizer_free(tok);
        return NULL;
    }
    return tok;
}

/* The text with invalid UTF-8 bytes replaced, as the encoder sees it. */
static char *sanitized(const uint8_t *s, size_t n, size_t *len)
{
    char *out = malloc(3 * n + 1);
    size_t o = 0;
    for (size_t i = 0; out && i < n;) {
        int k = pg__utf8_check(s + i, n - i);
        if (k <= 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, s + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        }
    }
    *len = o;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pg_tokenizer *tok;
    if (!tok && !(tok = make_vocab())) {
        abort();
    }
    if (size == 0) {
        return 0;
    }
    uint32_t flags = data[0] & 3;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    int32_t *ids;
    size_t n_ids;
    if (pg__tokenizer_encode(tok, text, n, flags, &ids, &n_ids)) {
        abort();
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    pg__detok_stream st;
    pg__detok_stream_init(&st, 0);
    for (size_t i = 0; i < n_ids; i++) {
        if (pg__detok_stream_push(tok, &st, ids[i], &buf, &len, &cap)) {
            abort();
        }
    }
    pg__detok_stream_finish(tok, &st, &buf, &len, &cap);
    size_t want_len;
    char *want = sanitized((const uint8_t *)text, n, &want_len);
    bool has_mark = memmem(want, want_len, "\xE2\x96\x81", 3) != NULL;
    size_t skip = (flags & PG_TOKENIZE_ADD_BOS) ? 5 : 0; /* "<bos>" in front */
    bool same = len == want_len + skip &&
                (want_len == 0 || memcmp(buf + skip, want, want_len) == 0);
    if (!has_mark && !same) {
        abort();
    }
    free(want);
    free(buf);
    free(ids);
    return 0;
}
