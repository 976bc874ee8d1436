/*
 * paligemma.h - PaliGemma 2 vision-language inference. The public, stable C API.
 *
 * This is the only public header of libpaligemma. It compiles as C99/C11 and as C++.
 *
 * Conventions (see docs/api.md, docs/errors.md, docs/threading.md, docs/abi-policy.md):
 *  - Every function that can fail returns a pg_status (PG_OK = 0). A detailed message is kept
 *    per session (pg_session_last_error) or, for calls without a session, per thread
 *    (pg_last_error). The library never prints, exits or aborts.
 *  - Handles are opaque. Whatever pg_*_load/new/create makes is released by the matching
 *    pg_*_free, and every free function accepts NULL.
 *  - Option structs start with `struct_size` and are initialised with the PG_*_INIT macros
 *    (which call pg_*_options_init). A NULL options pointer means defaults. Options and the
 *    strings they point to are copied during the call, never kept.
 *  - Out parameters come first; a callback is always followed by its `void *user`.
 *  - Variable-size results use "size query then caller buffer": pass NULL/0 to learn the size
 *    (returned through the n_out/len_out parameter); a buffer that is too small gives
 *    PG_ERR_LIMIT and still reports the needed size.
 *
 * Threads: a pg_model is immutable after load and may be shared by any number of sessions on
 * any number of threads. A pg_session is used by one thread at a time (it may migrate);
 * pg_session_interrupt() is the only call allowed from another thread. pg_image and
 * pg_tokenizer are immutable and may be read from several threads at once.
 */
#ifndef PALIGEMMA_H
#define PALIGEMMA_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) && !defined(PG_STATIC) && defined(PG_BUILDING)
#    define PG_API __declspec(dllexport)
#elif defined(_WIN32) && !defined(PG_STATIC)
#    define PG_API __declspec(dllimport)
#elif defined(__GNUC__)
#    define PG_API __attribute__((visibility("default")))
#else
#    define PG_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Versions
 * ------------------------------------------------------------------------------------------- */

#define PG_VERSION_MAJOR 0
#define PG_VERSION_MINOR 1
#define PG_VERSION_PATCH 0
#define PG_VERSION_NUMBER (PG_VERSION_MAJOR * 10000 + PG_VERSION_MINOR * 100 + PG_VERSION_PATCH)
#define PG_VERSION_STRING "0.1.0"
/** ABI version == the shared library's SONAME number; bumped only on an incompatible change. */
#define PG_ABI_VERSION 0

/** @return PG_VERSION_NUMBER of the library actually loaded. @since 0.1 */
PG_API uint32_t pg_version_number(void);
/** @return the version of the loaded library as static text, e.g. "0.1.0". @since 0.1 */
PG_API const char *pg_version_string(void);
/** @return PG_ABI_VERSION of the loaded library; compare with the header's. @since 0.1 */
PG_API uint32_t pg_abi_version(void);

/* ---------------------------------------------------------------------------------------------
 * Status codes, errors, logging, memory
 * ------------------------------------------------------------------------------------------- */

/** Status codes. Values are permanent: only ever appended, never renumbered. @since 0.1 */
typedef enum pg_status {
    PG_OK = 0,
    PG_ERR_INVALID_ARGUMENT = 1, /**< NULL pointer, out-of-range value, bad struct_size */
    PG_ERR_OUT_OF_MEMORY = 2,
    PG_ERR_IO = 3,           /**< a file could not be opened, read or mapped */
    PG_ERR_FORMAT = 4,       /**< malformed data: JSON, safetensors, image, tokenizer file */
    PG_ERR_LIMIT = 5,        /**< a size limit was exceeded (image size, context, buffer) */
    PG_ERR_BAD_STATE = 6,    /**< call out of order, or session needs pg_session_reset */
    PG_ERR_UNSUPPORTED = 7,  /**< valid input this library does not handle */
    PG_ERR_CANCELLED = 8,    /**< stopped by a callback or pg_session_interrupt */
    PG_ERR_BACKEND = 9,      /**< the compute backend failed */
    PG_ERR_INTERNAL = 10,    /**< a bug: please report it */
    PG_ERR_NOT_FOUND = 11,   /**< a file, tensor, token or backend that does not exist */
    PG_ERR_INVALID_UTF8 = 12 /**< text that must be UTF-8 is not */
} pg_status;

/** @return static English text for a status; never NULL, also for unknown codes. @since 0.1 */
PG_API const char *pg_status_string(pg_status status);

/**
 * The detailed message of the last failed call on this thread that has no session to hold it
 * (model load, image load, tokenizer calls, session creation). Borrowed: valid until the next
 * failing call on this thread. Empty string when there is none. @since 0.1
 */
PG_API const char *pg_last_error(void);

/** Log levels. @since 0.1 */
enum { PG_LOG_ERROR = 1, PG_LOG_WARN = 2, PG_LOG_INFO = 3, PG_LOG_DEBUG = 4 };

/** A log sink: `message` is NUL-terminated and valid only during the call. */
typedef void (*pg_log_fn)(void *user, int level, const char *message);

/**
 * Sets the process-wide log callback, used for messages that belong to no model (and for
 * models whose options name no callback). NULL disables logging (the default). Not
 * thread-safe with respect to concurrent logging: set it once at start-up. @since 0.1
 */
PG_API void pg_set_log_callback(pg_log_fn fn, void *user, int32_t max_level);

/** Frees memory that the library allocated for the caller. NULL is fine. @since 0.1 */
PG_API void pg_free(void *ptr);

/* ---------------------------------------------------------------------------------------------
 * Data types and backends
 * ------------------------------------------------------------------------------------------- */

/** Weight / cache data types. Values are permanent. @since 0.1 */
enum {
    PG_DTYPE_AUTO = 0, /**< as stored in the checkpoint (or the library's default) */
    PG_DTYPE_F32 = 1,
    PG_DTYPE_F16 = 2,
    PG_DTYPE_BF16 = 3,
    PG_DTYPE_Q8 = 4, /**< 8-bit integer, per-block scaled, made at load time */
    PG_DTYPE_Q4 = 5  /**< 4-bit integer, per-block scaled, made at load time */
};

