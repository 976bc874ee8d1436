/* Shared by the tokenizer fuzz targets: load-then-exercise, and a small built-in vocabulary. */
#ifndef PG_FUZZ_TOK_COMMON_H
#define PG_FUZZ_TOK_COMMON_H

#include "tokenizer/tok_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Encodes and decodes a few strings with a freshly loaded tokenizer: whatever loads must
 * work. Aborts (a fuzzer finding) on an inconsistent result. */
static inline void fuzz_exercise(const pg_tokenizer *tok)
{
    static const char *texts[] = {"a b\n<bos>x", "\xff\xfe <loc0001>", "\xE2\x96\x81\xE2\x96\x81 ",
                                  ""};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        for (uint32_t flags = 0; flags < 4; flags++) {
            int32_t *ids;
            size_t n;
            if (pg__tokenizer_encode(tok, texts[i], strlen(texts[i]), flags, &ids, &n)) {
                continue; /* e.g. ADD_BOS without <bos> */
            }
            for (size_t k = 0; k < n; k++) {
                if (ids[k] < 0 || (uint32_t)ids[k] >= pg__tokenizer_size(tok)) {
                    abort();
                }
            }
            pg__detok_stream st;
            pg__detok_stream_init(&st, flags & 1 ? PG_DETOKENIZE_SKIP_SPECIAL : 0);
            char *buf = NULL;
            size_t len = 0, cap = 0;
            for (size_t k = 0; k < n; k++) {
                if (pg__detok_stream_push(tok, &st, ids[k], &buf, &len, &cap)) {
                    abort();
                }
            }
            pg__detok_stream_finish(tok, &st, &buf, &len, &cap);
            free(buf);
            free(ids);
        }
    }
}

#endif
