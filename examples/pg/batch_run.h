/*
 * pg's many-image driver: runs one prompt over a list of images through a pg_batch and
 * prints each image's output in input order (pg caption / ask / detect with --batch).
 */
#ifndef PG_BATCH_RUN_H
#define PG_BATCH_RUN_H

#include "paligemma.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct pg_cli_batch {
    pg_model *model;
    const char *const *images;
    size_t n_images;
    const char *prompt;          /* or, when NULL, prompt_ids */
    const int32_t *prompt_ids;
    size_t n_prompt_ids;
    const pg_generate_options *go;
    uint32_t n_ctx;              /* session KV capacity; 0 = default */
    uint32_t width;              /* sessions decoded together */
    bool json;                   /* failed images print {"image", "error"} lines */
    const char *tool;            /* "pg caption": prefix of error messages */
    /* The output of a finished image (malloc'd, ends in "\n"), or NULL after printing an
     * error to stderr. width/height: the image as loaded (after EXIF rotation). */
    char *(*format)(void *user, const char *image, pg_session *s, uint32_t width,
                    uint32_t height);
    void *user;
} pg_cli_batch;

/* Runs every image; returns 0 when all succeeded, 1 when any failed (the others still ran),
 * 130 when interrupted by SIGINT. */
int pg_cli_run_batch(const pg_cli_batch *job);

/* --batch's default for n_images on this model and machine: 1 for a single image, else up to
 * 8 sessions, fewer when their KV caches would pass a quarter of the physical memory. */
uint32_t pg_cli_default_batch(const pg_model *model, size_t n_images, uint32_t n_ctx);

/* {"image": IMAGE, "error": MESSAGE} and "\n" (malloc'd): --json's line for a failed image. */
char *pg_cli_error_line(const char *image, const char *message);

/* Parses a --batch value: 1..64. */
bool pg_cli_parse_batch(const char *s, uint32_t *out);

#endif
