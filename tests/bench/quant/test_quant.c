/*
 * Quantized weights (backend/quant): round-trip error bounds of Q8/Q4, and the quantized
 * matmul of every kernel variant this CPU has against a double-precision reference.
 *
 * Tolerances are derived, not tuned:
 *  - Q8 weights: |w - deq(w)| <= scale / 2 (the f16 scale is used for rounding, so no value
 *    clamps); Q4: <= |scale| (the value opposite the block's extreme may clamp from 8 to 7).
 *  - matmul: the only other error is the activation quantization (|x - dx qx| <= dx / 2 per
 *    value, dx = block max / 127), so |y - sum deq(w) x| <= sum |deq(w)| dx / 2, plus float
 *    rounding (1e-5 relative to sum |deq(w) x|).
 */
#include "backend/quant.h"
#include "harness.h"

#include <stdint.h>

static uint64_t rng = 0x9e3779b97f4a7c15u;

static float rvalue(float scale)
{
    return pg_test_activation(&rng, scale);
}

static pg__tensor make_f32(float *data, int64_t rows, int64_t cols)
{
    pg__tensor t = { PG__F32, rows, cols, data, 2, { rows, cols, 0, 0 }, "test" };
    return t;
}

static void fill(float *v, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) {
        v[i] = rvalue(scale);
    }
}

/* Quantizes a random f32 matrix; returns the buffer (caller frees) and the tensor. */
static void *quantize(pg__dtype dt, const float *w, int64_t rows, int64_t cols, pg__tensor *qt)
{
    pg__tensor src = make_f32((float *)w, rows, cols);
    size_t size = pg__quant_size(dt, rows, cols);
    void *buf = malloc(size);
    CHECK_OK(pg__quantize_rows(dt, &src, buf, 0, rows / 2));
    CHECK_OK(pg__quantize_rows(dt, &src, buf, rows / 2, rows)); /* in two parts, as threads do */
    pg__quant_tensor_init(qt, dt, &src, buf);
    return buf;
}

static void test_roundtrip(pg__dtype dt, int64_t cols)
{
    const int64_t rows = 5;
    float *w = malloc((size_t)(rows * cols) * sizeof *w), *back = malloc((size_t)cols * sizeof *back);
    fill(w, (size_t)(rows * cols), 0.05f);
    w[0] = 0.0f; /* an all-zero block */
    for (int64_t k = 0; k < 32 && k < cols; k++) {
        w[k] = 0.0f;
    }
    pg__tensor qt;
    void *buf = quantize(dt, w, rows, cols, &qt);
    int bad = 0;
    double worst = 0;
    for (int64_t r = 0; r < rows; r++) {
        pg__dequantize_row(&qt, r, back);
        for (int64_t b = 0; b * 32 < cols; b++) {
            double amax = 0;
            for (int64_t k = b * 32; k < b * 32 + 32 && k < cols; k++) {
                amax = fmax(amax, fabs(w[r * cols + k]));
            }
            /* bound with the exact scale plus the f16 rounding of the scale (2^-11) */
            double bound = dt == PG__Q8 ? amax / 127.0 / 2.0 * (1 + 1e-3) : amax / 8.0 * (1 + 1e-3);
            for (int64_t k = b * 32; k < b * 32 + 32 && k < cols; k++) {
                double e = fabs(back[k] - w[r * cols + k]);
                worst = fmax(worst, amax > 0 ? e / amax : e);
                if (e > bound + 1e-12) {
                    bad++;
                }
            }
        }
    }
    CHECK_MSG(bad == 0, "%s cols=%lld: %d values beyond the bound", dt == PG__Q8 ? "Q8" : "Q4",
              (long long)cols, bad);
    printf("%s cols=%-5lld worst |err| / block max = %.4f\n", dt == PG__Q8 ? "Q8" : "Q4",
           (long long)cols, worst);
    free(buf);
    free(w);
    free(back);
}

