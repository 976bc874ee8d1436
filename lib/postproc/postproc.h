/*
 * postproc: what other rooms need of a pg_detections beyond the public accessors.
 */
#ifndef PG_POSTPROC_POSTPROC_H
#define PG_POSTPROC_POSTPROC_H

#include "core/core.h"

/* The image size the boxes of `d` refer to (as given to pg_detections_parse). */
void pg__detections_image_size(const pg_detections *d, uint32_t *width, uint32_t *height);

#endif /* PG_POSTPROC_POSTPROC_H */