/* ---------------------------------------------------------------------------------------------
 * Models
 * ------------------------------------------------------------------------------------------- */

typedef struct pg_model pg_model;
typedef struct pg_tokenizer pg_tokenizer;

/** Model load flags (pg_model_options.flags). Values are permanent. @since 0.1 */
enum {
    /** Load only config.json and the tokenizer; no weights are opened (tokenize-only use). */
    PG_MODEL_TOKENIZER_ONLY = 1u << 0,
    /** Do not write or read a quantized-weight cache file next to the model. */
    PG_MODEL_NO_QUANT_CACHE = 1u << 1,
    /** Touch every mapped weight page at load (slower load, no page faults later). */
    PG_MODEL_PREFAULT = 1u << 2
};

/** Progress during load: fraction in [0,1]; return non-zero to abort (PG_ERR_CANCELLED). */
typedef int (*pg_progress_fn)(void *user, float fraction);

/** Options for pg_model_load. Initialise with PG_MODEL_OPTIONS_INIT. @since 0.1 */
typedef struct pg_model_options {
    size_t struct_size;        /**< set by pg_model_options_init */
    const char *backend;       /**< "cpu" (default when NULL), "cpu-bf16" (cpu, but bf16 x bf16
                                    products where the CPU does them at full rate: faster,
                                    less exact; docs/backends.md) or "ref" (scalar, slow);
                                    copied */
    int32_t n_threads;         /**< compute threads; 0 = one per online CPU */
    uint32_t flags;            /**< PG_MODEL_* bits */
    int32_t weight_dtype;      /**< PG_DTYPE_AUTO (as stored), _Q8 or _Q4 (quantize at load) */
    pg_log_fn log_fn;          /**< NULL = the process-wide callback */
    void *log_user;
    int32_t log_level;         /**< most verbose level delivered; 0 = PG_LOG_WARN */
    pg_progress_fn progress_fn; /**< may be NULL */
    void *progress_user;
} pg_model_options;

/** Fills `opts` with defaults for a struct of `struct_size` bytes. @since 0.1 */
PG_API void pg_model_options_init(pg_model_options *opts, size_t struct_size);
#define PG_MODEL_OPTIONS_INIT(p) pg_model_options_init((p), sizeof *(p))

/**
 * Loads a PaliGemma 2 model from a Hugging Face model folder: config.json, the tokenizer
 * (tokenizer.model or tokenizer.json, optional) and model.safetensors or
 * model.safetensors.index.json with its shards. Weights are memory-mapped, not read.
 * Every tensor the configuration needs is checked for presence, shape and dtype.
 *
 * @param[out] out   the model, or NULL on failure
 * @param[in]  path  the model folder
 * @param[in]  opts  NULL for defaults
 * @return PG_OK, or PG_ERR_NOT_FOUND / _IO / _FORMAT / _UNSUPPORTED / _OUT_OF_MEMORY /
 *         _INVALID_ARGUMENT with a message in pg_last_error() naming the file and tensor.
 * @since 0.1
 */
PG_API pg_status pg_model_load(pg_model **out, const char *path, const pg_model_options *opts);

/**
 * Releases the caller's reference. The model lives on until its last session is freed, so
 * models and sessions may be freed in any order. NULL is fine. @since 0.1
 */
PG_API void pg_model_free(pg_model *model);

/** Facts about a loaded model (pg_model_get_info). Initialise struct_size. @since 0.1 */
typedef struct pg_model_info {
    size_t struct_size;       /**< sizeof(pg_model_info) as the caller knows it */
    uint32_t image_size;      /**< input resolution S (224, 448, 896, ...) */
    uint32_t patch_size;      /**< 14 */
    uint32_t image_tokens;    /**< (S / patch)^2 */
    uint32_t vocab_size;      /**< embedding rows (257216 for the hub models) */
    uint32_t text_layers;
    uint32_t text_hidden;     /**< decoder width D */
    uint32_t text_heads;
    uint32_t text_kv_heads;
    uint32_t text_head_dim;
    uint32_t text_ffn;        /**< decoder intermediate size */
    uint32_t vision_layers;
    uint32_t vision_hidden;
    uint32_t vision_heads;
    uint32_t vision_ffn;
    uint32_t sliding_window;
    int32_t weight_dtype;     /**< PG_DTYPE_* of the bulk of the weights as used */
    uint64_t n_params;        /**< parameters counted from the tensor shapes */
    uint64_t weight_bytes;    /**< bytes of weights as used (mapped or quantized) */
    const char *variant;      /**< e.g. "3b-448"; "custom" when no released size matches;
                                   static or owned by the model */
} pg_model_info;

/** Fills `info` (whose struct_size the caller set). @since 0.1 */
PG_API pg_status pg_model_get_info(const pg_model *model, pg_model_info *info);

/** The model's tokenizer (borrowed, lives as long as the model), or NULL if it has none. */
PG_API const pg_tokenizer *pg_model_tokenizer(const pg_model *model);

/* ---------------------------------------------------------------------------------------------
 * Tokenizer
 * ------------------------------------------------------------------------------------------- */

/** Tokenize flags. @since 0.1 */
enum {
    /** Treat control-token text typed in the input ("<bos>", "<eos>", ...) as ordinary text
     *  (SentencePiece behaviour). Default (flag clear): Hugging Face behaviour, matched. */
    PG_TOKENIZE_NO_PARSE_SPECIAL = 1u << 0,
    /** Prepend <bos>. */
    PG_TOKENIZE_ADD_BOS = 1u << 1
};

/** Detokenize flags. @since 0.1 */
enum {
    /** Leave out control tokens (<bos>, <eos>, <pad>, <image>, ...). */
    PG_DETOKENIZE_SKIP_SPECIAL = 1u << 0
};

