/* caption: the smallest complete use of libpaligemma. usage: caption MODEL_DIR IMAGE */
#include <paligemma.h>

#include <stdio.h>

int main(int argc, char **argv)
{
    pg_model *model = NULL;
    pg_session *session = NULL;
    pg_image *image = NULL;
    int rc = 1;
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_DIR IMAGE\n", argv[0]);
        return 2;
    }
    if (pg_model_load(&model, argv[1], NULL) != PG_OK ||
        pg_image_load_file(&image, argv[2], NULL) != PG_OK ||
        pg_session_new(&session, model, NULL) != PG_OK) {
        fprintf(stderr, "error: %s\n", pg_last_error());
    } else if (pg_session_set_image(session, image) != PG_OK ||
               pg_session_set_prompt(session, "caption en", 10) != PG_OK ||
               pg_session_generate(session, NULL) != PG_OK) {
        fprintf(stderr, "error: %s\n", pg_session_last_error(session));
    } else {
        printf("%s\n", pg_session_text(session, NULL));
        rc = 0;
    }
    pg_session_free(session);
    pg_image_free(image);
    pg_model_free(model);
    return rc;
}
