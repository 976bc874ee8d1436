/*
 * vision: the SigLIP vision tower (spec §4). Pixels [3][S][S] in [-1, 1] -> one embedding per
 * 14x14 patch, [N][vision.hidden], after post_layernorm. Everything is computed through the
 * model's backend ops; this module only lays out activations.
 */
#ifndef PG_VISION_H
#define PG_VISION_H

#include "model/model.h"

#include <stdatomic.h>

/*
 * Runs the tower on `pixels` (3*S*S floats, CHW). Writes `out` [N][D_v].
 * hidden_states: NULL, or room for [layers+1][N][D_v]: the embeddings (patches + positions)
 * and the output of every encoder layer before post_layernorm (for golden tests).
 * interrupt: NULL, or a flag checked between layers (PG_ERR_CANCELLED when set).
 */
pg_status pg__vision_forward(const pg_model *m, const float *pixels, float *out,
                             float *hidden_states, atomic_int *interrupt);

/*
 * The same computation in steps (pg__vision_job_steps of them: the patch embedding, then one
 * encoder layer each; the last also applies post_layernorm and writes `out`). `pixels` must
 * stay valid until the job is freed. hidden_states as above (may be NULL). *done turns true
 * after the last step.
 */
typedef struct pg__vision_job pg__vision_job;
pg_status pg__vision_job_new(pg__vision_job **out, const pg_model *m, const float *pixels);
pg_status pg__vision_job_step(pg__vision_job *j, float *out, float *hidden_states, bool *done);
int32_t pg__vision_job_steps(const pg_model *m);
void pg__vision_job_free(pg__vision_job *j);

/* Cuts [3][S][S] pixels into patch rows [N][3*P*P] in the conv kernel's (c, ky, kx) order,
 * patches in row-major order, so that the patch conv is a matmul. */
void pg__vision_patchify(const float *pixels, int32_t image_size, int32_t patch, float *rows);

#endif /* PG_VISION_H */
