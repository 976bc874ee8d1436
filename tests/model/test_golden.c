/*
 * Golden test of the whole model on the tiny fixtures (tests/data/golden, from
 * ../shared/fixtures/models, made by Hugging Face transformers 4.47 in float32):
 *   pixel values, vision hidden states, vision_out, projector_out, text_layer_input,
 *   text_layer_out, final_norm_out, prefill logits (internal modules), then through the C API:
 *   prompt ids, greedy ids over the robust prefix, kept tensors, and teacher-forced step
 *   logits after the robust prefix. Tolerances are those of the fixtures' manifest.
 * usage: test_golden CONFIG DTYPE BACKEND   (e.g. tiny bf16 ref)
 */
#include "golden_util.h"
#include "harness.h"

#include "decoder/decoder.h"
#include "image/image.h"
#include "model/model.h"
#include "projector/projector.h"
#include "vision/vision.h"

#include <stdlib.h>
#include <string.h>

static const char *g_golden;  /* tests/data/golden/<cfg> */
static const char *g_images;  /* tests/data/image/models */

static const char *case_file(const golden_case *c, const char *dir, const char *name)
{
    static char buf[4][1024];
    static int next;
    char *p = buf[next++ & 3];
    snprintf(p, sizeof buf[0], "%s/%s/%s.npy", g_golden, dir ? dir : c->id, name);
    return p;
}

static pg_image *load_image(const golden_case *c)
{
    pg_image *img = NULL;
    CHECK_OK(pg_image_load_file(&img, pg_test_path(g_images, c->image), NULL));
    return img;
}

/* Pixels, vision tower, projector through the internal modules; returns proj [N][D]. */
static float *check_image_stages(const pg_model *m, const golden_case *c)
{
    const pg__config *cfg = &m->cfg;
    const size_t n = (size_t)cfg->vision.n_tokens, dv = (size_t)cfg->vision.hidden;
    const size_t side = (size_t)cfg->vision.image_size;
    const size_t n_px = 3 * side * side;
    float *px = malloc(n_px * sizeof *px);
    float *hidden = malloc((size_t)(cfg->vision.layers + 1) * n * dv * sizeof *hidden);
    float *vout = malloc(n * dv * sizeof *vout);
    float *proj = malloc(n * (size_t)cfg->text.hidden * sizeof *proj);
    pg_image *img = load_image(c);
    if (!img) {
        free(px), free(hidden), free(vout), free(proj);
        return NULL;
    }
    printf(" image %s\n", c->image_dir);
    CHECK_OK(pg__image_preprocess(img, (uint32_t)side, PG_RESIZE_BICUBIC_PIL, px));
    golden_check("pixel_values", px, n_px, case_file(c, c->image_dir, "pixel_values"),
                 GOLDEN_PIXEL_ABS, 0);
    CHECK_OK(pg__vision_forward(m, px, vout, hidden, NULL));
    golden_check("vision_hidden_states", hidden, (size_t)(cfg->vision.layers + 1) * n * dv,
                 case_file(c, c->image_dir, "vision_hidden_states"), 0, GOLDEN_STAGE_REL);
    golden_check("vision_out", vout, n * dv, case_file(c, c->image_dir, "vision_out"), 0,
                 GOLDEN_STAGE_REL);
    CHECK_OK(pg__projector_forward(m, vout, (int64_t)n, proj));
    golden_check("projector_out", proj, n * (size_t)cfg->text.hidden,
                 case_file(c, c->image_dir, "projector_out"), 0, GOLDEN_STAGE_REL);
    pg_image_free(img);
    free(px);
    free(hidden);
    free(vout);
    return proj;
}

