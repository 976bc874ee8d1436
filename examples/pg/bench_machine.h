/* pg bench: this machine's ceilings, measured by small microbenchmarks in the same run. */
#ifndef PG_BENCH_MACHINE_H
#define PG_BENCH_MACHINE_H

typedef struct bench_machine {
    double fma_gflops; /* fp32 fused multiply-add, widest vectors the CPU has, all threads */
    double int8_gops;  /* int8 dot products (VNNI vpdpbusd) where present, else 0 */
    double mem_gbs;    /* streaming read of a buffer far larger than the caches */
    const char *isa;   /* "avx512", "avx2" or "scalar" */
} bench_machine;

/* Runs the microbenchmarks with `threads` threads (about a second in all). mem_mib is the
 * size of the read buffer. Returns 0, or -1 when memory could not be allocated. */
int bench_measure_machine(bench_machine *out, int threads, int mem_mib);

#endif
