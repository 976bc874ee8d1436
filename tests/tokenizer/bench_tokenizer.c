/*
 * Tokenizer benchmark: load time and encode throughput of libpaligemma, side by side with
 * Google's SentencePiece C++ library (bench_sentencepiece, when built) on the same
 * tokenizer.model and the same text, in one run.
 *
 * Model: the reconstructed 257152-piece PaliGemma 2 tokenizer.model (decompressed from
 * ../shared by fetch-real-tokenizer.sh), else the tiny 2176-piece one. Text: the tiny
 * fixtures' corpus.txt plus the 273 multilingual golden strings (written to a temp file that
 * both programs read). Encoding uses PG_TOKENIZE_NO_PARSE_SPECIAL, SentencePiece's semantics,
 * and both programs print a checksum of all ids: they must be equal.
 *
 * Usage: bench_tokenizer REAL_DIR FETCH_SCRIPT DATA_DIR [SP_BENCH]
 */
#include "bench_common.h"
#include "harness.h"
#include "tok_util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct result {
    double load_ms, lines_mbs, whole_mbs;
    size_t ids;
    unsigned long long checksum;
    bool ok;
} result;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* corpus.txt + the golden strings, one per line (strings holding '\n' span lines: the same
 * for both programs). */
static char *make_text(const char *data_dir, size_t *len)
{
    size_t n = 0, cap = 1 << 20;
    char *text = malloc(cap);
    FILE *f = fopen(pg_test_path(data_dir, "tokenizer/tiny/corpus.txt"), "rb");
    if (f) {
        n = fread(text, 1, cap, f);
        fclose(f);
    }
    json_t *recs = tt_load_jsonl(pg_test_path(data_dir, "tokenizer/golden_paligemma2.public.jsonl"));
    size_t i;
    json_t *rec;
    json_array_foreach(recs, i, rec) {
        size_t k;
        unsigned char *b = tt_unhex(json_string_value(json_object_get(rec, "utf8_hex")), &k);
        if (n + k + 1 < cap) {
            memcpy(text + n, b, k);
            n += k;
            text[n++] = '\n';
        }
        free(b);
    }
    json_decref(recs);
    *len = n;
    return text;
}

static result bench_ours(const char *model, const char *text, size_t len)
{
    result r = {0};
    double loads[BENCH_LOADS];
    pg_tokenizer *tok = NULL;
    for (int i = 0; i < BENCH_LOADS; i++) {
        pg_tokenizer_free(tok);
        double t0 = tt_now_ms();
        if (pg_tokenizer_load(&tok, model) != PG_OK) {
            fprintf(stderr, "load: %s\n", pg_last_error());
            return r;
        }
        loads[i] = tt_now_ms() - t0;
    }
    qsort(loads, BENCH_LOADS, sizeof loads[0], cmp_double);
    r.load_ms = loads[BENCH_LOADS / 2];

    const uint32_t flags = PG_TOKENIZE_NO_PARSE_SPECIAL;
    int32_t *ids = malloc((len + 16) * sizeof *ids); /* never more ids than bytes (+bos) */
    unsigned long long sum = BENCH_FNV_INIT;
    double t0 = tt_now_ms(), t;
    int reps = 0;
    do {
        for (size_t i = 0, j; i <= len; i = j + 1) {
            const char *nl = memchr(text + i, '\n', len - i);
            j = nl ? (size_t)(nl - text) : len;
            size_t n = 0;
            if (pg_tokenize(tok, text + i, j - i, flags, ids, len + 16, &n) != PG_OK) {
                fprintf(stderr, "encode: %s\n", pg_last_error());
                return r;
            }
            for (size_t k = 0; reps == 0 && k < n; k++) {
                sum = BENCH_FNV_STEP(sum, ids[k]);
            }
            r.ids += reps == 0 ? n : 0;
        }
        reps++;
        t = tt_now_ms() - t0;
    } while (t < BENCH_MIN_MS);
    r.lines_mbs = (double)len * reps / 1e3 / t;
    r.checksum = sum;

    t0 = tt_now_ms();
    reps = 0;
    do {
        size_t n;
        pg_tokenize(tok, text, len, flags, ids, len + 16, &n);
        reps++;
        t = tt_now_ms() - t0;
    } while (t < BENCH_MIN_MS);
    r.whole_mbs = (double)len * reps / 1e3 / t;
    free(ids);
    pg_tokenizer_free(tok);
    r.ok = true;
    return r;
}

