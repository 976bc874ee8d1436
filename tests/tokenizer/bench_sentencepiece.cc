// Google's SentencePiece C++ library on the same .model and text as bench_tokenizer.c.
// Usage: bench_sentencepiece MODEL TEXT_FILE; prints "key value" lines read by bench_tokenizer.
#include "bench_common.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

static double now_ms()
{
    return std::chrono::duration<double, std::milli>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s MODEL TEXT_FILE\n", argv[0]);
        return 2;
    }
    std::vector<double> loads;
    sentencepiece::SentencePieceProcessor sp;
    for (int i = 0; i < BENCH_LOADS; i++) {
        sentencepiece::SentencePieceProcessor p;
        double t0 = now_ms();
        auto st = p.Load(argv[1]);
        loads.push_back(now_ms() - t0);
        if (!st.ok()) {
            std::fprintf(stderr, "sentencepiece: %s\n", st.ToString().c_str());
            return 1;
        }
    }
    if (!sp.Load(argv[1]).ok()) {
        return 1;
    }
    std::sort(loads.begin(), loads.end());
    std::ifstream f(argv[2], std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string text = ss.str();
    std::vector<std::string> lines;
    for (size_t i = 0, j; i <= text.size(); i = j + 1) {
        j = text.find('\n', i);
        if (j == std::string::npos) {
            j = text.size();
        }
        lines.push_back(text.substr(i, j - i));
    }

    unsigned long long sum = BENCH_FNV_INIT;
    size_t n_ids = 0;
    double t0 = now_ms(), t;
    int reps = 0;
    do {
        for (const auto &line : lines) {
            std::vector<int> ids;
            sp.Encode(line, &ids);
            if (reps == 0) {
                for (int id : ids) {
                    sum = BENCH_FNV_STEP(sum, id);
                }
                n_ids += ids.size();
            }
        }
        reps++;
        t = now_ms() - t0;
    } while (t < BENCH_MIN_MS);
    double lines_mbs = (double)text.size() * reps / 1e3 / t;

    t0 = now_ms();
    reps = 0;
    do {
        std::vector<int> ids;
        sp.Encode(text, &ids);
        reps++;
        t = now_ms() - t0;
    } while (t < BENCH_MIN_MS);
    double whole_mbs = (double)text.size() * reps / 1e3 / t;

    std::printf("load_ms %.2f\nlines_mbs %.3f\nwhole_mbs %.3f\nids %zu\nchecksum %llu\n",
                loads[BENCH_LOADS / 2], lines_mbs, whole_mbs, n_ids, sum);
    return 0;
}
