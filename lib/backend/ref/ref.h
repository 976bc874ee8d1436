/* backend/ref: the scalar reference backend (ground truth for tests; slow, single thread). */
#ifndef PG_BACKEND_REF_H
#define PG_BACKEND_REF_H

#include "backend/backend.h"

/* n_threads is recorded but the reference backend always computes on the calling thread. */
pg_status pg__ref_backend_create(pg__backend **out, int32_t n_threads);

#endif
