/* Fuzz target: the JPEG path (libjpeg-turbo, CMYK conversion, EXIF, orientation, resize). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first byte picks the flags, so EXIF rotation and DCT scaling are both covered. */
    uint32_t flags = size > 0 && data[0] != 0xff ? data[0] & 3u : 0;
    if (flags) {
        data++, size--;
    }
    pg_fuzz_image(data, size, flags);
    return 0;
}
