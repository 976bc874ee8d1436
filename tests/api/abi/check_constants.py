#!/usr/bin/env python3
"""Every enumerator recorded in the ABI baseline (tests/api/abi/constants.txt) still exists in
the header with the same value. New enumerators are fine (appending is allowed); a renamed,
removed or renumbered one is an ABI break (docs/abi-policy.md). abidiff cannot check these: most
of the header's constants are anonymous enums whose values travel as plain integers.

Usage: check_constants.py HEADER BASELINE. Prints "N passed, N failed".
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import header_parse  # noqa: E402


def main():
    values, problems = header_parse.enumerators(header_parse.read_header(sys.argv[1]))
    failed = len(problems)
    for p in problems:
        print("FAIL: " + p)
    passed = 0
    with open(sys.argv[2], encoding="utf-8") as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            name, value = line.split()
            if name not in values:
                failed += 1
                print("FAIL: %s (= %s in the baseline) is gone from the header" % (name, value))
            elif values[name] != int(value):
                failed += 1
                print("FAIL: %s changed from %s to %d" % (name, value, values[name]))
            else:
                passed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
