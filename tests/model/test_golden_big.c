/*
 * Golden tests on the large fixtures of ../shared/fixtures/models (skipped when absent):
 *   full    the real paligemma2-3b-448 shapes (2 layers each, 1024 image tokens, vocab 257216);
 *           its 1.6 GB bf16 shards are regenerated once into CACHE_DIR with the fixtures'
 *           tools/make_checkpoint.py (numpy, ~2 min) and reused afterwards.
 *   tiny896 896 px, 4096 image tokens: prompts longer than the 4096-token sliding window.
 * Checks pixel_values, vision_out, projector_out, prefill logits, the decoder stages stored for
 * the config (last row / tail rows), greedy ids and the step logits (top-8 for full).
 * usage: test_golden_big CONFIG BACKEND CACHE_DIR
 */
#include "golden_util.h"
#include "harness.h"

#include "decoder/decoder.h"
#include "model/model.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char g_golden[1024];
static char g_images[1024];
static double g_logit_tol = GOLDEN_LOGIT_ABS;
static bool g_full;

static const char *gfile(const char *dir, const char *name)
{
    static char buf[4][2048];
    static int next;
    char *p = buf[next++ & 3];
    snprintf(p, sizeof buf[0], "%s/%s/%s.npy", g_golden, dir, name);
    return p;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The full checkpoint: regenerated into the cache on first use. */
static bool full_checkpoint(const char *shared, const char *cache, char *dir, size_t cap)
{
    char index[4096], cmd[8192];
    snprintf(dir, cap, "%s/full/bf16", cache);
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
    if (exists(index)) {
        return true;
    }
    printf("regenerating the full checkpoint into %s/full (about 2 minutes, 1.6 GB)\n", cache);
    fflush(stdout);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s/models/tools/make_checkpoint.py' --config full --out "
             "'%s/full' --no-f32",
             shared, cache);
    if (system(cmd) != 0 || !exists(index)) {
        fprintf(stderr, "could not generate the full checkpoint\n");
        return false;
    }
    return true;
}

/* Step logits during greedy generation (teacher forcing is implied while ids agree). */
typedef struct step_check {
    const pg_session *s;
    npy_array steps;     /* tiny896: step_logits [T][V]; full: step_top8_logits [T][8] */
    npy_array top8_ids;  /* full only */
    double worst;
    size_t vocab;
    int checked;
} step_check;

static int on_step(void *user, const pg_token_event *ev)
{
    step_check *c = user;
    const float *logits;
    size_t nv;
    if (pg_session_logits(c->s, &logits, &nv) != PG_OK || nv != c->vocab) {
        c->worst = INFINITY;
        return 1;
    }
    const size_t t = ev->index;
    double d = 0;
    if (g_full) {
        const float *gl = (const float *)c->steps.data + t * 8;
        const int32_t *gi = (const int32_t *)c->top8_ids.data + t * 8;
        for (int k = 0; k < 8; k++) {
            double e = fabs((double)logits[gi[k]] - gl[k]);
            d = e > d ? e : d;
        }
    } else {
        d = pg_test_max_abs_diff(logits, (const float *)c->steps.data + t * c->vocab, nv);
    }
    c->worst = d > c->worst ? d : c->worst;
    c->checked++;
    return 0;
}

static void check_kept(pg_session *s, const golden_case *c)
{
    static const struct {
        int32_t which;
        const char *name;
        bool per_image;
        double abs_tol, rel_tol;
    } kept[] = {
        { PG_TENSOR_PIXEL_VALUES, "pixel_values", true, GOLDEN_PIXEL_ABS, 0 },
        { PG_TENSOR_VISION_OUT, "vision_out", true, 0, GOLDEN_STAGE_REL },
        { PG_TENSOR_PROJECTOR_OUT, "projector_out", true, 0, GOLDEN_STAGE_REL },
        { PG_TENSOR_PREFILL_LOGITS_LAST, "prefill_logits_last", false, -1, 0 },
    };
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        const float *data;
        int64_t shape[4];
        int32_t ndim;
        CHECK_OK(pg_session_get_tensor(s, kept[i].which, &data, shape, &ndim));
        if (!data) {
            continue;
        }
        size_t count = 1;
        for (int32_t k = 0; k < ndim; k++) {
            count *= (size_t)shape[k];
        }
        golden_check(kept[i].name, data, count,
                     gfile(kept[i].per_image ? c->image_dir : c->id, kept[i].name),
                     kept[i].abs_tol < 0 ? g_logit_tol : kept[i].abs_tol, kept[i].rel_tol);
    }
}

