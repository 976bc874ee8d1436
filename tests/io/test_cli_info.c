/*
 * `pg info --json` on the tiny fixture: one JSON line whose numbers equal pg_model_get_info;
 * a missing folder gives exit status 1 and a message. argv[1] is the pg executable.
 */
#include "harness.h"
#include "paligemma.h"

#include <jansson.h>
#include <sys/wait.h>

static char *run(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    if (!p) {
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = calloc(1, cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - 1 - n, p)) > 0) {
        n += got;
    }
    *status = pclose(p);
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        return pg_test_skip("pass the pg executable");
    }
    const char *dir = pg_test_path(pg_test_data_dir(), "models/tiny_b/bf16");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' info -m '%s' --json --backend ref", argv[1], dir);
    int status = -1;
    char *out = run(cmd, &status);
    CHECK(out != NULL && status == 0);
    CHECK(out && strchr(out, '\n') == out + strlen(out) - 1); /* exactly one line */
    json_error_t err;
    json_t *j = out ? json_loads(out, 0, &err) : NULL;
    CHECK_MSG(j != NULL, "not JSON: %s", out ? out : "");

    pg_model *m = NULL;
    pg_model_options o;
    PG_MODEL_OPTIONS_INIT(&o);
    o.backend = "ref";
    CHECK_OK(pg_model_load(&m, dir, &o));
    pg_model_info info = { .struct_size = sizeof info };
    if (m && j) {
        CHECK_OK(pg_model_get_info(m, &info));
        CHECK(strcmp(json_string_value(json_object_get(j, "variant")), info.variant) == 0);
        CHECK_EQ_INT(json_integer_value(json_object_get(j, "n_params")), info.n_params);
        CHECK_EQ_INT(json_integer_value(json_object_get(j, "weight_bytes")), info.weight_bytes);
        CHECK_EQ_INT(json_integer_value(json_object_get(j, "image_tokens")), 25);
        CHECK_EQ_INT(json_integer_value(json_object_get(j, "text_layers")), 4);
        CHECK(strcmp(json_string_value(json_object_get(j, "weight_dtype")), "bf16") == 0);
    }
    pg_model_free(m);
    json_decref(j);
    free(out);

    snprintf(cmd, sizeof cmd, "'%s' info -m /nonexistent/model 2>&1", argv[1]);
    out = run(cmd, &status);
    CHECK(out && WIFEXITED(status) && WEXITSTATUS(status) == 1);
    CHECK(out && strstr(out, "/nonexistent/model") != NULL);
    free(out);
    return pg_test_finish();
}
