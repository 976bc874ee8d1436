/*
 * projector: the multi-modal projector (spec §5): proj = vision_out W^T + b, [N][text.hidden].
 * The 1/sqrt(D) feature scaling of Hugging Face is applied where the decoder input is
 * assembled (decoder/embed.c), so the projector output matches the `projector_out` goldens.
 */
#ifndef PG_PROJECTOR_H
#define PG_PROJECTOR_H

#include "model/model.h"

/* out[n][text.hidden] = vision_out[n][vision.hidden] W^T + b. */
pg_status pg__projector_forward(const pg_model *m, const float *vision_out, int64_t n,
                                float *out);

#endif /* PG_PROJECTOR_H */
