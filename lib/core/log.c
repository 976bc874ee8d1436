/* Logging: per-model loggers with a process-wide fallback. The library never prints. */
#include "core.h"

#include <stdio.h>

static pg_log_fn g_log_fn;
static void *g_log_user;
static int32_t g_log_level = PG_LOG_WARN;

PG_API void pg_set_log_callback(pg_log_fn fn, void *user, int32_t max_level)
{
    g_log_fn = fn;
    g_log_user = user;
    g_log_level = max_level > 0 ? max_level : PG_LOG_WARN;
}

void pg__log(const pg__logger *lg, int level, const char *fmt, ...)
{
    pg_log_fn fn = g_log_fn;
    void *user = g_log_user;
    int32_t max = g_log_level;
    if (lg && lg->fn) {
        fn = lg->fn;
        user = lg->user;
        max = lg->level > 0 ? lg->level : PG_LOG_WARN;
    }
    if (!fn || level > max) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fn(user, level, msg);
}
