/* Fuzz target: a safetensors file image (framing, header JSON, offsets) parsed from memory. */
#include "io/safetensors.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pg__st_file *f = NULL;
    if (pg__st_parse_memory(&f, data, size, "fuzz.safetensors") == PG_OK) {
        /* touch every accepted tensor's bytes: they must lie inside the input */
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < f->n_tensors; i++) {
            const pg__st_tensor *t = &f->tensors[i];
            if (t->end > t->begin) {
                const uint8_t *p = t->data;
                sink ^= p[0];
                sink ^= p[t->end - t->begin - 1];
            }
        }
        (void)sink;
    }
    pg__st_close(f);
    return 0;
}