/* Decoder stages with a trace: full stores the last row, tiny896 the rows from tail_start. */
static void check_decoder_stages(const pg_model *m, pg_session *s, const golden_case *c,
                                 int tail_start)
{
    const pg__text_config *tc = &m->cfg.text;
    size_t n;
    const int32_t *ids = pg_session_prompt_ids(s, &n);
    const float *proj;
    int64_t shape[4];
    int32_t ndim;
    CHECK_OK(pg_session_get_tensor(s, PG_TENSOR_PROJECTOR_OUT, &proj, shape, &ndim));
    const size_t d = (size_t)tc->hidden, L = (size_t)tc->layers, v = (size_t)tc->vocab;
    const size_t first = g_full ? n - 1 : (size_t)tail_start;
    const size_t rows = n - first;
    float *x = malloc(n * d * sizeof *x);
    float *layers = malloc(L * n * d * sizeof *layers);
    float *fnorm = malloc(n * d * sizeof *fnorm);
    float *logits = malloc(rows * v * sizeof *logits);
    float *sel = malloc(L * rows * d * sizeof *sel);
    pg__kv_cache kv;
    CHECK_OK(pg__kv_cache_init(&kv, tc, (int64_t)n, PG__F32));
    CHECK_OK(pg__decoder_embed(m, ids, (int64_t)n, proj, m->cfg.vision.n_tokens, x));
    pg__decoder_trace tr = { .layer_out = layers, .final_norm = fnorm };
    CHECK_OK(pg__decoder_forward(m, &kv, x, (int64_t)n, 0, (int64_t)n, logits, (int64_t)rows,
                                 &tr, NULL));
    for (size_t l = 0; l < L; l++) {
        memcpy(sel + l * rows * d, layers + (l * n + first) * d, rows * d * sizeof *sel);
    }
    golden_check(g_full ? "text_layer_out_last" : "text_layer_out_tail", sel, L * rows * d,
                 gfile(c->id, g_full ? "text_layer_out_last" : "text_layer_out_tail"), 0,
                 GOLDEN_STAGE_REL);
    golden_check("final_norm_out_last", fnorm + (n - 1) * d, d,
                 gfile(c->id, "final_norm_out_last"), 0, GOLDEN_STAGE_REL);
    if (!g_full) {
        golden_check("prefill_logits_tail", logits, rows * v, gfile(c->id, "prefill_logits_tail"),
                     g_logit_tol, 0);
    }
    pg__kv_cache_free(&kv);
    free(x);
    free(layers);
    free(fnorm);
    free(logits);
    free(sel);
}

