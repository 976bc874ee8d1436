/* Reads .npy files (version 1.0/2.0, little-endian <f4 or <i4, C order) for golden tests. */
#ifndef PG_TEST_NPY_H
#define PG_TEST_NPY_H

#include <stddef.h>
#include <stdint.h>

typedef struct npy_array {
    char dtype;        /* 'f' (float32) or 'i' (int32) */
    int ndim;
    int64_t shape[8];
    size_t count;      /* number of elements */
    void *data;        /* float* or int32_t* */
} npy_array;

/* 0 on success; prints the reason to stderr and returns -1 on failure. */
int npy_load(const char *path, npy_array *out);
void npy_free(npy_array *a);

#endif
