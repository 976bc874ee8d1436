/* Thread-local last-error message and the status strings. */
#include "core.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char tls_msg[PG__ERRMSG_MAX];

pg_status pg__error(pg_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_msg, sizeof tls_msg, fmt, ap);
    va_end(ap);
    return status;
}

void pg__error_prefix(const char *fmt, ...)
{
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Shift the old message right by "prefix: " (truncating its tail if needed). */
    size_t p = strlen(prefix), m = strlen(tls_msg);
    size_t keep = m < sizeof tls_msg - p - 3 ? m : sizeof tls_msg - p - 3;
    memmove(tls_msg + p + 2, tls_msg, keep);
    tls_msg[p + 2 + keep] = '\0';
    memcpy(tls_msg, prefix, p);
    tls_msg[p] = ':';
    tls_msg[p + 1] = ' ';
}

void pg__error_clear(void)
{
    tls_msg[0] = '\0';
}

const char *pg__error_message(void)
{
    return tls_msg;
}

PG_API const char *pg_last_error(void)
{
    return tls_msg;
}

PG_API const char *pg_status_string(pg_status status)
{
    switch (status) {
    case PG_OK: return "success";
    case PG_ERR_INVALID_ARGUMENT: return "invalid argument";
    case PG_ERR_OUT_OF_MEMORY: return "out of memory";
    case PG_ERR_IO: return "input/output error";
    case PG_ERR_FORMAT: return "malformed data";
    case PG_ERR_LIMIT: return "limit exceeded";
    case PG_ERR_BAD_STATE: return "call out of order or session needs reset";
    case PG_ERR_UNSUPPORTED: return "unsupported";
    case PG_ERR_CANCELLED: return "cancelled";
    case PG_ERR_BACKEND: return "backend failure";
    case PG_ERR_INTERNAL: return "internal error";
    case PG_ERR_NOT_FOUND: return "not found";
    case PG_ERR_INVALID_UTF8: return "invalid UTF-8";
    }
    return "unknown status";
}
