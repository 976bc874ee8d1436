#!/usr/bin/env python3
"""The shared library exports exactly the documented names, and nothing else.

Three lists must be equal, compared in both directions:
  1. the dynamic symbols the built libpaligemma.so defines (`nm -D --defined-only`, minus the
     version-node `A` entries),
  2. the global names of lib/libpaligemma.map (every node),
  3. the functions the public header declares with PG_API.
Also: every export is a function (no variables, style rule 4.1.7), carries a PALIGEMMA_* version,
and starts with `pg_` but not `pg__`. With --static, every global symbol defined in the static
archive starts with `pg_` (internals `pg__`), so linking it cannot clash with an application.

Prints "N passed, N failed"; exit 1 on any failure.
"""
import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import header_parse  # noqa: E402

passed = 0
failed = 0


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: %s%s" % (what, (": " + detail) if detail else ""), flush=True)


def map_globals(path):
    text = re.sub(r"/\*.*?\*/", " ", open(path, encoding="utf-8").read(), flags=re.S)
    text = re.sub(r"#[^\n]*", " ", text)
    names, nodes = [], []
    for node, body in re.findall(r"([\w.]+)\s*\{(.*?)\}\s*\w*\s*;", text, flags=re.S):
        nodes.append(node)
        glob = re.search(r"global\s*:(.*?)(?:local\s*:|$)", body, flags=re.S)
        if glob:
            names += [n.strip() for n in glob.group(1).split(";") if n.strip()]
    return nodes, names


def dynamic_exports(nm, lib):
    out = subprocess.run([nm, "-D", "--defined-only", lib], check=True, stdout=subprocess.PIPE,
                         universal_newlines=True).stdout
    exports = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        kind, sym = parts[-2], parts[-1]
        if kind == "A":  # the version node itself (PALIGEMMA_0)
            continue
        name, _, version = sym.partition("@")
        exports[name] = (kind, version.lstrip("@"))
    return exports


def static_globals(nm, archive):
    out = subprocess.run([nm, "-g", "--defined-only", archive], check=True,
                         stdout=subprocess.PIPE, universal_newlines=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and not line.endswith(":"):
            names.add(parts[-1])
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nm", default="nm")
    ap.add_argument("--lib", required=True)
    ap.add_argument("--static")
    ap.add_argument("--map", required=True)
    ap.add_argument("--header", required=True)
    args = ap.parse_args()

    header = header_parse.functions(header_parse.read_header(args.header))
    nodes, mapped = map_globals(args.map)
    exports = dynamic_exports(args.nm, args.lib)

    check(len(header) == len(set(header)), "header declares a PG_API name twice")
    check(len(mapped) == len(set(mapped)), "map lists a name twice")
    check(nodes and all(re.fullmatch(r"PALIGEMMA_[0-9.]+|PALIGEMMA_EXPERIMENTAL", n)
                        for n in nodes), "map version nodes are PALIGEMMA_*", str(nodes))
    check(all("*" not in n and "?" not in n for n in mapped),
          "map global section lists names explicitly (no glob: pg_* would match pg__)",
          str([n for n in mapped if "*" in n or "?" in n]))

    h, m, e = set(header), set(mapped), set(exports)
    for name in sorted(h - m):
        check(False, "declared PG_API in the header but missing from the map", name)
    for name in sorted(m - h):
        check(False, "listed in the map but not declared PG_API in the header", name)
    for name in sorted(h - e):
        check(False, "declared in the header but not exported by the library", name)
    for name in sorted(e - h):
        check(False, "exported by the library but not declared in the header", name)
    check(h == m == e, "header, map and exports agree",
          "header %d, map %d, exports %d" % (len(h), len(m), len(e)))

    for name, (kind, version) in sorted(exports.items()):
        check(kind in ("T", "t"), "export is a function", "%s has nm type %s" % (name, kind))
        check(version.startswith("PALIGEMMA_"), "export is versioned",
              "%s has version %r" % (name, version))
        check(name.startswith("pg_") and not name.startswith("pg__"),
              "export has the public prefix", name)

    if args.static:
        bad = sorted(n for n in static_globals(args.nm, args.static) if not n.startswith("pg_"))
        check(not bad, "static archive defines only pg_/pg__ globals",
              ", ".join(bad[:20]) + (" ..." if len(bad) > 20 else ""))

    print("exports: %d in header, %d in map, %d exported" % (len(h), len(m), len(e)))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
