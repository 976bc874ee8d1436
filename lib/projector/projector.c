/* The linear multi-modal projector (spec §5). */
#include "projector/projector.h"

pg_status pg__projector_forward(const pg_model *m, const float *vision_out, int64_t n,
                                float *out)
{
    const pg__projector_weights *w = &m->projector;
    return m->backend->ops->matmul(m->backend, out, m->cfg.text.hidden, vision_out,
                                   m->cfg.vision.hidden, n, &w->w, &w->b);
}
