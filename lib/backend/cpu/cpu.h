/* backend/cpu: the multi-threaded SIMD CPU backend (see docs/backends.md). */
#ifndef PG_BACKEND_CPU_H
#define PG_BACKEND_CPU_H

#include "backend/backend.h"

/* Kernel sets; AUTO picks the best one this CPU supports. */
typedef enum pg__cpu_isa {
    PG__CPU_ISA_AUTO = 0,
    PG__CPU_ISA_GENERIC = 1, /* portable C (compiler baseline) */
    PG__CPU_ISA_AVX2 = 2,    /* AVX2 + FMA + F16C */
    PG__CPU_ISA_AVX512 = 3,  /* AVX-512 F/BW/VL/DQ */
    PG__CPU_ISA_AVX512BF16 = 4, /* the AVX-512 set + vdpbf16ps for BF16-weight products */
    /* AUTO, but the avx512bf16 set where vdpbf16ps is fast (x rounded to bf16 in products
     * with BF16 weights: faster, less exact; the "cpu-bf16" backend) */
    PG__CPU_ISA_AUTO_BF16 = 5
} pg__cpu_isa;

/* n_threads 0 = all online CPUs. Asking for an ISA this CPU (or build) lacks gives
 * PG_ERR_UNSUPPORTED (tests use this to cover every kernel set the machine can run). */
pg_status pg__cpu_backend_create(pg__backend **out, int32_t n_threads, pg__cpu_isa isa);
/* Name of the kernel set a CPU backend runs ("avx512", "avx2", "generic"). */
const char *pg__cpu_backend_isa(const pg__backend *be);
/* Whether this CPU and build can run `isa`. */
bool pg__cpu_isa_available(pg__cpu_isa isa);

#endif
