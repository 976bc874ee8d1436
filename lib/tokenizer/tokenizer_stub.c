/* Placeholder until issue 4 (tokenizer) lands: loading reports unsupported. */
#include "tokenizer/tokenizer.h"

pg_status pg__tokenizer_load(pg_tokenizer **out, const char *path)
{
    *out = NULL;
    return pg__error(PG_ERR_UNSUPPORTED, "%s: the tokenizer is not built yet", path);
}

void pg__tokenizer_free(pg_tokenizer *tok)
{
    (void)tok;
}
