/* pg tokenize: placeholder until the owning issue lands. */
#include "pg.h"

#include <stdio.h>

int pg_cmd_tokenize(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "pg tokenize: not built yet\n");
    return 2;
}
