#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *path, const char *why)
{
    fprintf(stderr, "npy_load %s: %s\n", path, why);
    return -1;
}

int npy_load(const char *path, npy_array *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        return fail(path, "cannot open");
    }
    unsigned char pre[10];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        fclose(f);
        return fail(path, "not an npy file");
    }
    size_t hlen;
    if (pre[6] == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
    } else {
        unsigned char b[2];
        if (fread(b, 1, 2, f) != 2) {
            fclose(f);
            return fail(path, "short header");
        }
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)b[0] << 16 | (size_t)b[1] << 24;
    }
    char *h = calloc(1, hlen + 1);
    if (!h || fread(h, 1, hlen, f) != hlen) {
        free(h);
        fclose(f);
        return fail(path, "short header");
    }
    if (strstr(h, "'fortran_order': True")) {
        free(h);
        fclose(f);
        return fail(path, "fortran order unsupported");
    }
    if (strstr(h, "'<f4'")) {
        out->dtype = 'f';
    } else if (strstr(h, "'<i4'")) {
        out->dtype = 'i';
    } else {
        free(h);
        fclose(f);
        return fail(path, "dtype must be <f4 or <i4");
    }
    char *s = strstr(h, "'shape': (");
    if (!s) {
        free(h);
        fclose(f);
        return fail(path, "no shape");
    }
    s += strlen("'shape': (");
    out->count = 1;
    while (*s && *s != ')') {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s) {
            s++;
            continue;
        }
        if (out->ndim < 8) {
            out->shape[out->ndim++] = v;
        }
        out->count *= (size_t)v;
        s = end;
    }
    free(h);
    out->data = malloc(out->count * 4 + 1);
    if (!out->data || fread(out->data, 4, out->count, f) != out->count) {
        fclose(f);
        npy_free(out);
        return fail(path, "short data");
    }
    fclose(f);
    return 0;
}

void npy_free(npy_array *a)
{
    free(a->data);
    a->data = NULL;
}
