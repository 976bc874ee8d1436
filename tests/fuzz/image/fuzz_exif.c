/* Fuzz target: the EXIF/TIFF Orientation parser on raw TIFF blocks, and the XMP scan. */
#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool present;
    int o = pg__exif_find_orientation(data, size, &present);
    int x = pg__xmp_orientation((const char *)data, size);
    /* Anything outside these ranges is a bug; returning -1 makes libFuzzer report it. */
    return o >= 0 && o <= 8 && (present || o == 0) && x >= -1 && x <= 9 ? 0 : -1;
}
