/* Fuzz target: the EXIF/TIFF Orientation parser on raw TIFF blocks. */
#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int o = pg__exif_orientation(data, size);
    return o >= 0 && o <= 8 ? 0 : -1; /* anything else is a bug; libFuzzer reports -1 */
}
