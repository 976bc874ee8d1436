/* Backend registry: name -> constructor. Placeholder until the backends land. */
#include "backend/backend.h"

#include <string.h>

pg_status pg__backend_create(pg__backend **out, const char *name, int32_t n_threads)
{
    (void)n_threads;
    *out = NULL;
    return pg__error(PG_ERR_NOT_FOUND, "backend '%s' is not built yet", name ? name : "cpu");
}

void pg__backend_destroy(pg__backend *be)
{
    if (be) {
        be->ops->destroy(be);
    }
}
