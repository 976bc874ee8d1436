/* Helpers shared by the tokenizer tests. */
#ifndef PG_TOK_TEST_UTIL_H
#define PG_TOK_TEST_UTIL_H

#include "paligemma.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Encodes text (len bytes) into a new array (free()); NULL on failure (message printed). */
int32_t *tt_encode(const pg_tokenizer *tok, const char *text, size_t len, uint32_t flags,
                   size_t *n);
/* Decodes ids into a new NUL-terminated string (free()); NULL on failure. */
char *tt_decode(const pg_tokenizer *tok, const int32_t *ids, size_t n, uint32_t flags,
                size_t *len);
/* ids == the JSON array of integers `expected`. */
bool tt_ids_equal(const int32_t *ids, size_t n, const json_t *expected);
/* Prints both id lists to stderr. */
void tt_print_ids(const char *label, const int32_t *ids, size_t n, const json_t *expected);
/* Decodes a hex string into new bytes (free()). */
unsigned char *tt_unhex(const char *hex, size_t *n);
/* Loads a JSON-lines file into a JSON array (json_decref()); NULL if absent. */
json_t *tt_load_jsonl(const char *path);
/* Runs a shell command; returns its exit status. */
int tt_system(const char *cmd);
/* Monotonic milliseconds. */
double tt_now_ms(void);

#endif