/** Special token kinds for pg_tokenizer_special_id. @since 0.1 */
enum {
    PG_TOKEN_PAD = 0,
    PG_TOKEN_EOS = 1,
    PG_TOKEN_BOS = 2,
    PG_TOKEN_UNK = 3,
    PG_TOKEN_IMAGE = 4,   /**< <image>, or -1 when the vocabulary has none */
    PG_TOKEN_NEWLINE = 5, /**< the "\n" separator piece */
    PG_TOKEN_LOC0 = 6,    /**< <loc0000>; <locN> = this + N */
    PG_TOKEN_SEG0 = 7     /**< <seg000>; <segN> = this + N */
};

/**
 * Loads a tokenizer from a file (tokenizer.model or tokenizer.json, recognised by content) or
 * from a model folder (tokenizer.model preferred, tokenizer.json otherwise). @since 0.1
 */
PG_API pg_status pg_tokenizer_load(pg_tokenizer **out, const char *path);
/** Frees a tokenizer made by pg_tokenizer_load (never the one a model owns). NULL ok. */
PG_API void pg_tokenizer_free(pg_tokenizer *tok);

/**
 * Encodes `len` bytes of UTF-8 text (NULs allowed). Invalid UTF-8 sequences are replaced by
 * U+FFFD before encoding (SentencePiece behaviour).
 * @param ids     caller buffer, may be NULL when cap is 0
 * @param n_out   receives the number of ids (also when the buffer is too small)
 * @return PG_OK, PG_ERR_LIMIT if cap is too small, PG_ERR_INVALID_ARGUMENT. @since 0.1
 */
PG_API pg_status pg_tokenize(const pg_tokenizer *tok, const char *text, size_t len,
                             uint32_t flags, int32_t *ids, size_t cap, size_t *n_out);

/**
 * Decodes ids to UTF-8 (not NUL-terminated unless room is left: the library writes a NUL
 * after the text when cap > *len_out). Byte pieces are reassembled; invalid sequences become
 * U+FFFD. Ids out of range give PG_ERR_INVALID_ARGUMENT. @since 0.1
 */
PG_API pg_status pg_detokenize(const pg_tokenizer *tok, const int32_t *ids, size_t n_ids,
                               uint32_t flags, char *text, size_t cap, size_t *len_out);

/** The piece text of `id` (e.g. "▁cat", "<0x0A>", "<loc0012>"), size query as above. */
PG_API pg_status pg_token_to_piece(const pg_tokenizer *tok, int32_t id, char *buf, size_t cap,
                                   size_t *len_out);
/** The id of a piece given by its exact text, or PG_ERR_NOT_FOUND. @since 0.1 */
PG_API pg_status pg_piece_to_token(const pg_tokenizer *tok, const char *piece, size_t len,
                                   int32_t *id_out);
/** Number of pieces. @since 0.1 */
PG_API uint32_t pg_tokenizer_vocab_size(const pg_tokenizer *tok);
/** The id of a PG_TOKEN_* kind, or -1 when absent. @since 0.1 */
PG_API int32_t pg_tokenizer_special_id(const pg_tokenizer *tok, int32_t kind);

/* ---------------------------------------------------------------------------------------------
 * Images
 * ------------------------------------------------------------------------------------------- */

typedef struct pg_image pg_image;

/** Image load flags. @since 0.1 */
enum {
    /** Ignore the EXIF orientation tag (default: apply it, like HF load_image). */
    PG_IMAGE_NO_EXIF_ROTATE = 1u << 0,
    /** Let libjpeg-turbo downscale large JPEGs in the DCT domain (faster; changes pixels). */
    PG_IMAGE_FAST_JPEG_SCALE = 1u << 1
};

/** Options for image loading. Initialise with PG_IMAGE_OPTIONS_INIT. @since 0.1 */
typedef struct pg_image_options {
    size_t struct_size;
    uint32_t flags;          /**< PG_IMAGE_* bits */
    uint32_t max_dimension;  /**< largest width or height accepted; 0 = 65535 */
    uint64_t max_pixels;     /**< largest width*height accepted; 0 = 100 million */
    uint32_t target_size;    /**< with PG_IMAGE_FAST_JPEG_SCALE: the size the image will be
                                  resized to (DCT scaling never goes below it); 0 = 896 */
} pg_image_options;

PG_API void pg_image_options_init(pg_image_options *opts, size_t struct_size);
#define PG_IMAGE_OPTIONS_INIT(p) pg_image_options_init((p), sizeof *(p))

/** Raw pixel layouts for pg_image_from_pixels. @since 0.1 */
enum {
    PG_PIXEL_RGB8 = 1,
    PG_PIXEL_RGBA8 = 2, /**< alpha dropped without compositing, like Pillow convert("RGB") */
    PG_PIXEL_BGR8 = 3,
    PG_PIXEL_BGRA8 = 4,
    PG_PIXEL_GRAY8 = 5
};

/** Decodes a JPEG or PNG file. Other formats give PG_ERR_UNSUPPORTED. @since 0.1 */
PG_API pg_status pg_image_load_file(pg_image **out, const char *path,
                                    const pg_image_options *opts);
/** Decodes a JPEG or PNG held in memory (copied as needed). @since 0.1 */
PG_API pg_status pg_image_load_memory(pg_image **out, const void *data, size_t size,
                                      const pg_image_options *opts);
/**
 * Makes an image from caller pixels (copied). `stride` is the byte distance between rows
 * (0 = tightly packed). @since 0.1
 */
PG_API pg_status pg_image_from_pixels(pg_image **out, const void *pixels, uint32_t width,
                                      uint32_t height, size_t stride, int32_t pixel_format,
                                      const pg_image_options *opts);
PG_API void pg_image_free(pg_image *image);
PG_API uint32_t pg_image_width(const pg_image *image);
PG_API uint32_t pg_image_height(const pg_image *image);
/** The decoded 8-bit RGB pixels, rows packed (width*3 bytes each). Borrowed. @since 0.1 */
PG_API const uint8_t *pg_image_pixels(const pg_image *image);

