#!/usr/bin/env python3
"""Writes the ABI baseline (the meson run_target `abi-dump`):
  libpaligemma.abi  abidw's description of the built library (types reachable from the exports)
  constants.txt     every enumerator of the header with its value: abidiff cannot see the
                    anonymous enums (their values travel as int32_t/uint32_t), so
                    check_constants.py guards them.

Usage: abi_dump.py --abidw ABIDW --include DIR --lib LIBRARY --out-dir DIR
"""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import header_parse  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--abidw", required=True)
    ap.add_argument("--include", required=True)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--out-dir", required=True)
    args = ap.parse_args()
    abi = os.path.join(args.out_dir, "libpaligemma.abi")
    subprocess.run([args.abidw, "--headers-dir", args.include, "--drop-private-types",
                    "--drop-undefined-syms",
                    "--no-corpus-path", "--no-comp-dir-path", "--short-locs",
                    "--out-file", abi, args.lib], check=True)
    values, problems = header_parse.enumerators(
        header_parse.read_header(os.path.join(args.include, "paligemma.h")))
    if problems:
        sys.exit("\n".join(problems))
    with open(os.path.join(args.out_dir, "constants.txt"), "w", encoding="utf-8") as f:
        f.write("# Enumerators of include/paligemma.h at the last ABI baseline (abi_dump.py).\n"
                "# Values are permanent: check_constants.py fails if one changes or vanishes.\n")
        for name, value in sorted(values.items()):
            f.write("%s %d\n" % (name, value))
    print("wrote %s and constants.txt (%d enumerators)" % (abi, len(values)))


if __name__ == "__main__":
    main()
