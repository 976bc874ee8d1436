#!/usr/bin/env python3
"""docs/api.md documents the whole header: every PG_API function, public struct and field,
typedef, macro and enumerator of include/paligemma.h appears on the page.

Usage: check_api_doc.py HEADER API_MD. Prints "N passed, N failed".
"""
import re
import sys


def main():
    header = open(sys.argv[1], encoding="utf-8").read()
    doc = open(sys.argv[2], encoding="utf-8").read()
    code = re.sub(r"/\*.*?\*/", " ", header, flags=re.S)
    names = set(re.findall(r"\bPG_API\b[^;(]*?\b(pg_\w+)\s*\(", code))
    names |= set(re.findall(r"typedef\s+(?:struct|enum)\s+(pg_\w+)", code))
    names |= set(re.findall(r"\(\s*\*\s*(pg_\w+_fn)\s*\)", code))
    names |= set(re.findall(r"^\s*(PG_[A-Z0-9_]+)\s*=", code, flags=re.M))
    names |= set(re.findall(r"#\s*define\s+(PG_[A-Z0-9_]+)", code)) - {"PG_API", "PALIGEMMA_H"}
    for body in re.findall(r"typedef\s+struct\s+pg_\w+\s*\{(.*?)\}", code, flags=re.S):
        names |= {re.findall(r"\w+", d)[-1] for d in body.split(";") if d.strip()}
    missing = sorted(n for n in names if not re.search(r"\b%s\b" % re.escape(n), doc))
    for n in missing:
        print("FAIL: docs/api.md does not mention %s" % n)
    print("%d names of the header checked" % len(names))
    print("%d passed, %d failed" % (len(names) - len(missing), len(missing)))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
