/* Run-time version queries (compare with the header's macros to detect a mismatch). */
#include "core.h"

PG_API uint32_t pg_version_number(void)
{
    return PG_VERSION_NUMBER;
}

PG_API const char *pg_version_string(void)
{
    return PG_VERSION_STRING;
}

PG_API uint32_t pg_abi_version(void)
{
    return PG_ABI_VERSION;
}
