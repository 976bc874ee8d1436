/*
 * backend: the tensor-operation interface every model module computes through.
 *
 * A backend is a table of functions (pg__backend_ops) over host float32 activations and
 * read-only typed weights (pg__tensor). The modules (vision/, projector/, decoder/) never do
 * arithmetic on weights themselves; they call these ops, so a new backend (SIMD variant,
 * GPU) slots in without touching the model code. Backends are chosen by name through the
 * registry ("cpu", "ref").
 *
 * Conventions shared by all ops:
 *  - Activations are float32, row-major, with explicit row strides (ld*) in floats.
 *  - Weights are pg__tensor views: a 2-D [rows][cols] matrix of any pg__dtype. A linear
 *    layer y = x W^T + b has W.rows = out features, W.cols = in features (the PyTorch
 *    layout in the checkpoints).
 *  - Every op may be called by several sessions on different threads at once: a backend
 *    serialises or partitions its own internal resources (e.g. its thread pool).
 *  - Ops return PG_OK or set pg__error and return a status; they never print or abort.
 *  - `ref` is the scalar ground truth used by tests; `cpu` must agree with it within the
 *    tolerances in tests/backend.
 */
#ifndef PG_BACKEND_H
#define PG_BACKEND_H

#include "core/core.h"

/* Element types of weights and caches. Values equal the public PG_DTYPE_* ones. */
typedef enum pg__dtype {
    PG__F32 = PG_DTYPE_F32,
    PG__F16 = PG_DTYPE_F16,
    PG__BF16 = PG_DTYPE_BF16,
    PG__Q8 = PG_DTYPE_Q8, /* see lib/backend/quant.h for the block layout */
    PG__Q4 = PG_DTYPE_Q4
} pg__dtype;

/* Bytes per element of the plain types (F32/F16/BF16); 0 for block-quantized types. */
size_t pg__dtype_size(pg__dtype dt);
const char *pg__dtype_name(pg__dtype dt);

/*
 * A read-only weight (or any typed matrix). Shapes of higher rank are viewed as 2-D:
 * rows = ne[0], cols = product of the rest (a conv kernel [1152,3,14,14] is 1152 x 588).
 * For 1-D tensors rows = 1 and cols = ne[0].
 */
typedef struct pg__tensor {
    pg__dtype dtype;
    int64_t rows, cols;
    const void *data;   /* F32/F16/BF16: rows*cols elements; Q8/Q4: quant.h blocks */
    int32_t ndim;
    int64_t ne[4];      /* the shape as stored (outermost first) */
    const char *name;   /* for error messages; owned by the model */
} pg__tensor;

/*
 * Attention over a query block and a key/value sequence, with the PaliGemma mask rule:
 * absolute query index i (q_start + row) may see key j (0 <= j < n_kv) iff
 *     (j < prefix_len || j <= i) && (window == 0 || i - j < window)
 * SigLIP: prefix_len = n_kv, window = 0 (fully bidirectional). Gemma 2 prefill: prefix_len =
 * prompt length (bidirectional prompt block), window = 4096 on sliding layers (one-sided:
 * later keys are never hidden by the window). Decode: the same rule with q_start = position.
 *
 * Scores: s = (q . k) * scale; if softcap > 0: s = softcap * tanh(s / softcap); masked
 * scores are excluded; softmax in float32; out = P v.
 * q: [n_q][n_heads*head_dim] (row stride ld_q), out likewise (ld_out).
 * k, v: element (kv_head h, key j, dim d) at base + h*kv_head_stride + j*kv_row_stride + d,
 * of type kv_dtype (F32, F16 or BF16). Query head h uses kv head h / (n_heads/n_kv_heads).
 */
typedef struct pg__attn {
    float *out;
    int64_t ld_out;
    const float *q;
    int64_t ld_q;
    const void *k, *v;
    pg__dtype kv_dtype;
    int64_t kv_head_stride, kv_row_stride; /* in elements */
    int64_t n_q, q_start, n_kv;
    int32_t n_heads, n_kv_heads, head_dim;
    float scale, softcap;
    int64_t prefix_len, window;
} pg__attn;

typedef struct pg__backend pg__backend;

typedef struct pg__backend_ops {
    const char *name;
    void (*destroy)(pg__backend *be);

    /* y[m][n] = x[m][k] . W[n][k]^T (+ bias[n] if bias); W.cols == k. */
    pg_status (*matmul)(pg__backend *be, float *y, int64_t ldy, const float *x, int64_t ldx,
                        int64_t m, const pg__tensor *w, const pg__tensor *bias);
    /* LayerNorm over rows of n: (x - mean) / sqrt(var + eps) * w + b. y may equal x. */
    pg_status (*layer_norm)(pg__backend *be, float *y, const float *x, int64_t m, int64_t n,
                            const pg__tensor *w, const pg__tensor *b, float eps);
    /* Gemma RMSNorm over rows of n: x / sqrt(mean(x^2) + eps) * (1 + w). y may equal x.
     * ldx/ldy are row strides. */
    pg_status (*rms_norm)(pg__backend *be, float *y, int64_t ldy, const float *x, int64_t ldx,
                          int64_t m, int64_t n, const pg__tensor *w, float eps);
    /* y = gelu_tanh(x), elementwise; y may equal x. */
    pg_status (*gelu_tanh)(pg__backend *be, float *y, const float *x, size_t n);
    /* y = gelu_tanh(gate) * up, elementwise; y may alias gate or up. */
    pg_status (*geglu)(pg__backend *be, float *y, const float *gate, const float *up,
                       size_t n);
    /* y = a + b, elementwise; y may alias either. */
    pg_status (*add)(pg__backend *be, float *y, const float *a, const float *b, size_t n);
    /* y = x * s. */
    pg_status (*scale)(pg__backend *be, float *y, const float *x, float s, size_t n);
    /* y = cap * tanh(x / cap). */
    pg_status (*softcap)(pg__backend *be, float *y, const float *x, float cap, size_t n);
    /* Half-split RoPE in place on m rows (stride ld) of n_heads*head_dim, row r at position
     * pos[r]: inv_freq[i] = theta^(-2i/head_dim), x*cos + rotate_half(x)*sin. */
    pg_status (*rope)(pg__backend *be, float *x, int64_t m, int64_t ld, int32_t n_heads,
                      int32_t head_dim, const int32_t *pos, float theta);
    /* See pg__attn. */
    pg_status (*attention)(pg__backend *be, const pg__attn *a);
    /* y[r][:] = float32(W[ids[r]][:]) for r < n (embedding lookup); ids checked by caller. */
    pg_status (*get_rows)(pg__backend *be, float *y, const pg__tensor *w, const int32_t *ids,
                          int64_t n);
    /* Stores float32 rows into a typed buffer (KV cache writes): dst has dtype dt, n floats. */
    pg_status (*convert)(pg__backend *be, void *dst, pg__dtype dt, const float *src, size_t n);
} pg__backend_ops;

/* Every backend object begins with this header. */
struct pg__backend {
    const pg__backend_ops *ops;
    int32_t n_threads;
};

/* Creates a backend by name ("cpu", "ref"); n_threads 0 = all online CPUs. */
pg_status pg__backend_create(pg__backend **out, const char *name, int32_t n_threads);
/* Destroys a backend (NULL is fine). */
void pg__backend_destroy(pg__backend *be);
/* Names of the available backends, NULL-terminated. */
const char *const *pg__backend_names(void);

#endif /* PG_BACKEND_H */
