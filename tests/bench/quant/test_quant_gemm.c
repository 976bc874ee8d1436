/*
 * The prefill path of the quantized matmul (panel GEMM, m >= PG__QUANT_PANEL_MIN_M, on
 * kernel variants that have it; register tiles on the others) of every kernel variant this
 * CPU has against the scalar kernel and a double-precision reference, and the CPU backend's
 * matmul (1 and 2 threads) with each variant against the same kernel called directly.
 *
 * Shapes cover odd m, m on both sides of the panel threshold, column counts that are not a
 * multiple of the 32-column sliver, a column range inside the matrix, widths that are not
 * a multiple of 32 (4304) and widths cut into several K chunks (9216), Q8 and Q4.
 *
 * Tolerances are derived:
 *  - Against the scalar kernel on the same quantized activations: both sum the same exact
 *    integer block products t_b = dx_b dw_b I_b in float, in a different association, so
 *    each is within (nb + 2) 2^-24 sum_b |t_b| of the exact sum (nb = blocks per row), and
 *    sum_b |t_b| <= sum_k |dx q_x| |deq(w)| <= sum_k (|x_k| + dx_b / 2) |deq(w)_k|.
 *  - Against the double reference on the float activations: the activation rounding
 *    (|x - dx q_x| <= dx / 2) as in test_quant.c, plus the float bound above.
 *  - The backend against the direct call: bit-identical (the same kernel, the same
 *    activation bytes, the same per-column summation order whatever the column split).
 */
#include "backend/backend.h"
#include "backend/quant.h"
#include "harness.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL (-12345.0f)

static uint64_t rng = 0x2545f4914f6cdd1du;

/* Roughly normal values with occasional large outliers (like real activations). */
static void fill(float *v, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) {
        v[i] = pg_test_activation(&rng, scale);
    }
}

typedef struct gemm_case {
    int64_t m, rows, cols, n0, n1;
} gemm_case;

typedef struct fixture {
    gemm_case c;
    pg__dtype dt;
    int64_t ldx, ldy;
    float *x, *wd; /* activations, dequantized weights */
    void *wq;
    pg__tensor w;
} fixture;

static void fixture_init(fixture *f, gemm_case c, pg__dtype dt)
{
    f->c = c;
    f->dt = dt;
    f->ldx = c.cols + 5;
    f->ldy = c.rows + 3;
    f->x = malloc((size_t)(c.m * f->ldx) * sizeof *f->x);
    f->wd = malloc((size_t)(c.rows * c.cols) * sizeof *f->wd);
    float *w = malloc((size_t)(c.rows * c.cols) * sizeof *w);
    fill(f->x, (size_t)(c.m * f->ldx), 1.0f);
    fill(w, (size_t)(c.rows * c.cols), 0.05f);
    pg__tensor src = { PG__F32, c.rows, c.cols, w, 2, { c.rows, c.cols, 0, 0 }, "gemm" };
    f->wq = malloc(pg__quant_size(dt, c.rows, c.cols));
    CHECK_OK(pg__quantize_rows(dt, &src, f->wq, 0, c.rows));
    pg__quant_tensor_init(&f->w, dt, &src, f->wq);
    for (int64_t n = 0; n < c.rows; n++) {
        pg__dequantize_row(&f->w, n, f->wd + n * c.cols);
    }
    free(w);
}

static void fixture_free(fixture *f)
{
    free(f->x);
    free(f->wd);
    free(f->wq);
}

static float *new_output(const fixture *f)
{
    float *y = malloc((size_t)(f->c.m * f->ldy) * sizeof *y);
    for (int64_t i = 0; i < f->c.m * f->ldy; i++) {
        y[i] = SENTINEL;
    }
    return y;
}

/* Two-step matmul with kernel `name`, the activations quantized by kernel `act_kernel`. */
static float *run_kernel(const fixture *f, const char *act_kernel, const char *name)
{
    void *qx = malloc(pg__quant_act_size(f->c.m, f->c.cols));
    float *y = new_output(f);
    CHECK_OK(pg__quant_use_kernel(act_kernel));
    pg__quant_act_rows(f->x, f->ldx, f->c.m, f->c.cols, qx, 0, f->c.m);
    CHECK_OK(pg__quant_use_kernel(name));
    CHECK_OK(pg__quant_matmul_cols_q(&f->w, qx, f->c.m, y, f->ldy, f->c.n0, f->c.n1));
    free(qx);
    return y;
}

