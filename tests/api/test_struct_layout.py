#!/usr/bin/env python3
"""The ctypes mirrors in bindings/python/paligemma/_ffi.py match the C header exactly.

Compares, for every public struct: the field names and order parsed from the header, the
(name, offset, size) triples and sizeof printed by the C helper struct_layout, and the ctypes
Structure's _fields_, offsets, sizes and sizeof. Also compares every enum constant and the
PG_ABI_VERSION macro of the header with the binding's constants, so a struct or constant added
to the header without its Python mirror fails here.

Usage: test_struct_layout.py HELPER HEADER   (PYTHONPATH must reach the binding,
PALIGEMMA_LIBRARY the built library). Prints "N passed, N failed".
"""
import ctypes
import json
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


def main():
    helper, header_path = sys.argv[1], sys.argv[2]
    from paligemma import _ffi

    text = header_parse.read_header(header_path)
    declared = header_parse.structs(text)
    c_layout = json.loads(subprocess.run([helper], check=True, stdout=subprocess.PIPE,
                                         universal_newlines=True).stdout)
    c_status = c_layout.pop("pg_status")
    check(c_status["size"] == ctypes.sizeof(_ffi.c_status), "pg_status is passed as c_int",
          "sizeof(pg_status) = %d" % c_status["size"])

    check(set(declared) == set(c_layout), "the C helper covers every header struct",
          "header %s, helper %s" % (sorted(declared), sorted(c_layout)))
    check(set(declared) == set(_ffi.STRUCTS), "_ffi mirrors every header struct",
          "header %s, _ffi %s" % (sorted(declared), sorted(_ffi.STRUCTS)))

    for name in sorted(set(declared) & set(c_layout) & set(_ffi.STRUCTS)):
        cls = _ffi.STRUCTS[name]
        c = c_layout[name]
        py_names = [f[0] for f in cls._fields_]
        c_names = [f[0] for f in c["fields"]]
        check(declared[name] == c_names, "%s: helper fields follow the header" % name,
              "header %s, helper %s" % (declared[name], c_names))
        check(declared[name] == py_names, "%s: ctypes fields follow the header" % name,
              "header %s, ctypes %s" % (declared[name], py_names))
        check(c["size"] == ctypes.sizeof(cls), "%s: sizeof" % name,
              "C %d, ctypes %d" % (c["size"], ctypes.sizeof(cls)))
        for fname, offset, size in c["fields"]:
            if not hasattr(cls, fname):
                continue
            desc = getattr(cls, fname)
            check(desc.offset == offset and desc.size == size, "%s.%s: offset/size" % (name, fname),
                  "C (%d, %d), ctypes (%d, %d)" % (offset, size, desc.offset, desc.size))
        check(py_names[0] == "struct_size" and c["fields"][0][1] == 0,
              "%s starts with struct_size" % name)

    consts, problems = header_parse.enumerators(text)
    for problem in problems:
        check(False, problem)
    abi = int(re.search(r"#define\s+PG_ABI_VERSION\s+(\d+)", text).group(1))
    check(abi == _ffi.ABI_VERSION, "binding ABI_VERSION == PG_ABI_VERSION")
    for cname, value in sorted(consts.items()):
        check(getattr(_ffi, cname, None) == value, "constant %s" % cname,
              "header %r, _ffi %r" % (value, getattr(_ffi, cname, None)))

    print("%d structs, %d constants compared" % (len(declared), len(consts)))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
