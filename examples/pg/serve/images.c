/* Request images: raw base64 (Ollama) or data URIs (OpenAI), decoded from memory. */
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int srv_add_image(srv_gen *g, const char *value, size_t max_bytes, char *msg, size_t cap)
{
    if (g->n_images >= SRV_MAX_IMAGES) {
        snprintf(msg, cap, "at most %d images per request", SRV_MAX_IMAGES);
        return -1;
    }
    if (!strncmp(value, "http://", 7) || !strncmp(value, "https://", 8)) {
        snprintf(msg, cap, "remote image URLs are not fetched; send the image as base64 or "
                           "a data: URI");
        return -1;
    }
    size_t len = strlen(value);
    const char *b64 = srv_data_uri_payload(value, &len);
    if (!b64) {
        b64 = value;
    } else if (!strstr(value, ";base64,")) {
        snprintf(msg, cap, "data: URI images must be base64 (;base64,)");
        return -1;
    }
    if (len / 4 * 3 > max_bytes) {
        snprintf(msg, cap, "image %zu is larger than the %zu-byte limit", g->n_images + 1,
                 max_bytes);
        return -1;
    }
    size_t n = 0;
    unsigned char *bytes = srv_base64_decode(b64, len, &n);
    if (!bytes) {
        snprintf(msg, cap, "image %zu is not valid base64", g->n_images + 1);
        return -1;
    }
    pg_image_options io;
    PG_IMAGE_OPTIONS_INIT(&io);
    io.max_pixels = 40u * 1000 * 1000; /* bounds decode memory per request (~120 MB RGB) */
    pg_image *img = NULL;
    pg_status st = pg_image_load_memory(&img, bytes, n, &io);
    free(bytes);
    if (st != PG_OK) {
        snprintf(msg, cap, "image %zu could not be decoded (JPEG or PNG expected): %s",
                 g->n_images + 1, pg_last_error());
        return -1;
    }
    g->images[g->n_images++] = img;
    return 0;
}
