/* The AVX-512 kernels plus vdpbf16ps products for BF16 weights (AVX512_BF16); see
 * kernels.inc ("bf16 x bf16 products"). */
#define PG_KERNELS_NAME pg__cpu_kernels_avx512bf16
#define PG_KERNELS_ISA "avx512bf16"
#include "kernels.inc"
