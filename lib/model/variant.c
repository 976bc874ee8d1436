/* The released PaliGemma 2 size names (spec §1.1-1.2). */
#include "model/loader.h"

#include <stdio.h>

void pg__model_variant(const pg__config *cfg, char *buf, size_t cap)
{
    /* The text width tells the Gemma 2 size (2B/9B/27B -> "3b"/"10b"/"28b" with SigLIP);
     * the image size the resolution. Anything else is a custom model. */
    static const struct {
        int32_t hidden;
        const char *name;
    } sizes[] = { { 2304, "3b" }, { 3584, "10b" }, { 4608, "28b" } };
    int32_t s = cfg->vision.image_size;
    bool released_res = s == 224 || s == 448 || s == 896;
    for (size_t i = 0; released_res && i < sizeof sizes / sizeof sizes[0]; i++) {
        if (cfg->text.hidden == sizes[i].hidden) {
            snprintf(buf, cap, "%s-%d", sizes[i].name, (int)s);
            return;
        }
    }
    snprintf(buf, cap, "custom");
}
