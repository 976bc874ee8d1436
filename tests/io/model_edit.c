#include "model_edit.h"

#include "harness.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *in_dir(const char *dir, const char *name)
{
    return pg_test_path(dir, name);
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    FILE *out = in ? fopen(to, "wb") : NULL;
    int rc = in && out ? 0 : -1;
    char buf[65536];
    size_t n;
    while (rc == 0 && in && (n = fread(buf, 1, sizeof buf, in)) > 0) {
        rc = fwrite(buf, 1, n, out) == n ? 0 : -1;
    }
    if (in) {
        fclose(in);
    }
    if (out && fclose(out) != 0) {
        rc = -1;
    }
    return rc;
}

static bool copied_name(const char *name)
{
    return strcmp(name, "config.json") == 0 || strstr(name, ".safetensors") != NULL;
}

char *tmp_model_copy(const char *rel)
{
    char tmpl[] = "/tmp/pg_model_XXXXXX";
    if (!mkdtemp(tmpl)) {
        return NULL;
    }
    char *dir = strdup(tmpl);
    char src[4096];
    snprintf(src, sizeof src, "%s/%s", pg_test_data_dir(), rel);
    DIR *d = opendir(src);
    struct dirent *e;
    int rc = d ? 0 : -1;
    while (rc == 0 && (e = readdir(d))) {
        if (copied_name(e->d_name)) {
            rc = copy_file(in_dir(src, e->d_name), in_dir(dir, e->d_name));
        }
    }
    if (d) {
        closedir(d);
    }
    if (rc != 0) {
        tmp_model_remove(dir);
        return NULL;
    }
    return dir;
}

void tmp_model_remove(char *dir)
{
    if (!dir) {
        return;
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            unlink(in_dir(dir, e->d_name));
        }
    }
    if (d) {
        closedir(d);
    }
    rmdir(dir);
    free(dir);
}

int write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        return -1;
    }
    int rc = fwrite(data, 1, n, f) == n ? 0 : -1;
    return fclose(f) == 0 ? rc : -1;
}

json_t *read_json(const char *path)
{
    json_error_t err;
    return json_load_file(path, 0, &err);
}

int write_json(const char *path, const json_t *j)
{
    return json_dump_file(j, path, JSON_INDENT(1));
}

int st_read(st_image *im, const char *path)
{
    memset(im, 0, sizeof *im);
    FILE *f = fopen(path, "rb");
    if (!f) {
        return -1;
    }
    uint8_t len8[8];
    int rc = fread(len8, 1, 8, f) == 8 ? 0 : -1;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) {
        n = (n << 8) | len8[i];
    }
    char *text = rc == 0 ? malloc(n) : NULL;
    rc = text && fread(text, 1, n, f) == n ? 0 : -1;
    if (rc == 0) {
        json_error_t err;
        im->header = json_loadb(text, n, 0, &err);
        rc = im->header ? 0 : -1;
    }
    free(text);
    long start = ftell(f);
    fseek(f, 0, SEEK_END);
    long end = ftell(f);
    fseek(f, start, SEEK_SET);
    if (rc == 0) {
        im->data_size = (size_t)(end - start);
        im->data = malloc(im->data_size ? im->data_size : 1);
        rc = im->data && fread(im->data, 1, im->data_size, f) == im->data_size ? 0 : -1;
    }
    fclose(f);
    return rc;
}

int st_write(const st_image *im, const char *path, size_t extra_pad)
{
    char *text = json_dumps(im->header, JSON_COMPACT);
    if (!text) {
        return -1;
    }
    size_t n = strlen(text);
    size_t padded = (n + 7) / 8 * 8 + extra_pad;
    FILE *f = fopen(path, "wb");
    int rc = f ? 0 : -1;
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) {
        len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    }
    if (rc == 0) {
        rc = fwrite(len8, 1, 8, f) == 8 && fwrite(text, 1, n, f) == n ? 0 : -1;
    }
    for (size_t i = n; rc == 0 && i < padded; i++) {
        rc = fputc(' ', f) == ' ' ? 0 : -1;
    }
    if (rc == 0) {
        rc = fwrite(im->data, 1, im->data_size, f) == im->data_size ? 0 : -1;
    }
    if (f && fclose(f) != 0) {
        rc = -1;
    }
    free(text);
    return rc;
}

void st_free(st_image *im)
{
    json_decref(im->header);
    free(im->data);
    memset(im, 0, sizeof *im);
}

size_t st_append(st_image *im, const void *bytes, size_t n)
{
    size_t off = im->data_size;
    im->data = realloc(im->data, off + n);
    memcpy(im->data + off, bytes, n);
    im->data_size += n;
    return off;
}

int st_edit(const char *path, void (*fn)(st_image *, void *), void *user)
{
    st_image im;
    if (st_read(&im, path) != 0) {
        st_free(&im);
        return -1;
    }
    fn(&im, user);
    int rc = st_write(&im, path, 0);
    st_free(&im);
    return rc;
}
