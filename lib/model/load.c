/*
 * pg_model_load and the model's lifetime (refcount), options and getters.
 *
 * Order of work, cheapest checks first: arguments -> config.json -> tokenizer -> map the
 * shards (headers only) -> bind and check every tensor -> owned copies (quantization) ->
 * optional prefault -> backend. Loading does not read weight bytes unless quantization or
 * PG_MODEL_PREFAULT asks for it, so it costs O(header) for any model size.
 */
#include "backend/quant/quant_cache.h"
#include "io/safetensors.h"
#include "model/loader.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_FILE "config.json"
#define MAX_CONFIG_BYTES ((size_t)1 << 20)
#define KNOWN_FLAGS (PG_MODEL_TOKENIZER_ONLY | PG_MODEL_NO_QUANT_CACHE | PG_MODEL_PREFAULT)

PG_API void pg_model_options_init(pg_model_options *opts, size_t struct_size)
{
    /* every default is zero / NULL: backend "cpu", threads = CPUs, AUTO dtype, WARN level */
    const pg_model_options d = { 0 };
    pg__options_init(opts, struct_size, &d, sizeof d);
}

static void model_destroy(pg_model *m)
{
    pg__backend_destroy(m->backend);
    pg__tokenizer_free(m->tokenizer);
    pg__aligned_free(m->owned);
    pg__qcache_close(m->qcache);
    for (size_t i = 0; i < m->n_files; i++) {
        pg__st_close(m->files[i]);
    }
    free(m->files);
    free(m->vision.layers);
    free(m->decoder.layers);
    free(m->path);
    free(m);
}

void pg__model_ref(pg_model *m)
{
    atomic_fetch_add_explicit(&m->refcount, 1, memory_order_relaxed);
}

void pg__model_unref(pg_model *m)
{
    if (m && atomic_fetch_sub_explicit(&m->refcount, 1, memory_order_acq_rel) == 1) {
        model_destroy(m);
    }
}

PG_API void pg_model_free(pg_model *model)
{
    pg__model_unref(model);
}

/* Validates the caller's options and copies them over the defaults. */
static pg_status read_options(pg_model_options *o, const pg_model_options *opts)
{
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    if (!opts) {
        return PG_OK;
    }
    pg_status st = pg__check_struct_size(opts, sizeof *opts, sizeof *opts, "pg_model_options");
    if (st != PG_OK) {
        return st;
    }
    *o = *opts;
    if (o->n_threads < 0) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_model_load: n_threads %d is negative",
                         (int)o->n_threads);
    }
    if (o->flags & ~(uint32_t)KNOWN_FLAGS) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_model_load: unknown flags 0x%x",
                         (unsigned)(o->flags & ~(uint32_t)KNOWN_FLAGS));
    }
    if (o->weight_dtype != PG_DTYPE_AUTO && o->weight_dtype != PG_DTYPE_Q8 &&
        o->weight_dtype != PG_DTYPE_Q4) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "pg_model_load: weight_dtype %d must be PG_DTYPE_AUTO, _Q8 or _Q4",
                         (int)o->weight_dtype);
    }
    if (o->log_level < 0 || o->log_level > PG_LOG_DEBUG) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_model_load: log_level %d is out of range",
                         (int)o->log_level);
    }
    return PG_OK;
}

/* Progress reporting: the stages of a load map onto [0, 1]. */
typedef struct progress {
    pg_progress_fn fn;
    void *user;
    float lo, hi; /* the range of the current stage (used by the owned-weights pass) */
} progress;

static pg_status report(const progress *p, float fraction)
{
    if (p->fn && p->fn(p->user, fraction) != 0) {
        return pg__error(PG_ERR_CANCELLED, "model load cancelled by the progress callback");
    }
    return PG_OK;
}

static int stage_progress(void *user, float f)
{
    const progress *p = user;
    return p->fn ? p->fn(p->user, p->lo + (p->hi - p->lo) * f) : 0;
}