/* Decoder input, every layer, final norm and prefill logits through the internal modules. */
static void check_text_stages(const pg_model *m, const golden_case *c, const float *proj)
{
    const pg__text_config *tc = &m->cfg.text;
    size_t n_ids;
    int32_t *ids = golden_ids(case_file(c, NULL, "input_ids"), &n_ids);
    if (!ids) {
        return;
    }
    const size_t d = (size_t)tc->hidden;
    float *x = malloc(n_ids * d * sizeof *x);
    float *layers = malloc((size_t)tc->layers * n_ids * d * sizeof *layers);
    float *fnorm = malloc(n_ids * d * sizeof *fnorm);
    float *logits = malloc((size_t)tc->vocab * sizeof *logits);
    pg__kv_cache kv;
    CHECK_OK(pg__kv_cache_init(&kv, tc, (int64_t)n_ids, PG__F32));
    CHECK_OK(pg__decoder_embed(m, ids, (int64_t)n_ids, proj, m->cfg.vision.n_tokens, x));
    golden_check("text_layer_input", x, n_ids * d, case_file(c, NULL, "text_layer_input"), 0,
                 GOLDEN_STAGE_REL);
    pg__decoder_trace tr = { .layer_out = layers, .final_norm = fnorm };
    CHECK_OK(pg__decoder_forward(m, &kv, x, (int64_t)n_ids, 0, (int64_t)n_ids, logits, 1, &tr,
                                 NULL));
    golden_check("text_layer_out", layers, (size_t)tc->layers * n_ids * d,
                 case_file(c, NULL, "text_layer_out"), 0, GOLDEN_STAGE_REL);
    golden_check("final_norm_out", fnorm, n_ids * d, case_file(c, NULL, "final_norm_out"), 0,
                 GOLDEN_STAGE_REL);
    golden_check("prefill_logits_last", logits, (size_t)tc->vocab,
                 case_file(c, NULL, "prefill_logits_last"), GOLDEN_LOGIT_ABS, 0);
    pg__kv_cache_free(&kv);
    free(ids);
    free(x);
    free(layers);
    free(fnorm);
    free(logits);
}

/* Kept tensors of a prefilled session against the goldens. */
static void check_kept_tensors(pg_session *s, const golden_case *c)
{
    static const struct {
        int32_t which;
        const char *name;
        double abs_tol, rel_tol;
    } kept[] = {
        { PG_TENSOR_PIXEL_VALUES, "pixel_values", GOLDEN_PIXEL_ABS, 0 },
        { PG_TENSOR_VISION_OUT, "vision_out", 0, GOLDEN_STAGE_REL },
        { PG_TENSOR_PROJECTOR_OUT, "projector_out", 0, GOLDEN_STAGE_REL },
        { PG_TENSOR_PREFILL_LOGITS_LAST, "prefill_logits_last", GOLDEN_LOGIT_ABS, 0 },
    };
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        const float *data;
        int64_t shape[4];
        int32_t ndim;
        CHECK_OK(pg_session_get_tensor(s, kept[i].which, &data, shape, &ndim));
        size_t count = 1;
        for (int32_t k = 0; k < ndim; k++) {
            count *= (size_t)shape[k];
        }
        char what[64];
        snprintf(what, sizeof what, "api %s", kept[i].name);
        const bool per_image = kept[i].which != PG_TENSOR_PREFILL_LOGITS_LAST;
        golden_check(what, data, count,
                     case_file(c, per_image ? c->image_dir : NULL, kept[i].name),
                     kept[i].abs_tol, kept[i].rel_tol);
    }
}

/* Greedy ids over the robust prefix (stopping early only at a golden stop id). */
static void check_greedy(pg_session *s, const golden_case *c, const int32_t *gold,
                         size_t n_gold)
{
    pg_generate_options go;
    PG_GENERATE_OPTIONS_INIT(&go);
    go.max_new_tokens = (uint32_t)n_gold;
    CHECK_OK(pg_session_generate(s, &go));
    size_t n_out;
    const int32_t *out = pg_session_output_ids(s, &n_out);
    size_t expect = (size_t)c->robust_prefix_len;
    for (size_t i = 0; i < expect && i < n_gold; i++) {
        if (gold[i] == 1 || gold[i] == 107) { /* the session stops there; goldens go on */
            expect = i;
            break;
        }
    }
    size_t same = 0;
    while (same < n_out && same < n_gold && out[same] == gold[same]) {
        same++;
    }
    printf("  greedy ids: %zu generated, first %zu equal to the golden (robust prefix %d)\n",
           n_out, same, c->robust_prefix_len);
    CHECK_MSG(same >= expect, "%s: greedy ids differ at step %zu (robust prefix %zu)", c->id,
              same, expect);
}

