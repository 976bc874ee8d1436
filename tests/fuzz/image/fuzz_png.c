/* Fuzz target: the PNG path (libspng, every colour type and depth, Adam7, eXIf, resize). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pg_fuzz_image(data, size, 0);
    return 0;
}
