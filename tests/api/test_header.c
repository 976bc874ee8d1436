/*
 * Compiled (not linked) by check_header.py as C99 and C11 with -Wall -Wextra -pedantic -Werror:
 * the public header must be self-contained, idempotent and warning-free for any C user.
 */
#include <paligemma.h>
#include <paligemma.h> /* the include guard works */

int pg_header_check(void);

/* A C99 stand-in for _Static_assert: a negative array size fails to compile. */
#define PG_CHECK(name, cond) typedef char pg_check_##name[(cond) ? 1 : -1]

PG_CHECK(version_number, PG_VERSION_NUMBER ==
                             PG_VERSION_MAJOR * 10000 + PG_VERSION_MINOR * 100 + PG_VERSION_PATCH);
PG_CHECK(ok_is_zero, PG_OK == 0);
PG_CHECK(status_is_int, sizeof(pg_status) == sizeof(int));
PG_CHECK(options_start_with_size, sizeof(((pg_model_options *)0)->struct_size) == sizeof(size_t));

static int on_token(void *user, const pg_token_event *event)
{
    (void)user;
    return event->token_id < 0;
}

static void on_log(void *user, int level, const char *message)
{
    (void)user;
    (void)level;
    (void)message;
}

static int on_progress(void *user, float fraction)
{
    (void)user;
    return fraction > 1.0f;
}

/* Uses every macro and callback type the way an application would. */
int pg_header_check(void)
{
    pg_model_options mo;
    pg_image_options io;
    pg_session_options so;
    pg_generate_options go;
    pg_model_info info;
    pg_timings timings;
    pg_model *model = NULL;
    pg_session *session = NULL;
    const char *stops[] = { "\n" };

    PG_MODEL_OPTIONS_INIT(&mo);
    PG_IMAGE_OPTIONS_INIT(&io);
    PG_SESSION_OPTIONS_INIT(&so);
    PG_GENERATE_OPTIONS_INIT(&go);
    mo.backend = "cpu";
    mo.flags = PG_MODEL_NO_QUANT_CACHE | PG_MODEL_PREFAULT;
    mo.weight_dtype = PG_DTYPE_Q8;
    mo.log_fn = on_log;
    mo.progress_fn = on_progress;
    io.flags = PG_IMAGE_NO_EXIF_ROTATE;
    so.kv_dtype = PG_DTYPE_BF16;
    so.resize_method = PG_RESIZE_BICUBIC_PIL;
    go.on_token = on_token;
    go.stop_strings = stops;
    go.n_stop_strings = 1;
    info.struct_size = sizeof info;
    timings.struct_size = sizeof timings;
    pg_set_log_callback(on_log, NULL, PG_LOG_DEBUG);
    if (pg_model_load(&model, "/nonexistent", &mo) != PG_OK) {
        return pg_last_error()[0] != '\0';
    }
    if (pg_session_new(&session, model, &so) == PG_OK &&
        pg_session_generate(session, &go) == PG_ERR_CANCELLED) {
        pg_session_free(session);
    }
    (void)pg_model_get_info(model, &info);
    pg_model_free(model);
    return pg_abi_version() == PG_ABI_VERSION && info.struct_size == timings.struct_size;
}