/* Teacher forcing: feed the golden ids, compare the step logits after the robust prefix. */
static void check_teacher_forced(pg_session *s, const golden_case *c, const int32_t *gold,
                                 size_t n_gold, size_t vocab)
{
    const size_t robust = (size_t)c->robust_prefix_len;
    if (robust >= n_gold) {
        return; /* every step is covered by the exact greedy ids */
    }
    npy_array tail;
    if (npy_load(case_file(c, NULL, "step_logits_tail"), &tail) != 0) {
        CHECK_MSG(0, "%s: no step_logits_tail", c->id);
        return;
    }
    CHECK_OK(pg_session_prefill(s));
    double worst = 0;
    for (size_t t = 0; t < n_gold; t++) {
        if (t > 0) {
            CHECK_OK(pg_session_feed(s, &gold[t - 1], 1));
        }
        if (t < robust) {
            continue;
        }
        const float *logits;
        size_t nv;
        CHECK_OK(pg_session_logits(s, &logits, &nv));
        if (nv != vocab || (t - robust + 1) * vocab > tail.count) {
            CHECK_MSG(0, "%s: step %zu: bad sizes", c->id, t);
            break;
        }
        double d = pg_test_max_abs_diff(logits, (const float *)tail.data + (t - robust) * vocab,
                                        vocab);
        worst = d > worst ? d : worst;
    }
    printf("  %-34s max|diff| %.3g (tolerance %.3g, steps %zu..%zu)\n",
           "teacher-forced step_logits", worst, GOLDEN_LOGIT_ABS, robust, n_gold - 1);
    CHECK_MSG(worst <= GOLDEN_LOGIT_ABS, "%s: step logits differ by %g", c->id, worst);
    npy_free(&tail);
}

/* The case through the public API: prompt ids, greedy, kept tensors, teacher forcing. */
static void check_session(pg_model *m, const golden_case *c)
{
    pg_session_options so;
    PG_SESSION_OPTIONS_INIT(&so);
    so.flags = PG_SESSION_KEEP_TENSORS;
    pg_session *s = NULL;
    CHECK_OK(pg_session_new(&s, m, &so));
    pg_image *img = load_image(c);
    size_t n_gold, n_in;
    int32_t *gold = golden_ids(case_file(c, NULL, "generated_ids"), &n_gold);
    int32_t *in = golden_ids(case_file(c, NULL, "input_ids"), &n_in);
    if (!s || !img || !gold || !in) {
        goto done;
    }
    CHECK_OK(pg_session_set_image(s, img));
    CHECK_OK(pg_session_set_prompt(s, c->prompt, strlen(c->prompt)));
    size_t n_prompt;
    const int32_t *prompt = pg_session_prompt_ids(s, &n_prompt);
    CHECK_MSG(prompt && n_prompt == n_in && !memcmp(prompt, in, n_in * sizeof *in),
              "%s: prompt ids differ from input_ids", c->id);
    check_greedy(s, c, gold, n_gold);
    check_kept_tensors(s, c);
    check_teacher_forced(s, c, gold, n_gold, (size_t)m->cfg.text.vocab);
done:
    free(gold);
    free(in);
    pg_image_free(img);
    pg_session_free(s);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s CONFIG DTYPE BACKEND\n", argv[0]);
        return 2;
    }
    char golden[1024], models[1024], images[1024], cases_path[1100];
    snprintf(golden, sizeof golden, "%s/golden/%s", pg_test_data_dir(), argv[1]);
    snprintf(models, sizeof models, "%s/models/%s/%s", pg_test_data_dir(), argv[1], argv[2]);
    snprintf(images, sizeof images, "%s/image/models", pg_test_data_dir());
    snprintf(cases_path, sizeof cases_path, "%s/cases.json", golden);
    g_golden = golden;
    g_images = images;

    pg_model_options mo;
    PG_MODEL_OPTIONS_INIT(&mo);
    mo.backend = argv[3];
    mo.n_threads = 2;
    pg_model *m = NULL;
    CHECK_OK(pg_model_load(&m, models, &mo));
    golden_case *cases = NULL;
    int n_cases = golden_read_cases(cases_path, &cases);
    CHECK(n_cases > 0);
    if (!m || n_cases <= 0) {
        free(cases);
        pg_model_free(m);
        return pg_test_finish();
    }
    printf("%s %s on the %s backend: %d cases\n", argv[1], argv[2], argv[3], n_cases);
    for (int i = 0; i < n_cases; i++) {
        const golden_case *c = &cases[i];
        float *proj = check_image_stages(m, c);
        printf(" case %s\n", c->id);
        if (proj) {
            check_text_stages(m, c, proj);
        }
        check_session(m, c);
        free(proj);
    }
    free(cases);
    pg_model_free(m);
    return pg_test_finish();
}
