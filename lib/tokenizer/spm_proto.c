/*
 * tokenizer.model: a SentencePiece ModelProto (proto2), read directly from the wire format
 * (spec §10.3). Only the fields below are used; every other field is skipped by its wire
 * type, so files from newer SentencePiece versions load as long as they keep these numbers.
 *
 *   ModelProto      1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec
 *   SentencePiece   1 piece (string), 2 score (float), 3 type (enum, default NORMAL)
 *   TrainerSpec     3 model_type (default UNIGRAM; BPE = 2), 24 treat_whitespace_as_suffix,
 *                   35 byte_fallback, 40 unk_id (0), 41 bos_id (1), 42 eos_id (2),
 *                   43 pad_id (-1)
 *   NormalizerSpec  1 name, 2 precompiled_charsmap, 3 add_dummy_prefix (true),
 *                   4 remove_extra_whitespaces (true), 5 escape_whitespaces (true)
 * Every length and varint is bounds-checked: a truncated or corrupt file gives PG_ERR_FORMAT.
 */
#include "tokenizer/tok_impl.h"

#include <stdio.h>
#include <string.h>

enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

typedef struct reader {
    const unsigned char *p, *end;
    const char *what;
} reader;

/* One decoded field: its number, wire type and value (varint, fixed or byte range). */
typedef struct field {
    uint32_t number;
    int wire;
    uint64_t u;                 /* WIRE_VARINT, WIRE_I32, WIRE_I64 */
    const unsigned char *data;  /* WIRE_LEN */
    size_t size;
} field;

static pg_status bad(const reader *r, const char *why)
{
    return pg__error(PG_ERR_FORMAT, "%s: not a valid SentencePiece model: %s", r->what, why);
}

static pg_status read_varint(reader *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            return bad(r, "truncated varint");
        }
        unsigned char c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return PG_OK;
        }
    }
    return bad(r, "varint longer than 10 bytes");
}

/* Reads the next field; returns 1 with *f filled, 0 at the end, or a negative on error
 * (the error is recorded). */
static int next_field(reader *r, field *f)
{
    if (r->p >= r->end) {
        return 0;
    }
    uint64_t key;
    if (read_varint(r, &key)) {
        return -1;
    }
    f->number = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    if (f->number == 0 || key >> 3 > 0x1fffffff) {
        bad(r, "invalid field number");
        return -1;
    }
    size_t left = (size_t)(r->end - r->p);
    switch (f->wire) {
    case WIRE_VARINT:
        return read_varint(r, &f->u) ? -1 : 1;
    case WIRE_I64:
    case WIRE_I32: {
        size_t k = f->wire == WIRE_I64 ? 8 : 4;
        if (left < k) {
            bad(r, "truncated fixed-size field");
            return -1;
        }
        f->u = 0;
        for (size_t i = 0; i < k; i++) {
            f->u |= (uint64_t)r->p[i] << (8 * i);
        }
        r->p += k;
        return 1;
    }
    case WIRE_LEN: {
        uint64_t size;
        if (read_varint(r, &size)) {
            return -1;
        }
        if (size > (uint64_t)(r->end - r->p)) {
            bad(r, "length-delimited field runs past the end");
            return -1;
        }
        f->data = r->p;
        f->size = (size_t)size;
        r->p += size;
        return 1;
    }
    default:
        bad(r, "unsupported wire type (groups or garbage)");
        return -1;
    }
}

