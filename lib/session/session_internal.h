/*
 * session: the state of one conversation with a model (image, prompt, KV cache, output),
 * shared by the files of lib/session. Public entry points are in paligemma.h.
 *
 * Life cycle: set_image (preprocess + hash) -> set_prompt(_ids) -> prefill (vision tower on
 * an image-cache miss, projector, prompt through the decoder) -> feed / generate.
 * After a generate, the next feed or generate restarts from the end of the prompt.
 */
#ifndef PG_SESSION_INTERNAL_H
#define PG_SESSION_INTERNAL_H

#include "decoder/kv_cache.h"
#include "model/model.h"

#include <stdatomic.h>

/* The stop ids: <eos> (config) and Gemma's <end_of_turn>. */
#define PG__END_OF_TURN_ID 107

/* One encoded image of the image cache, keyed by XXH3-128 of its preprocessed pixels. */
typedef struct pg__image_entry {
    uint64_t key[2];
    float *proj;       /* [N][text.hidden] projector output (before the 1/sqrt(D) scale) */
    float *vision_out; /* [N][vision.hidden] with PG_SESSION_KEEP_TENSORS, else NULL */
    uint64_t last_use; /* LRU clock value; 0 = empty slot */
} pg__image_entry;

struct pg_session {
    pg_model *model;
    /* options */
    uint32_t n_ctx;
    int32_t resize_method;
    uint32_t flags;
    pg__kv_cache kv;

    /* image: preprocessed pixels [3][S][S] and their hash */
    float *pixels;
    size_t n_pixels;
    uint64_t pixel_key[2];
    bool has_image;
    pg__image_entry *cache;
    uint32_t n_cache;
    uint64_t clock;
    const pg__image_entry *encoded; /* the current image's entry, after a prefill */
    uint64_t n_encodes;             /* vision tower runs (for tests) */

    /* prompt: image tokens, <bos>, prompt, "\n" */
    int32_t *prompt;
    size_t n_prompt;
    bool has_prompt;

    /* decoding state */
    bool prefilled;       /* the prompt is in the KV cache */
    bool after_generate;  /* the next feed/generate rewinds to the end of the prompt */
    int64_t pos;          /* tokens in the KV cache */
    float *logits;        /* [vocab] after the last computed token */
    float *prompt_logits; /* [vocab] after the prompt */
    bool has_logits;

    /* output of the last generate */
    int32_t *out;
    size_t n_out, cap_out;
    char *text;
    size_t text_len, text_cap;
    int32_t stop_reason;

    pg_timings timings;
    atomic_int interrupt;
    char last_error[PG__ERRMSG_MAX];
};

/* Copies this thread's last error message into the session; returns st. */
pg_status pg__session_fail(pg_session *s, pg_status st);
/* Forgets an interrupt that arrived before this call (public entry points start with it:
 * pg_session_interrupt stops only what is running). */
void pg__session_clear_interrupt(pg_session *s);
/* Drops the output of the last generation. */
void pg__session_clear_output(pg_session *s);

/* image_cache.c: hash of the pixels; encode the current image (or find it in the cache). */
void pg__session_hash_pixels(pg_session *s);
pg_status pg__session_encode_image(pg_session *s);
void pg__session_cache_free(pg_session *s);

/* prefill.c: run the prompt; feed tokens; rewind to the end of the prompt. */
pg_status pg__session_prefill(pg_session *s);
pg_status pg__session_feed(pg_session *s, const int32_t *ids, size_t n);
void pg__session_rewind(pg_session *s);

/* sample.c: token selection and log-probabilities. */
typedef struct pg__rng {
    uint64_t s[4];
} pg__rng;
void pg__rng_seed(pg__rng *r, uint64_t seed);
/* Uniform double in [0, 1). */
double pg__rng_uniform(pg__rng *r);
/* argmax over n logits (lowest id on ties, like torch.argmax). */
int32_t pg__sample_greedy(const float *logits, size_t n);
/* Temperature / top-k / top-p sampling (transformers' order). work: n entries of scratch. */
typedef struct pg__cand {
    float logit;
    int32_t id;
} pg__cand;
int32_t pg__sample(const float *logits, size_t n, float temperature, uint32_t top_k,
                   float top_p, pg__rng *rng, pg__cand *work);
/* log(sum(exp(logits))): logits[i] - this = log-probability of i. */
double pg__log_normalizer(const float *logits, size_t n);
/* The k (<= 20) most likely ids with their log-probabilities, best first. */
void pg__top_logprobs(const float *logits, size_t n, double log_z, uint32_t k, int32_t *ids,
                      float *lps);

#endif /* PG_SESSION_INTERNAL_H */
