/*
 * quant_fidelity: what Q8 / Q4 weights cost in accuracy, measured against the float32
 * transformers goldens of the tiny fixtures (tests/data/golden/<cfg>), through the public
 * API only. For every golden case and weight type:
 *   - prefill logits: max |logits - golden| (and the golden's own max |logit| for scale),
 *     and whether the top-1 token agrees;
 *   - teacher-forced top-1 agreement: the golden ids are fed one by one and the argmax of
 *     every step is compared with the golden's next id (errors do not cascade);
 *   - greedy agreement: how many generated ids equal the golden ones before the first
 *     difference (errors cascade; what a user sees).
 * A measurement for docs/quantization.md (meson benchmark), not a pass/fail test.
 * usage: quant_fidelity [CONFIG...]   (tests/data configs; default: tiny tiny_b; f32 models)
 *        quant_fidelity --dirs LABEL GOLDEN_DIR MODEL_DIR IMAGES_DIR   (e.g. the shared `full`
 *                       config: golden manifest.json, a regenerated bf16 checkpoint)
 */
#include "golden_util.h"
#include "harness.h"

#include "paligemma.h"

#include <stdlib.h>
#include <string.h>

typedef struct fidelity {
    int cases, prefill_top1, tf_steps, tf_top1, greedy_same, greedy_steps;
    double max_err, sum_err, max_gold;
} fidelity;

static size_t argmax(const float *v, size_t n)
{
    size_t b = 0;
    for (size_t i = 1; i < n; i++) {
        b = v[i] > v[b] ? i : b;
    }
    return b;
}

static const char *file_of(const char *golden, const golden_case *c, const char *name)
{
    static char buf[4][1400];
    static int next;
    char *p = buf[next++ & 3];
    snprintf(p, sizeof buf[0], "%s/%s/%s.npy", golden, c->id, name);
    return p;
}

/* The case's prompt: its text, or (configs without a tokenizer) the golden input ids after
 * the image tokens. */
static pg_status set_prompt(pg_session *s, const pg_model *m, const char *golden,
                            const golden_case *c)
{
    if (c->has_prompt) {
        return pg_session_set_prompt(s, c->prompt, strlen(c->prompt));
    }
    pg_model_info info = { .struct_size = sizeof info };
    size_t n = 0;
    int32_t *ids = golden_ids(file_of(golden, c, "input_ids"), &n);
    pg_status st = pg_model_get_info(m, &info);
    if (st == PG_OK && (!ids || n <= info.image_tokens)) {
        st = PG_ERR_NOT_FOUND;
    }
    if (st == PG_OK) {
        st = pg_session_set_prompt_ids(s, ids + info.image_tokens, n - info.image_tokens);
    }
    free(ids);
    return st;
}

static void measure_case(pg_model *m, const char *golden, const char *images,
                         const golden_case *c, fidelity *f)
{
    pg_session *s = NULL;
    pg_image *img = NULL;
    npy_array gl = { 0 };
    size_t n_gold = 0;
    int32_t *gold = golden_ids(file_of(golden, c, "generated_ids"), &n_gold);
    if (pg_session_new(&s, m, NULL) != PG_OK ||
        pg_image_load_file(&img, pg_test_path(images, c->image), NULL) != PG_OK ||
        npy_load(file_of(golden, c, "prefill_logits_last"), &gl) != 0 || !gold) {
        fprintf(stderr, "%s: cannot set up: %s\n", c->id, pg_last_error());
        goto done;
    }
    CHECK_OK(pg_session_set_image(s, img));
    CHECK_OK(set_prompt(s, m, golden, c));
    CHECK_OK(pg_session_prefill(s));
    const float *logits;
    size_t nv;
    CHECK_OK(pg_session_logits(s, &logits, &nv));
    if (nv != gl.count) {
        CHECK_MSG(0, "%s: %zu logits, golden has %zu", c->id, nv, gl.count);
        goto done;
    }
    double err = pg_test_max_abs_diff(logits, gl.data, nv);
    f->cases++;
    f->max_err = err > f->max_err ? err : f->max_err;
    f->sum_err += err;
    double g = pg_test_max_abs(gl.data, nv);
    f->max_gold = g > f->max_gold ? g : f->max_gold;
    f->prefill_top1 += argmax(logits, nv) == argmax(gl.data, nv);

    /* teacher forcing over the golden ids */
    for (size_t t = 0; t + 1 < n_gold; t++) {
        CHECK_OK(pg_session_feed(s, &gold[t], 1));
        CHECK_OK(pg_session_logits(s, &logits, &nv));
        f->tf_steps++;
        f->tf_top1 += (int32_t)argmax(logits, nv) == gold[t + 1];
    }
    /* free-running greedy */
    CHECK_OK(pg_session_reset(s));
    CHECK_OK(pg_session_set_image(s, img));
    CHECK_OK(set_prompt(s, m, golden, c));
    pg_generate_options go;
    PG_GENERATE_OPTIONS_INIT(&go);
    go.max_new_tokens = (uint32_t)n_gold;
    if (pg_session_generate(s, &go) == PG_OK) {
        size_t n_out;
        const int32_t *out = pg_session_output_ids(s, &n_out);
        size_t same = 0;
        while (same < n_out && same < n_gold && out[same] == gold[same]) {
            same++;
        }
        /* the session stops at <eos>/<end_of_turn>; the golden goes on: count up to there */
        size_t limit = n_gold;
        for (size_t i = 0; i < n_gold; i++) {
            if (gold[i] == 1 || gold[i] == 107) {
                limit = i;
                break;
            }
        }
        f->greedy_same += (int)(same < limit ? same : limit);
        f->greedy_steps += (int)limit;
    }
done:
    npy_free(&gl);
    free(gold);
    pg_image_free(img);
    pg_session_free(s);
}

