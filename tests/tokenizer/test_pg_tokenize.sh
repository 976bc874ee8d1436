#!/bin/sh
# `pg tokenize` end to end on the tiny tokenizer: exact JSON lines, --stdin with raw bytes
# (NUL, invalid UTF-8), --no-parse-special, --bos, -m on a folder without weights, errors.
# Usage: test_pg_tokenize.sh PG_BINARY TESTS_DATA_DIR
set -u
pg=$1
data=$2
tiny="$data/tokenizer/tiny"
pass=0
fail=0
expect() { # expect NAME EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        printf '%s: expected\n  %s\ngot\n  %s\n' "$1" "$2" "$3" >&2
    fi
}

nl='
'
expect "text" '{"ids": [534, 491, 108], "pieces": ["caption", "▁en", "\n"]}' \
    "$("$pg" tokenize -t "$tiny/tokenizer.model" "caption en$nl")"
expect "json file" '{"ids": [534, 491, 108], "pieces": ["caption", "▁en", "\n"]}' \
    "$("$pg" tokenize -t "$tiny/tokenizer.json" "caption en$nl")"
expect "stdin raw bytes" \
    '{"ids": [925, 217, 937, 456, 408, 406, 2], "pieces": ["a", "<0x00>", "b", "<0xEF>", "<0xBF>", "<0xBD>", "<bos>"]}' \
    "$(printf 'a\000b\377<bos>' | "$pg" tokenize -t "$tiny" --stdin)"
expect "no-parse-special + bos" \
    '{"ids": [2, 992, 937, 924, 929, 993], "pieces": ["<bos>", "<", "b", "o", "s", ">"]}' \
    "$(printf '<bos>' | "$pg" tokenize -t "$tiny" --stdin --no-parse-special --bos)"
expect "empty" '{"ids": [], "pieces": []}' "$(printf '' | "$pg" tokenize -t "$tiny" --stdin)"

# -m reads config.json and the tokenizer only: a folder without any weights must do.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -f "$data/models/tiny/f32/config.json" ]; then
    cp "$data/models/tiny/f32/config.json" "$tiny/tokenizer.model" "$tiny/tokenizer_config.json" "$tmp/"
    expect "-m without weights" '{"ids": [533, 690], "pieces": ["detect", "▁cat"]}' \
        "$("$pg" tokenize -m "$tmp" "detect cat" 2>&1)"
fi

# A piece longer than any fixed buffer (an added token of 1500 bytes) is printed whole.
if [ -x /usr/bin/python3 ]; then
    long=$(printf '%01500d' 0 | tr 0 x)
    id=$(/usr/bin/python3 - "$tiny/tokenizer.json" "$tmp/long.json" "$long" <<'PY'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
n = 1 + max(list(d["model"]["vocab"].values()) + [t["id"] for t in d["added_tokens"]])
d["model"]["vocab"][sys.argv[3]] = n
d["added_tokens"].append({"id": n, "content": sys.argv[3], "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False,
                          "special": False})
json.dump(d, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
print(n)
PY
)
    expect "long piece" "{\"ids\": [$id], \"pieces\": [\"$long\"]}" \
        "$("$pg" tokenize -t "$tmp/long.json" "$long" 2>&1)"
fi

# Errors: exit status 1 with a message, 2 for usage.
"$pg" tokenize -t "$tmp/missing.model" x >/dev/null 2>&1
expect "missing file status" 1 $?
"$pg" tokenize -t "$tiny" >/dev/null 2>&1
expect "usage status" 2 $?
"$pg" tokenize -t "$tiny" --bogus x >/dev/null 2>&1
expect "unknown option status" 2 $?

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
