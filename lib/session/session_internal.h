/*
 * session: the state of one conversation with a model (images, prompt, KV cache, output),
 * shared by the files of lib/session. Public entry points are in paligemma.h.
 *
 * Life cycle: set_image(s) (preprocess + hash) -> set_prompt(_ids) -> prefill (vision tower
 * on an image-cache miss, projector, prompt through the decoder) -> feed / generate.
 * After a generate, the next feed or generate restarts from the end of the prompt.
 *
 * Where things are:
 *   session.c      options, new/free, reset, interrupt, errors
 *   images.c       set_image(s): preprocessing, pixel hashes
 *   image_cache.c  the encoded-image cache (XXH3-128 of the pixels -> projector output)
 *   prompt.c       set_prompt(_ids): <image> x (N x tokens), <bos>, prompt, "\n"
 *   prefill.c      the prefill as a sequence of steps (vision layers, decoder layers), feed
 *   generate.c     token selection, stop rules, streaming: a loop alone, or step by step
 *   accessors.c    results: text, ids, logits, timings, kept tensors
 *   batch.c        pg_batch: many sessions decoded through one pass over the weights
 *   sample.c       greedy / temperature / top-k / top-p, log-probabilities
 */
#ifndef PG_SESSION_INTERNAL_H
#define PG_SESSION_INTERNAL_H

#include "decoder/decoder.h"
#include "decoder/kv_cache.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "vision/vision.h"

#include <stdatomic.h>

/* The stop ids: <eos> (config) and Gemma's <end_of_turn>. */
#define PG__END_OF_TURN_ID 107
/* Most images in one prompt (pg_session_set_images). */
#define PG__MAX_IMAGES 64u
/* Most log-probabilities per token (pg_generate_options.n_logprobs). */
#define PG__MAX_LOGPROBS 20u

/* One encoded image of the image cache, keyed by XXH3-128 of its preprocessed pixels. */
typedef struct pg__image_entry {
    uint64_t key[2];
    float *proj;       /* [N][text.hidden] projector output (before the 1/sqrt(D) scale) */
    float *vision_out; /* [N][vision.hidden] with PG_SESSION_KEEP_TENSORS, else NULL */
    uint64_t last_use; /* LRU clock value; 0 = empty slot */
    bool pinned;       /* used by the current images: never evicted */
} pg__image_entry;

/* The prefill in progress: images through the vision tower one layer per step, then the
 * prompt through the decoder one layer per step, then the head (prefill.c). */
typedef struct pg__prefill {
    bool active;
    uint32_t image;           /* next image to encode */
    pg__vision_job *vision;   /* the running tower for images[image], or NULL */
    float *vision_out;        /* its output [tokens][vision.hidden] */
    float *x;                 /* decoder rows [n_prompt][D], NULL before embedding */
    pg__decoder_scratch *scratch;
    int32_t layer;            /* next decoder layer */
    uint32_t n_encoded;       /* images that missed the cache and were encoded */
} pg__prefill;

/* Sampling state (sample.c). */
typedef struct pg__rng {
    uint64_t s[4];
} pg__rng;
typedef struct pg__cand {
    float logit;
    int32_t id;
} pg__cand;

/* A generation in progress (generate.c): the options (stop strings copied), sampling and
 * streaming state. Alone it runs in one pg_session_generate call; in a batch, across steps. */
typedef struct pg__gen {
    pg_generate_options o;
    char **stops;         /* owned copies of o.stop_strings */
    pg__rng rng;
    pg__cand *work;       /* sampling scratch [vocab] */
    pg__detok_stream detok;
    int32_t top_ids[PG__MAX_LOGPROBS];
    float top_lps[PG__MAX_LOGPROBS];
    double t_start, t_decode;
    uint32_t decoded;
    int32_t stop;         /* PG_STOP_* once decided */
} pg__gen;

struct pg_session {
    pg_model *model;
    /* options */
    uint32_t n_ctx;
    int32_t resize_method;
    uint32_t flags;
    pg__kv_cache kv;

    /* images: preprocessed pixels [n_images][3][S][S], their hashes and cache slots */
    float *pixels;
    size_t n_pixels;          /* floats per image */
    uint32_t n_images, cap_images;
    uint64_t (*pixel_keys)[2];
    int32_t *slots;           /* cache slot of each image after a prefill, -1 before */
    bool has_image;
    pg__image_entry *cache;
    uint32_t n_cache;
    uint64_t clock;
    bool encoded;             /* every image's slot is valid (after a prefill) */
    uint64_t n_encodes;       /* vision tower runs (for tests) */
    float *concat;            /* kept tensors of several images, concatenated on demand */

    /* prompt: image tokens, <bos>, prompt, "\n" */
    int32_t *prompt;
    size_t n_prompt;
    int32_t *text_ids;        /* the part after the image tokens */
    size_t n_text_ids;
    bool has_prompt;

    /* decoding state */
    bool prefilled;       /* the prompt is in the KV cache */
    bool after_generate;  /* the next feed/generate rewinds to the end of the prompt */
    int64_t pos;          /* tokens in the KV cache */
    float *logits;        /* [vocab] after the last computed token */
    float *prompt_logits; /* [vocab] after the prompt */
    bool has_logits;
    pg__prefill pf;
    pg__gen gen;

