/* The CPU kernels compiled for AVX-512 F/BW/VL/DQ + FMA + F16C; see kernels.inc. */
#define PG_KERNELS_NAME pg__cpu_kernels_avx512
#define PG_KERNELS_ISA "avx512"
#include "kernels.inc"
