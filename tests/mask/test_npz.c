/*
 * io/npz: the .npy header parser and the libzip side, on hand-made .npy images and archives
 * written here with libzip: good arrays of every accepted dtype and both header versions, and
 * every refused case (magic, version, header length past the end, unknown or missing keys,
 * shapes that overflow, too many dims, data too short or too long, other dtypes, byte order,
 * Fortran order), missing entries, the entry-size cap, a corrupt archive.
 */
#include "harness.h"
#include "io/npz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

/* A v1 .npy image: header dict `dict` (padded to 64 bytes with '\n'), then `n` data bytes. */
static size_t make_npy(uint8_t *out, int version, const char *dict, const void *data, size_t n)
{
    const size_t pre = version == 1 ? 10 : 12;
    size_t hl = strlen(dict) + 1;
    while ((pre + hl) % 64) {
        hl++;
    }
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (uint8_t)version;
    out[7] = 0;
    if (version == 1) {
        out[8] = (uint8_t)hl;
        out[9] = (uint8_t)(hl >> 8);
    } else {
        out[8] = (uint8_t)hl;
        out[9] = (uint8_t)(hl >> 8);
        out[10] = out[11] = 0;
    }
    memset(out + pre, ' ', hl);
    memcpy(out + pre, dict, strlen(dict));
    out[pre + hl - 1] = '\n';
    if (n) {
        memcpy(out + pre + hl, data, n);
    }
    return pre + hl + n;
}

static pg_status parse(int version, const char *dict, const void *data, size_t n, pg__npy *a)
{
    static uint8_t buf[1 << 16];
    size_t size = make_npy(buf, version, dict, data, n);
    return pg__npy_parse_f32(buf, size, "t.npy", a);
}

