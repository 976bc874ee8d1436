/* What the Ollama and OpenAI handlers share: generation parameters and their checks. */
#include "serve.h"

#include <stdio.h>
#include <string.h>

void srv_gen_init(srv_gen *g)
{
    memset(g, 0, sizeof *g);
    PG_GENERATE_OPTIONS_INIT(&g->go);
    g->go.max_new_tokens = 256;
    g->prompt = "";
}

void srv_gen_clear(srv_gen *g)
{
    for (size_t i = 0; i < g->n_images; i++) pg_image_free(g->images[i]);
    g->n_images = 0;
}
