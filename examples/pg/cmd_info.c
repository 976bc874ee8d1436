/*
 * pg info -m MODEL_DIR [--json] [--backend NAME] [--quantize q8|q4]
 *
 * Loads the model (weights are mapped and every tensor is checked, but not read) and prints
 * its variant and sizes; with --json one JSON object on one line.
 */
#include "pg.h"

#include "paligemma.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(FILE *f)
{
    fprintf(f, "usage: pg info -m MODEL_DIR [--json] [--backend NAME] [--quantize q8|q4]\n"
               "  -m, --model MODEL_DIR  a Hugging Face PaliGemma 2 folder\n"
               "  --json                 one JSON object on one line\n"
               "  --backend NAME         compute backend to create (default cpu)\n"
               "  --quantize q8|q4       quantize the matmul weights at load (shows the size)\n");
    return f == stderr ? 2 : 0;
}

static const char *dtype_name(int32_t dt)
{
    switch (dt) {
    case PG_DTYPE_F32: return "f32";
    case PG_DTYPE_F16: return "f16";
    case PG_DTYPE_BF16: return "bf16";
    case PG_DTYPE_Q8: return "q8";
    case PG_DTYPE_Q4: return "q4";
    default: return "none";
    }
}

static int print_json(const char *path, const pg_model_info *in, const pg_tokenizer *tok)
{
    json_t *root = json_object();
    json_object_set_new(root, "model", json_string(path));
    json_object_set_new(root, "variant", json_string(in->variant));
    json_object_set_new(root, "image_size", json_integer(in->image_size));
    json_object_set_new(root, "patch_size", json_integer(in->patch_size));
    json_object_set_new(root, "image_tokens", json_integer(in->image_tokens));
    json_object_set_new(root, "vocab_size", json_integer(in->vocab_size));
    json_object_set_new(root, "text_layers", json_integer(in->text_layers));
    json_object_set_new(root, "text_hidden", json_integer(in->text_hidden));
    json_object_set_new(root, "text_heads", json_integer(in->text_heads));
    json_object_set_new(root, "text_kv_heads", json_integer(in->text_kv_heads));
    json_object_set_new(root, "text_head_dim", json_integer(in->text_head_dim));
    json_object_set_new(root, "text_ffn", json_integer(in->text_ffn));
    json_object_set_new(root, "sliding_window", json_integer(in->sliding_window));
    json_object_set_new(root, "vision_layers", json_integer(in->vision_layers));
    json_object_set_new(root, "vision_hidden", json_integer(in->vision_hidden));
    json_object_set_new(root, "vision_heads", json_integer(in->vision_heads));
    json_object_set_new(root, "vision_ffn", json_integer(in->vision_ffn));
    json_object_set_new(root, "weight_dtype", json_string(dtype_name(in->weight_dtype)));
    json_object_set_new(root, "n_params", json_integer((json_int_t)in->n_params));
    json_object_set_new(root, "weight_bytes", json_integer((json_int_t)in->weight_bytes));
    json_object_set_new(root, "tokenizer_pieces",
                        tok ? json_integer(pg_tokenizer_vocab_size(tok)) : json_null());
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s) {
        fprintf(stderr, "pg info: out of memory\n");
        return 1;
    }
    printf("%s\n", s);
    free(s);
    return 0;
}

static void print_text(const char *path, const pg_model_info *in, const pg_tokenizer *tok)
{
    printf("model:       %s\n", path);
    printf("variant:     %s\n", in->variant);
    printf("image:       %u px, patch %u, %u image tokens\n", in->image_size, in->patch_size,
           in->image_tokens);
    printf("text:        %u layers, hidden %u, ffn %u, %u heads (%u kv) x %u, vocab %u, "
           "sliding window %u\n",
           in->text_layers, in->text_hidden, in->text_ffn, in->text_heads, in->text_kv_heads,
           in->text_head_dim, in->vocab_size, in->sliding_window);
    printf("vision:      %u layers, hidden %u, ffn %u, %u heads\n", in->vision_layers,
           in->vision_hidden, in->vision_ffn, in->vision_heads);
    printf("parameters:  %.3f G (%llu)\n", (double)in->n_params / 1e9,
           (unsigned long long)in->n_params);
    printf("weights:     %s, %.3f GB\n", dtype_name(in->weight_dtype),
           (double)in->weight_bytes / 1e9);
    if (tok) {
        printf("tokenizer:   %u pieces\n", pg_tokenizer_vocab_size(tok));
    } else {
        printf("tokenizer:   none\n");
    }
}

int pg_cmd_info(int argc, char **argv)
{
    const char *model = NULL, *backend = NULL;
    bool json = false;
    int32_t weight_dtype = PG_DTYPE_AUTO;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
            backend = argv[++i];
        } else if (!strcmp(argv[i], "--quantize") && i + 1 < argc) {
            i++;
            if (!strcmp(argv[i], "q8")) {
                weight_dtype = PG_DTYPE_Q8;
            } else if (!strcmp(argv[i], "q4")) {
                weight_dtype = PG_DTYPE_Q4;
            } else {
                fprintf(stderr, "pg info: --quantize takes q8 or q4\n");
                return usage(stderr);
            }
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            return usage(stdout);
        } else {
            fprintf(stderr, "pg info: unexpected argument '%s'\n", argv[i]);
            return usage(stderr);
        }
    }
    if (!model) {
        return usage(stderr);
    }
    pg_model_options opts;
    PG_MODEL_OPTIONS_INIT(&opts);
    opts.backend = backend;
    opts.weight_dtype = weight_dtype; /* quantization uses all CPUs (n_threads 0) */
    pg_model *m = NULL;
    if (pg_model_load(&m, model, &opts) != PG_OK) {
        fprintf(stderr, "pg info: %s\n", pg_last_error());
        return 1;
    }
    pg_model_info info = { .struct_size = sizeof info };
    int rc = 1;
    if (pg_model_get_info(m, &info) != PG_OK) {
        fprintf(stderr, "pg info: %s\n", pg_last_error());
    } else if (json) {
        rc = print_json(model, &info, pg_model_tokenizer(m));
    } else {
        print_text(model, &info, pg_model_tokenizer(m));
        rc = 0;
    }
    pg_model_free(m);
    return rc;
}
