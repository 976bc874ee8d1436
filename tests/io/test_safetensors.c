/*
 * The safetensors parser on file images built in memory: every malformed header is rejected
 * with the right status and a message naming the tensor; valid corner cases (metadata,
 * trailing spaces, empty and scalar tensors) are accepted. pg__st_open on odd paths.
 */
#include "harness.h"
#include "io/safetensors.h"

#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

/* A file image: 8-byte length, the header text, then `data_size` bytes of data. */
static uint8_t *image(const char *header, size_t data_size, size_t *size)
{
    size_t n = strlen(header);
    *size = 8 + n + data_size;
    uint8_t *buf = calloc(1, *size);
    for (int i = 0; i < 8; i++) {
        buf[i] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    memcpy(buf + 8, header, n);
    for (size_t i = 0; i < data_size; i++) {
        buf[8 + n + i] = (uint8_t)i;
    }
    return buf;
}

/* Parses and expects `want`; when want is an error, the message must contain `needle`. */
static void expect(const char *header, size_t data_size, pg_status want, const char *needle)
{
    size_t size;
    uint8_t *buf = image(header, data_size, &size);
    pg__st_file *f = NULL;
    pg_status st = pg__st_parse_memory(&f, buf, size, "mem.safetensors");
    CHECK_MSG(st == want, "%s -> %d (%s), wanted %d", header, (int)st, pg_last_error(),
              (int)want);
    if (st != PG_OK) {
        CHECK(f == NULL);
        CHECK_MSG(strstr(pg_last_error(), "mem.safetensors") != NULL, "no file in '%s'",
                  pg_last_error());
        if (needle) {
            CHECK_MSG(strstr(pg_last_error(), needle) != NULL, "'%s' lacks '%s'",
                      pg_last_error(), needle);
        }
    }
    pg__st_close(f);
    free(buf);
}

static void test_valid(void)
{
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[12,16]},"
                    "\"c\":{\"dtype\":\"F16\",\"shape\":[0,5],\"data_offsets\":[16,16]}}     ";
    size_t size;
    uint8_t *buf = image(h, 16, &size);
    pg__st_file *f = NULL;
    CHECK_OK(pg__st_parse_memory(&f, buf, size, "ok.safetensors"));
    if (f) {
        CHECK_EQ_INT(f->n_tensors, 3);
        const pg__st_tensor *a = pg__st_find(f, "a");
        const pg__st_tensor *b = pg__st_find(f, "b");
        const pg__st_tensor *c = pg__st_find(f, "c");
        CHECK(a && a->dtype == PG__ST_BF16 && a->ndim == 2 && a->shape[1] == 3);
        CHECK(a && a->n_elements == 6 && a->data == buf + 8 + strlen(h));
        CHECK(b && b->ndim == 0 && b->n_elements == 1 && b->data == buf + 8 + strlen(h) + 12);
        CHECK(c && c->n_elements == 0);
        CHECK(pg__st_find(f, "__metadata__") == NULL);
        CHECK_EQ_INT(f->data_size, 16);
    }
    pg__st_close(f);
    free(buf);
    expect("{}", 0, PG_OK, NULL); /* an empty file is well-formed */
}

