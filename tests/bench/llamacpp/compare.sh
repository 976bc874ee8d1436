#!/bin/sh
# Side-by-side of `pg bench` and llama.cpp's `llama-bench` on the same decoder shapes
# (docs/performance.md). Needs internet (git clone), cmake, a C++ compiler, python3 with
# numpy. llama.cpp is cloned and built OUTSIDE this project (never vendored):
#
#   tests/bench/llamacpp/compare.sh [WORKDIR] [THREADS]
#
# WORKDIR (default ~/.cache/paligemma-bench/llamacpp) receives the clone, its build and the
# GGUF files (a 3B f16 GGUF is ~5 GB; q8_0 and q4_0 are made from it with llama-quantize).
# Prints llama-bench's JSON lines, then pg bench's for bf16 / int8 / q4 (pg must be built:
# build/examples/pg/pg). LLAMA_CPP_REF selects a commit or tag (default: the default branch).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
work=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/paligemma-bench/llamacpp}
threads=${2:-$(nproc)}
pg=${PG:-$root/build/examples/pg/pg}
mkdir -p "$work"
cd "$work"

if [ ! -d llama.cpp ]; then
    git clone --depth 1 ${LLAMA_CPP_REF:+--branch "$LLAMA_CPP_REF"} \
        https://github.com/ggml-org/llama.cpp.git llama.cpp
fi
cmake -S llama.cpp -B llama.cpp/build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DLLAMA_CURL=OFF >/dev/null
cmake --build llama.cpp/build -j "$threads" --target llama-bench llama-quantize >/dev/null
bin=llama.cpp/build/bin

[ -f gemma2-3b-f16.gguf ] || python3 "$here/make_gemma2_gguf.py" --gguf-py llama.cpp/gguf-py \
    --variant 3b --dtype f16 --out gemma2-3b-f16.gguf
[ -f gemma2-3b-bf16.gguf ] || python3 "$here/make_gemma2_gguf.py" --gguf-py llama.cpp/gguf-py \
    --variant 3b --dtype bf16 --out gemma2-3b-bf16.gguf
for q in q8_0 q4_0; do
    [ -f gemma2-3b-$q.gguf ] || "$bin/llama-quantize" gemma2-3b-f16.gguf gemma2-3b-$q.gguf $q
done

echo "# llama-bench: prefill of 1024 tokens (-p 1024 -n 0), decode of 32 (-p 0 -n 32)"
for m in f16 bf16 q8_0 q4_0; do
    "$bin/llama-bench" -m gemma2-3b-$m.gguf -t "$threads" -p 1024 -n 0 -o jsonl
    "$bin/llama-bench" -m gemma2-3b-$m.gguf -t "$threads" -p 0 -n 32 -o jsonl
done

echo "# pg bench --variant 3b-448 (vision + prefill of 1030 tokens + 32 decode steps)"
for dt in bf16 int8 q4; do
    "$pg" bench --variant 3b-448 --dtype "$dt" --threads "$threads" --runs 3 \
        --decode-tokens 32 --json
done
