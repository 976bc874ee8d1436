/* The CPU kernels compiled for the compiler's baseline flags (portable fallback); see kernels.inc. */
#define PG_KERNELS_NAME pg__cpu_kernels_generic
#define PG_KERNELS_ISA "generic"
#include "kernels.inc"
