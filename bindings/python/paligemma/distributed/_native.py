"""The catalogue's identities and schema, from libpaligemma (docs/index-schema.md).

The content hash (XXH3-128 of a file's bytes), the weights identity (``model_id``) and the
SQLite schema have exactly one definition, in the C library of ``pg index`` (issue 12). This
module only calls it: the package's own wrappers (``paligemma.index_hash_file`` ...) when the
binding has them, else the exported C functions through a private ctypes handle (so the
declarations here never clash with ``paligemma._ffi``'s). A library without them is an error
that says so, never a silent second definition.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any, Callable, Optional

import paligemma
from paligemma import _ffi

_HEX = 33  # 32 hex digits + NUL

_private: Optional[ctypes.CDLL] = None


class CatalogueUnavailable(RuntimeError):
    """The loaded libpaligemma has no catalogue functions (it predates ``pg index``)."""


def _c_function(name: str, argtypes: list) -> Callable[..., int]:
    global _private
    if _private is None:
        _private = ctypes.CDLL(_ffi.LIBRARY_PATH)
    try:
        fn = getattr(_private, name)
    except AttributeError:
        raise CatalogueUnavailable(
            "%s has no %s: the catalogue (pg index, issue 12) is not in this libpaligemma"
            % (_ffi.LIBRARY_PATH, name)) from None
    fn.restype = ctypes.c_int
    fn.argtypes = argtypes
    return fn


def _check(status: int, name: str) -> None:
    if status != _ffi.PG_OK:
        message = _ffi.lib.pg_last_error()
        raise paligemma.PaliGemmaError(status, message.decode("utf-8", "replace")
                                       if message else "", name,
                                       paligemma.status_string(status))


def available() -> bool:
    """Whether the loaded library exports the catalogue functions."""
    try:
        _c_function("pg_index_db_init", [ctypes.c_char_p])
        return True
    except CatalogueUnavailable:
        return False


def _wrapper(name: str) -> Optional[Callable[..., Any]]:
    return getattr(paligemma, name, None)


def hash_file(path: str) -> str:
    """XXH3-128 of the file's bytes, 32 lowercase hex digits (the resume key)."""
    wrapped = _wrapper("index_hash_file")
    if wrapped is not None:
        return str(wrapped(path))
    fn = _c_function("pg_index_hash_file", [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t])
    buf = ctypes.create_string_buffer(_HEX)
    _check(fn(os.fsencode(path), buf, _HEX), "pg_index_hash_file")
    return buf.value.decode("ascii")


def model_id(model: "paligemma.Model") -> str:
    """The weights identity of a loaded model, 32 hex digits."""
    wrapped = _wrapper("index_model_id")
    if wrapped is not None:
        return str(wrapped(model))
    fn = _c_function("pg_index_model_id", [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t])
    buf = ctypes.create_string_buffer(_HEX)
    handle = ctypes.cast(model._ptr(), ctypes.c_void_p)
    _check(fn(handle, buf, _HEX), "pg_index_model_id")
    return buf.value.decode("ascii")


def db_init(path: str) -> None:
    """Creates (or migrates) the catalogue schema in the SQLite file ``path``."""
    wrapped = _wrapper("index_db_init")
    if wrapped is not None:
        wrapped(path)
        return
    fn = _c_function("pg_index_db_init", [ctypes.c_char_p])
    _check(fn(os.fsencode(path)), "pg_index_db_init")