    /* output of the last generate */
    int32_t *out;
    size_t n_out, cap_out;
    char *text;
    size_t text_len, text_cap;
    int32_t stop_reason;

    pg_timings timings;
    atomic_int interrupt;
    _Atomic(pg_batch *) batch; /* the batch it is in, or NULL (batch.c) */
    char last_error[PG__ERRMSG_MAX];
};

/* Copies this thread's last error message into the session; returns st. */
pg_status pg__session_fail(pg_session *s, pg_status st);
/* The same for read-only accessors (sessions are always allocated writable). */
pg_status pg__session_fail_const(const pg_session *s, pg_status st);
/* PG_ERR_BAD_STATE (with the session's error set) when the session is in a batch: every
 * public call but pg_session_interrupt starts with it. `what` names the call. */
pg_status pg__session_check_free(pg_session *s, const char *what);
/* Whether the session is in a batch (accessors then return empty results). */
bool pg__session_in_batch(const pg_session *s);
/* Forgets an interrupt that arrived before this call (public entry points start with it:
 * pg_session_interrupt stops only what is running). */
void pg__session_clear_interrupt(pg_session *s);
/* Drops the output of the last generation. */
void pg__session_clear_output(pg_session *s);
/* Forgets everything computed from the prompt (the image cache stays). */
void pg__session_clear_decoding(pg_session *s);

/* images.c / image_cache.c */
pg_status pg__session_images_reserve(pg_session *s, uint32_t n);
void pg__session_cache_free(pg_session *s);
/* The cache slot holding image i's encoding, or -1; a hit is pinned and touched. */
int32_t pg__session_cache_lookup(pg_session *s, uint32_t i);
/* Stores image i's encoding (takes proj and vision_out) in a slot, pinned; its index. */
pg_status pg__session_cache_insert(pg_session *s, uint32_t i, float *proj, float *vision_out,
                                   int32_t *slot);
/* Unpins every slot (the images changed). */
void pg__session_cache_unpin(pg_session *s);

/* prompt.c: rebuilds the prompt from the image count and the text ids (context checked). */
pg_status pg__session_compose_prompt(pg_session *s, uint32_t n_images);

/* prefill.c: the prefill in steps, or at once; feeding tokens; rewinding to the prompt. */
pg_status pg__prefill_begin(pg_session *s);
/* Runs one step (one image layer, or one decoder layer, or the head). *done after the last;
 * on failure the prefill is abandoned (the session stays usable). */
pg_status pg__prefill_step(pg_session *s, bool *done);
void pg__prefill_abort(pg_session *s);
pg_status pg__session_prefill(pg_session *s);
pg_status pg__session_feed(pg_session *s, const int32_t *ids, size_t n);
void pg__session_rewind(pg_session *s);
/* What a generation needs before its first token: a prefill, a rewind after an earlier
 * generation, or nothing; *need_prefill says whether a prefill must run first. */
pg_status pg__session_ready_to_generate(pg_session *s, bool *need_prefill);

/* generate.c: a generation as begin -> start -> next ... -> end. */
pg_status pg__gen_begin(pg_session *s, const pg_generate_options *user);
/* After the prefill: clears the output and prepares sampling and streaming. */
pg_status pg__gen_start(pg_session *s);
/* Picks and takes the next token (callback, stop rules). Returns true with *feed = the id
 * to run through the decoder next, or false when the generation has stopped (g->stop set,
 * or *st set on an error). */
bool pg__gen_next(pg_session *s, int32_t *feed, pg_status *st);
/* After the decoder ran the fed token: its logits are in s->logits. */
void pg__gen_fed(pg_session *s);
/* Ends the generation: stop reason, interrupt status, final text, timings. `st` is the
 * status so far; returns the generation's status. Frees the per-generation state. */
pg_status pg__gen_end(pg_session *s, pg_status st);
/* Frees the per-generation state (also after a failed begin). */
void pg__gen_free(pg_session *s);

/* batch.c: takes a session out of its batch before it is freed. */
void pg__batch_forget(pg_session *s);

/* sample.c: token selection and log-probabilities. */
void pg__rng_seed(pg__rng *r, uint64_t seed);
/* Uniform double in [0, 1). */
double pg__rng_uniform(pg__rng *r);
/* argmax over n logits (lowest id on ties, like torch.argmax). */
int32_t pg__sample_greedy(const float *logits, size_t n);
/* Temperature / top-k / top-p sampling (transformers' order). work: n entries of scratch. */
int32_t pg__sample(const float *logits, size_t n, float temperature, uint32_t top_k,
                   float top_p, pg__rng *rng, pg__cand *work);
/* log(sum(exp(logits))): logits[i] - this = log-probability of i. */
double pg__log_normalizer(const float *logits, size_t n);
/* The k (<= 20) most likely ids with their log-probabilities, best first. */
void pg__top_logprobs(const float *logits, size_t n, double log_z, uint32_t k, int32_t *ids,
                      float *lps);

#endif /* PG_SESSION_INTERNAL_H */
