#!/usr/bin/env python3
"""Compiles the public header (through test_header.c / test_header.cpp) the ways users do:
C99 and C11 with -Wall -Wextra -pedantic -Werror (plus a stricter C11 set), and C++11/C++17
with the same flags plus -Wold-style-cast. Compile only: linking is the exports test's job.

Usage: check_header.py --include DIR --cc "cc" [--cxx "c++"] SRC_DIR
Prints "N passed, N failed"; exit 1 on any failure.
"""
import argparse
import os
import shlex
import subprocess
import sys
import tempfile

BASE = ["-Wall", "-Wextra", "-pedantic", "-Werror"]
STRICT_C = ["-Wconversion", "-Wsign-conversion", "-Wshadow", "-Wundef", "-Wstrict-prototypes",
            "-Wmissing-prototypes", "-Wredundant-decls", "-Wcast-qual"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--include", required=True)
    ap.add_argument("--cc", required=True)
    ap.add_argument("--cxx")
    ap.add_argument("srcdir")
    args = ap.parse_args()

    c_src = os.path.join(args.srcdir, "test_header.c")
    cxx_src = os.path.join(args.srcdir, "test_header.cpp")
    variants = [
        ("C99", args.cc, ["-std=c99"] + BASE, c_src),
        ("C11", args.cc, ["-std=c11"] + BASE, c_src),
        ("C11 strict", args.cc, ["-std=c11"] + BASE + STRICT_C, c_src),
    ]
    if args.cxx:
        for std in ("c++11", "c++17"):
            variants.append(("C++ (%s)" % std, args.cxx,
                             ["-std=" + std, "-Wold-style-cast"] + BASE, cxx_src))
    else:
        print("note: no C++ compiler configured; C++ check not run")

    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, compiler, flags, src in variants:
            cmd = shlex.split(compiler) + flags + ["-O2", "-I", args.include, "-c", src,
                                                   "-o", os.path.join(tmp, "h.o")]
            res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 universal_newlines=True)
            if res.returncode == 0 and not res.stdout.strip():
                passed += 1
                print("ok: header compiles as %s: %s" % (name, " ".join(flags)))
            else:
                failed += 1
                print("FAIL: header as %s: %s\n%s" % (name, " ".join(cmd), res.stdout),
                      file=sys.stderr)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
