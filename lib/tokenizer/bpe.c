/*
 * BPE encoding of one normalized segment (spec §10.4), O(n log n):
 *   1. split into symbols: a frozen piece where the `frozen` trie matches (longest match),
 *      emitted as it is, otherwise one UTF-8 character;
 *   2. every adjacent pair of symbols that may merge becomes a candidate in a
 *      binary heap, best first (highest priority, ties: leftmost);
 *   3. pop the best candidate, skip it if stale (a side was merged away or changed), merge,
 *      and add the candidates the merged symbol forms with its new neighbours;
 *   4. emit ids; a symbol outside the vocabulary becomes its bytes (byte fallback) or <unk>.
 * Which pairs may merge, and with what priority, depends on the file the vocabulary came from:
 *   - tokenizer.model (SentencePiece): the concatenation is a NORMAL, USER_DEFINED or UNUSED
 *     piece; priority = its score. Merged UNUSED pieces are split back into their parts.
 *   - tokenizer.json (Hugging Face): the pair of ids is in `merges`; priority = -rank.
 *
 * Speed: one heap over a megabyte of text is slow (every pop misses the cache), so the text
 * is first cut where no merge can ever cross: after a frozen piece, and between two
 * characters that occur next to each other in no piece of the vocabulary (the "pair set"
 * built at load, vocab.c). A symbol spanning such a cut would be a piece containing that
 * pair, so none exists; merges on the two sides never interact, and the tie-break by
 * position keeps their relative order, so encoding the parts one by one gives exactly the
 * ids of encoding the whole. For ordinary text the parts are words.
 */
#include "tokenizer/tok_impl.h"

#include <stdlib.h>
#include <string.h>

typedef struct sym {
    uint32_t start, len; /* bytes of the normalized text; len 0 = merged away */
    int32_t prev, next;  /* neighbours, -1 at the ends */
    int32_t id;          /* piece id, -1 = not in the vocabulary */
    int32_t node;        /* merge tree node (UNUSED split-back only), -1 = none */
} sym;

typedef struct cand {
    float priority;
    uint32_t left, right, size;
    int32_t id; /* the merged piece */
} cand;

/* Merge tree, kept only when the vocabulary has UNUSED pieces. */
typedef struct node {
    int32_t left, right; /* child nodes, -1 for an initial symbol */
    uint32_t start, len;
    int32_t id;
} node;

typedef struct bpe {
    const pg_tokenizer *tok;
    const unsigned char *s;
    sym *syms;
    cand *heap;
    size_t n_heap, cap_heap;
    node *nodes;
    size_t n_nodes;
    pg__ids *out;
    bool prev_unk; /* the last id emitted was <unk> (consecutive unknowns are fused) */
} bpe;

static inline bool better(const cand *a, const cand *b)
{
    return a->priority > b->priority || (a->priority == b->priority && a->left < b->left);
}

static pg_status heap_push(bpe *b, cand c)
{
    if (b->n_heap == b->cap_heap) {
        size_t cap = b->cap_heap * 2;
        cand *h = pg__malloc_array(cap, sizeof *h);
        if (!h) {
            return PG_ERR_OUT_OF_MEMORY;
        }
        memcpy(h, b->heap, b->n_heap * sizeof *h);
        free(b->heap);
        b->heap = h;
        b->cap_heap = cap;
    }
    size_t i = b->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!better(&c, &b->heap[parent])) {
            break;
        }
        b->heap[i] = b->heap[parent];
        i = parent;
    }
    b->heap[i] = c;
    return PG_OK;
}

static cand heap_pop(bpe *b)
{
    cand top = b->heap[0];
    cand last = b->heap[--b->n_heap];
    size_t i = 0, n = b->n_heap;
    for (;;) {
        size_t l = 2 * i + 1, best = l;
        if (l >= n) {
            break;
        }
        if (l + 1 < n && better(&b->heap[l + 1], &b->heap[l])) {
            best = l + 1;
        }
        if (!better(&b->heap[best], &last)) {
            break;
        }
        b->heap[i] = b->heap[best];
        i = best;
    }
    if (n) {
        b->heap[i] = last;
    }
    return top;
}

