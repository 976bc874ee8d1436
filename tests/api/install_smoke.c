/*
 * A tiny application built by test_install.py against the *installed* header and library,
 * with the flags `pkg-config --cflags --libs paligemma` gives: checks that the header and the
 * loaded library agree and that an error comes back as a status with a message.
 */
#include <paligemma.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    pg_model_options opts;
    pg_model *model = NULL;
    pg_status st;
    int failures = 0;

    if (pg_abi_version() != PG_ABI_VERSION || pg_version_number() != PG_VERSION_NUMBER ||
        strcmp(pg_version_string(), PG_VERSION_STRING) != 0) {
        fprintf(stderr, "header %s (ABI %d) but library %s (ABI %u)\n", PG_VERSION_STRING,
                PG_ABI_VERSION, pg_version_string(), (unsigned)pg_abi_version());
        failures++;
    }
    PG_MODEL_OPTIONS_INIT(&opts);
    st = pg_model_load(&model, "/nonexistent/paligemma-install-test", &opts);
    if (st == PG_OK || model != NULL || pg_last_error()[0] == '\0') {
        fprintf(stderr, "loading a missing folder: status %d, message \"%s\"\n", (int)st,
                pg_last_error());
        failures++;
    }
    printf("libpaligemma %s (ABI %u): missing model -> %s: %s\n", pg_version_string(),
           (unsigned)pg_abi_version(), pg_status_string(st), pg_last_error());
    pg_model_free(model);
    return failures ? 1 : 0;
}