static pg_status load_config(pg_model *m)
{
    char *cpath = pg__path_join(m->path, CONFIG_FILE);
    if (!cpath) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    char *text;
    size_t len;
    pg_status st = pg__read_file(cpath, MAX_CONFIG_BYTES, &text, &len);
    if (st == PG_OK) {
        st = pg__config_parse(&m->cfg, text, len, cpath);
        free(text);
    }
    free(cpath);
    return st;
}

/* The tokenizer is optional: only a folder that has tokenizer files must load them. */
static pg_status load_tokenizer(pg_model *m)
{
    static const char *const names[] = { "tokenizer.model", "tokenizer.json" };
    bool present = false;
    for (size_t i = 0; i < 2 && !present; i++) {
        char *p = pg__path_join(m->path, names[i]);
        if (!p) {
            return PG_ERR_OUT_OF_MEMORY;
        }
        present = access(p, F_OK) == 0;
        free(p);
    }
    if (!present) {
        pg__log(&m->logger, PG_LOG_INFO, "%s: no tokenizer files; the model has no tokenizer",
                m->path);
        return PG_OK;
    }
    pg_status st = pg__tokenizer_load(&m->tokenizer, m->path);
    if (st == PG_OK) {
        pg__tokenizer_mark_owned(m->tokenizer);
    }
    return st;
}

/* PG_MODEL_PREFAULT: read one byte of every page the weights in use occupy so later compute
 * never faults (tensor by tensor: the bf16 sources of quantized weights are not touched). */
static pg_status visit_prefault(void *user, pg__tensor *t, bool matmul)
{
    (void)matmul;
    size_t step = *(const size_t *)user, bytes = t->data ? pg__model_tensor_bytes(t) : 0;
    if (bytes == 0) {
        return PG_OK;
    }
    const volatile unsigned char *p = t->data;
    unsigned char sink = 0;
    for (size_t off = 0; off < bytes; off += step) {
        sink ^= p[off];
    }
    sink ^= p[bytes - 1];
    (void)sink;
    return PG_OK;
}

static void prefault(pg_model *m)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t step = page > 0 ? (size_t)page : 4096;
    (void)pg__model_foreach_tensor(m, visit_prefault, &step);
}

static pg_status load_weights(pg_model *m, const pg_model_options *o, const progress *pr)
{
    pg_status st = pg__model_open_shards(m, m->path);
    if (st == PG_OK) {
        st = report(pr, 0.3f);
    }
    if (st == PG_OK) {
        st = pg__model_bind_weights(m, m->path);
    }
    if (st == PG_OK) {
        st = report(pr, 0.5f);
    }
    if (st == PG_OK) {
        progress stage = { pr->fn, pr->user, 0.5f, 0.95f };
        int32_t threads = o->n_threads > 0 ? o->n_threads : pg__cpu_count();
        st = pg__model_make_owned(m, o->weight_dtype, threads, pr->fn ? stage_progress : NULL,
                                  &stage);
    }
    if (st == PG_OK && (o->flags & PG_MODEL_PREFAULT)) {
        prefault(m);
    }
    return st;
}

static pg_status check_folder(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        return pg__error(PG_ERR_NOT_FOUND, "%s: model folder not found", path);
    }
    if (!S_ISDIR(sb.st_mode)) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "%s: not a folder (pass the Hugging Face model folder)", path);
    }
    return PG_OK;
}

static pg_status load_into(pg_model *m, const pg_model_options *o)
{
    progress pr = { o->progress_fn, o->progress_user, 0.0f, 1.0f };
    double t0 = pg__now_ms();
    pg_status st = load_config(m);
    if (st == PG_OK) {
        pg__model_variant(&m->cfg, m->variant, sizeof m->variant);
        st = report(&pr, 0.05f);
    }
    if (st == PG_OK) {
        st = load_tokenizer(m);
    }
    if (st == PG_OK) {
        st = report(&pr, 0.1f);
    }
    if (st != PG_OK) {
        return st;
    }
    if (m->flags & PG_MODEL_TOKENIZER_ONLY) {
        /* no files: binding only records the shapes (for n_params and the getters) */
        st = pg__model_bind_weights(m, m->path);
        m->weight_dtype = PG_DTYPE_AUTO;
    } else {
        st = load_weights(m, o, &pr);
        if (st == PG_OK) {
            st = pg__backend_create(&m->backend, o->backend ? o->backend : "cpu",
                                    o->n_threads);
        }
    }
    if (st == PG_OK) {
        st = report(&pr, 1.0f);
    }
    if (st == PG_OK) {
        pg__log(&m->logger, PG_LOG_INFO,
                "%s: loaded %s model (%llu parameters, %llu weight bytes, %zu files) in %.1f ms",
                m->path, m->variant, (unsigned long long)m->n_params,
                (unsigned long long)m->weight_bytes, m->n_files, pg__now_ms() - t0);
    }
    return st;
}

