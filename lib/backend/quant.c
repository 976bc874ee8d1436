/* Placeholder until issue 6 (quantized weights) lands: every entry reports unsupported. */
#include "backend/quant.h"

#include <string.h>

size_t pg__quant_size(pg__dtype dt, int64_t rows, int64_t cols)
{
    (void)dt;
    (void)rows;
    (void)cols;
    return 0;
}

pg_status pg__quantize_rows(pg__dtype dt, const pg__tensor *src, void *dst, int64_t r0,
                            int64_t r1)
{
    (void)dt;
    (void)src;
    (void)dst;
    (void)r0;
    (void)r1;
    return pg__error(PG_ERR_UNSUPPORTED, "quantized weights are not built yet");
}

void pg__dequantize_row(const pg__tensor *w, int64_t row, float *out)
{
    (void)row;
    memset(out, 0, (size_t)w->cols * sizeof *out);
}

void pg__quant_matmul_cols(const pg__tensor *w, const float *x, int64_t ldx, int64_t m,
                           float *y, int64_t ldy, int64_t n0, int64_t n1)
{
    (void)w;
    (void)x;
    (void)ldx;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t n = n0; n < n1; n++) {
            y[i * ldy + n] = 0.0f;
        }
    }
}
