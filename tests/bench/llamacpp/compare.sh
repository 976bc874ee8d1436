#!/bin/sh
# Side-by-side of `pg bench` and llama.cpp's `llama-bench` on the same decoder shapes
# (docs/performance.md, "Side by side with llama.cpp").
#
# This script does not fetch or build llama.cpp: build it yourself, outside this project, by
# following llama.cpp's own build documentation (docs/build.md in its tree), with the
# llama-bench and llama-quantize tools. Then point the script at that build:
#
#   LLAMA_CPP_SRC=/path/to/llama.cpp LLAMA_CPP_BIN=/path/to/llama.cpp/build/bin \
#       tests/bench/llamacpp/compare.sh [WORKDIR] [THREADS]
#
#   LLAMA_CPP_BIN  directory holding llama-bench and llama-quantize (required)
#   LLAMA_CPP_SRC  llama.cpp source tree; its gguf-py package writes the GGUF files (required)
#   WORKDIR        where the GGUF files go (default ~/.cache/paligemma-bench/llamacpp); a 3B
#                  f16 or bf16 file is ~5.2 GB, q8_0 ~2.8 GB, q4_0 ~1.6 GB
#   THREADS        threads for both benchmarks (default: nproc)
#   PG             the pg tool (default build/examples/pg/pg of this checkout)
#   PYTHON         a python3 with numpy (default /usr/bin/python3 when present, else python3)
#   RUNS           repetitions of each benchmark (default 3)
#   DECODE_TOKENS  decode steps of pg bench (default 32, as llama-bench -n 32)
#   LLAMA_BENCH_ARGS  extra llama-bench arguments, split on spaces (e.g. "-fa 0,1")
#   BENCH_LOCK     when set, every timed command runs under `flock $BENCH_LOCK` so it does not
#                  overlap other timing runs on a shared machine
#
# Makes random-weight Gemma 2 GGUFs of the PaliGemma 2 3B decoder in f16 and bf16
# (make_gemma2_gguf.py), then q8_0 and q4_0 from the f16 one (llama-quantize), and prints
# llama-bench's JSON lines (prefill 1024 tokens; decode 32 tokens) followed by pg bench's JSON
# lines for bf16 / int8 / q4 (vision + prefill of 1030 tokens + decode).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
work=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/paligemma-bench/llamacpp}
threads=${2:-$(nproc)}
pg=${PG:-$root/build/examples/pg/pg}
runs=${RUNS:-3}
decode_tokens=${DECODE_TOKENS:-32}
extra=${LLAMA_BENCH_ARGS:-}
if [ -z "${PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi

die() {
    echo "compare.sh: $*" >&2
    exit 1
}

[ -n "${LLAMA_CPP_BIN:-}" ] ||
    die "set LLAMA_CPP_BIN to the directory of an existing llama.cpp build (llama-bench, llama-quantize); build llama.cpp outside this project following its own docs/build.md"
[ -n "${LLAMA_CPP_SRC:-}" ] ||
    die "set LLAMA_CPP_SRC to the llama.cpp source tree (its gguf-py package writes the GGUF files)"
for tool in llama-bench llama-quantize; do
    [ -x "$LLAMA_CPP_BIN/$tool" ] || die "$LLAMA_CPP_BIN/$tool is missing or not executable"
done
[ -f "$LLAMA_CPP_SRC/gguf-py/gguf/__init__.py" ] ||
    die "$LLAMA_CPP_SRC/gguf-py/gguf not found (LLAMA_CPP_SRC must be a llama.cpp source tree)"
[ -x "$pg" ] || die "$pg not found: build this project first (meson setup build && ninja -C build) or set PG"
"$PYTHON" -c 'import numpy' 2>/dev/null || die "$PYTHON has no numpy (set PYTHON)"

# Every timed command goes through this: under the machine-wide lock when BENCH_LOCK is set.
timed() {
    if [ -n "${BENCH_LOCK:-}" ]; then flock "$BENCH_LOCK" "$@"; else "$@"; fi
}

mkdir -p "$work"
for dt in f16 bf16; do
    out="$work/gemma2-3b-$dt.gguf"
    [ -f "$out" ] && continue
    "$PYTHON" "$here/make_gemma2_gguf.py" --gguf-py "$LLAMA_CPP_SRC/gguf-py" \
        --variant 3b --dtype "$dt" --out "$out.tmp"
    mv "$out.tmp" "$out"
done
for q in q8_0 q4_0; do
    out="$work/gemma2-3b-$q.gguf"
    [ -f "$out" ] && continue
    "$LLAMA_CPP_BIN/llama-quantize" "$work/gemma2-3b-f16.gguf" "$out.tmp" "$q" >/dev/null
    mv "$out.tmp" "$out"
done

echo "# llama.cpp llama-bench: prefill of 1024 tokens (-p 1024 -n 0), decode of 32 (-p 0 -n 32)"
# $extra is split on purpose (several arguments in one variable).
# shellcheck disable=SC2086
for m in f16 bf16 q8_0 q4_0; do
    timed "$LLAMA_CPP_BIN/llama-bench" -m "$work/gemma2-3b-$m.gguf" -t "$threads" -r "$runs" \
        -p 1024 -n 0 $extra -o jsonl
    timed "$LLAMA_CPP_BIN/llama-bench" -m "$work/gemma2-3b-$m.gguf" -t "$threads" -r "$runs" \
        -p 0 -n 32 $extra -o jsonl
done

echo "# pg bench --variant 3b-448: vision + prefill of 1030 tokens + $decode_tokens decode steps"
for dt in bf16 int8 q4; do
    timed "$pg" bench --variant 3b-448 --dtype "$dt" --threads "$threads" --runs "$runs" \
        --decode-tokens "$decode_tokens" --json
done
