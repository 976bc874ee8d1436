/*
 * Test helpers that make model folders to load: a temporary copy of a fixture checkpoint
 * (config, index and shards; no tokenizer files) and in-place edits of its JSON files and
 * safetensors shards (header as jansson JSON + raw data buffer).
 */
#ifndef PG_TEST_MODEL_EDIT_H
#define PG_TEST_MODEL_EDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A copy of tests/data/<rel> (config.json, index, shards) in a new temporary folder. Returns
 * the folder (free with tmp_model_remove) or NULL. */
char *tmp_model_copy(const char *rel);
/* Deletes every file in the folder, the folder, and frees the string. */
void tmp_model_remove(char *dir);

/* dir/name as a static rotating path. */
const char *in_dir(const char *dir, const char *name);

/* Whole-file helpers; 0 on success. */
int write_bytes(const char *path, const void *data, size_t n);
json_t *read_json(const char *path);
int write_json(const char *path, const json_t *j);

/* A safetensors file held for editing. */
typedef struct st_image {
    json_t *header;   /* the header object */
    uint8_t *data;    /* the data buffer */
    size_t data_size;
} st_image;

int st_read(st_image *im, const char *path);
/* Writes header + data; the header is padded with spaces to a multiple of 8, plus
 * `extra_pad` more spaces (an odd value misaligns the data buffer). */
int st_write(const st_image *im, const char *path, size_t extra_pad);
void st_free(st_image *im);
/* Appends bytes to the data buffer; returns their offset. */
size_t st_append(st_image *im, const void *bytes, size_t n);
/* Edits one shard in place with fn(image, user); 0 on success. */
int st_edit(const char *path, void (*fn)(st_image *, void *), void *user);

#endif
