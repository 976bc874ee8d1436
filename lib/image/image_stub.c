/* Placeholder until issue 3 (images) lands. */
#include "image/image.h"

pg_status pg__image_preprocess(const struct pg_image *img, uint32_t size, int32_t method,
                               float *out)
{
    (void)img;
    (void)size;
    (void)method;
    (void)out;
    return pg__error(PG_ERR_UNSUPPORTED, "image preprocessing is not built yet");
}
