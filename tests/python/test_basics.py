"""Loading the library, versions, the function table, errors that need no model."""
import ctypes
import os
import re
import shutil
import subprocess
import sys

import pytest

import paligemma
from paligemma import PaliGemmaError, Status, _ffi

HEADER = os.path.join(os.path.dirname(__file__), "..", "..", "include", "paligemma.h")


def header_text():
    with open(HEADER, encoding="utf-8") as f:
        return f.read()


def test_version_matches_header():
    text = header_text()
    version = re.search(r'#define PG_VERSION_STRING "([^"]+)"', text).group(1)
    assert paligemma.version() == version
    assert paligemma.abi_version() == paligemma.ABI_VERSION == int(
        re.search(r"#define PG_ABI_VERSION (\d+)", text).group(1))
    major, minor, patch = (int(x) for x in version.split("."))
    assert paligemma.version_number() == major * 10000 + minor * 100 + patch


def test_function_table_covers_the_header():
    declared = set(re.findall(r"\bPG_API\b[^;(]*?\b(pg_\w+)\s*\(",
                              re.sub(r"/\*.*?\*/", " ", header_text(), flags=re.S)))
    assert declared == set(_ffi.FUNCTIONS)
    for name, (restype, argtypes, _, _) in _ffi.FUNCTIONS.items():
        # Never the implicit int return: pointers would be cut to 32 bits.
        if name not in _ffi.MISSING:
            assert getattr(_ffi.lib, name).restype is restype


def test_every_function_is_exported():
    assert _ffi.MISSING == [], "library lacks: %s" % ", ".join(_ffi.MISSING)


def test_status_strings():
    assert paligemma.status_string(0) == "success"
    for status in Status:
        assert paligemma.status_string(status)
    assert paligemma.status_string(12345)  # unknown codes still get text


def test_error_carries_status_and_message():
    err = PaliGemmaError(Status.NOT_FOUND, "model.safetensors: no such file", "pg_model_load",
                         "not found")
    assert err.status == Status.NOT_FOUND
    assert err.message == "model.safetensors: no such file"
    assert "model.safetensors: no such file" in str(err) and "not found" in str(err)


def test_handles_have_distinct_types():
    # A wrong handle type is a TypeError in Python, not a crash in C.
    with pytest.raises(ctypes.ArgumentError):
        _ffi.lib.pg_model_free(ctypes.POINTER(_ffi.pg_session)())


def _import_in_subprocess(env_update, code="import paligemma; print(paligemma.LIBRARY_PATH)",
                          cwd=None, pythonpath=None):
    env = dict(os.environ)
    env.update(env_update)
    for key, value in list(env_update.items()):
        if value is None:
            del env[key]
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)


def test_bad_PALIGEMMA_LIBRARY_is_an_import_error(tmp_path):
    res = _import_in_subprocess({"PALIGEMMA_LIBRARY": str(tmp_path / "nope.so")})
    assert res.returncode != 0
    assert "ImportError" in res.stderr and "PALIGEMMA_LIBRARY" in res.stderr


def test_library_next_to_the_package_is_found(tmp_path):
    pkg = tmp_path / "paligemma"
    shutil.copytree(os.path.dirname(paligemma.__file__), str(pkg),
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(_ffi.LIBRARY_PATH, str(pkg / _ffi.SONAME))
    res = _import_in_subprocess({"PALIGEMMA_LIBRARY": None}, pythonpath=str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(pkg / _ffi.SONAME)


def test_abi_mismatch_is_an_import_error(tmp_path):
    pkg = tmp_path / "paligemma"
    shutil.copytree(os.path.dirname(paligemma.__file__), str(pkg),
                    ignore=shutil.ignore_patterns("__pycache__"))
    ffi = pkg / "_ffi.py"
    ffi.write_text(ffi.read_text().replace("ABI_VERSION = 0", "ABI_VERSION = 99", 1))
    res = _import_in_subprocess({}, pythonpath=str(tmp_path))
    assert res.returncode != 0
    assert "ImportError" in res.stderr and "ABI version 0" in res.stderr


def test_process_wide_log_callback(tiny_dir):
    seen = []
    paligemma.set_log_callback(lambda level, msg: seen.append((level, msg)), 4)
    try:
        paligemma.Model(tiny_dir).close()  # no per-model sink: the process-wide one hears it
    finally:
        paligemma.set_log_callback(None)
    assert seen and all(isinstance(m, str) for _, m in seen)
    count = len(seen)
    paligemma.Model(tiny_dir).close()
    assert len(seen) == count  # cleared


def test_pip_install_works_offline(tmp_path):
    """`pip install ./bindings/python` with Debian's pip and setuptools, no network."""
    if subprocess.run([sys.executable, "-m", "pip", "--version"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        pytest.skip("pip is not installed (Debian: python3-pip)")
    src = tmp_path / "src"  # a copy: pip builds in the source folder
    shutil.copytree(os.path.join(os.path.dirname(paligemma.__file__), ".."), str(src),
                    ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    site = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                          "--no-deps", "--no-index", "--disable-pip-version-check", "--quiet",
                          "--target", str(site), str(src)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True)
    assert res.returncode == 0, res.stdout
    assert (site / "paligemma" / "py.typed").exists()
    res = _import_in_subprocess(
        {}, code="import paligemma; print(paligemma.__file__, paligemma.version())",
        pythonpath=str(site))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(str(site / "paligemma")) and paligemma.version() in res.stdout
