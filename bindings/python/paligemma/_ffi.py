"""Low-level ctypes declarations for libpaligemma (include/paligemma.h).

This module mirrors the public header one to one: the constants, the option/info structs
(with exactly the header's fields, checked against a C helper by tests/api) and one table,
``FUNCTIONS``, that declares ``restype``/``argtypes`` for every exported function. Nothing in
this module is meant for end users; use the classes in :mod:`paligemma` instead.

Library lookup order (first hit wins):

1. the ``PALIGEMMA_LIBRARY`` environment variable (a path to the shared library);
2. a copy next to this package (``paligemma/libpaligemma.so.0``);
3. ``ctypes.util.find_library("paligemma")`` (ldconfig cache, ``LD_LIBRARY_PATH``);
4. the SONAME ``libpaligemma.so.0`` as the dynamic loader resolves it.

The loaded library must report ``pg_abi_version() == ABI_VERSION``, otherwise importing
raises :class:`ImportError`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_double, c_float,
                    c_int, c_int32, c_int64, c_size_t, c_uint8, c_uint32, c_uint64, c_void_p)
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

#: The ABI this binding was written for (PG_ABI_VERSION == the SONAME number).
ABI_VERSION = 0
SONAME = "libpaligemma.so.%d" % ABI_VERSION

# --------------------------------------------------------------------------------------------
# Constants (values are permanent in the C API; tests/api checks them against the header)
# --------------------------------------------------------------------------------------------

PG_OK = 0
PG_ERR_INVALID_ARGUMENT = 1
PG_ERR_OUT_OF_MEMORY = 2
PG_ERR_IO = 3
PG_ERR_FORMAT = 4
PG_ERR_LIMIT = 5
PG_ERR_BAD_STATE = 6
PG_ERR_UNSUPPORTED = 7
PG_ERR_CANCELLED = 8
PG_ERR_BACKEND = 9
PG_ERR_INTERNAL = 10
PG_ERR_NOT_FOUND = 11
PG_ERR_INVALID_UTF8 = 12

PG_LOG_ERROR = 1
PG_LOG_WARN = 2
PG_LOG_INFO = 3
PG_LOG_DEBUG = 4

PG_DTYPE_AUTO = 0
PG_DTYPE_F32 = 1
PG_DTYPE_F16 = 2
PG_DTYPE_BF16 = 3
PG_DTYPE_Q8 = 4
PG_DTYPE_Q4 = 5

PG_MODEL_TOKENIZER_ONLY = 1 << 0
PG_MODEL_NO_QUANT_CACHE = 1 << 1
PG_MODEL_PREFAULT = 1 << 2

PG_TOKENIZE_NO_PARSE_SPECIAL = 1 << 0
PG_TOKENIZE_ADD_BOS = 1 << 1
PG_DETOKENIZE_SKIP_SPECIAL = 1 << 0

PG_TOKEN_PAD = 0
PG_TOKEN_EOS = 1
PG_TOKEN_BOS = 2
PG_TOKEN_UNK = 3
PG_TOKEN_IMAGE = 4
PG_TOKEN_NEWLINE = 5
PG_TOKEN_LOC0 = 6
PG_TOKEN_SEG0 = 7

PG_IMAGE_NO_EXIF_ROTATE = 1 << 0
PG_IMAGE_FAST_JPEG_SCALE = 1 << 1

PG_PIXEL_RGB8 = 1
PG_PIXEL_RGBA8 = 2
PG_PIXEL_BGR8 = 3
PG_PIXEL_BGRA8 = 4
PG_PIXEL_GRAY8 = 5

PG_RESIZE_BICUBIC_PIL = 0
PG_RESIZE_BILINEAR_TF = 1

PG_SESSION_KEEP_TENSORS = 1 << 0

PG_STOP_NONE = 0
PG_STOP_EOS = 1
PG_STOP_MAX_TOKENS = 2
PG_STOP_STRING = 3
PG_STOP_CALLBACK = 4
PG_STOP_INTERRUPT = 5
PG_STOP_CONTEXT = 6

PG_TENSOR_PIXEL_VALUES = 0
PG_TENSOR_VISION_OUT = 1
PG_TENSOR_PROJECTOR_OUT = 2
PG_TENSOR_PREFILL_LOGITS_LAST = 3

# pg_index_options.flags (0.2)
PG_INDEX_XMP = 1 << 0
PG_INDEX_RESCAN = 1 << 1

# --------------------------------------------------------------------------------------------
# Opaque handles: distinct types, so passing the wrong handle raises TypeError
# --------------------------------------------------------------------------------------------


class pg_model(Structure):
    """Opaque ``pg_model``."""


class pg_tokenizer(Structure):
    """Opaque ``pg_tokenizer``."""


class pg_image(Structure):
    """Opaque ``pg_image``."""


class pg_session(Structure):
    """Opaque ``pg_session``."""


class pg_detections(Structure):
    """Opaque ``pg_detections``."""


class pg_batch(Structure):
    """Opaque ``pg_batch``."""


class pg_mask_decoder(Structure):
    """Opaque ``pg_mask_decoder`` (issue 14)."""


# --------------------------------------------------------------------------------------------
# Callback types
# --------------------------------------------------------------------------------------------

pg_log_fn = CFUNCTYPE(None, c_void_p, c_int, c_char_p)
pg_progress_fn = CFUNCTYPE(c_int, c_void_p, c_float)

# --------------------------------------------------------------------------------------------
# Public structs: exactly the header's fields, in order (tests/api/test_struct_layout.py)
# --------------------------------------------------------------------------------------------


class pg_model_options(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("backend", c_char_p),
        ("n_threads", c_int32),
        ("flags", c_uint32),
        ("weight_dtype", c_int32),
        ("log_fn", pg_log_fn),
        ("log_user", c_void_p),
        ("log_level", c_int32),
        ("progress_fn", pg_progress_fn),
        ("progress_user", c_void_p),
    ]


class pg_model_info(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("image_size", c_uint32),
        ("patch_size", c_uint32),
        ("image_tokens", c_uint32),
        ("vocab_size", c_uint32),
        ("text_layers", c_uint32),
        ("text_hidden", c_uint32),
        ("text_heads", c_uint32),
        ("text_kv_heads", c_uint32),
        ("text_head_dim", c_uint32),
        ("text_ffn", c_uint32),
        ("vision_layers", c_uint32),
        ("vision_hidden", c_uint32),
        ("vision_heads", c_uint32),
        ("vision_ffn", c_uint32),
        ("sliding_window", c_uint32),
        ("weight_dtype", c_int32),
        ("n_params", c_uint64),
        ("weight_bytes", c_uint64),
        ("variant", c_char_p),
    ]


class pg_image_options(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("flags", c_uint32),
        ("max_dimension", c_uint32),
        ("max_pixels", c_uint64),
        ("target_size", c_uint32),
    ]


class pg_session_options(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("n_ctx", c_uint32),
        ("kv_dtype", c_int32),
        ("resize_method", c_int32),
        ("image_cache", c_uint32),
        ("flags", c_uint32),
    ]


class pg_token_event(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("token_id", c_int32),
        ("index", c_uint32),
        ("text", POINTER(c_char)),  # text_len bytes; borrowed for the callback only
        ("text_len", c_size_t),
        ("logprob", c_float),
        ("n_top", c_uint32),
        ("top_ids", POINTER(c_int32)),
        ("top_logprobs", POINTER(c_float)),
    ]


pg_token_fn = CFUNCTYPE(c_int, c_void_p, POINTER(pg_token_event))


class pg_generate_options(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("max_new_tokens", c_uint32),
        ("temperature", c_float),
        ("top_k", c_uint32),
        ("top_p", c_float),
        ("seed", c_uint64),
        ("stop_strings", POINTER(c_char_p)),
        ("n_stop_strings", c_uint32),
        ("n_logprobs", c_uint32),
        ("on_token", pg_token_fn),
        ("on_token_user", c_void_p),
        ("flags", c_uint32),
    ]


class pg_batch_options(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("max_batch", c_uint32),
        ("max_sessions", c_uint32),
        ("max_kv_bytes", c_uint64),
        ("prefill_ratio", c_float),
        ("flags", c_uint32),
    ]


class pg_timings(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("preprocess_ms", c_double),
        ("vision_ms", c_double),
        ("prefill_ms", c_double),
        ("prefill_tokens", c_uint32),
        ("decode_ms", c_double),
        ("decode_tokens", c_uint32),
        ("ttft_ms", c_double),
        ("image_cache_hit", c_uint32),
    ]


class pg_detection_info(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("x_min", c_float),
        ("y_min", c_float),
        ("x_max", c_float),
        ("y_max", c_float),
        ("loc", c_int32 * 4),
        ("label", POINTER(c_char)),  # label_len bytes; borrowed from the pg_detections
        ("label_len", c_size_t),
        ("n_seg", c_uint32),
        ("seg_codes", POINTER(c_int32)),
    ]


class pg_index_stats(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("files_total", c_uint64),
        ("files_done", c_uint64),
        ("files_indexed", c_uint64),
        ("files_skipped", c_uint64),
        ("files_failed", c_uint64),
        ("files_other", c_uint64),
        ("results_written", c_uint64),
        ("elapsed_ms", c_double),
    ]


pg_index_progress_fn = CFUNCTYPE(c_int, c_void_p, POINTER(pg_index_stats), c_char_p, c_char_p)
pg_index_hit_fn = CFUNCTYPE(c_int, c_void_p, c_char_p, c_char_p, c_double)


class pg_index_options(Structure):
    _fields_ = [
        ("struct_size", c_size_t),
        ("db_path", c_char_p),
        ("tasks", c_char_p),
        ("prompt", c_char_p),
        ("batch", c_uint32),
        ("max_new_tokens", c_uint32),
        ("flags", c_uint32),
        ("progress_fn", pg_index_progress_fn),
        ("progress_user", c_void_p),
    ]


#: Every public struct of the header, by its C name (used by the layout test).
STRUCTS: Dict[str, type] = {
    cls.__name__: cls
    for cls in (pg_model_options, pg_model_info, pg_image_options, pg_session_options,
                pg_token_event, pg_generate_options, pg_timings, pg_detection_info,
                pg_batch_options, pg_index_stats, pg_index_options)
}

# --------------------------------------------------------------------------------------------
# The function table
# --------------------------------------------------------------------------------------------

# Where a failing call leaves its message: on the session passed first ("session"), in the
# thread-local pg_last_error() ("thread"), or nowhere because the function returns no status
# (None). Statuses in `tolerated` are returned instead of raised (size queries: PG_ERR_LIMIT).
_SESSION = "session"
_THREAD = "thread"

p_model = POINTER(pg_model)
p_tok = POINTER(pg_tokenizer)
p_image = POINTER(pg_image)
p_session = POINTER(pg_session)
p_detections = POINTER(pg_detections)
p_batch = POINTER(pg_batch)
p_mask_decoder = POINTER(pg_mask_decoder)
PG_MASK_SIDE = 64  # issue 14
c_status = c_int  # pg_status is an int-sized enum (checked by the layout test)

# name: (restype, argtypes, error source, tolerated statuses)
FUNCTIONS: Dict[str, Tuple[Any, List[Any], Optional[str], Tuple[int, ...]]] = {
    # versions
    "pg_version_number": (c_uint32, [], None, ()),
    "pg_version_string": (c_char_p, [], None, ()),
    "pg_abi_version": (c_uint32, [], None, ()),
    # errors, logging, memory
    "pg_status_string": (c_char_p, [c_status], None, ()),
    "pg_last_error": (c_char_p, [], None, ()),
    "pg_set_log_callback": (None, [pg_log_fn, c_void_p, c_int32], None, ()),
    "pg_free": (None, [c_void_p], None, ()),
    # models
    "pg_model_options_init": (None, [POINTER(pg_model_options), c_size_t], None, ()),
    "pg_model_load": (c_status, [POINTER(p_model), c_char_p, POINTER(pg_model_options)],
                      _THREAD, ()),
    "pg_model_free": (None, [p_model], None, ()),
    "pg_model_get_info": (c_status, [p_model, POINTER(pg_model_info)], _THREAD, ()),
    "pg_model_tokenizer": (p_tok, [p_model], None, ()),
    # tokenizer
    "pg_tokenizer_load": (c_status, [POINTER(p_tok), c_char_p], _THREAD, ()),
    "pg_tokenizer_free": (None, [p_tok], None, ()),
    "pg_tokenize": (c_status, [p_tok, c_char_p, c_size_t, c_uint32, POINTER(c_int32), c_size_t,
                               POINTER(c_size_t)], _THREAD, (PG_ERR_LIMIT,)),
    "pg_detokenize": (c_status, [p_tok, POINTER(c_int32), c_size_t, c_uint32, POINTER(c_char),
                                 c_size_t, POINTER(c_size_t)], _THREAD, (PG_ERR_LIMIT,)),
    "pg_token_to_piece": (c_status, [p_tok, c_int32, POINTER(c_char), c_size_t,
                                     POINTER(c_size_t)], _THREAD, (PG_ERR_LIMIT,)),
    "pg_piece_to_token": (c_status, [p_tok, c_char_p, c_size_t, POINTER(c_int32)], _THREAD, ()),
    "pg_tokenizer_vocab_size": (c_uint32, [p_tok], None, ()),
    "pg_tokenizer_special_id": (c_int32, [p_tok, c_int32], None, ()),
    # images
    "pg_image_options_init": (None, [POINTER(pg_image_options), c_size_t], None, ()),
    "pg_image_load_file": (c_status, [POINTER(p_image), c_char_p, POINTER(pg_image_options)],
                           _THREAD, ()),
    "pg_image_load_memory": (c_status, [POINTER(p_image), c_void_p, c_size_t,
                                        POINTER(pg_image_options)], _THREAD, ()),
    "pg_image_from_pixels": (c_status, [POINTER(p_image), c_void_p, c_uint32, c_uint32, c_size_t,
                                        c_int32, POINTER(pg_image_options)], _THREAD, ()),
    "pg_image_free": (None, [p_image], None, ()),
    "pg_image_width": (c_uint32, [p_image], None, ()),
    "pg_image_height": (c_uint32, [p_image], None, ()),
    "pg_image_pixels": (POINTER(c_uint8), [p_image], None, ()),
    "pg_image_preprocess": (c_status, [p_image, c_uint32, c_int32, POINTER(c_float), c_size_t],
                            _THREAD, ()),
    # sessions and generation
    "pg_session_options_init": (None, [POINTER(pg_session_options), c_size_t], None, ()),
    "pg_session_new": (c_status, [POINTER(p_session), p_model, POINTER(pg_session_options)],
                       _THREAD, ()),
    "pg_session_free": (None, [p_session], None, ()),
    "pg_session_set_image": (c_status, [p_session, p_image], _SESSION, ()),
    "pg_session_set_prompt": (c_status, [p_session, c_char_p, c_size_t], _SESSION, ()),
    "pg_session_set_prompt_ids": (c_status, [p_session, POINTER(c_int32), c_size_t], _SESSION,
                                  ()),
    "pg_session_prefill": (c_status, [p_session], _SESSION, ()),
    "pg_session_feed": (c_status, [p_session, POINTER(c_int32), c_size_t], _SESSION, ()),
    "pg_session_logits": (c_status, [p_session, POINTER(POINTER(c_float)), POINTER(c_size_t)],
                          _SESSION, ()),
    "pg_generate_options_init": (None, [POINTER(pg_generate_options), c_size_t], None, ()),
    "pg_session_generate": (c_status, [p_session, POINTER(pg_generate_options)], _SESSION, ()),
    "pg_session_text": (POINTER(c_char), [p_session, POINTER(c_size_t)], None, ()),
    "pg_session_output_ids": (POINTER(c_int32), [p_session, POINTER(c_size_t)], None, ()),
    "pg_session_prompt_ids": (POINTER(c_int32), [p_session, POINTER(c_size_t)], None, ()),
    "pg_session_stop_reason": (c_int32, [p_session], None, ()),
    "pg_session_get_timings": (c_status, [p_session, POINTER(pg_timings)], _SESSION, ()),
    "pg_session_get_tensor": (c_status, [p_session, c_int32, POINTER(POINTER(c_float)),
                                         POINTER(c_int64), POINTER(c_int32)], _SESSION, ()),
    "pg_session_interrupt": (None, [p_session], None, ()),
    "pg_session_reset": (c_status, [p_session], _SESSION, ()),
    "pg_session_last_error": (c_char_p, [p_session], None, ()),
    # output post-processing
    "pg_detections_parse": (c_status, [POINTER(p_detections), POINTER(c_char), c_size_t,
                                       c_uint32, c_uint32], _THREAD, ()),
    "pg_detections_count": (c_size_t, [p_detections], None, ()),
    "pg_detections_get": (c_status, [p_detections, c_size_t, POINTER(pg_detection_info)],
                          _THREAD, ()),
    "pg_detections_free": (None, [p_detections], None, ()),
    # several images per prompt (0.2)
    "pg_session_set_images": (c_status, [p_session, POINTER(p_image), c_size_t], _SESSION, ()),
    # batches (0.2)
    "pg_batch_options_init": (None, [POINTER(pg_batch_options), c_size_t], None, ()),
    "pg_batch_new": (c_status, [POINTER(p_batch), p_model, POINTER(pg_batch_options)], _THREAD,
                     ()),
    "pg_batch_free": (None, [p_batch], None, ()),
    "pg_batch_add": (c_status, [p_batch, p_session, POINTER(pg_generate_options)], _THREAD,
                     ()),
    "pg_batch_remove": (c_status, [p_batch, p_session], _THREAD, (PG_ERR_NOT_FOUND,)),
    "pg_batch_step": (c_status, [p_batch, POINTER(c_uint32)], _THREAD, ()),
    "pg_batch_take_finished": (c_status, [p_batch, c_uint32, POINTER(p_session), POINTER(c_int)],
                               _THREAD, (PG_ERR_NOT_FOUND,)),
    "pg_batch_wait": (c_status, [p_batch, c_uint32, POINTER(c_uint32)], _THREAD, ()),
    "pg_batch_wake": (None, [p_batch], None, ()),
    "pg_batch_count": (c_uint32, [p_batch], None, ()),
    # catalogue: pg index (0.2)
    "pg_index_options_init": (None, [POINTER(pg_index_options), c_size_t], None, ()),
    "pg_index_run": (c_status, [p_model, POINTER(c_char_p), c_size_t, POINTER(pg_index_options),
                                POINTER(pg_index_stats)], _THREAD, ()),
    "pg_index_search": (c_status, [c_char_p, c_char_p, c_uint32, pg_index_hit_fn, c_void_p],
                        _THREAD, ()),
    "pg_index_db_init": (c_status, [c_char_p], _THREAD, ()),
    "pg_index_hash_file": (c_status, [c_char_p, POINTER(c_char), c_size_t], _THREAD, ()),
    "pg_index_model_id": (c_status, [p_model, POINTER(c_char), c_size_t], _THREAD, ()),
    # segmentation masks and answer status (0.2, issue 14)
    "pg_detections_status": (c_status, [p_detections], _THREAD, (PG_ERR_FORMAT,)),
    "pg_detections_problem_count": (c_size_t, [p_detections], None, ()),
    "pg_mask_decoder_load": (c_status, [POINTER(p_mask_decoder), c_char_p], _THREAD, ()),
    "pg_mask_decoder_free": (None, [p_mask_decoder], None, ()),
    "pg_mask_decode_logits": (c_status, [p_mask_decoder, POINTER(c_int32), c_size_t,
                                         POINTER(c_float), c_size_t], _THREAD, ()),
    "pg_detections_mask": (c_status, [p_detections, c_size_t, p_mask_decoder, POINTER(c_float),
                                      POINTER(c_uint8), c_size_t, POINTER(c_uint32)],
                           _THREAD, ()),
}


class Status(enum.IntEnum):
    """``pg_status`` codes (permanent values)."""

    OK = PG_OK
    INVALID_ARGUMENT = PG_ERR_INVALID_ARGUMENT
    OUT_OF_MEMORY = PG_ERR_OUT_OF_MEMORY
    IO = PG_ERR_IO
    FORMAT = PG_ERR_FORMAT
    LIMIT = PG_ERR_LIMIT
    BAD_STATE = PG_ERR_BAD_STATE
    UNSUPPORTED = PG_ERR_UNSUPPORTED
    CANCELLED = PG_ERR_CANCELLED
    BACKEND = PG_ERR_BACKEND
    INTERNAL = PG_ERR_INTERNAL
    NOT_FOUND = PG_ERR_NOT_FOUND
    INVALID_UTF8 = PG_ERR_INVALID_UTF8


class PaliGemmaError(Exception):
    """A libpaligemma call failed.

    Attributes:
        status: the ``pg_status`` code as a :class:`Status` (a plain int for a code this
            binding does not know, from a newer library).
        status_name: the library's short text for the status (``pg_status_string``).
        message: the library's detailed message (``pg_last_error`` or
            ``pg_session_last_error``), possibly empty.
        function: the C function that failed.
    """

    def __init__(self, status: int, message: str, function: str = "",
                 status_name: str = "") -> None:
        try:
            self.status: int = Status(int(status))
        except ValueError:
            self.status = int(status)
        self.message = message
        self.function = function
        self.status_name = status_name
        text = message or status_name or "status %d" % self.status
        super().__init__("%s (%s, status %d)" % (text, status_name or "error", self.status)
                         if status_name else text)


def _decode(raw: Optional[bytes]) -> str:
    return raw.decode("utf-8", "replace") if raw else ""


def _make_errcheck(lib: ctypes.CDLL, name: str, source: str,
                   tolerated: Sequence[int]) -> Callable[..., Any]:
    """An errcheck hook turning a non-zero pg_status into PaliGemmaError.

    The message is read right away, on the calling thread, before any other library call can
    replace it.
    """
    status_string = lib.pg_status_string
    last_error = lib.pg_last_error
    session_last_error = getattr(lib, "pg_session_last_error", None)

    def errcheck(result: int, func: Any, args: Tuple[Any, ...]) -> int:
        if result == PG_OK or result in tolerated:
            return result
        if source == _SESSION and session_last_error is not None and args and args[0]:
            message = _decode(session_last_error(args[0]))
        else:
            message = _decode(last_error())
        raise PaliGemmaError(result, message, name, _decode(status_string(result)))

    return errcheck


def _candidates() -> List[str]:
    found: List[str] = []
    env = os.environ.get("PALIGEMMA_LIBRARY")
    if env:
        found.append(env)
    here = os.path.dirname(os.path.abspath(__file__))
    for local in (SONAME, "libpaligemma.so"):
        path = os.path.join(here, local)
        if os.path.exists(path):
            found.append(path)
    system = ctypes.util.find_library("paligemma")
    if system:
        found.append(system)
    found.append(SONAME)
    return found


def _open() -> Tuple[ctypes.CDLL, str]:
    errors = []
    env = os.environ.get("PALIGEMMA_LIBRARY")
    for candidate in _candidates():
        try:
            return ctypes.CDLL(candidate), candidate
        except OSError as exc:
            if env and candidate == env:
                # An explicit choice that fails is an error, not a reason to look elsewhere.
                raise ImportError("PALIGEMMA_LIBRARY=%s cannot be loaded: %s" % (env, exc))
            errors.append("%s: %s" % (candidate, exc))
    raise ImportError("libpaligemma not found (set PALIGEMMA_LIBRARY to its path); tried: "
                      + "; ".join(errors))


def _declare(lib: ctypes.CDLL) -> None:
    missing = []
    # The error readers first: every errcheck hook uses them.
    order = ["pg_status_string", "pg_last_error", "pg_session_last_error"]
    order += [n for n in FUNCTIONS if n not in order]
    for name in order:
        restype, argtypes, source, tolerated = FUNCTIONS[name]
        try:
            func = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        func.restype = restype
        func.argtypes = argtypes
        if source is not None:
            func.errcheck = _make_errcheck(lib, name, source, tolerated)
    # A library of the same ABI but an older minor release may lack newer functions: calling
    # one then fails with AttributeError naming the symbol; the rest works.
    MISSING[:] = missing


def _load() -> Tuple[ctypes.CDLL, str]:
    lib, path = _open()
    try:
        abi = lib.pg_abi_version
    except AttributeError:
        raise ImportError("%s is not libpaligemma (no pg_abi_version)" % path)
    abi.restype = c_uint32
    abi.argtypes = []
    if abi() != ABI_VERSION:
        raise ImportError("%s has ABI version %d, this binding needs %d"
                          % (path, abi(), ABI_VERSION))
    return lib, path


#: Functions of FUNCTIONS that the loaded library does not export.
MISSING: List[str] = []

lib, LIBRARY_PATH = _load()
_declare(lib)

__all__ = ["lib", "LIBRARY_PATH", "ABI_VERSION", "FUNCTIONS", "STRUCTS", "MISSING",
           "PaliGemmaError", "Status"]