/** Resize methods for preprocessing. @since 0.1 */
enum {
    PG_RESIZE_BICUBIC_PIL = 0, /**< exact Pillow BICUBIC (what Hugging Face uses); default */
    PG_RESIZE_BILINEAR_TF = 1  /**< big_vision's TensorFlow bilinear resize (antialias off) */
};

/**
 * The model input for an image: resized to size x size, scaled to [-1, 1], planar CHW
 * float32 (3*size*size floats written to `out`, which holds `n_floats`).
 * @since 0.1
 */
PG_API pg_status pg_image_preprocess(const pg_image *image, uint32_t size, int32_t method,
                                     float *out, size_t n_floats);

/* ---------------------------------------------------------------------------------------------
 * Sessions and generation
 * ------------------------------------------------------------------------------------------- */

typedef struct pg_session pg_session;

/** Options for pg_session_new. Initialise with PG_SESSION_OPTIONS_INIT. @since 0.1 */
typedef struct pg_session_options {
    size_t struct_size;
    uint32_t n_ctx;          /**< KV-cache capacity in tokens; 0 = image tokens + 1024 */
    int32_t kv_dtype;        /**< PG_DTYPE_AUTO (backend default), _F32, _F16 or _BF16 */
    int32_t resize_method;   /**< PG_RESIZE_* */
    uint32_t image_cache;    /**< encoded images kept (xxHash-keyed); 0 = 4 */
    uint32_t flags;          /**< PG_SESSION_* bits */
} pg_session_options;

/** Session flags. @since 0.1 */
enum {
    /** Keep intermediate tensors for pg_session_get_tensor (debugging, --dump-dir). */
    PG_SESSION_KEEP_TENSORS = 1u << 0
};

PG_API void pg_session_options_init(pg_session_options *opts, size_t struct_size);
#define PG_SESSION_OPTIONS_INIT(p) pg_session_options_init((p), sizeof *(p))

/**
 * Creates a session on a model (the session holds a reference to the model). @since 0.1
 */
PG_API pg_status pg_session_new(pg_session **out, pg_model *model,
                                const pg_session_options *opts);
PG_API void pg_session_free(pg_session *session);

/**
 * Sets the image. The image is preprocessed now (the pg_image may be freed afterwards) and
 * encoded by the vision tower at the next prefill, unless an image with the same pixels was
 * encoded before (xxHash-keyed cache). Clears any generation state. @since 0.1
 */
PG_API pg_status pg_session_set_image(pg_session *session, const pg_image *image);

/**
 * Sets the prompt text (copied), e.g. "caption en". The session tokenizes it as
 * `<image>*N <bos> prompt "\n"`. A trailing "\n" in `prompt` is kept as text. @since 0.1
 */
PG_API pg_status pg_session_set_prompt(pg_session *session, const char *prompt, size_t len);

/**
 * Sets the prompt as token ids that follow the image tokens, verbatim: <bos> and the "\n"
 * separator included (for models without a tokenizer). @since 0.1
 */
PG_API pg_status pg_session_set_prompt_ids(pg_session *session, const int32_t *ids, size_t n);

/** Runs the vision tower (if needed) and the prefill now. Optional: generate does it. */
PG_API pg_status pg_session_prefill(pg_session *session);

/**
 * Appends tokens after the current position (the prompt must be prefilled; it is if needed)
 * and computes the logits after the last one (teacher forcing, scoring). @since 0.1
 */
PG_API pg_status pg_session_feed(pg_session *session, const int32_t *ids, size_t n);

/**
 * The soft-capped logits after the last prefilled or fed token (n_vocab floats). Borrowed:
 * valid until the next call that changes the session. @since 0.1
 */
PG_API pg_status pg_session_logits(const pg_session *session, const float **logits,
                                   size_t *n_vocab);

/** Reasons generation stopped. @since 0.1 */
enum {
    PG_STOP_NONE = 0,
    PG_STOP_EOS = 1,         /**< the model produced <eos> (or <end_of_turn>) */
    PG_STOP_MAX_TOKENS = 2,  /**< max_new_tokens reached */
    PG_STOP_STRING = 3,      /**< a stop string appeared */
    PG_STOP_CALLBACK = 4,    /**< the token callback returned non-zero */
    PG_STOP_INTERRUPT = 5,   /**< pg_session_interrupt */
    PG_STOP_CONTEXT = 6      /**< the KV cache is full */
};

/** One generated token, delivered to pg_token_fn. Read only the fields you know. */
typedef struct pg_token_event {
    size_t struct_size;
    int32_t token_id;
    uint32_t index;          /**< 0 for the first generated token */
    const char *text;        /**< new complete UTF-8 text (may be empty); NUL-terminated */
    size_t text_len;
    float logprob;           /**< log-probability of token_id under the (unwarped) model */
    uint32_t n_top;          /**< entries in top_ids/top_logprobs (pg_generate_options.n_logprobs) */
    const int32_t *top_ids;
    const float *top_logprobs;
} pg_token_event;

/** Token callback: runs on the generating thread; return non-zero to stop. */
typedef int (*pg_token_fn)(void *user, const pg_token_event *event);

/** Options for pg_session_generate. Initialise with PG_GENERATE_OPTIONS_INIT. @since 0.1 */
typedef struct pg_generate_options {
    size_t struct_size;
    uint32_t max_new_tokens;   /**< 0 = 256 */
    float temperature;         /**< 0 = greedy (the default) */
    uint32_t top_k;            /**< 0 = no top-k cut (sampling only) */
    float top_p;               /**< 1 = no nucleus cut (sampling only) */
    uint64_t seed;             /**< sampling seed */
    const char *const *stop_strings; /**< optional; copied */
    uint32_t n_stop_strings;
    uint32_t n_logprobs;       /**< top-k log-probabilities per step (0..20) */
    pg_token_fn on_token;      /**< may be NULL */
    void *on_token_user;
    uint32_t flags;            /**< reserved, 0 */
} pg_generate_options;