static void run_config(const char *cfg, const char *golden, const char *model, const char *images,
                       const char *cases_name)
{
    char cases_path[1100];
    snprintf(cases_path, sizeof cases_path, "%s/%s", golden, cases_name);
    golden_case *cases = NULL;
    int n = golden_read_cases(cases_path, &cases);
    if (n <= 0) {
        CHECK_MSG(0, "%s: no cases", cfg);
        free(cases);
        return;
    }
    const struct {
        int32_t dt;
        const char *name;
    } types[] = { { PG_DTYPE_AUTO, "as stored" }, { PG_DTYPE_Q8, "q8" }, { PG_DTYPE_Q4, "q4" } };
    uint64_t f32_bytes = 0;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        pg_model_options mo;
        PG_MODEL_OPTIONS_INIT(&mo);
        mo.weight_dtype = types[t].dt;
        mo.n_threads = 2;
        mo.flags = PG_MODEL_NO_QUANT_CACHE;
        pg_model *m = NULL;
        if (pg_model_load(&m, model, &mo) != PG_OK) {
            CHECK_MSG(0, "%s %s: %s", cfg, types[t].name, pg_last_error());
            continue;
        }
        pg_model_info info = { .struct_size = sizeof info };
        CHECK_OK(pg_model_get_info(m, &info));
        f32_bytes = t == 0 ? info.weight_bytes : f32_bytes;
        fidelity f = { 0 };
        for (int i = 0; i < n; i++) {
            measure_case(m, golden, images, &cases[i], &f);
        }
        printf("| %-6s | %-9s | %5.1f %% | %2d | %.4f | %.4f | %.2f | %2d/%-2d | %5.1f %% (%d) | "
               "%5.1f %% |\n", cfg, types[t].name,
               f32_bytes ? 100.0 * (double)info.weight_bytes / (double)f32_bytes : 0.0, f.cases,
               f.max_err, f.cases ? f.sum_err / f.cases : 0.0, f.max_gold, f.prefill_top1,
               f.cases, f.tf_steps ? 100.0 * f.tf_top1 / f.tf_steps : 0.0, f.tf_steps,
               f.greedy_steps ? 100.0 * f.greedy_same / f.greedy_steps : 0.0);
        pg_model_free(m);
    }
    free(cases);
}

static void run_tiny(const char *cfg)
{
    char golden[1024], model[1024], images[1024];
    snprintf(golden, sizeof golden, "%s/golden/%s", pg_test_data_dir(), cfg);
    snprintf(model, sizeof model, "%s/models/%s/f32", pg_test_data_dir(), cfg);
    snprintf(images, sizeof images, "%s/image/models", pg_test_data_dir());
    run_config(cfg, golden, model, images, "cases.json");
}

int main(int argc, char **argv)
{
    printf("| config | type | weight bytes vs as stored | cases | max logit err | mean max err | max |logit| "
           "| prefill top-1 | teacher-forced top-1 (steps) | greedy ids kept |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    if (argc == 6 && !strcmp(argv[1], "--dirs")) { /* --dirs LABEL GOLDEN MODEL IMAGES */
        run_config(argv[2], argv[3], argv[4], argv[5], "manifest.json");
    } else if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            run_tiny(argv[i]);
        }
    } else {
        run_tiny("tiny");
        run_tiny("tiny_b");
    }
    return pg_test_finish();
}
