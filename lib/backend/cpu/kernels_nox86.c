/* Non-x86 builds have only the generic kernels. */
#include "backend/cpu/kernels.h"

const pg__cpu_kernels *pg__cpu_kernels_avx2(void)
{
    return NULL;
}

const pg__cpu_kernels *pg__cpu_kernels_avx512(void)
{
    return NULL;
}

const pg__cpu_kernels *pg__cpu_kernels_avx512bf16(void)
{
    return NULL;
}
