/* pg bench: placeholder until the owning issue lands. */
#include "pg.h"

#include <stdio.h>

int pg_cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "pg bench: not built yet\n");
    return 2;
}
