/* What both tokenizer benchmarks (ours in C, SentencePiece's in C++) measure, so the two
 * programs time exactly the same work: a text file is encoded line by line ("lines", like
 * prompts and captions) and as one string ("whole"); load time is the median of 5 loads. */
#ifndef PG_BENCH_TOK_COMMON_H
#define PG_BENCH_TOK_COMMON_H

#define BENCH_LOADS 5
#define BENCH_MIN_MS 1000.0 /* each encode measurement repeats for at least this long */

/* FNV-1a over the id stream: both programs print it, equal sums mean equal ids. */
#define BENCH_FNV_INIT 1469598103934665603ull
#define BENCH_FNV_STEP(h, id) (((h) ^ (unsigned long long)(unsigned)(id)) * 1099511628211ull)

#endif