/* Adds the candidate formed by symbols l and r (adjacent), if they may merge. */
static pg_status try_pair(bpe *b, int32_t l, int32_t r)
{
    if (l < 0 || r < 0) {
        return PG_OK;
    }
    const sym *L = &b->syms[l], *R = &b->syms[r];
    const pg_tokenizer *tok = b->tok;
    uint32_t size = L->len + R->len;
    if (tok->use_merges) {
        if (L->id < 0 || R->id < 0) {
            return PG_OK;
        }
        const pg__merge_slot *m = pg__tok_merge_get(tok, L->id, R->id);
        if (!m) {
            return PG_OK;
        }
        return heap_push(b, (cand){-(float)m->rank, (uint32_t)l, (uint32_t)r, size, m->result});
    }
    int32_t id = pg__tok_lookup(tok, (const char *)b->s + L->start, size);
    if (id < 0 || !pg__tok_mergeable(tok, id)) {
        return PG_OK;
    }
    return heap_push(b, (cand){tok->score[id], (uint32_t)l, (uint32_t)r, size, id});
}

static inline size_t char_len(unsigned char lead)
{
    /* The text is valid UTF-8 here (encode.c replaced invalid bytes). */
    static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[lead >> 4];
}

/* Splits s[from, to) (no frozen piece inside) into one symbol per character. */
static size_t initial_symbols(bpe *b, size_t from, size_t to)
{
    const pg_tokenizer *tok = b->tok;
    size_t count = 0;
    for (size_t pos = from; pos < to;) {
        size_t len = char_len(b->s[pos]);
        if (len > to - pos) {
            len = to - pos;
        }
        sym *y = &b->syms[count];
        y->start = (uint32_t)pos;
        y->len = (uint32_t)len;
        y->prev = (int32_t)count - 1;
        y->next = (int32_t)count + 1;
        y->id = pg__tok_lookup(tok, (const char *)b->s + pos, len);
        y->node = -1;
        count++;
        pos += len;
    }
    if (count) {
        b->syms[count - 1].next = -1;
    }
    return count;
}

static pg_status emit(bpe *b, int32_t id)
{
    b->prev_unk = false;
    return pg__ids_push(b->out, id);
}

/* A symbol outside the vocabulary: its bytes as <0xXX> pieces, or one <unk> (fused with
 * an <unk> just before it, as SentencePiece and Hugging Face do). */
static pg_status emit_unknown(bpe *b, uint32_t start, uint32_t len)
{
    const pg_tokenizer *tok = b->tok;
    if (tok->byte_fallback) {
        for (uint32_t i = 0; i < len; i++) {
            pg_status st = emit(b, tok->byte_id[b->s[start + i]]);
            if (st) {
                return st;
            }
        }
        return PG_OK;
    }
    if (b->prev_unk) {
        return PG_OK;
    }
    pg_status st = emit(b, tok->unk);
    b->prev_unk = true;
    return st;
}

/* SentencePiece: a merged UNUSED piece is emitted as the two pieces it was made of. */
static pg_status emit_node(bpe *b, int32_t k)
{
    const node *nd = &b->nodes[k];
    if (nd->left >= 0 && nd->id >= 0 && b->tok->type[nd->id] == PG__PIECE_UNUSED) {
        pg_status st = emit_node(b, nd->left);
        return st ? st : emit_node(b, nd->right);
    }
    return nd->id >= 0 ? emit(b, nd->id) : emit_unknown(b, nd->start, nd->len);
}

static pg_status merge_all(bpe *b)
{
    pg_status st = PG_OK;
    while (b->n_heap && !st) {
        cand c = heap_pop(b);
        sym *L = &b->syms[c.left], *R = &b->syms[c.right];
        if (L->len == 0 || R->len == 0 || L->next != (int32_t)c.right ||
            L->len + R->len != c.size) {
            continue; /* stale */
        }
        if (b->nodes) {
            node nd = {L->node, R->node, L->start, c.size, c.id};
            b->nodes[b->n_nodes] = nd;
            L->node = (int32_t)b->n_nodes++;
        }
        L->len = c.size;
        L->id = c.id;
        L->next = R->next;
        if (R->next >= 0) {
            b->syms[R->next].prev = (int32_t)c.left;
        }
        R->len = 0;
        st = try_pair(b, L->prev, (int32_t)c.left);
        if (!st) {
            st = try_pair(b, (int32_t)c.left, L->next);
        }
    }
    return st;
}