PG_API void pg_generate_options_init(pg_generate_options *opts, size_t struct_size);
#define PG_GENERATE_OPTIONS_INIT(p) pg_generate_options_init((p), sizeof *(p))

/**
 * Generates text after the prompt (prefilling first if needed). Stops at <eos>, a stop string,
 * max_new_tokens, a full context, the callback or an interrupt. The result is read with
 * pg_session_text / pg_session_output_ids / pg_session_stop_reason.
 * @return PG_OK (also when stopped by a callback or stop string), PG_ERR_CANCELLED after
 *         pg_session_interrupt, PG_ERR_BAD_STATE without image or prompt. @since 0.1
 */
PG_API pg_status pg_session_generate(pg_session *session, const pg_generate_options *opts);

/** The generated text (borrowed, NUL-terminated, valid until the session changes). */
PG_API const char *pg_session_text(const pg_session *session, size_t *len);
/** The generated ids, EOS excluded (borrowed). @since 0.1 */
PG_API const int32_t *pg_session_output_ids(const pg_session *session, size_t *n);
/** The whole prompt ids: image tokens, <bos>, prompt, "\n" (borrowed). @since 0.1 */
PG_API const int32_t *pg_session_prompt_ids(const pg_session *session, size_t *n);
/** PG_STOP_* of the last generation. @since 0.1 */
PG_API int32_t pg_session_stop_reason(const pg_session *session);

/** Timings of the last prefill/generation, in milliseconds. @since 0.1 */
typedef struct pg_timings {
    size_t struct_size;
    double preprocess_ms;
    double vision_ms;        /**< vision tower + projector (0 on an image-cache hit) */
    double prefill_ms;
    uint32_t prefill_tokens;
    double decode_ms;        /**< all generated tokens */
    uint32_t decode_tokens;
    double ttft_ms;          /**< time to first token, from the start of the call */
    uint32_t image_cache_hit; /**< 1 when the encoded image came from the cache */
} pg_timings;

PG_API pg_status pg_session_get_timings(const pg_session *session, pg_timings *timings);

/** Names of the tensors kept with PG_SESSION_KEEP_TENSORS. @since 0.1 */
enum {
    PG_TENSOR_PIXEL_VALUES = 0,      /**< [1, 3, S, S] */
    PG_TENSOR_VISION_OUT = 1,        /**< [N, vision_hidden] */
    PG_TENSOR_PROJECTOR_OUT = 2,     /**< [N, text_hidden], before the 1/sqrt(D) scaling */
    PG_TENSOR_PREFILL_LOGITS_LAST = 3 /**< [vocab] */
};

/**
 * An intermediate tensor (borrowed float32 data, row-major) with its shape. Needs
 * PG_SESSION_KEEP_TENSORS and a prefill. @since 0.1
 */
PG_API pg_status pg_session_get_tensor(const pg_session *session, int32_t which,
                                       const float **data, int64_t shape[4], int32_t *ndim);

/** Stops a running prefill or generation soon (between layers or tokens). Thread-safe. */
PG_API void pg_session_interrupt(pg_session *session);

/** Clears the prompt, KV cache, output and error state; keeps the image cache. @since 0.1 */
PG_API pg_status pg_session_reset(pg_session *session);

/** The message of the last failed call on this session (borrowed; "" if none). @since 0.1 */
PG_API const char *pg_session_last_error(const pg_session *session);

/* ---------------------------------------------------------------------------------------------
 * Output post-processing: boxes and segmentation codes (docs/postprocessing.md)
 * ------------------------------------------------------------------------------------------- */

/**
 * The objects found in a `detect ...` or `segment ...` answer (pg_detections_parse). Opaque and
 * immutable; needs no model or session. @since 0.1
 */
typedef struct pg_detections pg_detections;

/**
 * One object of a pg_detections (pg_detections_get). An output struct: set struct_size to
 * sizeof(pg_detection_info) (and zero the rest) before the call. @since 0.1
 */
typedef struct pg_detection_info {
    size_t struct_size;       /**< sizeof(pg_detection_info) as the caller knows it */
    float x_min;              /**< left edge in image pixels, loc[1] / 1024 * width */
    float y_min;              /**< top edge in image pixels, loc[0] / 1024 * height */
    float x_max;              /**< right edge in image pixels, loc[3] / 1024 * width */
    float y_max;              /**< bottom edge in image pixels, loc[2] / 1024 * height */
    int32_t loc[4];           /**< the raw <locDDDD> values y_min, x_min, y_max, x_max (0..1023) */
    const char *label;        /**< the label, trimmed; borrowed, NUL-terminated, "" if none */
    size_t label_len;         /**< bytes of label, NUL excluded */
    uint32_t n_seg;           /**< 16 for a segmentation answer, else 0 */
    const int32_t *seg_codes; /**< n_seg <segDDD> values (0..127), raw; borrowed; NULL if none */
} pg_detection_info;

/**
 * Parses a generated answer to `detect a ; b` or `segment a` (the decoded text, e.g. from
 * pg_session_text) into objects with boxes in pixels of the ORIGINAL image (PaliGemma
 * squashes the whole image, so boxes scale by width and height independently).
 *
 * Grammar (spec section 9.2): any leading text is skipped, then four `<locDDDD>` tokens (y_min,
 * x_min, y_max, x_max), optional whitespace, optionally sixteen `<segDDD>` tokens, then a label
 * running up to `;`, `<` or `>` (whitespace trimmed), then an optional "; ". Repeats to the end.
 * Pixel coordinates are loc / 1024 * size (the official demo's convention; the raw loc values are
 * returned too, for callers who prefer big_vision's loc / 1023), clamped to [0, size] and not
 * rounded. An object is dropped when a value is out of range (loc above 1023, seg above 127) or
 * its box is empty or inverted (y_max <= y_min or x_max <= x_min), as big_vision's evaluator does.
 * Text that holds no object (a caption, garbage, a truncated answer) gives an empty, valid result:
 * malformed pieces are skipped, never an error.
 *
 * The segmentation codes are returned raw; pg_detections_mask turns them into a mask with
 * big_vision's VQ-VAE decoder weights (vae-oid.npz, not part of the Hugging Face checkpoints).
 * pg_detections_status says whether malformed or truncated pieces were skipped.
 *
 * @param[out] out   the result (free with pg_detections_free), or NULL on failure
 * @param[in]  text  the answer, `len` bytes, need not be NUL-terminated (NULL only if len 0)
 * @param[in]  image_width, image_height  the original image size in pixels (1..2^24 each)
 * @return PG_OK (also for zero objects), PG_ERR_INVALID_ARGUMENT, PG_ERR_OUT_OF_MEMORY;
 *         the message is in pg_last_error(). @since 0.1
 */