static result bench_sp(const char *exe, const char *model, const char *text_path)
{
    result r = {0};
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s'", exe, model, text_path);
    FILE *p = popen(cmd, "r");
    if (!p) {
        return r;
    }
    char line[256];
    int got = 0;
    while (fgets(line, sizeof line, p)) {
        char key[64], val[64];
        if (sscanf(line, "%63s %63s", key, val) != 2) {
            continue;
        }
        got++;
        if (!strcmp(key, "load_ms")) {
            r.load_ms = strtod(val, NULL);
        } else if (!strcmp(key, "lines_mbs")) {
            r.lines_mbs = strtod(val, NULL);
        } else if (!strcmp(key, "whole_mbs")) {
            r.whole_mbs = strtod(val, NULL);
        } else if (!strcmp(key, "ids")) {
            r.ids = (size_t)strtoull(val, NULL, 10);
        } else if (!strcmp(key, "checksum")) {
            r.checksum = strtoull(val, NULL, 10);
        } else {
            got--;
        }
    }
    pclose(p);
    r.ok = got == 5;
    return r;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s REAL_DIR FETCH_SCRIPT DATA_DIR [SP_BENCH]\n", argv[0]);
        return 2;
    }
    const char *shared = pg_test_shared_dir();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "sh '%s' '%s' '%s' >/dev/null 2>&1", argv[2], argv[1],
             shared ? shared : "");
    tt_system(cmd);
    const char *model = pg_test_path(argv[1], "paligemma2-reconstructed.model");
    struct stat st;
    if (stat(model, &st) != 0) {
        model = pg_test_path(argv[3], "tokenizer/tiny/tokenizer.model");
    }
    char model_path[4096];
    snprintf(model_path, sizeof model_path, "%s", model);

    size_t len;
    char *text = make_text(argv[3], &len);
    char text_path[] = "/tmp/pg_bench_tok_XXXXXX";
    int fd = mkstemp(text_path);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
        fprintf(stderr, "cannot write the bench text\n");
        return 1;
    }
    close(fd);

    pg_tokenizer *tok = NULL;
    pg_tokenizer_load(&tok, model_path);
    printf("tokenizer benchmark: %s (%u pieces)\ntext: %.2f MB (corpus.txt + golden strings)\n",
           model_path, pg_tokenizer_vocab_size(tok), len / 1e6);
    pg_tokenizer_free(tok);

    result ours = bench_ours(model_path, text, len);
    result sp = {0};
    bool have_sp = argc > 4 && argv[4][0];
    if (have_sp) {
        sp = bench_sp(argv[4], model_path, text_path);
    }
    unlink(text_path);
    free(text);
    if (!ours.ok) {
        return 1;
    }
    printf("%-30s %14s %14s\n", "", "libpaligemma", have_sp ? "sentencepiece" : "(no sp)");
    printf("%-30s %14.1f %14.1f\n", "load, ms (median of 5)", ours.load_ms, sp.load_ms);
    printf("%-30s %14.2f %14.2f\n", "encode line by line, MB/s", ours.lines_mbs, sp.lines_mbs);
    printf("%-30s %14.2f %14.2f\n", "encode as one string, MB/s", ours.whole_mbs, sp.whole_mbs);
    printf("%-30s %14zu %14zu\n", "ids (line by line)", ours.ids, sp.ids);
    if (have_sp && sp.ok) {
        printf("speed-up: encode x%.1f (lines), x%.1f (one string); load x%.1f\n",
               ours.lines_mbs / sp.lines_mbs, ours.whole_mbs / sp.whole_mbs,
               sp.load_ms / ours.load_ms);
    } else if (have_sp) {
        printf("sentencepiece bench failed\n");
    }
    if (have_sp && sp.ok) {
        printf("same ids as sentencepiece: %s\n",
               ours.checksum == sp.checksum && ours.ids == sp.ids ? "yes" : "NO");
        return ours.checksum == sp.checksum && ours.ids == sp.ids ? 0 : 1;
    }
    return 0;
}