static pg_status emit_all(bpe *b, size_t count)
{
    pg_status st = PG_OK;
    for (int32_t i = count ? 0 : -1; i >= 0 && !st; i = b->syms[i].next) {
        const sym *y = &b->syms[i];
        if (b->nodes) {
            st = emit_node(b, y->node);
        } else {
            st = y->id >= 0 ? emit(b, y->id) : emit_unknown(b, y->start, y->len);
        }
    }
    return st;
}

/* BPE over one part s[from, to) that no merge crosses. */
static pg_status encode_part(bpe *b, size_t from, size_t to)
{
    if (from == to) {
        return PG_OK;
    }
    size_t count = initial_symbols(b, from, to);
    if (b->nodes) {
        for (size_t i = 0; i < count; i++) {
            const sym *y = &b->syms[i];
            b->nodes[i] = (node){-1, -1, y->start, y->len, y->id};
            b->syms[i].node = (int32_t)i;
        }
        b->n_nodes = count;
    }
    b->n_heap = 0;
    pg_status st = PG_OK;
    for (size_t i = 0; i + 1 < count && !st; i++) {
        st = try_pair(b, (int32_t)i, (int32_t)i + 1);
    }
    if (!st) {
        st = merge_all(b);
    }
    return st ? st : emit_all(b, count);
}

/* The bytes of one character packed into an integer (its identity for the pair set). */
static inline uint32_t char_key(const unsigned char *p, size_t len)
{
    uint32_t k = 0;
    for (size_t i = 0; i < len; i++) {
        k = k << 8 | p[i];
    }
    return k;
}

/* Walks the text: frozen pieces are emitted as they are, the text between is cut into
 * parts at the characters pairs no piece contains, and each part is BPE-encoded. */
static pg_status encode_all(bpe *b, size_t n, const pg__trie *frozen)
{
    const pg_tokenizer *tok = b->tok;
    size_t part = 0;
    uint32_t prev = 0;
    bool have_prev = false;
    for (size_t pos = 0; pos < n;) {
        size_t flen = 0;
        int32_t id = frozen ? pg__trie_longest(frozen, b->s + pos, n - pos, &flen) : -1;
        pg_status st = PG_OK;
        if (id >= 0) {
            st = encode_part(b, part, pos);
            if (!st) {
                st = emit(b, id);
            }
            pos += flen;
            part = pos;
            have_prev = false;
        } else {
            size_t len = char_len(b->s[pos]);
            if (len > n - pos) {
                len = n - pos;
            }
            uint32_t key = char_key(b->s + pos, len);
            if (have_prev && !pg__tok_pair_possible(tok, prev, key)) {
                st = encode_part(b, part, pos);
                part = pos;
            }
            prev = key;
            have_prev = true;
            pos += len;
        }
        if (st) {
            return st;
        }
    }
    return encode_part(b, part, n);
}

pg_status pg__bpe_encode(const pg_tokenizer *tok, const unsigned char *s, size_t n,
                         const pg__trie *frozen, pg__ids *out)
{
    if (n == 0) {
        return PG_OK;
    }
    if (n > UINT32_MAX / 2) {
        return pg__error(PG_ERR_LIMIT, "text segment of %zu bytes is too long", n);
    }
    bpe b = {.tok = tok, .s = s, .out = out};
    b.syms = pg__malloc_array(n, sizeof *b.syms);
    b.cap_heap = 64;
    b.heap = pg__malloc_array(b.cap_heap, sizeof *b.heap);
    bool track = tok->has_unused && !tok->use_merges;
    if (track) {
        b.nodes = pg__malloc_array(2 * n, sizeof *b.nodes);
    }
    pg_status st = PG_ERR_OUT_OF_MEMORY;
    if (b.syms && b.heap && (!track || b.nodes)) {
        st = encode_all(&b, n, frozen);
    }
    free(b.syms);
    free(b.heap);
    free(b.nodes);
    return st;
}