PG_API pg_status pg_detections_parse(pg_detections **out, const char *text, size_t len,
                                     uint32_t image_width, uint32_t image_height);

/** @return the number of objects (0 for NULL). @since 0.1 */
PG_API size_t pg_detections_count(const pg_detections *detections);

/**
 * Reads object `index` (0..count-1) in the order of the text. The label and seg_codes
 * pointers are borrowed from `detections` and stay valid until pg_detections_free.
 * @return PG_OK, or PG_ERR_INVALID_ARGUMENT (NULL, index out of range, bad struct_size) /
 *         PG_ERR_UNSUPPORTED (unknown trailing fields set); message in pg_last_error().
 * @since 0.1
 */
PG_API pg_status pg_detections_get(const pg_detections *detections, size_t index,
                                   pg_detection_info *info);

/** Frees the result of pg_detections_parse and everything it lent. NULL is fine. @since 0.1 */
PG_API void pg_detections_free(pg_detections *detections);

/* ---------------------------------------------------------------------------------------------
 * Several images in one prompt (docs/session.md)
 * ------------------------------------------------------------------------------------------- */

/**
 * Sets `n` images (1..64) for one prompt, as Hugging Face's PaliGemmaProcessor does for a list
 * of images: the prompt becomes `<image>` x (n x image tokens), `<bos>`, prompt, "\n", and the
 * images' features fill the image tokens in order; the prefix-LM block covers all of them.
 * Each image is preprocessed now and encoded once (the encoded-image cache works per image).
 * n = 1 is pg_session_set_image. The prompt (set before or after) must fit n_ctx with all
 * image tokens: PG_ERR_LIMIT otherwise. Clears any generation state. @since 0.2
 */
PG_API pg_status pg_session_set_images(pg_session *session, const pg_image *const *images,
                                       size_t n);

/* ---------------------------------------------------------------------------------------------
 * Batches: many sessions generated together (docs/batch.md)
 *
 * A pg_batch advances many sessions of one model at once. Each pg_batch_step feeds the next
 * token of every decoding session through ONE pass over the weights (matmuls over as many rows
 * as sessions; attention per session over its own KV cache), and runs a slice of the pending
 * vision-tower + prefill work between decode passes. A session in a batch keeps its own state
 * (image cache, KV cache, sampling options, stop rules, callbacks); what it produces is what
 * pg_session_generate would have produced alone (greedy ids identical).
 * ------------------------------------------------------------------------------------------- */

typedef struct pg_batch pg_batch;

/** Options for pg_batch_new. Initialise with PG_BATCH_OPTIONS_INIT. @since 0.2 */
typedef struct pg_batch_options {
    size_t struct_size;
    uint32_t max_batch;     /**< sessions decoded together in one pass (1..64); 0 = 8 */
    uint32_t max_sessions;  /**< sessions in the batch at once, waiting ones included
                                 (>= max_batch, <= 4096); 0 = 2 * max_batch */
    uint64_t max_kv_bytes;  /**< cap on the summed KV-cache bytes of the sessions in the
                                 batch; 0 = no cap */
    float prefill_ratio;    /**< while sessions decode and others wait for their prefill: time
                                 spent on prefill per unit of decode time in a step (0 = 8;
                                 documented in docs/batch.md) */
    uint32_t flags;         /**< reserved, 0 */
} pg_batch_options;

PG_API void pg_batch_options_init(pg_batch_options *opts, size_t struct_size);
#define PG_BATCH_OPTIONS_INIT(p) pg_batch_options_init((p), sizeof *(p))

/** Creates an empty batch on `model` (holds a reference). @since 0.2 */
PG_API pg_status pg_batch_new(pg_batch **out, pg_model *model, const pg_batch_options *opts);

/** Frees the batch. Sessions still in it are detached: their generation ends as if
 *  interrupted (PG_STOP_INTERRUPT), and they are usable again. NULL is fine. @since 0.2 */
PG_API void pg_batch_free(pg_batch *batch);

/**
 * Adds a session (image and prompt set, same model) to generate with `opts` (copied, stop
 * strings too; NULL = defaults). Its prefill and generation run in later pg_batch_step calls;
 * its on_token callback runs on the thread that steps. Thread-safe: may be called while
 * another thread is in pg_batch_step.
 * @return PG_OK; PG_ERR_LIMIT when the batch holds max_sessions or the session's KV cache
 *         would exceed max_kv_bytes (the session is untouched); PG_ERR_BAD_STATE when the
 *         session lacks image or prompt or is in a batch already; PG_ERR_INVALID_ARGUMENT.
 */
PG_API pg_status pg_batch_add(pg_batch *batch, pg_session *session,
                              const pg_generate_options *opts);

/**
 * Takes a session out before it finished: its generation ends with PG_STOP_INTERRUPT and
 * result PG_ERR_CANCELLED (the text so far is kept). Thread-safe; from a token callback
 * only for another session. A finished, not yet taken session is simply taken.
 * PG_ERR_NOT_FOUND when the session is not in the batch.
 */
PG_API pg_status pg_batch_remove(pg_batch *batch, pg_session *session);