/* sum_k (|x_k| + dx_b / 2) |deq(w)_k| and the activation-rounding bound sum_k |deq(w)_k| dx_b / 2
 * for row i and column n; returns the exact double product. */
static double reference(const fixture *f, int64_t i, int64_t n, double *mag, double *act_bound)
{
    const float *xi = f->x + i * f->ldx, *wn = f->wd + n * f->c.cols;
    double ref = 0;
    *mag = *act_bound = 0;
    for (int64_t b = 0; b * 32 < f->c.cols; b++) {
        int64_t k1 = b * 32 + 32 < f->c.cols ? b * 32 + 32 : f->c.cols;
        double amax = 0;
        for (int64_t k = b * 32; k < k1; k++) {
            amax = fmax(amax, fabs(xi[k]));
        }
        for (int64_t k = b * 32; k < k1; k++) {
            ref += (double)wn[k] * xi[k];
            *mag += (fabs(xi[k]) + amax / 254.0) * fabs(wn[k]);
            *act_bound += fabs(wn[k]) * amax / 254.0;
        }
    }
    return ref;
}

/* Entries outside [n0, n1) still hold the sentinel. */
static int outside_touched(const fixture *f, const float *y)
{
    int touched = 0;
    for (int64_t i = 0; i < f->c.m; i++) {
        for (int64_t n = 0; n < f->ldy; n++) {
            touched += (n < f->c.n0 || n >= f->c.n1) && y[i * f->ldy + n] != SENTINEL;
        }
    }
    return touched;
}

static const char *dt_name(pg__dtype dt)
{
    return dt == PG__Q8 ? "Q8" : "Q4";
}

/* Kernel `fast` against the scalar kernel on the same activations and against the double
 * reference. Where it runs the panel GEMM the derived float bound applies to both; the
 * register tiles remove the weight offset once at the end in float (a cancellation), so they
 * are held to the double reference with test_quant.c's float allowance (1e-5 of sum |w x|). */
static void check_against_scalar(const fixture *f, const char *fast)
{
    CHECK_OK(pg__quant_use_kernel(fast));
    const int panels = pg__quant_has_panel_gemm() && f->c.m >= PG__QUANT_PANEL_MIN_M;
    float *ys = run_kernel(f, "scalar", "scalar");
    float *yf = run_kernel(f, "scalar", fast);
    double nb = (double)(2 * ((f->c.cols + 63) / 64)), worst = 0;
    int bad_scalar = 0, bad_ref = 0;
    for (int64_t i = 0; i < f->c.m; i++) {
        for (int64_t n = f->c.n0; n < f->c.n1; n++) {
            double mag, act;
            double ref = reference(f, i, n, &mag, &act);
            double fl = panels ? (nb + 2) * ldexp(1.0, -24) * mag * 1.0001 + 1e-30
                               : 1e-5 * mag + 1e-30;
            double got = yf[i * f->ldy + n], want = ys[i * f->ldy + n];
            if (!(fabs(got - want) <= 2 * fl)) {
                if (bad_scalar++ < 3) {
                    fprintf(stderr, "  y[%lld][%lld] = %.9g, scalar %.9g, bound %.3g\n",
                            (long long)i, (long long)n, got, want, 2 * fl);
                }
            }
            worst = fmax(worst, fabs(got - want) / (2 * fl));
            bad_ref += !(fabs(got - ref) <= act * 1.0001 + fl);
        }
    }
    CHECK_MSG(bad_scalar == 0 && bad_ref == 0,
              "%s %s m=%lld rows=%lld cols=%lld [%lld, %lld): %d off the scalar kernel, %d off "
              "the double reference", fast, dt_name(f->dt), (long long)f->c.m,
              (long long)f->c.rows, (long long)f->c.cols, (long long)f->c.n0,
              (long long)f->c.n1, bad_scalar, bad_ref);
    CHECK_MSG(outside_touched(f, yf) == 0, "%s wrote outside its column range", fast);
    printf("%s (%s) %s m=%lld rows=%lld cols=%lld: worst %.3f of the float bound\n", fast,
           panels ? "panels" : "tiles", dt_name(f->dt), (long long)f->c.m, (long long)f->c.rows,
           (long long)f->c.cols, worst);
    free(ys);
    free(yf);
}

