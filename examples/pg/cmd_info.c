/* pg info: placeholder until the owning issue lands. */
#include "pg.h"

#include <stdio.h>

int pg_cmd_info(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "pg info: not built yet\n");
    return 2;
}
