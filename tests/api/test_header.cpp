// Compiled (not linked) by check_header.py as C++11 and C++17 with
// -Wall -Wextra -pedantic -Werror (+ -Wold-style-cast): the public header must work from C++.
#include <paligemma.h>
#include <paligemma.h>

#include <cstddef>
#include <type_traits>

static_assert(std::is_standard_layout<pg_model_options>::value, "C layout");
static_assert(std::is_trivially_copyable<pg_generate_options>::value, "plain C struct");
static_assert(offsetof(pg_model_options, struct_size) == 0, "struct_size first");
static_assert(PG_ERR_INVALID_ARGUMENT == 1, "statuses are permanent");

namespace {

// A C callback implemented in C++ (extern "C" linkage is given by the header's typedef use).
extern "C" int on_token(void *user, const pg_token_event *event)
{
    static_cast<void>(user);
    return event->token_id < 0 ? 1 : 0;
}

} // namespace

int pg_header_check_cpp();

int pg_header_check_cpp()
{
    pg_generate_options go;
    PG_GENERATE_OPTIONS_INIT(&go);
    go.on_token = on_token;
    pg_session_options so;
    PG_SESSION_OPTIONS_INIT(&so);
    pg_model_options mo;
    PG_MODEL_OPTIONS_INIT(&mo);
    pg_image_options io;
    PG_IMAGE_OPTIONS_INIT(&io);
    pg_model *model = nullptr;
    pg_status st = pg_model_load(&model, "/nonexistent", &mo);
    if (st != PG_OK) {
        return pg_status_string(st)[0] != '\0' ? 1 : 0;
    }
    pg_model_free(model);
    return static_cast<int>(pg_abi_version());
}