static void test_framing(void)
{
    uint8_t small[5] = { 1, 2, 3, 4, 5 };
    pg__st_file *f = NULL;
    CHECK_EQ_INT(pg__st_parse_memory(&f, small, sizeof small, "mem.safetensors"), PG_ERR_FORMAT);
    CHECK(strstr(pg_last_error(), "too short"));
    /* header length larger than the file */
    uint8_t big[16] = { 0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}' };
    CHECK_EQ_INT(pg__st_parse_memory(&f, big, sizeof big, "mem.safetensors"), PG_ERR_FORMAT);
    CHECK(strstr(pg_last_error(), "larger than the file"));
    uint8_t huge[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    CHECK_EQ_INT(pg__st_parse_memory(&f, huge, sizeof huge, "mem.safetensors"), PG_ERR_FORMAT);
    /* header length 0 */
    uint8_t zero[8] = { 0 };
    CHECK_EQ_INT(pg__st_parse_memory(&f, zero, sizeof zero, "mem.safetensors"), PG_ERR_FORMAT);
    CHECK(f == NULL);
    CHECK_EQ_INT(pg__st_parse_memory(&f, NULL, 10, "mem.safetensors"),
                 PG_ERR_INVALID_ARGUMENT);
}

static void test_bad_headers(void)
{
    expect("not json at all", 0, PG_ERR_FORMAT, "not valid JSON");
    expect("{\"a\": ", 0, PG_ERR_FORMAT, "not valid JSON");
    expect("[1, 2]", 0, PG_ERR_FORMAT, "not a JSON object");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
           "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
           8, PG_ERR_FORMAT, "not valid JSON"); /* duplicate name */
    expect("{\"__metadata__\": 5}", 0, PG_ERR_FORMAT, "__metadata__");
    expect("{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, PG_ERR_FORMAT,
           "empty name");
    expect("{\"t\": 7}", 0, PG_ERR_FORMAT, "'t'");
    expect("{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, PG_ERR_FORMAT, "dtype");
    expect("{\"t\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, PG_ERR_FORMAT,
           "unknown dtype \"F33\"");
    expect("{\"t\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, PG_ERR_FORMAT, "'t'");
    expect("{\"t\":{\"dtype\":\"F32\",\"shape\":5,\"data_offsets\":[0,4]}}", 4, PG_ERR_FORMAT,
           "shape");
    expect("{\"t\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, PG_ERR_FORMAT,
           "shape[0]");
    expect("{\"t\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
           PG_ERR_FORMAT, "shape[0]");
    expect("{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
           PG_ERR_UNSUPPORTED, "dimensions");
    expect("{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,2],"
           "\"data_offsets\":[0,4]}}",
           4, PG_ERR_FORMAT, "overflows");
    expect("{\"t\":{\"dtype\":\"F64\",\"shape\":[2147483648,2147483648],"
           "\"data_offsets\":[0,4]}}",
           4, PG_ERR_FORMAT, "byte size"); /* 2^62 elements fit, 2^65 bytes do not */
    expect("{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, PG_ERR_FORMAT, "data_offsets");
    expect("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, PG_ERR_FORMAT,
           "data_offsets");
    expect("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
           PG_ERR_FORMAT, "data_offsets");
    expect("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, PG_ERR_FORMAT,
           "outside");
    expect("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, PG_ERR_FORMAT,
           "outside"); /* end beyond the data buffer: a truncated file */
    expect("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, PG_ERR_FORMAT,
           "need 4"); /* dtype x shape does not match the span */
    expect("{\"t\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,4]}}", 8,
           PG_ERR_FORMAT, "need 8");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
           12, PG_ERR_FORMAT, "overlap");
    expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
           16, PG_ERR_FORMAT, "overlap"); /* one inside the other */
}

/* pg__st_open: missing file, a folder, an empty file, a real file. */
static void test_open(void)
{
    pg__st_file *f = NULL;
    CHECK_EQ_INT(pg__st_open(&f, "/nonexistent/x.safetensors"), PG_ERR_NOT_FOUND);
    CHECK(strstr(pg_last_error(), "/nonexistent/x.safetensors"));
    CHECK_EQ_INT(pg__st_open(&f, pg_test_data_dir()), PG_ERR_IO);
    char path[] = "/tmp/pg_st_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        close(fd);
        CHECK_EQ_INT(pg__st_open(&f, path), PG_ERR_FORMAT); /* empty */
        unlink(path);
    }
    CHECK_OK(pg__st_open(&f, pg_test_path(pg_test_data_dir(),
                                          "models/tiny/bf16/model-00002-of-00002.safetensors")));
    CHECK(f && f->n_tensors > 0 && f->map != NULL);
    pg__st_close(f);
    pg__st_close(NULL);
}

int main(void)
{
    test_valid();
    test_framing();
    test_bad_headers();
    test_open();
    return pg_test_finish();
}
