/* pg caption / ask / generate: placeholder until issue 5 lands. */
#include "pg.h"

#include <stdio.h>

int pg_cmd_caption(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "pg caption: not built yet\n");
    return 2;
}

int pg_cmd_ask(int argc, char **argv)
{
    return pg_cmd_caption(argc, argv);
}

int pg_cmd_generate(int argc, char **argv)
{
    return pg_cmd_caption(argc, argv);
}
