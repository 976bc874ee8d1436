/*
 * Loading (file or model folder, format recognised by content) and the public tokenizer
 * API of include/paligemma.h. Encoding is in encode.c, decoding in decode.c.
 */
#include "tokenizer/tok_impl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A tokenizer.json of a big vocabulary is ~35 MB; refuse absurd sizes before reading. */
#define PG__TOK_MAX_FILE ((size_t)1 << 30)
#define PG__TOK_MAX_CONFIG ((size_t)64 << 20)

static bool looks_like_json(const char *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        char c = data[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return c == '{';
        }
    }
    return false;
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* tokenizer_config.json beside a tokenizer.model adds tokens past the model's pieces. */
static pg_status read_config_beside(pg_tokenizer *tok, const char *dir)
{
    char *path = pg__path_join(dir, "tokenizer_config.json");
    if (!path) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    pg_status st = PG_OK;
    if (is_file(path)) {
        char *data;
        size_t size;
        st = pg__read_file(path, PG__TOK_MAX_CONFIG, &data, &size);
        if (!st) {
            st = pg__tokjson_read_config(tok, data, size, path);
            free(data);
        }
    }
    free(path);
    return st;
}

static pg_status load_file(pg_tokenizer *tok, const char *path, const char *dir)
{
    char *data;
    size_t size;
    pg_status st = pg__read_file(path, PG__TOK_MAX_FILE, &data, &size);
    if (st) {
        return st;
    }
    if (looks_like_json(data, size)) {
        st = pg__tokjson_read(tok, data, size, path);
    } else {
        st = pg__spm_proto_read(tok, (const unsigned char *)data, size, path);
        if (!st && dir) {
            st = read_config_beside(tok, dir);
        }
    }
    free(data);
    return st ? st : pg__tok_finalize(tok, path);
}

pg_status pg__tokenizer_load(pg_tokenizer **out, const char *path)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        return pg__error(PG_ERR_NOT_FOUND, "%s: no such file or folder", path);
    }
    pg_tokenizer *tok = pg__tok_new();
    if (!tok) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    pg_status st;
    if (S_ISDIR(sb.st_mode)) {
        char *model = pg__path_join(path, "tokenizer.model");
        char *json = pg__path_join(path, "tokenizer.json");
        if (!model || !json) {
            st = PG_ERR_OUT_OF_MEMORY;
        } else if (is_file(model)) {
            st = load_file(tok, model, path);
        } else if (is_file(json)) {
            st = load_file(tok, json, NULL);
        } else {
            st = pg__error(PG_ERR_NOT_FOUND, "%s: no tokenizer.model or tokenizer.json", path);
        }
        free(model);
        free(json);
    } else {
        st = load_file(tok, path, NULL);
    }
    if (st) {
        pg__tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return PG_OK;
}

uint32_t pg__tokenizer_size(const pg_tokenizer *tok)
{
    return tok->n;
}

int32_t pg__tokenizer_special(const pg_tokenizer *tok, int32_t kind)
{
    switch (kind) {
    case PG_TOKEN_PAD: return tok->pad;
    case PG_TOKEN_EOS: return tok->eos;
    case PG_TOKEN_BOS: return tok->bos;
    case PG_TOKEN_UNK: return tok->unk;
    case PG_TOKEN_IMAGE: return tok->image;
    case PG_TOKEN_NEWLINE: return tok->newline;
    case PG_TOKEN_LOC0: return tok->loc0;
    case PG_TOKEN_SEG0: return tok->seg0;
    default: return -1;
    }
}

bool pg__tokenizer_is_control(const pg_tokenizer *tok, int32_t id)
{
    return id >= 0 && (uint32_t)id < tok->n && (tok->attr[id] & PG__ATTR_SPECIAL);
}

/* ---- public API ---- */

PG_API pg_status pg_tokenizer_load(pg_tokenizer **out, const char *path)
{
    if (!out) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_tokenizer_load: out is NULL");
    }
    *out = NULL;
    if (!path) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_tokenizer_load: path is NULL");
    }
    return pg__tokenizer_load(out, path);
}

PG_API void pg_tokenizer_free(pg_tokenizer *tok)
{
    /* The model frees its own tokenizer; freeing it here too would be a double free. */
    if (tok && !tok->owned_by_model) {
        pg__tokenizer_free(tok);
    }
}

void pg__tokenizer_mark_owned(pg_tokenizer *tok)
{
    tok->owned_by_model = true;
}

PG_API pg_status pg_tokenize(const pg_tokenizer *tok, const char *text, size_t len,
                             uint32_t flags, int32_t *ids, size_t cap, size_t *n_out)
{
    if (n_out) {
        *n_out = 0;
    }
    if (!tok || !n_out || (len && !text) || (cap && !ids)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_tokenize: NULL argument");
    }
    if (flags & ~(uint32_t)(PG_TOKENIZE_NO_PARSE_SPECIAL | PG_TOKENIZE_ADD_BOS)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_tokenize: unknown flags 0x%x", flags);
    }
    int32_t *v;
    size_t n;
    pg_status st = pg__tokenizer_encode(tok, text ? text : "", len, flags, &v, &n);
    if (st) {
        return st;
    }
    *n_out = n;
    if (n > cap) {
        free(v);
        return pg__error(PG_ERR_LIMIT, "pg_tokenize: %zu ids, the buffer holds %zu", n, cap);
    }
    if (n) {
        memcpy(ids, v, n * sizeof *v);
    }
    free(v);
    return PG_OK;
}

PG_API pg_status pg_token_to_piece(const pg_tokenizer *tok, int32_t id, char *buf, size_t cap,
                                   size_t *len_out)
{
    if (len_out) {
        *len_out = 0;
    }
    if (!tok || !len_out || (cap && !buf)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_token_to_piece: NULL argument");
    }
    if (id < 0 || (uint32_t)id >= tok->n) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "pg_token_to_piece: id %d is outside the vocabulary (%u)", id, tok->n);
    }
    size_t len = tok->len[id];
    *len_out = len;
    if (cap < len) {
        return pg__error(PG_ERR_LIMIT, "pg_token_to_piece: %zu bytes needed, buffer holds %zu",
                         len, cap);
    }
    memcpy(buf, tok->blob + tok->off[id], len);
    if (cap > len) {
        buf[len] = '\0';
    }
    return PG_OK;
}

PG_API pg_status pg_piece_to_token(const pg_tokenizer *tok, const char *piece, size_t len,
                                   int32_t *id_out)
{
    if (id_out) {
        *id_out = -1;
    }
    if (!tok || !id_out || (len && !piece)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_piece_to_token: NULL argument");
    }
    int32_t id = len ? pg__tok_lookup(tok, piece, len) : -1;
    if (id < 0) {
        return pg__error(PG_ERR_NOT_FOUND, "pg_piece_to_token: \"%.*s\" is not a piece",
                         (int)(len < 64 ? len : 64), piece ? piece : "");
    }
    *id_out = id;
    return PG_OK;
}

PG_API uint32_t pg_tokenizer_vocab_size(const pg_tokenizer *tok)
{
    return tok ? tok->n : 0;
}

PG_API int32_t pg_tokenizer_special_id(const pg_tokenizer *tok, int32_t kind)
{
    return tok ? pg__tokenizer_special(tok, kind) : -1;
}