static float f32_of(uint64_t u)
{
    uint32_t bits = (uint32_t)u;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Wrong wire type for a known field: reject (a corrupt file), as protobuf parsers do. */
static pg_status expect(const reader *r, const field *f, int wire)
{
    if (f->wire != wire) {
        char msg[80];
        snprintf(msg, sizeof msg, "field %u has wire type %d, expected %d", f->number, f->wire,
                 wire);
        return bad(r, msg);
    }
    return PG_OK;
}

static pg_status read_piece(pg_tokenizer *tok, const reader *outer, const field *msg)
{
    reader r = {msg->data, msg->data + msg->size, outer->what};
    const unsigned char *text = NULL;
    size_t text_len = 0;
    float score = 0.0f;
    uint64_t type = PG__PIECE_NORMAL;
    field f;
    int k;
    while ((k = next_field(&r, &f)) > 0) {
        pg_status st = PG_OK;
        if (f.number == 1 && !(st = expect(&r, &f, WIRE_LEN))) {
            text = f.data;
            text_len = f.size;
        } else if (f.number == 2 && !(st = expect(&r, &f, WIRE_I32))) {
            score = f32_of(f.u);
        } else if (f.number == 3 && !(st = expect(&r, &f, WIRE_VARINT))) {
            type = f.u;
        }
        if (st) {
            return st;
        }
    }
    if (k < 0) {
        return PG_ERR_FORMAT;
    }
    if (!text) {
        return bad(&r, "a piece has no text");
    }
    if (type < PG__PIECE_NORMAL || type > PG__PIECE_BYTE) {
        return bad(&r, "a piece has an unknown type");
    }
    if (score != score) {
        return bad(&r, "a piece has a NaN score");
    }
    unsigned attr = 0;
    if (type == PG__PIECE_CONTROL || type == PG__PIECE_UNKNOWN) {
        attr = PG__ATTR_SPECIAL | PG__ATTR_MATCH_RAW;
    } else if (type == PG__PIECE_USER_DEFINED) {
        attr = PG__ATTR_MATCH_RAW | PG__ATTR_MATCH_NORM;
    }
    return pg__tok_add_piece(tok, (const char *)text, text_len, score, (int)type, attr);
}

typedef struct trainer {
    uint64_t model_type;
    bool byte_fallback, whitespace_suffix;
    int64_t unk, bos, eos, pad;
} trainer;

static pg_status read_trainer(trainer *t, const reader *outer, const field *msg)
{
    reader r = {msg->data, msg->data + msg->size, outer->what};
    field f;
    int k;
    while ((k = next_field(&r, &f)) > 0) {
        if (f.number != 3 && f.number != 24 && f.number != 35 && (f.number < 40 || f.number > 43)) {
            continue;
        }
        pg_status st = expect(&r, &f, WIRE_VARINT);
        if (st) {
            return st;
        }
        int64_t v = (int64_t)(int32_t)f.u; /* int32 fields: negative values are sign-extended */
        switch (f.number) {
        case 3: t->model_type = f.u; break;
        case 24: t->whitespace_suffix = f.u != 0; break;
        case 35: t->byte_fallback = f.u != 0; break;
        case 40: t->unk = v; break;
        case 41: t->bos = v; break;
        case 42: t->eos = v; break;
        case 43: t->pad = v; break;
        default: break;
        }
    }
    return k < 0 ? PG_ERR_FORMAT : PG_OK;
}

static pg_status read_normalizer(pg_tokenizer *tok, const reader *outer, const field *msg)
{
    reader r = {msg->data, msg->data + msg->size, outer->what};
    field f;
    int k;
    char name[64] = "";
    while ((k = next_field(&r, &f)) > 0) {
        pg_status st = PG_OK;
        if (f.number == 1 && !(st = expect(&r, &f, WIRE_LEN))) {
            snprintf(name, sizeof name, "%.*s", (int)(f.size < 63 ? f.size : 63),
                     (const char *)f.data);
        } else if (f.number == 2 && !(st = expect(&r, &f, WIRE_LEN)) && f.size > 0) {
            /* A precompiled character map is a Unicode normalization (NFKC, ...) this
             * library does not implement: refuse rather than tokenize differently. */
            return pg__error(PG_ERR_UNSUPPORTED,
                             "%s: the normalizer \"%s\" has a precompiled character map "
                             "(Unicode normalization), which is not supported",
                             outer->what, name[0] ? name : "?");
        } else if (f.number >= 3 && f.number <= 5 && !(st = expect(&r, &f, WIRE_VARINT))) {
            bool on = f.u != 0;
            if (f.number == 3) {
                tok->add_dummy_prefix = on;
            } else if (f.number == 4) {
                tok->remove_extra_whitespace = on;
            } else {
                tok->escape_whitespace = on;
            }
        }
        if (st) {
            return st;
        }
    }
    return k < 0 ? PG_ERR_FORMAT : PG_OK;
}

static pg_status check_trainer(pg_tokenizer *tok, const trainer *t, const char *what)
{
    if (t->model_type != 2) {
        return pg__error(PG_ERR_UNSUPPORTED,
                         "%s: SentencePiece model type %llu is not supported (only BPE = 2)",
                         what, (unsigned long long)t->model_type);
    }
    if (t->whitespace_suffix) {
        return pg__error(PG_ERR_UNSUPPORTED, "%s: treat_whitespace_as_suffix is not supported",
                         what);
    }
    const int64_t ids[4] = {t->unk, t->bos, t->eos, t->pad};
    for (int i = 0; i < 4; i++) {
        if (ids[i] < -1 || ids[i] >= (int64_t)tok->n) {
            return pg__error(PG_ERR_FORMAT, "%s: special id %lld is outside the %u pieces",
                             what, (long long)ids[i], tok->n);
        }
    }
    tok->byte_fallback = t->byte_fallback;
    tok->unk = (int32_t)t->unk;
    tok->bos = (int32_t)t->bos;
    tok->eos = (int32_t)t->eos;
    tok->pad = (int32_t)t->pad;
    if (tok->unk < 0 || tok->type[tok->unk] != PG__PIECE_UNKNOWN) {
        return pg__error(PG_ERR_FORMAT, "%s: unk_id %d is not an UNKNOWN piece", what,
                         tok->unk);
    }
    return PG_OK;
}

pg_status pg__spm_proto_read(pg_tokenizer *tok, const unsigned char *data, size_t size,
                             const char *what)
{
    reader r = {data, data + size, what};
    trainer t = {.model_type = 1, .unk = 0, .bos = 1, .eos = 2, .pad = -1};
    /* proto2 defaults of NormalizerSpec, also when the message is absent. */
    tok->add_dummy_prefix = true;
    tok->remove_extra_whitespace = true;
    tok->escape_whitespace = true;
    bool have_trainer = false;
    field f;
    int k;
    /* A first pass counts the pieces so the tables are allocated once; piece texts take less
     * room than the file. */
    size_t count = 0;
    for (reader pre = r; (k = next_field(&pre, &f)) > 0;) {
        count += f.number == 1;
    }
    if (k < 0) {
        return PG_ERR_FORMAT;
    }
    pg_status rs = pg__tok_reserve(tok, count, size + count);
    if (rs) {
        return rs;
    }
    while ((k = next_field(&r, &f)) > 0) {
        pg_status st = PG_OK;
        if (f.number >= 1 && f.number <= 3 && (st = expect(&r, &f, WIRE_LEN))) {
            return st;
        }
        if (f.number == 1) {
            st = read_piece(tok, &r, &f);
        } else if (f.number == 2) {
            st = read_trainer(&t, &r, &f);
            have_trainer = true;
        } else if (f.number == 3) {
            st = read_normalizer(tok, &r, &f);
        }
        if (st) {
            return st;
        }
    }
    if (k < 0) {
        return PG_ERR_FORMAT;
    }
    if (tok->n == 0) {
        return bad(&r, "no pieces");
    }
    if (!have_trainer) {
        return bad(&r, "no trainer_spec (the model type is unknown)");
    }
    snprintf(tok->format, sizeof tok->format, "model");
    return check_trainer(tok, &t, what);
}
