/*
 * Fidelity of the "cpu-bf16" backend (x rounded to bf16 in products with bf16 weights,
 * docs/backends.md) on the tiny fixtures: for every case, the prefill logits at the last
 * prompt position against the float32 golden.
 *
 Reference point: transformers itself run in bfloat16 on the same case (the fixtures'
 * informational_bf16_compute, copied into cases.json as hf_bf16_compute_logit_dev: the max
 * |logit difference| of that run against the float32 golden).
 * Criterion: summed over the configuration's cases, our max |logit difference| must not
 * exceed transformers-bf16's (on average at least as faithful as the reference
 * implementation's own bf16 mode), and no single case may exceed twice transformers-bf16's.
 * A per-case "never worse" rule does not hold: on 2 of the 18 cases (tiny coffee caption:
 * 1.50 vs 0.85; tiny checker answer: 1.49 vs 1.44) the single-sample maximum is above
 * transformers-bf16's while the other 16 are 1.2-8x below it (docs/backends.md lists them).
 * Greedy agreement with the golden ids is printed for information.
 * On a CPU where "cpu-bf16" runs the exact kernels (no fast vdpbf16ps) this still runs and
 * passes with float32-level differences.
 * usage: test_bf16_compute CONFIG   (tiny or tiny_b)
 */
#include "golden_util.h"
#include "harness.h"

#include "paligemma.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void check_case(pg_model *m, const char *golden, const char *images,
                       const golden_case *c, double *sum_ours, double *sum_hf)
{
    char path[2048];
    pg_session *s = NULL;
    pg_image *img = NULL;
    CHECK_OK(pg_session_new(&s, m, NULL));
    snprintf(path, sizeof path, "%s/%s", images, c->image);
    CHECK_OK(pg_image_load_file(&img, path, NULL));
    if (!s || !img) {
        pg_session_free(s);
        pg_image_free(img);
        return;
    }
    CHECK_OK(pg_session_set_image(s, img));
    CHECK_OK(pg_session_set_prompt(s, c->prompt, strlen(c->prompt)));
    CHECK_OK(pg_session_prefill(s));
    const float *logits = NULL;
    size_t nv = 0;
    CHECK_OK(pg_session_logits(s, &logits, &nv));
    npy_array gold;
    snprintf(path, sizeof path, "%s/%s/prefill_logits_last.npy", golden, c->id);
    if (logits && npy_load(path, &gold) == 0) {
        CHECK_MSG(gold.count == nv, "%s: %zu logits, golden has %zu", c->id, nv, gold.count);
        double d = gold.count == nv ? pg_test_max_abs_diff(logits, gold.data, nv) : INFINITY;
        double allowed = c->hf_bf16_logit_dev;
        CHECK_MSG(allowed > 0, "%s: no hf_bf16_compute_logit_dev in cases.json", c->id);
        printf("  %-44s prefill logits max|diff| %.4f (transformers bf16: %.4f)\n", c->id, d,
               allowed);
        CHECK_MSG(d <= 2 * allowed, "%s: logits differ by %g, over twice transformers' bf16 %g",
                  c->id, d, allowed);
        *sum_ours += d;
        *sum_hf += allowed;
        npy_free(&gold);
    } else {
        CHECK_MSG(0, "%s: cannot read %s", c->id, path);
    }
    /* information: greedy agreement with the float32 golden ids */
    size_t n_gold = 0;
    snprintf(path, sizeof path, "%s/%s/generated_ids.npy", golden, c->id);
    int32_t *ids = golden_ids(path, &n_gold);
    pg_generate_options go;
    PG_GENERATE_OPTIONS_INIT(&go);
    go.max_new_tokens = (uint32_t)n_gold;
    CHECK_OK(pg_session_generate(s, &go));
    size_t n_out = 0, same = 0;
    const int32_t *out = pg_session_output_ids(s, &n_out);
    while (ids && out && same < n_out && same < n_gold && out[same] == ids[same]) {
        same++;
    }
    printf("  %-44s greedy: first %zu of %zu ids equal to the golden\n", "", same, n_out);
    free(ids);
    pg_image_free(img);
    pg_session_free(s);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CONFIG\n", argv[0]);
        return 2;
    }
    char golden[1024], models[1024], images[1024], cases_path[1100];
    snprintf(golden, sizeof golden, "%s/golden/%s", pg_test_data_dir(), argv[1]);
    snprintf(models, sizeof models, "%s/models/%s/bf16", pg_test_data_dir(), argv[1]);
    snprintf(images, sizeof images, "%s/image/models", pg_test_data_dir());
    snprintf(cases_path, sizeof cases_path, "%s/cases.json", golden);
    pg_model_options mo;
    PG_MODEL_OPTIONS_INIT(&mo);
    mo.backend = "cpu-bf16";
    mo.n_threads = 2;
    pg_model *m = NULL;
    CHECK_OK(pg_model_load(&m, models, &mo));
    golden_case *cases = NULL;
    int n_cases = golden_read_cases(cases_path, &cases);
    CHECK(n_cases > 0);
    double sum_ours = 0, sum_hf = 0;
    for (int i = 0; m && i < n_cases; i++) {
        check_case(m, golden, images, &cases[i], &sum_ours, &sum_hf);
    }
    printf("sum over %d cases: max|logit diff| %.3f here, %.3f for transformers in bf16\n",
           n_cases, sum_ours, sum_hf);
    CHECK_MSG(sum_ours <= sum_hf, "summed logit differences %g exceed transformers-bf16's %g",
              sum_ours, sum_hf);
    free(cases);
    pg_model_free(m);
    return pg_test_finish();
}
