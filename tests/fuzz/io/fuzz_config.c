/* Fuzz target: config.json text -> pg__config, whose numbers must then be consistent. */
#include "model/config.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pg__config cfg;
    if (pg__config_parse(&cfg, (const char *)data, size, "fuzz/config.json") == PG_OK) {
        /* what the loader relies on after a successful parse */
        if (cfg.text.hidden <= 0 || cfg.text.heads % cfg.text.kv_heads != 0 ||
            cfg.vision.image_size % cfg.vision.patch != 0 ||
            cfg.vision.hidden % cfg.vision.heads != 0 || cfg.vision.n_tokens <= 0 ||
            cfg.image_token_index >= cfg.text.vocab) {
            abort();
        }
    }
    return 0;
}
