/*
 * pg bench: the arithmetic of one caption, from the model's shapes (see
 * /work/shared/perf numbers in docs/performance.md: 3B-448 = 0.98 TFLOP vision, 4.40 TFLOP
 * prefill of 1030 tokens, 5.23 GB of bf16 weights read per decoded token).
 */
#include "bench_support.h"

/* Bytes per weight as stored for the bulk dtype. */
static double bytes_per_weight(int32_t dtype)
{
    switch (dtype) {
    case PG_DTYPE_Q8: return 34.0 / 32.0;
    case PG_DTYPE_Q4: return 18.0 / 32.0;
    case PG_DTYPE_F32: return 4.0;
    default: return 2.0;
    }
}

void bench_work_of(const pg_model_info *info, int32_t dtype, uint32_t prefill_tokens,
                   bench_work *w)
{
    double n = info->image_tokens, hv = info->vision_hidden, fv = info->vision_ffn;
    double p = (double)info->patch_size * info->patch_size * 3;
    double d = info->text_hidden, f = info->text_ffn, v = info->vocab_size;
    double q = (double)info->text_heads * info->text_head_dim;
    double kv = (double)info->text_kv_heads * info->text_head_dim;

    double vision_layer = 2 * n * (4 * hv * hv + 2 * hv * fv) /* projections, MLP */
                          + 2 * 2 * n * n * hv;               /* scores and P.V */
    w->vision_flop = 2 * n * p * hv + info->vision_layers * vision_layer + 2 * n * hv * d;

    double t = prefill_tokens;
    double matmul_params = d * q + 2 * d * kv + q * d + 3 * d * f; /* one decoder layer */
    double text_layer = 2 * t * matmul_params + 2 * 2 * t * t * q;
    w->prefill_flop = info->text_layers * text_layer + 2 * d * v; /* + last-position logits */
    w->decode_flop_per_token = 2 * (info->text_layers * matmul_params + d * v);
    w->weight_bytes_per_token =
        (info->text_layers * matmul_params + d * v) * bytes_per_weight(dtype);
    w->prefill_tokens = prefill_tokens;
    w->decode_tokens = 0;
}
