/*
 * Added / user-defined tokens are found in text by leftmost-longest matching: at each
 * position the longest token that starts there wins (Hugging Face's AddedVocabulary and
 * SentencePiece's PrefixMatcher agree on this). A plain byte trie with sibling lists is
 * enough: a few thousand short keys, and a bitmap of first bytes rejects most positions
 * with one test.
 */
#include "tokenizer/tok_impl.h"

#include <stdlib.h>
#include <string.h>

pg_status pg__trie_init(pg__trie *t)
{
    memset(t, 0, sizeof *t);
    t->cap = 64;
    t->nodes = pg__malloc_array(t->cap, sizeof *t->nodes);
    if (!t->nodes) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    t->nodes[0] = (pg__trie_node){0, 0, -1, 0};
    t->n = 1;
    return PG_OK;
}

void pg__trie_free(pg__trie *t)
{
    free(t->nodes);
    t->nodes = NULL;
    t->n = t->cap = 0;
}

static uint32_t find_child(const pg__trie *t, uint32_t node, uint8_t byte)
{
    for (uint32_t c = t->nodes[node].child; c; c = t->nodes[c].sibling) {
        if (t->nodes[c].byte == byte) {
            return c;
        }
    }
    return 0;
}

pg_status pg__trie_add(pg__trie *t, const char *key, size_t len, int32_t id)
{
    if (len == 0) {
        return PG_OK; /* an empty key would match everywhere: never added */
    }
    uint32_t node = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = (uint8_t)key[i];
        uint32_t c = find_child(t, node, b);
        if (!c) {
            if (t->n == t->cap) {
                if (t->cap > UINT32_MAX / 4) {
                    return pg__error(PG_ERR_LIMIT, "token trie too large");
                }
                pg__trie_node *p = pg__realloc(t->nodes, (size_t)t->cap * 2 * sizeof *p);
                if (!p) {
                    return PG_ERR_OUT_OF_MEMORY;
                }
                t->nodes = p;
                t->cap *= 2;
            }
            c = t->n++;
            t->nodes[c] = (pg__trie_node){0, t->nodes[node].child, -1, b};
            t->nodes[node].child = c;
        }
        node = c;
    }
    if (t->nodes[node].id < 0) {
        t->nodes[node].id = id;
        t->n_keys++;
    }
    t->first[(uint8_t)key[0] >> 3] |= (uint8_t)(1u << ((uint8_t)key[0] & 7));
    return PG_OK;
}

int32_t pg__trie_longest(const pg__trie *t, const unsigned char *s, size_t n,
                         size_t *match_len)
{
    if (n == 0 || !(t->first[s[0] >> 3] & (1u << (s[0] & 7)))) {
        return -1;
    }
    int32_t best = -1;
    uint32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        node = find_child(t, node, s[i]);
        if (!node) {
            break;
        }
        if (t->nodes[node].id >= 0) {
            best = t->nodes[node].id;
            *match_len = i + 1;
        }
    }
    return best;
}
