/* core: errors, status strings, struct_size checks, UTF-8 validation, f16/bf16 conversion. */
#include "core/core.h"
#include "harness.h"

static void test_errors(void)
{
    CHECK(pg__error(PG_ERR_FORMAT, "bad %d", 7) == PG_ERR_FORMAT);
    CHECK(strcmp(pg_last_error(), "bad 7") == 0);
    pg__error_prefix("file.json");
    CHECK(strcmp(pg_last_error(), "file.json: bad 7") == 0);
    pg__error_clear();
    CHECK(pg_last_error()[0] == '\0');
    for (int s = 0; s <= 12; s++) {
        CHECK(strcmp(pg_status_string((pg_status)s), "unknown status") != 0);
    }
    CHECK(strcmp(pg_status_string((pg_status)999), "unknown status") == 0);
}

static void test_struct_size(void)
{
    struct {
        size_t struct_size;
        int a;
        int future;
    } o = { sizeof o, 1, 0 };
    CHECK(pg__check_struct_size(&o, sizeof o, sizeof(size_t), "o") == PG_OK);
    /* a newer caller with a zero extra field is accepted by an older library */
    CHECK(pg__check_struct_size(&o, offsetof(__typeof__(o), future), sizeof(size_t), "o") ==
          PG_OK);
    o.future = 5;
    CHECK(pg__check_struct_size(&o, offsetof(__typeof__(o), future), sizeof(size_t), "o") ==
          PG_ERR_UNSUPPORTED);
    o.struct_size = 2;
    CHECK(pg__check_struct_size(&o, sizeof o, sizeof(size_t), "o") == PG_ERR_INVALID_ARGUMENT);
    o.struct_size = 100000;
    CHECK(pg__check_struct_size(&o, sizeof o, sizeof(size_t), "o") == PG_ERR_INVALID_ARGUMENT);
}

static void test_utf8(void)
{
    CHECK(pg__utf8_valid_prefix((const unsigned char *)"a", 1) == 1);
    CHECK(pg__utf8_valid_prefix((const unsigned char *)"\xc3\xa9", 2) == 2);
    CHECK(pg__utf8_valid_prefix((const unsigned char *)"\xc3", 1) == 0);
    CHECK(pg__utf8_valid_prefix((const unsigned char *)"\xc0\x80", 2) == 0); /* overlong */
    CHECK(pg__utf8_valid_prefix((const unsigned char *)"\xed\xa0\x80", 3) == 0); /* surrogate */
    CHECK(pg__utf8_valid_prefix((const unsigned char *)"\xf0\x9f\x98\x80", 4) == 4);
    CHECK(pg__utf8_valid_prefix((const unsigned char *)"\xf4\x90\x80\x80", 4) == 0);
    /* pg__utf8_check tells an incomplete start (-1) from invalid bytes (0). */
    CHECK(pg__utf8_check((const unsigned char *)"\xe2\x96", 2) == -1);
    CHECK(pg__utf8_check((const unsigned char *)"\xe2\x96\x81", 3) == 3);
    CHECK(pg__utf8_check((const unsigned char *)"\xe2\x28\xa1", 3) == 0);
    CHECK(pg__utf8_check((const unsigned char *)"\xff", 1) == 0);
    CHECK(pg__utf8_check((const unsigned char *)"", 0) == -1);
}

static void test_half(void)
{
    const float vals[] = { 0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.1f };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        float r = pg__f16_to_f32(pg__f32_to_f16(vals[i]));
        CHECK_MSG(fabsf(r - vals[i]) <= fabsf(vals[i]) * 1e-3f, "%g -> %g", (double)vals[i],
                  (double)r);
        float b = pg__bf16_to_f32(pg__f32_to_bf16(vals[i]));
        CHECK_MSG(fabsf(b - vals[i]) <= fabsf(vals[i]) * 8e-3f, "%g -> %g", (double)vals[i],
                  (double)b);
    }
    CHECK(pg__f32_to_f16(1e6f) == 0x7c00);
    CHECK(pg__f32_to_bf16(1.0f) == 0x3f80);
    CHECK(pg__f32_to_bf16(1.00390625f) == 0x3f80); /* tie rounds to even */
}

int main(void)
{
    test_errors();
    test_struct_size();
    test_utf8();
    test_half();
    CHECK(pg_abi_version() == PG_ABI_VERSION);
    CHECK(pg_version_number() == PG_VERSION_NUMBER);
    return pg_test_finish();
}