static void run_case(pg_model *m, const golden_case *c, bool stages, int tail_start)
{
    size_t n_in, n_gold;
    int32_t *in = golden_ids(gfile(c->id, "input_ids"), &n_in);
    int32_t *gold = golden_ids(gfile(c->id, "generated_ids"), &n_gold);
    pg_session_options so;
    PG_SESSION_OPTIONS_INIT(&so);
    so.flags = PG_SESSION_KEEP_TENSORS;
    pg_session *s = NULL;
    pg_image *img = NULL;
    step_check sc;
    memset(&sc, 0, sizeof sc);
    printf(" case %s\n", c->id);
    CHECK_OK(pg_session_new(&s, m, &so));
    CHECK_OK(pg_image_load_file(&img, pg_test_path(g_images, c->image), NULL));
    if (!in || !gold || !s || !img) {
        goto done;
    }
    const size_t n_img = (size_t)m->cfg.vision.n_tokens;
    CHECK_OK(pg_session_set_image(s, img));
    if (c->has_prompt) {
        CHECK_OK(pg_session_set_prompt(s, c->prompt, strlen(c->prompt)));
    } else {
        CHECK_OK(pg_session_set_prompt_ids(s, in + n_img, n_in - n_img));
    }
    size_t n_prompt;
    const int32_t *prompt = pg_session_prompt_ids(s, &n_prompt);
    CHECK_MSG(prompt && n_prompt == n_in && !memcmp(prompt, in, n_in * sizeof *in),
              "prompt ids differ from input_ids");
    CHECK_OK(pg_session_prefill(s));
    check_kept(s, c);
    if (stages) {
        check_decoder_stages(m, s, c, tail_start);
    }
    const bool loaded = g_full ? npy_load(gfile(c->id, "step_top8_logits"), &sc.steps) == 0 &&
                                     npy_load(gfile(c->id, "step_top8_ids"), &sc.top8_ids) == 0
                               : npy_load(gfile(c->id, "step_logits"), &sc.steps) == 0;
    CHECK(loaded);
    sc.s = s;
    sc.vocab = (size_t)m->cfg.text.vocab;
    pg_generate_options go;
    PG_GENERATE_OPTIONS_INIT(&go);
    go.max_new_tokens = (uint32_t)n_gold;
    go.on_token = loaded ? on_step : NULL;
    go.on_token_user = &sc;
    CHECK_OK(pg_session_generate(s, &go));
    size_t n_out;
    const int32_t *out = pg_session_output_ids(s, &n_out);
    size_t same = 0;
    while (same < n_out && same < n_gold && out[same] == gold[same]) {
        same++;
    }
    printf("  greedy ids: %zu generated, first %zu equal (robust prefix %d)\n", n_out, same,
           c->robust_prefix_len);
    CHECK(same >= (size_t)c->robust_prefix_len);
    printf("  %-34s max|diff| %.3g (tolerance %.3g, %d steps)\n",
           g_full ? "step top-8 logits" : "step_logits", sc.worst, g_logit_tol, sc.checked);
    CHECK(sc.checked == (int)same && sc.worst <= g_logit_tol);
done:
    npy_free(&sc.steps);
    npy_free(&sc.top8_ids);
    pg_image_free(img);
    pg_session_free(s);
    free(in);
    free(gold);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s full|tiny896 BACKEND CACHE_DIR\n", argv[0]);
        return 2;
    }
    const char *shared = pg_test_shared_dir();
    if (!shared) {
        return pg_test_skip("../shared/fixtures is absent");
    }
    const char *cfg = argv[1];
    g_full = !strcmp(cfg, "full");
    char model_dir[2048];
    if (g_full) {
        if (!full_checkpoint(shared, argv[3], model_dir, sizeof model_dir)) {
            CHECK(0);
            return pg_test_finish();
        }
    } else {
        snprintf(model_dir, sizeof model_dir, "%s/models/checkpoints/%s/bf16", shared, cfg);
        g_logit_tol = 2e-3; /* tiny896: tolerances_override of the manifest */
    }
    snprintf(g_golden, sizeof g_golden, "%s/models/golden/%s", shared, cfg);
    snprintf(g_images, sizeof g_images, "%s/models/images", shared);

    pg_model_options mo;
    PG_MODEL_OPTIONS_INIT(&mo);
    mo.backend = argv[2];
    pg_model *m = NULL;
    CHECK_OK(pg_model_load(&m, model_dir, &mo));
    golden_case *cases = NULL;
    int n = golden_read_cases(pg_test_path(g_golden, "manifest.json"), &cases);
    CHECK(n > 0);
    int tail_start = 0;
    if (!g_full) {
        /* The stored tails hold prompt rows tail_start..S-1. */
        json_t *man = json_load_file(pg_test_path(g_golden, "manifest.json"), 0, NULL);
        tail_start = (int)json_integer_value(json_object_get(man, "tail_start"));
        json_decref(man);
        CHECK(tail_start > 0);
    }
    for (int i = 0; m && i < n; i++) {
        /* The stage trace costs a second decoder pass: once per config for full. */
        run_case(m, &cases[i], !g_full || i == 0, tail_start);
    }
    free(cases);
    pg_model_free(m);
    return pg_test_finish();
}
