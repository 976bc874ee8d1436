/* Backend registry: maps a backend name to its constructor, plus the dtype helpers. */
#include "backend/backend.h"
#include "backend/cpu/cpu.h"
#include "backend/ref/ref.h"

#include <string.h>

size_t pg__dtype_size(pg__dtype dt)
{
    switch (dt) {
    case PG__F32:
        return 4;
    case PG__F16:
    case PG__BF16:
        return 2;
    case PG__Q8:
    case PG__Q4:
        return 0;
    }
    return 0;
}

const char *pg__dtype_name(pg__dtype dt)
{
    switch (dt) {
    case PG__F32:
        return "f32";
    case PG__F16:
        return "f16";
    case PG__BF16:
        return "bf16";
    case PG__Q8:
        return "q8";
    case PG__Q4:
        return "q4";
    }
    return "unknown";
}

static const char *const backend_names[] = {"cpu", "cpu-bf16", "ref", NULL};

const char *const *pg__backend_names(void)
{
    return backend_names;
}

pg_status pg__backend_create(pg__backend **out, const char *name, int32_t n_threads)
{
    if (!out) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "backend: NULL output pointer");
    }
    *out = NULL;
    if (n_threads < 0) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "backend: n_threads %d is negative",
                         (int)n_threads);
    }
    if (!name || strcmp(name, "cpu") == 0) {
        return pg__cpu_backend_create(out, n_threads, PG__CPU_ISA_AUTO);
    }
    if (strcmp(name, "cpu-bf16") == 0) {
        return pg__cpu_backend_create(out, n_threads, PG__CPU_ISA_AUTO_BF16);
    }
    if (strcmp(name, "ref") == 0) {
        return pg__ref_backend_create(out, n_threads);
    }
    return pg__error(PG_ERR_NOT_FOUND, "backend '%s' does not exist (available: cpu, cpu-bf16, ref)",
                     name);
}

void pg__backend_destroy(pg__backend *be)
{
    if (be) {
        be->ops->destroy(be);
    }
}