static void test_matmul(pg__dtype dt, int64_t m, int64_t rows, int64_t cols, int64_t n0,
                        int64_t n1)
{
    const int64_t ldx = cols + 3, ldy = rows + 5;
    float *w = malloc((size_t)(rows * cols) * sizeof *w);
    float *x = malloc((size_t)(m * ldx) * sizeof *x);
    float *y = malloc((size_t)(m * ldy) * sizeof *y);
    float *wd = malloc((size_t)(rows * cols) * sizeof *wd);
    fill(w, (size_t)(rows * cols), 0.05f);
    fill(x, (size_t)(m * ldx), 1.0f);
    for (int64_t i = 0; i < m * ldy; i++) {
        y[i] = -12345.0f; /* sentinel: entries outside [n0, n1) must stay */
    }
    pg__tensor qt;
    void *buf = quantize(dt, w, rows, cols, &qt);
    for (int64_t n = 0; n < rows; n++) {
        pg__dequantize_row(&qt, n, wd + n * cols);
    }
    pg__quant_matmul_cols(&qt, x, ldx, m, y, ldy, n0, n1);
    /* the two-step form (activations quantized once, in two row ranges) gives the same */
    void *qx = malloc(pg__quant_act_size(m, cols));
    float *y2 = malloc((size_t)(m * ldy) * sizeof *y2);
    for (int64_t i = 0; i < m * ldy; i++) {
        y2[i] = -12345.0f;
    }
    pg__quant_act_rows(x, ldx, m, cols, qx, 0, m / 2);
    pg__quant_act_rows(x, ldx, m, cols, qx, m / 2, m);
    CHECK_OK(pg__quant_matmul_cols_q(&qt, qx, m, y2, ldy, n0, n1));
    CHECK(memcmp(y, y2, (size_t)(m * ldy) * sizeof *y2) == 0);
    free(qx);
    /* the float fallback: exact to the dequantized weights up to float rounding, which is at
     * most (64 + pairs) * 2^-24 * sum |w x| for its 64-value partial sums (< 1e-5 here) */
    for (int64_t i = 0; i < m * ldy; i++) {
        y2[i] = -12345.0f;
    }
    pg__quant_matmul_cols_float(&qt, x, ldx, m, y2, ldy, n0, n1);
    int bad_float = 0;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t n = 0; n < ldy; n++) {
            float got = y2[i * ldy + n];
            if (n < n0 || n >= n1) {
                bad_float += got != -12345.0f;
                continue;
            }
            double ref = 0, mag = 0;
            for (int64_t k = 0; k < cols; k++) {
                double p = (double)wd[n * cols + k] * x[i * ldx + k];
                ref += p;
                mag += fabs(p);
            }
            bad_float += !(fabs(got - ref) <= 1e-5 * mag + 1e-30);
        }
    }
    CHECK_MSG(bad_float == 0, "float path %s m=%lld cols=%lld: %d entries off",
              dt == PG__Q8 ? "Q8" : "Q4", (long long)m, (long long)cols, bad_float);
    free(y2);
    int bad = 0, touched = 0;
    double worst = 0;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t n = 0; n < ldy; n++) {
            float got = y[i * ldy + n];
            if (n < n0 || n >= n1) {
                touched += got != -12345.0f;
                continue;
            }
            double ref = 0, bound = 0, mag = 0;
            for (int64_t b = 0; b * 32 < cols; b++) {
                double amax = 0;
                for (int64_t k = b * 32; k < b * 32 + 32 && k < cols; k++) {
                    amax = fmax(amax, fabs(x[i * ldx + k]));
                }
                for (int64_t k = b * 32; k < b * 32 + 32 && k < cols; k++) {
                    double p = (double)wd[n * cols + k] * x[i * ldx + k];
                    ref += p;
                    mag += fabs(p);
                    bound += fabs(wd[n * cols + k]) * amax / 127.0 / 2.0;
                }
            }
            bound = bound * 1.0001 + 1e-5 * mag + 1e-30;
            worst = fmax(worst, fabs(got - ref) / bound);
            if (!(fabs(got - ref) <= bound)) {
                if (bad++ < 3) {
                    fprintf(stderr, "  y[%lld][%lld] = %g, reference %g, bound %g\n",
                            (long long)i, (long long)n, got, ref, bound);
                }
            }
        }
    }
    CHECK_MSG(bad == 0 && touched == 0, "%s %s m=%lld rows=%lld cols=%lld: %d beyond bound, "
              "%d outside the column range written", pg__quant_kernel_name(),
              dt == PG__Q8 ? "Q8" : "Q4", (long long)m, (long long)rows, (long long)cols, bad,
              touched);
    if (worst > 0.9) {
        printf("note: %s %s m=%lld cols=%lld used %.2f of the bound\n", pg__quant_kernel_name(),
               dt == PG__Q8 ? "Q8" : "Q4", (long long)m, (long long)cols, worst);
    }
    free(buf);
    free(w);
    free(x);
    free(y);
    free(wd);
}