static void test_good(void)
{
    const float f[6] = { 1, -2, 3.5f, 0, 1e-3f, 7 };
    pg__npy a;
    CHECK_OK(parse(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f,
                   sizeof f, &a));
    CHECK(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3 && a.count == 6);
    CHECK(a.data && memcmp(a.data, f, sizeof f) == 0);
    pg__npy_free(&a);
    const double d[2] = { 0.25, -1e30 };
    CHECK_OK(parse(2, "{\"shape\": (2,), \"fortran_order\": False, \"descr\": \"<f8\"}", d,
                   sizeof d, &a));
    CHECK(a.ndim == 1 && a.count == 2 && a.data[0] == 0.25f && a.data[1] == -1e30f);
    pg__npy_free(&a);
    const uint16_t h[1] = { 0x3c00 }; /* 1.0 */
    CHECK_OK(parse(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (), }", h, 2, &a));
    CHECK(a.ndim == 0 && a.count == 1 && a.data[0] == 1.0f);
    pg__npy_free(&a);
    CHECK_OK(parse(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }", f, 12, &a) ==
                     PG_ERR_UNSUPPORTED
                 ? PG_OK
                 : PG_ERR_INTERNAL);
    CHECK_OK(parse(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }", f, 0, &a));
    CHECK(a.count == 0);
    pg__npy_free(&a);
}

static void expect(pg_status want, int version, const char *dict, size_t n, const char *msg)
{
    static const uint8_t zeros[256];
    pg__npy a;
    pg_status st = parse(version, dict, zeros, n, &a);
    CHECK_MSG(st == want && strstr(pg_last_error(), msg), "%s: status %d (%s), want %d '%s'",
              dict, (int)st, pg_last_error(), (int)want, msg);
    CHECK(a.data == NULL && a.count == 0);
}

static void test_bad_headers(void)
{
    const char *ok = "'fortran_order': False, 'shape': (2,), }";
    char dict[256];
    snprintf(dict, sizeof dict, "{'descr': '<i4', %s", ok);
    expect(PG_ERR_UNSUPPORTED, 1, dict, 8, "dtype '<i4' is not a float");
    snprintf(dict, sizeof dict, "{'descr': '>f4', %s", ok);
    expect(PG_ERR_UNSUPPORTED, 1, dict, 8, "big-endian");
    snprintf(dict, sizeof dict, "{'descr': [('a', '<f4')], %s", ok);
    expect(PG_ERR_UNSUPPORTED, 1, dict, 8, "not a simple dtype");
    expect(PG_ERR_UNSUPPORTED, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }",
           8, "Fortran");
    expect(PG_ERR_FORMAT, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 4,
           "data is 4 bytes, the shape needs 8 (truncated)");
    expect(PG_ERR_FORMAT, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 12,
           "data is 12 bytes, the shape needs 8");
    expect(PG_ERR_FORMAT, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", 8,
           "shape is not a tuple");
    expect(PG_ERR_FORMAT, 1,
           "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627777,), }", 8,
           "shape is not a tuple");
    expect(PG_ERR_LIMIT, 1,
           "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }",
           8, "shape too large");
    expect(PG_ERR_FORMAT, 1,
           "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 4,
           "shape is not a tuple");
    expect(PG_ERR_FORMAT, 1, "{'descr': '<f4', 'shape': (2,), }", 8, "lacks fortran_order");
    expect(PG_ERR_FORMAT, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
           8, "unexpected key 'x'");
    expect(PG_ERR_FORMAT, 1, "{'descr': '<f4', 'descr': '<f4', 'shape': (2,), }", 8,
           "unexpected key 'descr'");
    expect(PG_ERR_FORMAT, 1, "['descr']", 8, "not a dict");
    expect(PG_ERR_FORMAT, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", 8,
           "text after the dict");
    expect(PG_ERR_FORMAT, 1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", 8,
           "not a bool");

    pg__npy a;
    const uint8_t bad_magic[16] = "\x93NUMPZ\x01\x00\x00\x00";
    CHECK(pg__npy_parse_f32(bad_magic, sizeof bad_magic, "m", &a) == PG_ERR_FORMAT);
    uint8_t v9[16] = "\x93NUMPY\x09\x00\x04\x00{}  ";
    CHECK(pg__npy_parse_f32(v9, sizeof v9, "m", &a) == PG_ERR_UNSUPPORTED);
    uint8_t longhdr[16] = "\x93NUMPY\x01\x00\xff\x00{}  ";
    CHECK(pg__npy_parse_f32(longhdr, sizeof longhdr, "m", &a) == PG_ERR_FORMAT &&
          strstr(pg_last_error(), "past the end"));
    CHECK(pg__npy_parse_f32(longhdr, 5, "m", &a) == PG_ERR_FORMAT);
    CHECK(pg__npy_parse_f32(NULL, 0, "m", &a) == PG_ERR_FORMAT);
    CHECK(pg__npy_parse_f32(longhdr, 16, "m", NULL) == PG_ERR_INVALID_ARGUMENT);
}

/* Writes an archive with entries name -> bytes through libzip; returns its bytes. */
static uint8_t *make_zip(const char *path, const char *const *names, const uint8_t *const *data,
                         const size_t *sizes, int n, bool deflate, size_t *size)
{
    int err = 0;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    CHECK(z != NULL);
    for (int i = 0; z && i < n; i++) {
        zip_source_t *s = zip_source_buffer(z, data[i], sizes[i], 0);
        zip_int64_t idx = zip_file_add(z, names[i], s, ZIP_FL_OVERWRITE);
        CHECK(idx >= 0);
        zip_set_file_compression(z, (zip_uint64_t)idx, deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE,
                                 0);
    }
    CHECK(z && zip_close(z) == 0);
    char *buf = NULL;
    CHECK_OK(pg__read_file(path, 1 << 24, &buf, size));
    return (uint8_t *)buf;
}

static void test_archive(void)
{
    static uint8_t npy[4096], big[8192];
    const float f[4] = { 1, 2, 3, 4 };
    static float many[1000];
    const size_t n1 = make_npy(npy, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }",
                               f, sizeof f);
    const size_t n2 = make_npy(big, 1,
                               "{'descr': '<f4', 'fortran_order': False, 'shape': (1000,), }",
                               many, sizeof many);
    const char *names[3] = { "a.npy", "big.npy", "notes.txt" };
    const uint8_t *data[3] = { npy, big, (const uint8_t *)"hello" };
    const size_t sizes[3] = { n1, n2, 5 };
    char path[] = "/tmp/pg_test_npz_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    for (int deflate = 0; deflate < 2; deflate++) {
        size_t size = 0;
        uint8_t *zipbytes = make_zip(path, names, data, sizes, 3, deflate, &size);
        pg__npz *z = NULL;
        CHECK_OK(pg__npz_open(&z, path));
        CHECK_EQ_INT(pg__npz_count(z), 3);
        CHECK(pg__npz_entry_name(z, 1) && !strcmp(pg__npz_entry_name(z, 1), "big.npy"));
        pg__npy a;
        CHECK_OK(pg__npz_read_f32(z, "a", &a));
        CHECK(a.count == 4 && a.data[3] == 4.0f);
        pg__npy_free(&a);
        CHECK(pg__npz_read_f32(z, "b", &a) == PG_ERR_NOT_FOUND &&
              strstr(pg_last_error(), "no array 'b'"));
        CHECK(pg__npz_read_f32(z, "notes", &a) == PG_ERR_NOT_FOUND);
        pg__npz_close(z);
        /* a memory archive with a cap between the two entries' sizes */
        CHECK_OK(pg__npz_open_memory(&z, zipbytes, size, "mem", 1024));
        CHECK_OK(pg__npz_read_f32(z, "a", &a));
        pg__npy_free(&a);
        CHECK(pg__npz_read_f32(z, "big", &a) == PG_ERR_LIMIT && strstr(pg_last_error(), "cap"));
        pg__npz_close(z);
        /* corrupt bytes anywhere: refused or read, never a crash or a wrong status */
        for (size_t at = 0; at < size; at += 13) {
            uint8_t *copy = malloc(size);
            memcpy(copy, zipbytes, size);
            copy[at] ^= 0x5a;
            pg_status st = pg__npz_open_memory(&z, copy, size, "bad", 1 << 20);
            CHECK(st == PG_OK || (st == PG_ERR_FORMAT && z == NULL));
            for (int e = 0; st == PG_OK && e < 2; e++) {
                pg_status s1 = pg__npz_read_f32(z, e ? "big" : "a", &a);
                CHECK(s1 == PG_OK || s1 == PG_ERR_FORMAT || s1 == PG_ERR_NOT_FOUND ||
                      s1 == PG_ERR_UNSUPPORTED || s1 == PG_ERR_LIMIT);
                CHECK(s1 == PG_OK || a.data == NULL);
                pg__npy_free(&a);
            }
            pg__npz_close(z);
            free(copy);
        }
        /* a flipped byte of stored float data: the CRC check refuses the entry */
        const uint8_t *hit = deflate ? NULL : memmem(zipbytes, size, f, sizeof f);
        CHECK(deflate || hit);
        if (hit) {
            uint8_t *copy = malloc(size);
            memcpy(copy, zipbytes, size);
            copy[hit - zipbytes + 5] ^= 1;
            CHECK_OK(pg__npz_open_memory(&z, copy, size, "crc", 1 << 20));
            CHECK(pg__npz_read_f32(z, "a", &a) == PG_ERR_FORMAT &&
                  strstr(pg_last_error(), "CRC"));
            pg__npz_close(z);
            free(copy);
        }
        /* truncated archive */
        CHECK(pg__npz_open_memory(&z, zipbytes, size / 2, "half", 1 << 20) == PG_ERR_FORMAT);
        free(zipbytes);
    }
    unlink(path);
    pg__npz *z = NULL;
    CHECK(pg__npz_open(&z, "/nonexistent/x.npz") == PG_ERR_NOT_FOUND && z == NULL &&
          strstr(pg_last_error(), "/nonexistent/x.npz"));
    CHECK(pg__npz_open_memory(&z, "junk", 4, "junk", 1 << 20) == PG_ERR_FORMAT);
    CHECK(pg__npz_open(NULL, "x") == PG_ERR_INVALID_ARGUMENT);
    pg__npz_close(NULL);
}

int main(void)
{
    test_good();
    test_bad_headers();
    test_archive();
    return pg_test_finish();
}