PG_API pg_status pg_model_load(pg_model **out, const char *path, const pg_model_options *opts)
{
    if (!out) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_model_load: out is NULL");
    }
    *out = NULL;
    if (!path || !path[0]) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_model_load: path is NULL or empty");
    }
    pg_model_options o;
    pg_status st = read_options(&o, opts);
    if (st == PG_OK) {
        st = check_folder(path);
    }
    if (st != PG_OK) {
        return st;
    }
    pg_model *m = pg__calloc(1, sizeof *m);
    if (!m) {
        return PG_ERR_OUT_OF_MEMORY;
    }
    atomic_init(&m->refcount, 1);
    m->flags = o.flags;
    m->logger = (pg__logger){ o.log_fn, o.log_user, o.log_level ? o.log_level : PG_LOG_WARN };
    m->path = pg__strdup(path);
    st = m->path ? load_into(m, &o) : PG_ERR_OUT_OF_MEMORY;
    if (st != PG_OK) {
        pg__log(&m->logger, PG_LOG_ERROR, "%s", pg__error_message());
        model_destroy(m);
        return st;
    }
    *out = m;
    return PG_OK;
}

PG_API pg_status pg_model_get_info(const pg_model *model, pg_model_info *info)
{
    if (!model || !info) {
        return pg__error(PG_ERR_INVALID_ARGUMENT, "pg_model_get_info: NULL argument");
    }
    /* An output struct: older callers may pass a smaller one, newer ones a larger one; fill
     * what both know and zero the fields this library does not know. */
    size_t size = info->struct_size;
    if (size < sizeof(size_t) + sizeof(uint32_t) || size > 4096) {
        return pg__error(PG_ERR_INVALID_ARGUMENT,
                         "pg_model_get_info: struct_size %zu is invalid (set it to "
                         "sizeof(pg_model_info))",
                         size);
    }
    const pg__config *c = &model->cfg;
    pg_model_info v = {
        .struct_size = size,
        .image_size = (uint32_t)c->vision.image_size,
        .patch_size = (uint32_t)c->vision.patch,
        .image_tokens = (uint32_t)c->vision.n_tokens,
        .vocab_size = (uint32_t)c->text.vocab,
        .text_layers = (uint32_t)c->text.layers,
        .text_hidden = (uint32_t)c->text.hidden,
        .text_heads = (uint32_t)c->text.heads,
        .text_kv_heads = (uint32_t)c->text.kv_heads,
        .text_head_dim = (uint32_t)c->text.head_dim,
        .text_ffn = (uint32_t)c->text.ffn,
        .vision_layers = (uint32_t)c->vision.layers,
        .vision_hidden = (uint32_t)c->vision.hidden,
        .vision_heads = (uint32_t)c->vision.heads,
        .vision_ffn = (uint32_t)c->vision.ffn,
        .sliding_window = (uint32_t)c->text.sliding_window,
        .weight_dtype = model->weight_dtype,
        .n_params = model->n_params,
        .weight_bytes = model->weight_bytes,
        .variant = model->variant,
    };
    const size_t known = size < sizeof v ? size : sizeof v;
    memcpy(info, &v, known);
    if (size > known) {
        memset((unsigned char *)info + known, 0, size - known);
    }
    return PG_OK;
}

PG_API const pg_tokenizer *pg_model_tokenizer(const pg_model *model)
{
    return model ? model->tokenizer : NULL;
}