/**
 * One step: every decoding session gets one token (one pass over the weights), then pending
 * vision/prefill work runs as docs/batch.md describes. Sessions that end (EOS, stop string,
 * max tokens, context, callback, pg_session_interrupt, error) move to the finished queue.
 * One thread steps at a time (PG_ERR_BAD_STATE otherwise). A failing session does not fail
 * the step: its status is reported by pg_batch_take_finished.
 * @param n_active  receives the sessions still in the batch (not yet finished); may be NULL
 */
PG_API pg_status pg_batch_step(pg_batch *batch, uint32_t *n_active);

/**
 * Pops the earliest finished session, with `result`: what pg_session_generate would have
 * returned for it. The session is a normal session again (pg_session_text etc.). Waits up to
 * timeout_ms for one (0: no wait; pg_batch_wake ends the wait early). Thread-safe.
 * @return PG_OK, or PG_ERR_NOT_FOUND when none has finished (*session NULL). @since 0.2
 */
PG_API pg_status pg_batch_take_finished(pg_batch *batch, uint32_t timeout_ms,
                                        pg_session **session, pg_status *result);

/**
 * Blocks until the batch has sessions to step, or until timeout_ms passes or pg_batch_wake is
 * called: the idle loop of a thread that steps (a server's, say).
 * @param n_active  receives the sessions in the batch that have not finished; may be NULL
 * @since 0.2
 */
PG_API pg_status pg_batch_wait(pg_batch *batch, uint32_t timeout_ms, uint32_t *n_active);
/** Wakes every thread in pg_batch_wait or a waiting pg_batch_take_finished. Thread-safe.
 *  @since 0.2 */
PG_API void pg_batch_wake(pg_batch *batch);

/** Sessions in the batch that have not finished yet (0 for NULL). Thread-safe. */
PG_API uint32_t pg_batch_count(const pg_batch *batch);

/*
 * While a session is in a batch (from pg_batch_add until pg_batch_take_finished /
 * pg_batch_remove / pg_batch_free), every other call on it returns PG_ERR_BAD_STATE (the
 * accessors return empty results), except pg_session_interrupt, which ends just that
 * session's generation.
 */

/* ---- catalogue: pg index (issue 12) ---- */

/*
 * A photo-folder catalogue in SQLite (docs/index-schema.md, docs/index.md): every JPEG/PNG under
 * some folders is captioned / detected through a pg_batch and its results written, one
 * transaction per finished image, resumable by content hash, searchable with FTS5, optionally
 * mirrored into XMP sidecars. The library prints nothing: progress and notes reach a callback.
 */

/** pg_index_options.flags. Values are permanent. @since 0.2 */
enum {
    /** Write or update NAME.EXT.xmp sidecars (dc:description, dc:subject, image regions). */
    PG_INDEX_XMP = 1u << 0,
    /** Re-hash every file even when size and mtime are unchanged, and retry error results. */
    PG_INDEX_RESCAN = 1u << 1
};

/** Counters of a pg_index_run (also handed to the progress callback). @since 0.2 */
typedef struct pg_index_stats {
    size_t struct_size;       /**< sizeof(pg_index_stats) as the caller knows it */
    uint64_t files_total;     /**< JPEG/PNG files found */
    uint64_t files_done;      /**< of these, finished (indexed, skipped or failed) */
    uint64_t files_indexed;   /**< finished with model work in this run */
    uint64_t files_skipped;   /**< every result already present: no model work */
    uint64_t files_failed;    /**< unreadable or undecodable: error rows written */
    uint64_t files_other;     /**< not JPEG/PNG: left alone */
    uint64_t results_written; /**< results rows inserted */
    double elapsed_ms;        /**< since the run started */
} pg_index_stats;

/**
 * Progress: called after every finished file (path set), for notes (path and note set: a
 * skipped non-image, an unreadable folder, a failed image, an XMP problem) and between batch
 * steps (path NULL). Return non-zero to stop: images in flight are dropped, nothing
 * unfinished is written, pg_index_run returns PG_ERR_CANCELLED.
 */
typedef int (*pg_index_progress_fn)(void *user, const pg_index_stats *stats, const char *path,
                                    const char *note);

/** Options for pg_index_run. Initialise with PG_INDEX_OPTIONS_INIT. @since 0.2 */
typedef struct pg_index_options {
    size_t struct_size;
    const char *db_path;      /**< NULL = "<first folder>/.paligemma.sqlite" */
    const char *tasks;        /**< comma-separated: "caption", "detect:person ; dog",
                                   "segment:cat"; NULL = "caption" */
    const char *prompt;       /**< the caption task's prompt; NULL = "caption en" */
    uint32_t batch;           /**< sessions decoded together (1..64); 0 = 4 */
    uint32_t max_new_tokens;  /**< per result; 0 = 64 */
    uint32_t flags;           /**< PG_INDEX_* bits */
    pg_index_progress_fn progress_fn; /**< may be NULL */
    void *progress_user;
} pg_index_options;

PG_API void pg_index_options_init(pg_index_options *opts, size_t struct_size);
#define PG_INDEX_OPTIONS_INIT(p) pg_index_options_init((p), sizeof *(p))

/**
 * Indexes every JPEG/PNG under `dirs` (recursively; hidden entries skipped) into the catalogue
 * with `model`. A file whose content hash already has a result for this model, task and prompt
 * is not run again; each finished image is committed in its own transaction (WAL), so a crash
 * loses only images in flight. A corrupt image gets error rows and the run goes on; an
 * unreadable folder is a note, not an error.
 * @param stats  may be NULL; else filled (struct_size set by the caller)
 * @return PG_OK; PG_ERR_IO (the database cannot be created or written: the message says which
 *         and why, e.g. read-only), PG_ERR_NOT_FOUND (a folder does not exist),
 *         PG_ERR_UNSUPPORTED (a newer schema), PG_ERR_CANCELLED, PG_ERR_INVALID_ARGUMENT.
 * @since 0.2
 */
