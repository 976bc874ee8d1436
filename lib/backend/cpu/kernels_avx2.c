/* The CPU kernels compiled for AVX2 + FMA + F16C; see kernels.inc. */
#define PG_KERNELS_NAME pg__cpu_kernels_avx2
#define PG_KERNELS_ISA "avx2"
#include "kernels.inc"
