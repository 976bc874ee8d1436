/* Argument parsing shared by the pg commands. */
#include "pg.h"

#include <errno.h>
#include <stdlib.h>

bool pg_cli_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    /* strtoul alone accepts "", "-1" (wrapped), "5x" and overflow: refuse each. */
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max) {
        return false;
    }
    *out = v;
    return true;
}
