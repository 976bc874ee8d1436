#!/usr/bin/env python3
"""`meson install` works and the installed library is usable by a stranger.

Installs the build into a temporary DESTDIR, then checks the installed files (header, SONAME
symlink, static archive, paligemma.pc), runs `pkg-config --cflags --libs paligemma` against the
staged .pc (PKG_CONFIG_SYSROOT_DIR maps its paths into DESTDIR), compiles install_smoke.c with
exactly those flags and runs it against the installed shared library.

Usage: test_install.py --meson MESON --build BUILD_DIR --cc "CC" --pkg-config PKGCONF
       [--sanitize VALUE] SRC_DIR
Prints "N passed, N failed".
"""
import argparse
import glob
import os
import shlex
import subprocess
import sys
import tempfile

passed = 0
failed = 0


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok: " + what, flush=True)
    else:
        failed += 1
        print("FAIL: %s%s" % (what, (": " + detail) if detail else ""), flush=True)
    return cond


def run(cmd, env=None):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, env=env)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meson", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--cc", required=True)
    ap.add_argument("--pkg-config", required=True)
    ap.add_argument("--sanitize", default="none")
    ap.add_argument("srcdir")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="pg-install-") as dest:
        res = run(shlex.split(args.meson) + ["install", "-C", args.build, "--no-rebuild",
                                             "--destdir", dest, "--quiet"])
        if not check(res.returncode == 0, "meson install --destdir", res.stdout):
            return finish()

        def found(pattern):
            return sorted(glob.glob(os.path.join(dest, "**", pattern), recursive=True))

        headers = found("paligemma.h")
        pcs = found("paligemma.pc")
        sonames = found("libpaligemma.so.0")
        check(len(headers) == 1, "one installed paligemma.h", str(headers))
        check(len(pcs) == 1, "one installed paligemma.pc", str(pcs))
        check(len(sonames) == 1 and os.path.islink(sonames[0]),
              "libpaligemma.so.0 is installed as a symlink (SONAME)", str(sonames))
        check(len(found("libpaligemma.so")) == 1, "libpaligemma.so (development link)")
        check(len(found("libpaligemma.a")) == 1, "libpaligemma.a (static build)")
        if not pcs or not sonames:
            return finish()
        libdir = os.path.dirname(sonames[0])
        dynamic = run(["objdump", "-p", sonames[0]]).stdout
        soname = [l.split()[-1] for l in dynamic.splitlines() if l.split()[:1] == ["SONAME"]]
        check(soname == ["libpaligemma.so.0"], "SONAME is libpaligemma.so.0", str(soname))

        env = dict(os.environ)
        # The staged .pc first, then the system's own .pc folders: the dependencies it
        # names (spng, libjpeg, jansson) are found where the system installed them.
        system_pc = run([args.pkg_config, "--variable", "pc_path", "pkg-config"]).stdout.strip()
        env["PKG_CONFIG_PATH"] = os.path.dirname(pcs[0])
        env["PKG_CONFIG_LIBDIR"] = os.path.dirname(pcs[0]) + (":" + system_pc if system_pc else "")
        env["PKG_CONFIG_SYSROOT_DIR"] = dest
        res = run([args.pkg_config, "--cflags", "--libs", "paligemma"], env=env)
        flags = res.stdout.split()
        check(res.returncode == 0 and "-lpaligemma" in flags,
              "pkg-config --cflags --libs paligemma: " + res.stdout.strip(), res.stdout)
        check(any(f.startswith("-I" + dest) for f in flags) and
              any(f.startswith("-L" + dest) for f in flags),
              "pkg-config points into the staged prefix", res.stdout)
        res_static = run([args.pkg_config, "--libs", "--static", "paligemma"], env=env)
        check(res_static.returncode == 0, "pkg-config --static --libs paligemma: "
              + res_static.stdout.strip(), res_static.stdout)

        exe = os.path.join(dest, "install_smoke")
        san = [] if args.sanitize in ("", "none") else ["-fsanitize=" + args.sanitize]
        cmd = shlex.split(args.cc) + ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror"] \
            + san + [os.path.join(args.srcdir, "install_smoke.c"), "-o", exe] + flags
        res = run(cmd)
        if not check(res.returncode == 0, "a program compiles and links against it",
                     " ".join(cmd) + "\n" + res.stdout):
            return finish()
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = libdir
        res = run([exe], env=env)
        check(res.returncode == 0, "and runs: " + res.stdout.strip(), res.stdout)
        ldd = run(["ldd", exe], env=env).stdout
        check(any("libpaligemma.so.0 => " + libdir in l for l in ldd.splitlines()),
              "the program uses the installed libpaligemma.so.0", ldd)

        # Static linking: the archive plus what `pkg-config --static --libs` adds must be
        # enough (the .pc has to list the private dependencies: spng, libjpeg, jansson, m).
        archive = found("libpaligemma.a")
        static_flags = [archive[0] if f == "-lpaligemma" else f
                        for f in res_static.stdout.split()]
        exe_static = exe + "_static"
        cmd = shlex.split(args.cc) + ["-std=c99"] + san + [
            os.path.join(args.srcdir, "install_smoke.c"), "-o", exe_static,
            "-I" + os.path.dirname(headers[0])] + static_flags
        res = run(cmd)
        if check(res.returncode == 0, "a program links statically with pkg-config --static",
                 " ".join(cmd) + "\n" + res.stdout):
            res = run([exe_static])
            check(res.returncode == 0, "and runs: " + res.stdout.strip(), res.stdout)
    return finish()


def finish():
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