/* The CPU backend's matmul (which quantizes the activations in row tasks and splits the
 * columns over threads) equals the direct two-step call of the automatic kernel. */
static void check_backend(const fixture *f, int threads)
{
    if (f->c.n0 != 0 || f->c.n1 != f->c.rows) {
        return; /* the backend computes every column */
    }
    pg__backend *be = NULL;
    if (pg__backend_create(&be, "cpu", threads) != PG_OK) {
        printf("cpu backend unavailable: %s\n", pg_last_error());
        return;
    }
    const char *k = pg__quant_kernel_name();
    float *yd = run_kernel(f, k, k);
    float *yb = new_output(f);
    CHECK_OK(be->ops->matmul(be, yb, f->ldy, f->x, f->ldx, f->c.m, &f->w, NULL));
    int differ = 0;
    for (int64_t i = 0; i < f->c.m; i++) {
        differ += memcmp(yb + i * f->ldy, yd + i * f->ldy, (size_t)f->c.rows * sizeof *yb) != 0;
    }
    CHECK_MSG(differ == 0, "cpu backend (%d threads) %s m=%lld rows=%lld cols=%lld: %d rows "
              "differ from the direct call", threads, dt_name(f->dt), (long long)f->c.m,
              (long long)f->c.rows, (long long)f->c.cols, differ);
    /* with a bias: the same plus the bias (one float add per entry) */
    float *bias = malloc((size_t)f->c.rows * sizeof *bias);
    fill(bias, (size_t)f->c.rows, 1.0f);
    pg__tensor bt = { PG__F32, 1, f->c.rows, bias, 1, { f->c.rows, 0, 0, 0 }, "bias" };
    CHECK_OK(be->ops->matmul(be, yb, f->ldy, f->x, f->ldx, f->c.m, &f->w, &bt));
    int bias_off = 0;
    for (int64_t i = 0; i < f->c.m; i++) {
        for (int64_t n = 0; n < f->c.rows; n++) {
            bias_off += yb[i * f->ldy + n] != yd[i * f->ldy + n] + bias[n];
        }
    }
    CHECK_MSG(bias_off == 0, "cpu backend (%d threads) with bias: %d entries off", threads,
              bias_off);
    free(bias);
    free(yd);
    free(yb);
    pg__backend_destroy(be);
}

int main(void)
{
    const gemm_case cases[] = {
        { PG__QUANT_PANEL_MIN_M, 33, 4304, 0, 33 },
        { PG__QUANT_PANEL_MIN_M - 1, 40, 588, 0, 40 },
        { 23, 100, 2304, 5, 97 },
        { 61, 70, 588, 0, 70 },
        { 37, 129, 100, 1, 129 },
        { 19, 300, 200, 0, 300 },
        { 29, 45, 9216, 0, 45 },
        { 45, 64, 33, 0, 64 },
        { 16, 500, 2304, 0, 500 }, /* one task wider than a tile-path chunk of weight rows */
    };
    /* every variant this CPU has: the SIMD ones against the scalar kernel, and each through
     * the backend (which uses the variant in force) */
    const char *avail[8];
    int n_avail = 0;
    for (const char *const *name = pg__quant_kernel_names(); *name && n_avail < 8; name++) {
        if (pg__quant_use_kernel(*name) == PG_OK) {
            avail[n_avail++] = *name;
        } else {
            printf("kernel %s: not available on this CPU/build, skipped\n", *name);
        }
    }
    CHECK_OK(pg__quant_use_kernel(NULL));
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int q = 0; q < 2; q++) {
            fixture f;
            fixture_init(&f, cases[c], q ? PG__Q4 : PG__Q8);
            for (int v = 0; v < n_avail; v++) {
                if (strcmp(avail[v], "scalar")) {
                    check_against_scalar(&f, avail[v]);
                }
                CHECK_OK(pg__quant_use_kernel(avail[v]));
                check_backend(&f, 1);
                check_backend(&f, 2);
            }
            CHECK_OK(pg__quant_use_kernel(NULL));
            fixture_free(&f);
        }
    }
    CHECK_OK(pg__quant_use_kernel(NULL));
    return pg_test_finish();
}
