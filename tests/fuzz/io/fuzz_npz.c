/*
 * Fuzz target: the .npz reader (io/npz.c over libzip) and the mask decoder's loader. Input
 * starting with the .npy magic is parsed as one .npy array; anything else is opened as a zip
 * archive (entries capped at 1 MiB), every entry read as a float32 array and the whole archive
 * offered to the decoder loader. Checks: a success gives ndim <= 8, count == product of the
 * shape and data for count values; a failure leaves the output zeroed; only documented
 * statuses come back.
 */
#include "io/npz.h"
#include "mask/mask.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_array(pg_status st, const pg__npy *a)
{
    if (st == PG_OK) {
        uint64_t count = 1;
        if (a->ndim > PG__NPY_MAX_DIMS) {
            abort();
        }
        for (uint32_t i = 0; i < a->ndim; i++) {
            count *= a->shape[i];
        }
        if (count != a->count || !a->data) {
            abort();
        }
        volatile float sink = 0; /* touch every value: ASan checks the allocation's size */
        for (uint64_t i = 0; i < a->count; i++) {
            sink += a->data[i];
        }
        (void)sink;
    } else if (a->data || a->count || a->ndim ||
               !(st == PG_ERR_FORMAT || st == PG_ERR_UNSUPPORTED || st == PG_ERR_LIMIT ||
                 st == PG_ERR_NOT_FOUND || st == PG_ERR_OUT_OF_MEMORY)) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pg__npy a;
    if (size >= 6 && memcmp(data, "\x93NUMPY", 6) == 0) {
        check_array(pg__npy_parse_f32(data, size, "fuzz.npy", &a), &a);
        pg__npy_free(&a);
        return 0;
    }
    pg__npz *z = NULL;
    pg_status st = pg__npz_open_memory(&z, data, size, "fuzz.npz", 1u << 20);
    if (st != PG_OK) {
        if (z || (st != PG_ERR_FORMAT && st != PG_ERR_OUT_OF_MEMORY && st != PG_ERR_IO)) {
            abort();
        }
        return 0;
    }
    const size_t n = pg__npz_count(z);
    for (size_t i = 0; i < n && i < 64; i++) {
        const char *name = pg__npz_entry_name(z, i);
        size_t len = name ? strlen(name) : 0;
        if (len > 4 && len < 256 && strcmp(name + len - 4, ".npy") == 0) {
            char base[256];
            memcpy(base, name, len - 4);
            base[len - 4] = '\0';
            st = pg__npz_read_f32(z, base, &a);
            check_array(st, &a);
            pg__npy_free(&a);
        }
    }
    pg_mask_decoder *dec = NULL;
    st = pg__mask_decoder_from_npz(&dec, z);
    if ((st == PG_OK) != (dec != NULL)) {
        abort();
    }
    pg__mask_decoder_free(dec);
    pg__npz_close(z);
    return 0;
}
