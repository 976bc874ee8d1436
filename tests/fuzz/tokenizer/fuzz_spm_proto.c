/* Fuzz target: the SentencePiece ModelProto reader (tokenizer.model) and what follows a
 * successful load. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pg_tokenizer *tok = pg__tok_new();
    if (!tok) {
        return 0;
    }
    if (pg__spm_proto_read(tok, data, size, "fuzz") == PG_OK &&
        pg__tok_finalize(tok, "fuzz") == PG_OK) {
        fuzz_exercise(tok);
    }
    pg__tokenizer_free(tok);
    return 0;
}
