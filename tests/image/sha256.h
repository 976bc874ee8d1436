/* A small SHA-256 for the image tests (the fixtures record sha256 of decoded pixels). */
#ifndef PG_TEST_SHA256_H
#define PG_TEST_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Writes the lowercase hex digest (64 chars + NUL) of data[0..n) to hex. */
void pg_test_sha256_hex(const void *data, size_t n, char hex[65]);

#endif