static void test_sizes_and_errors(void)
{
    CHECK_EQ_INT(pg__quant_size(PG__Q8, 2, 64), 2 * (64 + 4));
    CHECK_EQ_INT(pg__quant_size(PG__Q4, 2, 64), 2 * (32 + 4));
    CHECK_EQ_INT(pg__quant_size(PG__Q8, 2, 4304), 2 * (68 * 64 + 68 * 4)); /* padded pairs */
    CHECK_EQ_INT(pg__quant_size(PG__Q4, 1, 33), 32 + 4);
    CHECK_EQ_INT(pg__quant_size(PG__BF16, 2, 64), 0);
    CHECK_EQ_INT(pg__quant_size(PG__Q8, 0, 64), 0);
    CHECK_EQ_INT(pg__quant_size(PG__Q8, INT64_MAX / 2, 64), 0); /* overflow */

    float w[64] = { 0 };
    uint8_t buf[256];
    pg__tensor src = make_f32(w, 1, 64);
    w[5] = NAN;
    CHECK(pg__quantize_rows(PG__Q8, &src, buf, 0, 1) == PG_ERR_FORMAT);
    w[5] = INFINITY;
    CHECK(pg__quantize_rows(PG__Q4, &src, buf, 0, 1) == PG_ERR_FORMAT);
    w[5] = 1.0f;
    CHECK(pg__quantize_rows(PG__Q8, &src, buf, 0, 2) == PG_ERR_INVALID_ARGUMENT);
    CHECK(pg__quantize_rows(PG__BF16, &src, buf, 0, 1) == PG_ERR_INVALID_ARGUMENT);
    CHECK(pg__quantize_rows(PG__Q8, NULL, buf, 0, 1) == PG_ERR_INVALID_ARGUMENT);
    pg__tensor q8src = src;
    q8src.dtype = PG__Q8;
    CHECK(pg__quantize_rows(PG__Q8, &q8src, buf, 0, 1) == PG_ERR_UNSUPPORTED);
    CHECK(pg__quant_use_kernel("no-such-kernel") == PG_ERR_UNSUPPORTED);
}

/* BF16 and F16 sources quantize to the same result as their float32 values. */
static void test_source_types(void)
{
    enum { COLS = 96 };
    float f[COLS];
    uint16_t b16[COLS], h16[COLS];
    fill(f, COLS, 0.1f);
    for (int i = 0; i < COLS; i++) {
        b16[i] = pg__f32_to_bf16(f[i]);
        f[i] = pg__bf16_to_f32(b16[i]);   /* exactly representable in both */
        h16[i] = pg__f32_to_f16(f[i]);
        f[i] = pg__f16_to_f32(h16[i]);
        b16[i] = pg__f32_to_bf16(f[i]);
    }
    size_t size = pg__quant_size(PG__Q8, 1, COLS);
    uint8_t a[256], b[256], c[256];
    pg__tensor tf = make_f32(f, 1, COLS), tb = tf, th = tf;
    tb.dtype = PG__BF16;
    tb.data = b16;
    th.dtype = PG__F16;
    th.data = h16;
    CHECK_OK(pg__quantize_rows(PG__Q8, &tf, a, 0, 1));
    CHECK_OK(pg__quantize_rows(PG__Q8, &tb, b, 0, 1));
    CHECK_OK(pg__quantize_rows(PG__Q8, &th, c, 0, 1));
    CHECK(memcmp(a, b, size) == 0);
    CHECK(memcmp(a, c, size) == 0);
}

int main(void)
{
    test_sizes_and_errors();
    test_source_types();
    const int64_t widths[] = { 32, 33, 64, 100, 588, 2304, 4304 };
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        test_roundtrip(PG__Q8, widths[i]);
        test_roundtrip(PG__Q4, widths[i]);
    }
    for (const char *const *name = pg__quant_kernel_names(); *name; name++) {
        if (pg__quant_use_kernel(*name) != PG_OK) {
            printf("kernel %s: not available on this CPU/build, skipped\n", *name);
            continue;
        }
        printf("kernel %s\n", pg__quant_kernel_name());
        for (int q = 0; q < 2; q++) {
            pg__dtype dt = q ? PG__Q4 : PG__Q8;
            test_matmul(dt, 1, 37, 64, 0, 37);
            test_matmul(dt, 1, 41, 2304, 3, 39);
            test_matmul(dt, 3, 9, 100, 0, 9);
            test_matmul(dt, 5, 13, 588, 1, 12);
            test_matmul(dt, 17, 21, 4304, 2, 21);
            test_matmul(dt, 8, 8, 33, 0, 8);
        }
    }
    CHECK_OK(pg__quant_use_kernel(NULL));
    printf("automatic kernel: %s\n", pg__quant_kernel_name());
    return pg_test_finish();
}