PG_API pg_status pg_index_run(pg_model *model, const char *const *dirs, size_t n_dirs,
                              const pg_index_options *opts, pg_index_stats *stats);

/** A search hit: path, the matching caption, bm25 score (lower is better). Return non-zero
 *  to stop. */
typedef int (*pg_index_hit_fn)(void *user, const char *path, const char *text, double score);

/**
 * Full-text search of the captions (FTS5): every word of `query` is matched (quoted, joined
 * by OR), files are ranked by bm25; at most `limit` hits (0 = 20) reach `fn`, best first.
 * Opens the database read-only; works while pg_index_run writes it. @since 0.2
 */
PG_API pg_status pg_index_search(const char *db_path, const char *query, uint32_t limit,
                                 pg_index_hit_fn fn, void *user);

/** Creates (or migrates) the catalogue schema in `db_path`: for other writers. @since 0.2 */
PG_API pg_status pg_index_db_init(const char *db_path);

/** XXH3-128 of a file's bytes as 32 lowercase hex digits + NUL (cap >= 33). @since 0.2 */
PG_API pg_status pg_index_hash_file(const char *path, char *hex, size_t cap);

/** The model's weights identity (docs/index-schema.md) as 32 hex digits + NUL (cap >= 33).
 *  @since 0.2 */
PG_API pg_status pg_index_model_id(const pg_model *model, char *hex, size_t cap);
/* ---- segmentation masks and answer status (issue 14) ---- */

/**
 * Whether the parsed answer was clean. pg_detections_parse never fails on malformed text; this
 * says whether it met any: a truncated object (the text ends inside its tokens, as a
 * generation cut off by max_new_tokens leaves it), a malformed one (fewer than four loc
 * tokens, 1..15 seg tokens, seg tokens without a box, a bad token) or an invalid one (a value
 * out of range, an empty or inverted box; dropped as big_vision does).
 * @return PG_OK when none was met; PG_ERR_FORMAT otherwise, with the first problem and its
 *         byte offset in pg_last_error() ("truncated object at byte 40: 3 of 4 <locDDDD>
 *         tokens before the end of the text"); PG_ERR_INVALID_ARGUMENT for NULL. @since 0.2
 */
PG_API pg_status pg_detections_status(const pg_detections *detections);

/** @return the number of problems pg_detections_status describes the first of (each broken
 *          or dropped object counts once; 0 for NULL). @since 0.2 */
PG_API size_t pg_detections_problem_count(const pg_detections *detections);

/** Side of the mask decoder's output: PG_MASK_SIDE x PG_MASK_SIDE logits. @since 0.2 */
#define PG_MASK_SIDE 64

/**
 * big_vision's VQ-VAE mask decoder (spec section 9.3): turns the 16 `<segDDD>` codes of a
 * `segment ...` answer into a 64x64 mask. Opaque, immutable after loading: may be used from
 * several threads at once. @since 0.2
 */
typedef struct pg_mask_decoder pg_mask_decoder;

/**
 * Loads the decoder from `vae-oid.npz` (big_vision's file: a NumPy .npz holding
 * `_vq_vae._embedding` [128, D] and the `decoder.*` convolutions in PyTorch layout; the
 * `encoder.*` arrays are ignored). float32 arrays (float64/float16 are converted), stored or
 * deflated entries; every name, shape and size is checked.
 * @return PG_OK, PG_ERR_NOT_FOUND (no file, or an array missing), PG_ERR_IO, PG_ERR_FORMAT
 *         (not a zip, broken .npy, wrong shape), PG_ERR_UNSUPPORTED (dtype, byte order),
 *         PG_ERR_LIMIT, PG_ERR_OUT_OF_MEMORY, PG_ERR_INVALID_ARGUMENT; message in
 *         pg_last_error(). @since 0.2
 */
PG_API pg_status pg_mask_decoder_load(pg_mask_decoder **out, const char *npz_path);

/** Frees a decoder. NULL is fine. @since 0.2 */
PG_API void pg_mask_decoder_free(pg_mask_decoder *decoder);

/**
 * Decodes `n_codes` (must be 16) codes, each 0..127 (a 4x4 grid, row-major), into
 * PG_MASK_SIDE^2 logits, row-major (`n_logits` >= 4096). A logit > 0 is "inside".
 * @return PG_OK, PG_ERR_INVALID_ARGUMENT, PG_ERR_OUT_OF_MEMORY. @since 0.2
 */
PG_API pg_status pg_mask_decode_logits(const pg_mask_decoder *decoder, const int32_t *codes,
                                       size_t n_codes, float *logits, size_t n_logits);

/**
 * The mask of object `index` of a `segment ...` answer, as big_vision's segmentation evaluator
 * places it: the pixel box int(loc / 1023 * side) (x0 = int(loc[1] / 1023 * width), ...), the
 * 64x64 logits resized into it with Pillow's BILINEAR filter on float values, thresholded
 * > 0, pasted into an image-sized mask of zeros.
 * @param logits  receives the 4096 logits (may be NULL)
 * @param mask    receives width x height bytes, row-major, 1 inside and 0 outside, for the
 *                image size given to pg_detections_parse (may be NULL); mask_size its bytes
 * @param box     receives x0, y0, x1, y1 of the box (x1, y1 exclusive; x1 <= x0 or y1 <= y0
 *                when it is empty after truncation, and the mask then is all 0); may be NULL
 * @return PG_OK; PG_ERR_NOT_FOUND when the object has no 16 seg codes (a detect answer, a
 *         truncated one); PG_ERR_INVALID_ARGUMENT (NULL, index out of range, mask_size too
 *         small); PG_ERR_OUT_OF_MEMORY. @since 0.2
 */
PG_API pg_status pg_detections_mask(const pg_detections *detections, size_t index,
                                    const pg_mask_decoder *decoder, float *logits,
                                    uint8_t *mask, size_t mask_size, uint32_t *box);

#ifdef __cplusplus
}
#endif

#endif /* PALIGEMMA_H */
