#include "golden_util.h"

#include "harness.h"

#include <jansson.h>

double golden_check(const char *what, const float *got, size_t n, const char *path,
                    double abs_tol, double rel_tol)
{
    npy_array a;
    if (npy_load(path, &a) != 0) {
        CHECK_MSG(0, "%s: cannot read %s", what, path);
        return INFINITY;
    }
    if (a.dtype != 'f' || a.count != n) {
        CHECK_MSG(0, "%s: golden %s has %zu elements (type %c), expected %zu floats", what,
                  path, a.count, a.dtype, n);
        npy_free(&a);
        return INFINITY;
    }
    const double diff = pg_test_max_abs_diff(got, a.data, n);
    const double tol = abs_tol > 0 ? abs_tol : rel_tol * pg_test_max_abs(a.data, n);
    printf("  %-34s max|diff| %.3g (tolerance %.3g)\n", what, diff, tol);
    CHECK_MSG(diff <= tol, "%s: max|diff| %g > %g", what, diff, tol);
    npy_free(&a);
    return diff;
}

int32_t *golden_ids(const char *path, size_t *n)
{
    npy_array a;
    *n = 0;
    if (npy_load(path, &a) != 0 || a.dtype != 'i') {
        CHECK_MSG(0, "cannot read int32 ids from %s", path);
        return NULL;
    }
    *n = a.count;
    return a.data;
}

static void copy_str(char *dst, size_t cap, json_t *v)
{
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    snprintf(dst, cap, "%s", s);
}

int golden_read_cases(const char *path, golden_case **out)
{
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    *out = NULL;
    if (!root) {
        fprintf(stderr, "%s: %s\n", path, err.text);
        return -1;
    }
    json_t *cases = json_object_get(root, "cases");
    size_t n = json_array_size(cases);
    golden_case *gc = calloc(n ? n : 1, sizeof *gc);
    for (size_t i = 0; gc && i < n; i++) {
        json_t *c = json_array_get(cases, i);
        copy_str(gc[i].id, sizeof gc[i].id, json_object_get(c, "id"));
        copy_str(gc[i].image, sizeof gc[i].image, json_object_get(c, "image"));
        json_t *prompt = json_object_get(c, "prompt");
        gc[i].has_prompt = json_is_string(prompt);
        copy_str(gc[i].prompt, sizeof gc[i].prompt, prompt);
        json_t *idir = json_object_get(c, "image_dir");
        if (json_is_string(idir)) {
            copy_str(gc[i].image_dir, sizeof gc[i].image_dir, idir);
        } else {
            /* shared manifest: "image_<name without .png>" */
            snprintf(gc[i].image_dir, sizeof gc[i].image_dir, "image_%.*s",
                     (int)(strlen(gc[i].image) > 4 ? strlen(gc[i].image) - 4 : 0),
                     gc[i].image);
        }
        json_t *greedy = json_object_get(c, "greedy");
        json_t *robust = json_object_get(greedy ? greedy : c, "robust_prefix_len");
        gc[i].robust_prefix_len = (int)json_integer_value(robust);
        json_t *steps = json_object_get(c, "n_steps");
        gc[i].n_steps = steps ? (int)json_integer_value(steps)
                              : (int)json_integer_value(json_object_get(greedy,
                                                                        "num_new_tokens"));
        gc[i].seq_len = (int)json_integer_value(json_object_get(c, "seq_len"));
        gc[i].hf_bf16_logit_dev =
            json_number_value(json_object_get(c, "hf_bf16_compute_logit_dev"));
    }
    json_decref(root);
    *out = gc;
    return gc ? (int)n : -1;
}
