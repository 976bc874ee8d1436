#!/usr/bin/env python3
"""`pg bench --json` output contract on the tiny fixture (not its speed): one JSON line with
the documented keys, consistent counts (16 image tokens + 6 prompt ids = 22 prefill tokens,
--decode-tokens steps), positive times, and bad options rejected with exit code 2.

usage: pg_bench_json.py PG MODEL_DIR
"""
import json
import subprocess
import sys

REQUIRED = ["variant", "dtype", "threads", "vision_ms", "prefill_tokens", "prefill_ms",
            "decode_tokens", "decode_ms_per_token", "ttft_ms", "peak_rss_mb",
            "weight_bytes_per_token", "machine"]


def run(pg, *args):
    return subprocess.run([pg, "bench", *args], capture_output=True, text=True, timeout=300)


BATCH_KEYS = ["batch", "decode_tokens_per_s", "decode_ratio", "decode_ceiling_tokens_per_s",
              "decode_steps", "images_per_min", "images_ratio", "images", "tokens", "wall_ms"]


def check_batch(pg, model):
    """`pg bench --batch 1,3 --json`: one row per width, the first the ratios' baseline."""
    r = run(pg, "-m", model, "--batch", "1,3", "--batch-tokens", "5", "--batch-images", "5",
            "--threads", "2", "--mem-mib", "32", "--json")
    if r.returncode != 0:
        return [f"--batch: exit {r.returncode}: {r.stderr.strip()}"]
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    if len(lines) != 1:
        return [f"--batch: expected one JSON line, got {len(lines)}"]
    j = json.loads(lines[0])
    rows = j.get("batch", [])
    if [row.get("batch") for row in rows] != [1, 3] or j.get("caption_tokens") != 5:
        return [f"--batch: rows or caption_tokens wrong: {lines[0]}"]
    failures = [f"--batch: row {row['batch']} lacks {k}" for row in rows for k in BATCH_KEYS
                if k not in row]
    if failures:
        return failures
    checks = {
        "baseline ratio 1": rows[0]["decode_ratio"] == 1.0 and rows[0]["images_ratio"] == 1.0,
        "ratios": all(abs(row["decode_ratio"] - row["decode_tokens_per_s"] /
                          rows[0]["decode_tokens_per_s"]) < 1e-3 * row["decode_ratio"]
                      for row in rows),
        "images": all(row["images"] == 5 and 5 <= row["tokens"] <= 25 for row in rows),
        "rates": all(row["decode_tokens_per_s"] > 0 and row["images_per_min"] > 0 and
                     row["decode_steps"] > 0 for row in rows),
        "ceiling": all(row["decode_ceiling_tokens_per_s"] > 0 for row in rows),
    }
    return [f"--batch: {name} check failed: {lines[0]}" for name, ok in checks.items() if not ok]


def main():
    pg, model = sys.argv[1], sys.argv[2]
    failures = []
    for dtype in ("bf16", "int8", "q4"):
        r = run(pg, "-m", model, "--dtype", dtype, "--runs", "2", "--warmup", "1",
                "--decode-tokens", "3", "--threads", "2", "--mem-mib", "32", "--json",
                "--no-quant-cache")  # the fixture folder is in the source tree
        if r.returncode != 0:
            failures.append(f"{dtype}: exit {r.returncode}: {r.stderr.strip()}")
            continue
        lines = [l for l in r.stdout.splitlines() if l.strip()]
        if len(lines) != 1:
            failures.append(f"{dtype}: expected one JSON line, got {len(lines)}")
            continue
        j = json.loads(lines[0])
        missing = [k for k in REQUIRED if k not in j]
        if missing:
            failures.append(f"{dtype}: missing keys {missing}")
            continue
        checks = {
            "dtype": j["dtype"] == dtype,
            "threads": j["threads"] == 2,
            "prefill_tokens": j["prefill_tokens"] == 22,
            "decode_tokens": j["decode_tokens"] == 3,
            "times": all(j[k] > 0 for k in ("vision_ms", "prefill_ms", "decode_ms_per_token",
                                            "ttft_ms", "peak_rss_mb")),
            "ttft": j["ttft_ms"] >= j["prefill_ms"],
            "bytes": j["weight_bytes_per_token"] > 0,
            "machine": all(k in j["machine"] for k in ("fma_gflops", "mem_gbs"))
                       and j["machine"]["fma_gflops"] > 0 and j["machine"]["mem_gbs"] > 0,
            "min": all(j["min"][k] <= j[k] + 1e-9 for k in ("vision_ms", "prefill_ms", "ttft_ms")),
        }
        failures += [f"{dtype}: {name} check failed: {lines[0]}" for name, ok in checks.items()
                     if not ok]
    failures += check_batch(pg, model)
    for bad in (["--dtype", "fp8"], ["--runs", "0"], ["--threads", "x"], ["--nope"],
                ["--batch", "0"], ["--batch", "1,x"], ["--batch", "65"],
                ["--batch", "2", "--batch-tokens", "1"]):
        r = run(pg, "-m", model, *bad)
        if r.returncode != 2:
            failures.append(f"{bad}: exit {r.returncode}, expected 2")
    for f in failures:
        print("FAIL:", f)
    print(f"{0 if failures else 1} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
