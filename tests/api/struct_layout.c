/*
 * Prints the layout of every public struct as the C compiler sees it, as JSON:
 *   {"pg_model_options": {"size": 72, "fields": [["struct_size", 0, 8], ...]}, ...}
 * (field name, offset, size). test_struct_layout.py compares it with the header's field lists
 * and the ctypes mirrors in bindings/python/paligemma/_ffi.py.
 */
#include <paligemma.h>

#include <stddef.h>
#include <stdio.h>

static int first_field;

static void begin(const char *name, size_t size, int first)
{
    printf("%s\n  \"%s\": {\"size\": %zu, \"fields\": [", first ? "{" : ",", name, size);
    first_field = 1;
}

static void field(const char *name, size_t offset, size_t size)
{
    printf("%s[\"%s\", %zu, %zu]", first_field ? "" : ", ", name, offset, size);
    first_field = 0;
}

static void end(void)
{
    printf("]}");
}

#define BEGIN(T, first) begin(#T, sizeof(T), first)
#define FIELD(T, f) field(#f, offsetof(T, f), sizeof(((T *)0)->f))

int main(void)
{
    BEGIN(pg_model_options, 1);
    FIELD(pg_model_options, struct_size);
    FIELD(pg_model_options, backend);
    FIELD(pg_model_options, n_threads);
    FIELD(pg_model_options, flags);
    FIELD(pg_model_options, weight_dtype);
    FIELD(pg_model_options, log_fn);
    FIELD(pg_model_options, log_user);
    FIELD(pg_model_options, log_level);
    FIELD(pg_model_options, progress_fn);
    FIELD(pg_model_options, progress_user);
    end();

    BEGIN(pg_model_info, 0);
    FIELD(pg_model_info, struct_size);
    FIELD(pg_model_info, image_size);
    FIELD(pg_model_info, patch_size);
    FIELD(pg_model_info, image_tokens);
    FIELD(pg_model_info, vocab_size);
    FIELD(pg_model_info, text_layers);
    FIELD(pg_model_info, text_hidden);
    FIELD(pg_model_info, text_heads);
    FIELD(pg_model_info, text_kv_heads);
    FIELD(pg_model_info, text_head_dim);
    FIELD(pg_model_info, text_ffn);
    FIELD(pg_model_info, vision_layers);
    FIELD(pg_model_info, vision_hidden);
    FIELD(pg_model_info, vision_heads);
    FIELD(pg_model_info, vision_ffn);
    FIELD(pg_model_info, sliding_window);
    FIELD(pg_model_info, weight_dtype);
    FIELD(pg_model_info, n_params);
    FIELD(pg_model_info, weight_bytes);
    FIELD(pg_model_info, variant);
    end();

    BEGIN(pg_image_options, 0);
    FIELD(pg_image_options, struct_size);
    FIELD(pg_image_options, flags);
    FIELD(pg_image_options, max_dimension);
    FIELD(pg_image_options, max_pixels);
    FIELD(pg_image_options, target_size);
    end();

    BEGIN(pg_session_options, 0);
    FIELD(pg_session_options, struct_size);
    FIELD(pg_session_options, n_ctx);
    FIELD(pg_session_options, kv_dtype);
    FIELD(pg_session_options, resize_method);
    FIELD(pg_session_options, image_cache);
    FIELD(pg_session_options, flags);
    end();

    BEGIN(pg_token_event, 0);
    FIELD(pg_token_event, struct_size);
    FIELD(pg_token_event, token_id);
    FIELD(pg_token_event, index);
    FIELD(pg_token_event, text);
    FIELD(pg_token_event, text_len);
    FIELD(pg_token_event, logprob);
    FIELD(pg_token_event, n_top);
    FIELD(pg_token_event, top_ids);
    FIELD(pg_token_event, top_logprobs);
    end();

    BEGIN(pg_generate_options, 0);
    FIELD(pg_generate_options, struct_size);
    FIELD(pg_generate_options, max_new_tokens);
    FIELD(pg_generate_options, temperature);
    FIELD(pg_generate_options, top_k);
    FIELD(pg_generate_options, top_p);
    FIELD(pg_generate_options, seed);
    FIELD(pg_generate_options, stop_strings);
    FIELD(pg_generate_options, n_stop_strings);
    FIELD(pg_generate_options, n_logprobs);
    FIELD(pg_generate_options, on_token);
    FIELD(pg_generate_options, on_token_user);
    FIELD(pg_generate_options, flags);
    end();

    BEGIN(pg_timings, 0);
    FIELD(pg_timings, struct_size);
    FIELD(pg_timings, preprocess_ms);
    FIELD(pg_timings, vision_ms);
    FIELD(pg_timings, prefill_ms);
    FIELD(pg_timings, prefill_tokens);
    FIELD(pg_timings, decode_ms);
    FIELD(pg_timings, decode_tokens);
    FIELD(pg_timings, ttft_ms);
    FIELD(pg_timings, image_cache_hit);
    end();

    BEGIN(pg_detection_info, 0);
    FIELD(pg_detection_info, struct_size);
    FIELD(pg_detection_info, x_min);
    FIELD(pg_detection_info, y_min);
    FIELD(pg_detection_info, x_max);
    FIELD(pg_detection_info, y_max);
    FIELD(pg_detection_info, loc);
    FIELD(pg_detection_info, label);
    FIELD(pg_detection_info, label_len);
    FIELD(pg_detection_info, n_seg);
    FIELD(pg_detection_info, seg_codes);
    end();

    BEGIN(pg_batch_options, 0);
    FIELD(pg_batch_options, struct_size);
    FIELD(pg_batch_options, max_batch);
    FIELD(pg_batch_options, max_sessions);
    FIELD(pg_batch_options, max_kv_bytes);
    FIELD(pg_batch_options, prefill_ratio);
    FIELD(pg_batch_options, flags);
    end();

    BEGIN(pg_index_stats, 0);
    FIELD(pg_index_stats, struct_size);
    FIELD(pg_index_stats, files_total);
    FIELD(pg_index_stats, files_done);
    FIELD(pg_index_stats, files_indexed);
    FIELD(pg_index_stats, files_skipped);
    FIELD(pg_index_stats, files_failed);
    FIELD(pg_index_stats, files_other);
    FIELD(pg_index_stats, results_written);
    FIELD(pg_index_stats, elapsed_ms);
    end();

    BEGIN(pg_index_options, 0);
    FIELD(pg_index_options, struct_size);
    FIELD(pg_index_options, db_path);
    FIELD(pg_index_options, tasks);
    FIELD(pg_index_options, prompt);
    FIELD(pg_index_options, batch);
    FIELD(pg_index_options, max_new_tokens);
    FIELD(pg_index_options, flags);
    FIELD(pg_index_options, progress_fn);
    FIELD(pg_index_options, progress_user);
    end();

    /* Not a struct: the size of the enum type pg_status, which ctypes passes as c_int. */
    printf(",\n  \"pg_status\": {\"size\": %zu, \"fields\": []}\n}\n", sizeof(pg_status));
    return 0;
}
