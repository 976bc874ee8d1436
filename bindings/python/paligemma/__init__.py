"""Python bindings for libpaligemma: PaliGemma 2 vision-language inference on CPUs.

A pure-Python package over ctypes (no compiler needed). Typical use::

    import paligemma

    with paligemma.Model("paligemma2-3b-ft-docci-448", threads=8) as model:
        with paligemma.Session(model) as session:
            session.set_image("cat.jpg")
            print(session.caption())
            print(session.ask("what is the cat doing?"))
            for piece in session.stream("describe en", max_new_tokens=64):
                print(piece, end="", flush=True)

Every failing library call raises :class:`PaliGemmaError` carrying the status code and the
library's message. Objects release their C resources with ``close()`` (idempotent), on leaving a
``with`` block, or, as a fallback, when garbage-collected. A model lives on in C until its last
session is freed, so models and sessions may be closed in any order.

Threads: a :class:`Model` may be shared by sessions on several threads; a :class:`Session` is used
by one thread at a time (a second concurrent call raises ``PaliGemmaError`` with
``PG_ERR_BAD_STATE``). Token callbacks run on the thread that called :meth:`Session.generate`.
Ctrl-C during generation interrupts the library promptly (between layers or tokens) and raises
:class:`KeyboardInterrupt`; the session stays usable.

See docs/python.md for the guide.
"""

from __future__ import annotations

import ctypes
import enum
import os
import queue
import signal
import threading
from ctypes import POINTER, byref, c_char_p, c_float, c_int32, c_int64, c_size_t
from dataclasses import dataclass
from typing import (TYPE_CHECKING, Any, Callable, Iterator, List, Optional, Sequence, Tuple,
                    Union)

from . import _ffi
from ._ffi import ABI_VERSION, LIBRARY_PATH, PaliGemmaError, Status, lib

if TYPE_CHECKING:  # pragma: no cover
    import numpy

__all__ = [
    "ABI_VERSION", "LIBRARY_PATH", "PaliGemmaError", "Status", "StopReason", "DType",
    "Model", "ModelInfo", "Session", "Image", "Tokenizer", "Token", "Timings",
    "version", "version_number", "abi_version", "status_string", "set_log_callback",
    "Detection", "parse_detections", "Batch", "BatchResult",
    "MaskDecoder", "Segment", "segment_answer",
]

__version__ = "0.1.0"

PathLike = Union[str, "os.PathLike[str]"]
#: What :meth:`Session.set_image` accepts.
ImageLike = Union["Image", PathLike, bytes, bytearray, memoryview, Any]


class StopReason(enum.IntEnum):
    """Why the last generation stopped (``PG_STOP_*``)."""

    NONE = _ffi.PG_STOP_NONE
    EOS = _ffi.PG_STOP_EOS
    MAX_TOKENS = _ffi.PG_STOP_MAX_TOKENS
    STRING = _ffi.PG_STOP_STRING
    CALLBACK = _ffi.PG_STOP_CALLBACK
    INTERRUPT = _ffi.PG_STOP_INTERRUPT
    CONTEXT = _ffi.PG_STOP_CONTEXT


class DType(enum.IntEnum):
    """Weight / KV-cache data types (``PG_DTYPE_*``)."""

    AUTO = _ffi.PG_DTYPE_AUTO
    F32 = _ffi.PG_DTYPE_F32
    F16 = _ffi.PG_DTYPE_F16
    BF16 = _ffi.PG_DTYPE_BF16
    Q8 = _ffi.PG_DTYPE_Q8
    Q4 = _ffi.PG_DTYPE_Q4


def _dtype_value(value: Union[None, str, int]) -> int:
    """Accepts None, a DType, an int or a name such as "q8" / "bf16"."""
    if value is None:
        return DType.AUTO
    if isinstance(value, str):
        try:
            return DType[value.upper()]
        except KeyError:
            raise ValueError("unknown dtype %r (use one of %s)"
                             % (value, ", ".join(d.name.lower() for d in DType))) from None
    return int(value)


def _text(raw: Optional[bytes]) -> str:
    return raw.decode("utf-8", "replace") if raw else ""


def _int32_array(ids: Sequence[int]) -> Tuple[Any, int]:
    """A ctypes int32 array of token ids (never empty, so it is a valid pointer) and its
    length. Values outside int32 raise instead of wrapping around silently."""
    values = [int(i) for i in ids]
    for v in values:
        if not -2**31 <= v < 2**31:
            raise OverflowError("token id %d does not fit in int32" % v)
    return (c_int32 * max(len(values), 1))(*values), len(values)


def _path_bytes(path: PathLike) -> bytes:
    return os.fsencode(os.fspath(path))


def version() -> str:
    """The version of the loaded library, e.g. ``"0.1.0"``."""
    return _text(lib.pg_version_string())


def version_number() -> int:
    """``PG_VERSION_NUMBER`` of the loaded library (major*10000 + minor*100 + patch)."""
    return int(lib.pg_version_number())


def abi_version() -> int:
    """``PG_ABI_VERSION`` of the loaded library (equals :data:`ABI_VERSION`)."""
    return int(lib.pg_abi_version())


def status_string(status: int) -> str:
    """The library's short English text for a status code."""
    return _text(lib.pg_status_string(int(status)))


# ---------------------------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------------------------

LogCallback = Callable[[int, str], None]
_global_log: Optional[Any] = None  # keeps the process-wide CFUNCTYPE alive


def _make_log_trampoline(fn: LogCallback) -> Any:
    def trampoline(_user: Any, level: int, message: Optional[bytes]) -> None:
        try:
            fn(int(level), _text(message))
        except BaseException:  # a log sink must never unwind through C
            pass

    return _ffi.pg_log_fn(trampoline)


def set_log_callback(fn: Optional[LogCallback], max_level: int = _ffi.PG_LOG_WARN) -> None:
    """Sets the process-wide log sink ``fn(level, message)`` (None disables logging).

    Levels: 1 error, 2 warning, 3 info, 4 debug; messages above ``max_level`` are dropped.
    Exceptions raised by ``fn`` are ignored. Set it once at start-up (not thread-safe with
    respect to concurrent logging).
    """
    global _global_log
    if fn is None:
        lib.pg_set_log_callback(_ffi.pg_log_fn(), None, 0)
        _global_log = None
        return
    cb = _make_log_trampoline(fn)
    lib.pg_set_log_callback(cb, None, int(max_level))
    _global_log = cb  # replaced only after the library stopped using the old one


# ---------------------------------------------------------------------------------------------
# Handles
# ---------------------------------------------------------------------------------------------


class _Handle:
    """Common close()/context-manager behaviour of the wrappers of C handles."""

    _h: Any = None
    _free_name = ""

    def _ptr(self) -> Any:
        if not self._h:
            raise ValueError("%s is closed" % type(self).__name__)
        return self._h

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return not self._h

    def close(self) -> None:
        """Releases the C object. Safe to call more than once."""
        h, self._h = self._h, None
        if h:
            getattr(lib, self._free_name)(h)

    def __enter__(self) -> Any:
        self._ptr()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # fallback only: prefer close() / with
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may already be gone
            pass


# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------


class Tokenizer(_Handle):
    """A SentencePiece/Gemma tokenizer: standalone (``Tokenizer(path)``) or a model's own
    (:attr:`Model.tokenizer`, which lives as long as that model)."""

    _free_name = "pg_tokenizer_free"

    def __init__(self, path: PathLike) -> None:
        """Loads ``tokenizer.model`` / ``tokenizer.json`` or a model folder holding one."""
        self._owner: Optional[Model] = None
        h = POINTER(_ffi.pg_tokenizer)()
        lib.pg_tokenizer_load(byref(h), _path_bytes(path))
        self._h = h

    @classmethod
    def _borrowed(cls, owner: "Model", h: Any) -> "Tokenizer":
        self = cls.__new__(cls)
        self._owner = owner
        self._h = h
        return self

    def _ptr(self) -> Any:
        if self._owner is not None:
            self._owner._ptr()  # a borrowed tokenizer dies with its model
        return super()._ptr()

    def close(self) -> None:
        """Frees a standalone tokenizer; for a model's tokenizer only drops this wrapper."""
        if self._owner is not None:
            self._h = None
            return
        super().close()

    def tokenize(self, text: Union[str, bytes], *, add_bos: bool = False,
                 parse_special: bool = True) -> List[int]:
        """Encodes text to token ids.

        Args:
            text: a str, or UTF-8 bytes (invalid sequences become U+FFFD, NULs allowed).
            add_bos: prepend ``<bos>``.
            parse_special: recognise control-token text such as ``"<eos>"`` in the input
                (Hugging Face behaviour); False treats it as plain text (SentencePiece).
        """
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        flags = (_ffi.PG_TOKENIZE_ADD_BOS if add_bos else 0) | \
            (0 if parse_special else _ffi.PG_TOKENIZE_NO_PARSE_SPECIAL)
        h = self._ptr()
        cap = len(data) + 8
        while True:
            buf = (c_int32 * cap)()
            n = c_size_t()
            status = lib.pg_tokenize(h, data, len(data), flags, buf, cap, byref(n))
            if status == _ffi.PG_OK and n.value <= cap:
                return list(buf[:n.value])
            cap = _grow(cap, n.value, "pg_tokenize")

    encode = tokenize

    def detokenize(self, ids: Sequence[int], *, skip_special: bool = False) -> str:
        """Decodes ids to text (byte pieces reassembled, invalid UTF-8 replaced by U+FFFD)."""
        return _text(self.detokenize_bytes(ids, skip_special=skip_special))

    decode = detokenize

    def detokenize_bytes(self, ids: Sequence[int], *, skip_special: bool = False) -> bytes:
        """Like :meth:`detokenize` but returns the library's UTF-8 bytes."""
        arr, n_ids = _int32_array(ids)
        flags = _ffi.PG_DETOKENIZE_SKIP_SPECIAL if skip_special else 0
        h = self._ptr()
        cap = 16 * n_ids + 16
        while True:
            buf = ctypes.create_string_buffer(cap)
            n = c_size_t()
            status = lib.pg_detokenize(h, arr, n_ids, flags, buf, cap, byref(n))
            if status == _ffi.PG_OK and n.value <= cap:
                return buf.raw[:n.value]
            cap = _grow(cap, n.value + 1, "pg_detokenize")

    def piece(self, token_id: int) -> str:
        """The piece text of an id, e.g. ``"▁cat"`` or ``"<loc0012>"``."""
        h = self._ptr()
        cap = 64
        while True:
            buf = ctypes.create_string_buffer(cap)
            n = c_size_t()
            status = lib.pg_token_to_piece(h, int(token_id), buf, cap, byref(n))
            if status == _ffi.PG_OK and n.value <= cap:
                return _text(buf.raw[:n.value])
            cap = _grow(cap, n.value + 1, "pg_token_to_piece")

    def token_id(self, piece: str) -> int:
        """The id of a piece given by its exact text (PaliGemmaError NOT_FOUND if none)."""
        data = piece.encode("utf-8")
        out = c_int32()
        lib.pg_piece_to_token(self._ptr(), data, len(data), byref(out))
        return int(out.value)

    @property
    def vocab_size(self) -> int:
        """Number of pieces."""
        return int(lib.pg_tokenizer_vocab_size(self._ptr()))

    def special_id(self, kind: int) -> Optional[int]:
        """The id of a ``PG_TOKEN_*`` kind (e.g. ``_ffi.PG_TOKEN_EOS``), None when absent."""
        value = int(lib.pg_tokenizer_special_id(self._ptr(), int(kind)))
        return None if value < 0 else value

    @property
    def bos_id(self) -> Optional[int]:
        return self.special_id(_ffi.PG_TOKEN_BOS)

    @property
    def eos_id(self) -> Optional[int]:
        return self.special_id(_ffi.PG_TOKEN_EOS)

    @property
    def image_id(self) -> Optional[int]:
        return self.special_id(_ffi.PG_TOKEN_IMAGE)


def _grow(cap: int, needed: int, name: str) -> int:
    """The next buffer size after a size query; guards against a library that never fits."""
    if needed <= cap:
        raise PaliGemmaError(_ffi.PG_ERR_INTERNAL,
                             "%s reported a too-small buffer but needs only %d bytes/items"
                             % (name, needed), name, status_string(_ffi.PG_ERR_INTERNAL))
    return needed


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------


def _image_options(no_exif_rotate: bool, max_dimension: int,
                   max_pixels: int) -> "_ffi.pg_image_options":
    opts = _ffi.pg_image_options()
    lib.pg_image_options_init(byref(opts), ctypes.sizeof(opts))
    if no_exif_rotate:
        opts.flags |= _ffi.PG_IMAGE_NO_EXIF_ROTATE
    opts.max_dimension = max_dimension
    opts.max_pixels = max_pixels
    return opts


_PIXEL_FORMATS = {1: _ffi.PG_PIXEL_GRAY8, 3: _ffi.PG_PIXEL_RGB8, 4: _ffi.PG_PIXEL_RGBA8}


class Image(_Handle):
    """A decoded, validated RGB image (``pg_image``), reusable across sessions and prompts.

    Build one with :meth:`open`, :meth:`from_bytes`, :meth:`from_array`, :meth:`from_pil` or
    :meth:`from_pixels`; or pass any of those inputs straight to :meth:`Session.set_image`.
    """

    _free_name = "pg_image_free"

    def __init__(self, source: ImageLike) -> None:
        """Makes an image from a path, encoded bytes, a PIL image or a numpy array."""
        made = _coerce_image(source)
        if made is source:  # an Image: share nothing, decode nothing
            raise TypeError("Image(Image) is not supported; reuse the Image itself")
        self._h, made._h = made._h, None

    @classmethod
    def _wrap(cls, h: Any) -> "Image":
        self = cls.__new__(cls)
        self._h = h
        return self

    @classmethod
    def open(cls, path: PathLike, *, no_exif_rotate: bool = False, max_dimension: int = 0,
             max_pixels: int = 0) -> "Image":
        """Decodes a JPEG or PNG file (EXIF orientation applied unless ``no_exif_rotate``)."""
        h = POINTER(_ffi.pg_image)()
        lib.pg_image_load_file(byref(h), _path_bytes(path),
                               byref(_image_options(no_exif_rotate, max_dimension, max_pixels)))
        return cls._wrap(h)

    @classmethod
    def from_bytes(cls, data: Union[bytes, bytearray, memoryview], *,
                   no_exif_rotate: bool = False, max_dimension: int = 0,
                   max_pixels: int = 0) -> "Image":
        """Decodes a JPEG or PNG held in memory."""
        buf = bytes(data)
        h = POINTER(_ffi.pg_image)()
        lib.pg_image_load_memory(byref(h), buf, len(buf),
                                 byref(_image_options(no_exif_rotate, max_dimension,
                                                      max_pixels)))
        return cls._wrap(h)

    @classmethod
    def from_pixels(cls, pixels: Union[bytes, bytearray, memoryview], width: int, height: int,
                    pixel_format: int = _ffi.PG_PIXEL_RGB8, stride: int = 0) -> "Image":
        """Copies raw 8-bit pixels (``PG_PIXEL_*`` layout; stride 0 = rows packed)."""
        buf = bytes(pixels)
        h = POINTER(_ffi.pg_image)()
        lib.pg_image_from_pixels(byref(h), buf, int(width), int(height), int(stride),
                                 int(pixel_format), None)
        return cls._wrap(h)

    @classmethod
    def from_array(cls, array: "numpy.ndarray") -> "Image":
        """Copies a numpy ``uint8`` array: HxWx3 (RGB), HxWx4 (RGBA, alpha dropped) or
        HxW / HxWx1 (gray)."""
        import numpy as np

        a = np.asarray(array)
        if a.dtype != np.uint8:
            raise TypeError("image arrays must be uint8, not %s" % a.dtype)
        if a.ndim == 2:
            a = a[:, :, None]
        if a.ndim != 3 or a.shape[2] not in _PIXEL_FORMATS:
            raise ValueError("image arrays must be HxWx3, HxWx4 or HxW, not %s" % (a.shape,))
        a = np.ascontiguousarray(a)  # kept alive for the call; the library copies it
        h = POINTER(_ffi.pg_image)()
        lib.pg_image_from_pixels(byref(h), a.ctypes.data_as(ctypes.c_void_p), a.shape[1],
                                 a.shape[0], 0, _PIXEL_FORMATS[a.shape[2]], None)
        return cls._wrap(h)

    @classmethod
    def from_pil(cls, image: Any) -> "Image":
        """Copies a Pillow image (converted to RGB like ``image.convert("RGB")``; EXIF
        orientation is not applied, as Pillow does not apply it either)."""
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        return cls.from_pixels(rgb.tobytes(), rgb.width, rgb.height, _ffi.PG_PIXEL_RGB8)

    @property
    def width(self) -> int:
        return int(lib.pg_image_width(self._ptr()))

    @property
    def height(self) -> int:
        return int(lib.pg_image_height(self._ptr()))

    @property
    def size(self) -> Tuple[int, int]:
        """(width, height), as in Pillow."""
        return self.width, self.height

    def to_array(self) -> "numpy.ndarray":
        """A copy of the decoded pixels as a numpy HxWx3 uint8 array."""
        import numpy as np

        h = self._ptr()
        w, ht = self.width, self.height
        ptr = lib.pg_image_pixels(h)
        return np.ctypeslib.as_array(ptr, (ht, w, 3)).copy()

    def to_bytes(self) -> bytes:
        """The decoded RGB pixels, rows packed (width*3 bytes each)."""
        h = self._ptr()
        return ctypes.string_at(lib.pg_image_pixels(h), self.width * self.height * 3)

    def preprocess(self, size: int, method: int = _ffi.PG_RESIZE_BICUBIC_PIL) -> "numpy.ndarray":
        """The model input: a float32 array of shape (3, size, size) scaled to [-1, 1]."""
        import numpy as np

        out = np.empty((3, size, size), dtype=np.float32)
        lib.pg_image_preprocess(self._ptr(), int(size), int(method),
                                out.ctypes.data_as(POINTER(c_float)), out.size)
        return out


def _is_pil(obj: Any) -> bool:
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "tobytes")


def _coerce_image(source: ImageLike) -> Image:
    """An Image for any accepted input (the same object when it already is one)."""
    if isinstance(source, Image):
        return source
    if isinstance(source, (str, os.PathLike)):
        return Image.open(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return Image.from_bytes(source)
    if _is_pil(source):
        return Image.from_pil(source)
    if hasattr(source, "__array_interface__") or hasattr(source, "__array__"):
        return Image.from_array(source)
    raise TypeError("set_image takes a path, encoded bytes, a PIL image, a numpy HxWx3 uint8 "
                    "array or a paligemma.Image, not %s" % type(source).__name__)


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    """Facts about a loaded model (``pg_model_info``)."""

    variant: str
    image_size: int
    patch_size: int
    image_tokens: int
    vocab_size: int
    text_layers: int
    text_hidden: int
    text_heads: int
    text_kv_heads: int
    text_head_dim: int
    text_ffn: int
    vision_layers: int
    vision_hidden: int
    vision_heads: int
    vision_ffn: int
    sliding_window: int
    weight_dtype: int
    n_params: int
    weight_bytes: int


ProgressCallback = Callable[[float], Optional[bool]]


class Model(_Handle):
    """A loaded PaliGemma 2 model (``pg_model``): immutable, shareable across threads."""

    _free_name = "pg_model_free"

    def __init__(self, path: PathLike, *, threads: int = 0, backend: Optional[str] = None,
                 weight_dtype: Union[None, str, int] = None, tokenizer_only: bool = False,
                 prefault: bool = False, quant_cache: bool = True,
                 log: Optional[LogCallback] = None, log_level: int = _ffi.PG_LOG_WARN,
                 progress: Optional[ProgressCallback] = None) -> None:
        """Loads a model from a Hugging Face model folder (weights are memory-mapped).

        Args:
            path: the folder holding config.json, the tokenizer and the safetensors files.
            threads: compute threads; 0 = one per online CPU.
            backend: ``"cpu"`` (default) or ``"ref"`` (scalar reference, slow).
            weight_dtype: None / ``"auto"`` (as stored), ``"q8"`` or ``"q4"`` (quantize).
            tokenizer_only: load only config.json and the tokenizer.
            prefault: touch every weight page at load.
            quant_cache: allow the quantized-weight cache file next to the model.
            log: a log sink ``log(level, message)`` for this model (default: the process-wide
                one set by :func:`set_log_callback`).
            log_level: the most verbose level delivered to ``log``.
            progress: ``progress(fraction)`` during load; return True to abort. Exceptions
                raised by it abort the load and are re-raised here.

        Raises:
            PaliGemmaError: with the library's message naming the file and tensor at fault.
        """
        self._log_cb: Any = None  # lives as long as this object (sessions keep it alive)
        opts = _ffi.pg_model_options()
        lib.pg_model_options_init(byref(opts), ctypes.sizeof(opts))
        backend_bytes = backend.encode("utf-8") if backend is not None else None
        opts.backend = backend_bytes
        opts.n_threads = int(threads)
        opts.weight_dtype = _dtype_value(weight_dtype)
        if tokenizer_only:
            opts.flags |= _ffi.PG_MODEL_TOKENIZER_ONLY
        if prefault:
            opts.flags |= _ffi.PG_MODEL_PREFAULT
        if not quant_cache:
            opts.flags |= _ffi.PG_MODEL_NO_QUANT_CACHE
        if log is not None:
            self._log_cb = _make_log_trampoline(log)
            opts.log_fn = self._log_cb
            opts.log_level = int(log_level)
        failure: List[BaseException] = []
        progress_cb = None
        if progress is not None:
            def on_progress(_user: Any, fraction: float) -> int:
                try:
                    return 1 if progress(float(fraction)) else 0
                except BaseException as exc:  # stored, re-raised after the load returns
                    failure.append(exc)
                    return 1

            progress_cb = _ffi.pg_progress_fn(on_progress)
            opts.progress_fn = progress_cb
        h = POINTER(_ffi.pg_model)()
        try:
            lib.pg_model_load(byref(h), _path_bytes(path), byref(opts))
        except PaliGemmaError:
            if failure:
                raise failure[0] from None
            raise
        self._h = h
        self.path = os.fspath(path)
        self._tokenizer: Optional[Tokenizer] = None

    @property
    def info(self) -> ModelInfo:
        """The model's variant and shapes (``pg_model_get_info``)."""
        raw = _ffi.pg_model_info()
        raw.struct_size = ctypes.sizeof(raw)
        lib.pg_model_get_info(self._ptr(), byref(raw))
        values = {name: getattr(raw, name) for name, _ in raw._fields_ if name != "struct_size"}
        values["variant"] = _text(raw.variant)
        return ModelInfo(**values)

    @property
    def tokenizer(self) -> Tokenizer:
        """The model's tokenizer (raises PaliGemmaError NOT_FOUND if the folder had none)."""
        if self._tokenizer is None or self._tokenizer.closed:
            h = lib.pg_model_tokenizer(self._ptr())
            if not h:
                raise PaliGemmaError(_ffi.PG_ERR_NOT_FOUND,
                                     "the model %s has no tokenizer" % self.path,
                                     "pg_model_tokenizer", status_string(_ffi.PG_ERR_NOT_FOUND))
            self._tokenizer = Tokenizer._borrowed(self, h)
        return self._tokenizer

    def tokenize(self, text: Union[str, bytes], *, add_bos: bool = False,
                 parse_special: bool = True) -> List[int]:
        """Shortcut for ``model.tokenizer.tokenize(...)``."""
        return self.tokenizer.tokenize(text, add_bos=add_bos, parse_special=parse_special)

    def detokenize(self, ids: Sequence[int], *, skip_special: bool = False) -> str:
        """Shortcut for ``model.tokenizer.detokenize(...)``."""
        return self.tokenizer.detokenize(ids, skip_special=skip_special)

    def session(self, **kwargs: Any) -> "Session":
        """A new :class:`Session` on this model (same arguments as ``Session``)."""
        return Session(self, **kwargs)

    def caption_many(self, images: Any, *, batch: int = 0, prompt: str = "caption en",
                     max_new_tokens: Optional[int] = None, ordered: bool = False,
                     **generate: Any) -> Iterator["BatchResult"]:
        """Captions (or runs ``prompt`` on) many images through a :class:`Batch` of
        ``batch`` sessions, yielding a :class:`BatchResult` per image as it finishes
        (input order with ``ordered=True``). Images that fail give a result with
        ``error`` set; the run goes on. Other keywords as :meth:`Session.generate`."""
        return _caption_many(self, images, batch=batch, prompt=prompt,
                             max_new_tokens=max_new_tokens, ordered=ordered, **generate)

    def close(self) -> None:
        """Releases this reference; sessions still open keep the C model alive."""
        if self._h and self._tokenizer is not None:
            self._tokenizer._h = None
        super().close()


# ---------------------------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """One generated token as delivered to an ``on_token`` callback."""

    id: int
    index: int  #: 0 for the first generated token
    text: str  #: the new complete UTF-8 text it adds (may be empty)
    logprob: float
    top: Tuple[Tuple[int, float], ...] = ()  #: (id, logprob) pairs when n_logprobs > 0


@dataclass(frozen=True)
class Timings:
    """Timings of the last prefill/generation in milliseconds (``pg_timings``)."""

    preprocess_ms: float
    vision_ms: float
    prefill_ms: float
    prefill_tokens: int
    decode_ms: float
    decode_tokens: int
    ttft_ms: float
    image_cache_hit: bool


TokenCallback = Callable[[Token], Optional[bool]]


def _token_from_event(ev: "_ffi.pg_token_event") -> Token:
    text = ctypes.string_at(ev.text, ev.text_len) if ev.text_len else b""
    top: Tuple[Tuple[int, float], ...] = ()
    if ev.n_top and ev.top_ids and ev.top_logprobs:
        top = tuple((int(ev.top_ids[i]), float(ev.top_logprobs[i])) for i in range(ev.n_top))
    return Token(int(ev.token_id), int(ev.index), _text(text), float(ev.logprob), top)


class _SigintGuard:
    """Turns Ctrl-C during a long library call into pg_session_interrupt + KeyboardInterrupt.

    Active only on the main thread with Python's default SIGINT handler installed (otherwise
    the application's own handler is left alone). While active, SIGINT is recorded by a
    handler that does not raise, and a wake-up pipe lets a watcher thread call the thread-safe
    pg_session_interrupt() at once, even while the main thread is inside C (no Python code
    runs there until the call returns). After the call, KeyboardInterrupt is raised.
    pg_session_interrupt stops only a running call (each call starts by forgetting earlier
    ones), so a Ctrl-C that lands just after the call finished cannot leak into the next one.
    """

    def __init__(self, session_ptr: Any) -> None:
        self._session = session_ptr
        self.fired = False  # SIGINT arrived while the guard was active
        self.sent = False  # pg_session_interrupt was called for it
        self._in_flight = False
        self._lock = threading.Lock()
        self._active = (threading.current_thread() is threading.main_thread()
                        and signal.getsignal(signal.SIGINT) is signal.default_int_handler)

    def _interrupt(self) -> None:
        with self._lock:
            self.fired = True
            if self._in_flight and not self.sent:
                self.sent = True
                lib.pg_session_interrupt(self._session)

    def _on_sigint(self, _signum: int, _frame: Any) -> None:
        # Runs on the main thread at the next bytecode: inside a token callback (the call is
        # in flight) or after the call. The watcher usually got there first.
        self._interrupt()

    def _watch(self) -> None:
        while True:
            data = os.read(self._rfd, 64)
            if int(signal.SIGINT) in data:
                self._interrupt()
            if not data or 0 in data:
                return

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Calls ``fn(*args)`` (a long library call) under the guard."""
        if self.fired:
            raise KeyboardInterrupt  # Ctrl-C came before the call could start
        with self._lock:
            self._in_flight = True
        try:
            return fn(*args)
        finally:
            with self._lock:
                self._in_flight = False

    def __enter__(self) -> "_SigintGuard":
        if not self._active:
            return self
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._wfd, False)
        self._old_handler = signal.signal(signal.SIGINT, self._on_sigint)
        self._old_fd = signal.set_wakeup_fd(self._wfd)
        self._thread = threading.Thread(target=self._watch, name="paligemma-sigint",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._active:
            signal.set_wakeup_fd(self._old_fd)
            signal.signal(signal.SIGINT, self._old_handler)
            os.write(self._wfd, b"\0")
            self._thread.join()
            os.close(self._rfd)
            os.close(self._wfd)
        if self.fired:
            raise KeyboardInterrupt


_STREAM_END = object()


class Session(_Handle):
    """A conversation state on a model (``pg_session``): image, prompt, KV cache, output.

    One thread at a time. Keep using the same session for several prompts on one image: the
    encoded image is cached.
    """

    _free_name = "pg_session_free"

    def __init__(self, model: Model, *, n_ctx: int = 0,
                 kv_dtype: Union[None, str, int] = None, resize: str = "bicubic",
                 image_cache: int = 0, keep_tensors: bool = False) -> None:
        """Creates a session (which holds a reference on the model).

        Args:
            model: the model.
            n_ctx: KV-cache capacity in tokens; 0 = image tokens + 1024.
            kv_dtype: None (backend default), ``"f32"``, ``"f16"`` or ``"bf16"``.
            resize: ``"bicubic"`` (Pillow BICUBIC, as Hugging Face) or ``"bilinear_tf"``.
            image_cache: encoded images kept; 0 = 4.
            keep_tensors: keep intermediate tensors for :meth:`tensor`.
        """
        methods = {"bicubic": _ffi.PG_RESIZE_BICUBIC_PIL,
                   "bilinear_tf": _ffi.PG_RESIZE_BILINEAR_TF}
        if resize not in methods:
            raise ValueError("resize must be one of %s" % ", ".join(methods))
        opts = _ffi.pg_session_options()
        lib.pg_session_options_init(byref(opts), ctypes.sizeof(opts))
        opts.n_ctx = int(n_ctx)
        opts.kv_dtype = _dtype_value(kv_dtype)
        opts.resize_method = methods[resize]
        opts.image_cache = int(image_cache)
        if keep_tensors:
            opts.flags |= _ffi.PG_SESSION_KEEP_TENSORS
        h = POINTER(_ffi.pg_session)()
        lib.pg_session_new(byref(h), model._ptr(), byref(opts))
        self._h = h
        self.model = model  # keeps the model's Python-side callbacks alive
        self._busy = threading.Lock()

    # -- internal ------------------------------------------------------------------------------

    def _enter_busy(self) -> Any:
        h = self._ptr()
        if not self._busy.acquire(blocking=False):
            raise PaliGemmaError(_ffi.PG_ERR_BAD_STATE,
                                 "the session is in use by another call (one thread at a time)",
                                 "", status_string(_ffi.PG_ERR_BAD_STATE))
        return h

    def _idle_ptr(self) -> Any:
        """The handle for reading results, refused while a call (or a stream) is running."""
        h = self._ptr()
        if self._busy.locked():
            raise PaliGemmaError(_ffi.PG_ERR_BAD_STATE,
                                 "session results cannot be read while a call is running",
                                 "", status_string(_ffi.PG_ERR_BAD_STATE))
        return h

    def _long_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Runs prefill/feed/generate (``args[0]`` is the session) with Ctrl-C handling."""
        sigint = _SigintGuard(args[0])
        with sigint:
            return sigint.run(fn, *args)

    def close(self) -> None:
        """Frees the session. Refused (PaliGemmaError BAD_STATE) while a call is running."""
        if not self._h:
            return
        busy = getattr(self, "_busy", None)
        if busy is not None and not busy.acquire(blocking=False):
            raise PaliGemmaError(_ffi.PG_ERR_BAD_STATE, "close() during a running call", "",
                                 status_string(_ffi.PG_ERR_BAD_STATE))
        try:
            super().close()
        finally:
            if busy is not None:
                busy.release()

    # -- inputs --------------------------------------------------------------------------------

    def set_image(self, image: ImageLike) -> None:
        """Sets the image: a path, encoded JPEG/PNG bytes, a PIL image, a numpy HxWx3 uint8
        array or an :class:`Image`. It is preprocessed now and encoded at the next prefill
        (or taken from the session's image cache). Clears any generation state."""
        img = _coerce_image(image)
        try:
            h = self._enter_busy()
            try:
                lib.pg_session_set_image(h, img._ptr())
            finally:
                self._busy.release()
        finally:
            if img is not image:
                img.close()

    def set_prompt(self, prompt: Union[str, bytes]) -> None:
        """Sets the prompt text, e.g. ``"caption en"`` (the session adds ``<bos>`` and ``\\n``)."""
        data = prompt.encode("utf-8") if isinstance(prompt, str) else bytes(prompt)
        h = self._enter_busy()
        try:
            lib.pg_session_set_prompt(h, data, len(data))
        finally:
            self._busy.release()

    def set_prompt_ids(self, ids: Sequence[int]) -> None:
        """Sets the prompt as ids following the image tokens, verbatim (``<bos>``...``\\n``)."""
        arr, n = _int32_array(ids)
        h = self._enter_busy()
        try:
            lib.pg_session_set_prompt_ids(h, arr, n)
        finally:
            self._busy.release()

    def prefill(self) -> None:
        """Runs the vision tower (if needed) and the prefill now (generate does it anyway)."""
        h = self._enter_busy()
        try:
            self._long_call(lib.pg_session_prefill, h)
        finally:
            self._busy.release()

    def feed(self, ids: Sequence[int]) -> None:
        """Appends tokens (teacher forcing) and computes the logits after the last one."""
        arr, n = _int32_array(ids)
        h = self._enter_busy()
        try:
            self._long_call(lib.pg_session_feed, h, arr, n)
        finally:
            self._busy.release()

    def reset(self) -> None:
        """Clears prompt, KV cache, output and error state (keeps the image cache)."""
        h = self._enter_busy()
        try:
            lib.pg_session_reset(h)
        finally:
            self._busy.release()

    def interrupt(self) -> None:
        """Stops a running prefill/generation soon. The one call allowed from any thread."""
        h = self._h
        if h:
            lib.pg_session_interrupt(h)

    # -- generation ----------------------------------------------------------------------------

    def _generate_options(self, max_new_tokens: Optional[int], temperature: float,
                          top_k: int, top_p: float, seed: int,
                          stop: Union[None, str, Sequence[str]],
                          n_logprobs: int) -> Tuple["_ffi.pg_generate_options", Any]:
        opts = _ffi.pg_generate_options()
        lib.pg_generate_options_init(byref(opts), ctypes.sizeof(opts))
        if max_new_tokens is not None:
            if max_new_tokens < 1:
                raise ValueError("max_new_tokens must be at least 1")
            opts.max_new_tokens = int(max_new_tokens)
        opts.temperature = float(temperature)
        opts.top_k = int(top_k)
        opts.top_p = float(top_p)
        opts.seed = int(seed)
        opts.n_logprobs = int(n_logprobs)
        keep: Any = None
        if stop:
            stops = [stop] if isinstance(stop, str) else list(stop)
            keep = (c_char_p * len(stops))(*[s.encode("utf-8") for s in stops])
            opts.stop_strings = ctypes.cast(keep, POINTER(c_char_p))
            opts.n_stop_strings = len(stops)
        return opts, keep

    def generate(self, prompt: Union[None, str, bytes] = None, *,
                 max_new_tokens: Optional[int] = None, temperature: float = 0.0,
                 top_k: int = 0, top_p: float = 1.0, seed: int = 0,
                 stop: Union[None, str, Sequence[str]] = None,
                 on_token: Optional[TokenCallback] = None, n_logprobs: int = 0,
                 image: Optional[ImageLike] = None) -> str:
        """Generates text after the prompt and returns it.

        Args:
            prompt: the prompt (e.g. ``"caption en"``); None keeps the one set before.
            max_new_tokens: None = the library default (256).
            temperature: 0 = greedy (default); otherwise sampling with ``top_k``/``top_p``.
            top_k: 0 = no top-k cut.  top_p: 1 = no nucleus cut.  seed: the sampling seed.
            stop: a stop string or several; generation ends when one appears.
            on_token: called on this thread with each :class:`Token`; return True to stop.
                An exception raised in it stops generation and is re-raised here.
            n_logprobs: top log-probabilities per step delivered in ``Token.top`` (0..20).
            image: sets the image first (same inputs as :meth:`set_image`).

        Returns:
            the generated text (also in :attr:`text`; ids in :attr:`output_ids`).

        Raises:
            PaliGemmaError: e.g. BAD_STATE without an image, CANCELLED after :meth:`interrupt`.
            KeyboardInterrupt: on Ctrl-C (the session stays usable).
        """
        if image is not None:
            self.set_image(image)
        if prompt is not None:
            self.set_prompt(prompt)
        opts, keep = self._generate_options(max_new_tokens, temperature, top_k, top_p, seed,
                                            stop, n_logprobs)
        failure: List[BaseException] = []
        callback = None
        if on_token is not None:
            def trampoline(_user: Any, event: Any) -> int:
                try:
                    return 1 if on_token(_token_from_event(event.contents)) else 0
                except BaseException as exc:  # stored; re-raised once generate returns
                    failure.append(exc)
                    return 1

            callback = _ffi.pg_token_fn(trampoline)  # alive for the whole call
            opts.on_token = callback
        h = self._enter_busy()
        try:
            try:
                self._long_call(lib.pg_session_generate, h, byref(opts))
            except PaliGemmaError:
                if failure:
                    raise failure[0] from None
                raise
            if failure:
                raise failure[0]
        finally:
            self._busy.release()
        del keep, callback
        return self.text

    def stream(self, prompt: Union[None, str, bytes] = None, *,
               max_new_tokens: Optional[int] = None, temperature: float = 0.0, top_k: int = 0,
               top_p: float = 1.0, seed: int = 0, stop: Union[None, str, Sequence[str]] = None,
               image: Optional[ImageLike] = None) -> Iterator[str]:
        """Like :meth:`generate` but yields the text piece by piece as tokens are produced.

        The generation runs on a helper thread while the calling thread consumes the pieces
        (a C callback cannot yield). Leaving the loop early, or Ctrl-C, interrupts it; the
        session is usable again once the generator is closed.
        """
        if image is not None:
            self.set_image(image)
        if prompt is not None:
            self.set_prompt(prompt)
        opts, keep = self._generate_options(max_new_tokens, temperature, top_k, top_p, seed,
                                            stop, 0)
        pieces: "queue.Queue[Any]" = queue.Queue()

        def on_event(_user: Any, event: Any) -> int:
            ev = event.contents
            if ev.text_len:
                pieces.put(_text(ctypes.string_at(ev.text, ev.text_len)))
            return 0

        callback = _ffi.pg_token_fn(on_event)
        opts.on_token = callback
        h = self._enter_busy()

        def work() -> None:
            try:
                lib.pg_session_generate(h, byref(opts))
                pieces.put(_STREAM_END)
            except BaseException as exc:
                pieces.put(exc)

        worker = threading.Thread(target=work, name="paligemma-stream", daemon=True)
        finished = False
        try:
            worker.start()
            while True:
                try:
                    item = pieces.get(timeout=0.05)  # short waits keep Ctrl-C responsive
                except queue.Empty:
                    continue
                if item is _STREAM_END:
                    finished = True
                    return
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                yield item
        finally:
            if not finished:
                lib.pg_session_interrupt(h)
            worker.join()
            self._busy.release()
            del keep, callback

    def caption(self, image: Optional[ImageLike] = None, *, lang: str = "en",
                max_new_tokens: Optional[int] = None, **kwargs: Any) -> str:
        """``generate("caption <lang>")``, optionally setting the image first."""
        return self.generate("caption %s" % lang, image=image, max_new_tokens=max_new_tokens,
                             **kwargs)

    def ask(self, question: str, image: Optional[ImageLike] = None, *, lang: str = "en",
            max_new_tokens: Optional[int] = None, **kwargs: Any) -> str:
        """``generate("answer <lang> <question>")``, optionally setting the image first."""
        return self.generate("answer %s %s" % (lang, question), image=image,
                             max_new_tokens=max_new_tokens, **kwargs)

    # -- results -------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The text of the last generation."""
        n = c_size_t()
        ptr = lib.pg_session_text(self._idle_ptr(), byref(n))
        return _text(ctypes.string_at(ptr, n.value)) if ptr and n.value else ""

    @property
    def output_ids(self) -> List[int]:
        """The ids of the last generation (EOS excluded)."""
        n = c_size_t()
        ptr = lib.pg_session_output_ids(self._idle_ptr(), byref(n))
        return list(ptr[:n.value]) if ptr and n.value else []

    @property
    def prompt_ids(self) -> List[int]:
        """The whole prompt: image tokens, ``<bos>``, prompt tokens, ``\\n``."""
        n = c_size_t()
        ptr = lib.pg_session_prompt_ids(self._idle_ptr(), byref(n))
        return list(ptr[:n.value]) if ptr and n.value else []

    @property
    def stop_reason(self) -> StopReason:
        """Why the last generation stopped."""
        value = int(lib.pg_session_stop_reason(self._idle_ptr()))
        try:
            return StopReason(value)
        except ValueError:  # a newer library's reason
            return value  # type: ignore[return-value]

    @property
    def timings(self) -> Timings:
        """Timings of the last prefill/generation."""
        raw = _ffi.pg_timings()
        raw.struct_size = ctypes.sizeof(raw)
        lib.pg_session_get_timings(self._idle_ptr(), byref(raw))
        return Timings(raw.preprocess_ms, raw.vision_ms, raw.prefill_ms, raw.prefill_tokens,
                       raw.decode_ms, raw.decode_tokens, raw.ttft_ms, bool(raw.image_cache_hit))

    @property
    def last_error(self) -> str:
        """The message of the last failed call on this session ("" if none)."""
        return _text(lib.pg_session_last_error(self._idle_ptr()))

    def logits(self) -> "numpy.ndarray":
        """A copy of the soft-capped logits after the last prefilled or fed token."""
        import numpy as np

        ptr = POINTER(c_float)()
        n = c_size_t()
        lib.pg_session_logits(self._idle_ptr(), byref(ptr), byref(n))
        return np.ctypeslib.as_array(ptr, (n.value,)).copy()

    def tensor(self, which: int) -> "numpy.ndarray":
        """A copy of an intermediate tensor (``PG_TENSOR_*``); needs ``keep_tensors=True``."""
        import numpy as np

        ptr = POINTER(c_float)()
        shape = (c_int64 * 4)()
        ndim = c_int32()
        lib.pg_session_get_tensor(self._idle_ptr(), int(which), byref(ptr), shape, byref(ndim))
        dims = tuple(int(shape[i]) for i in range(ndim.value))
        return np.ctypeslib.as_array(ptr, dims).copy()


# ---------------------------------------------------------------------------------------------
# Output post-processing (docs/postprocessing.md)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Detection:
    """One object of a ``detect ...`` / ``segment ...`` answer (``pg_detection_info``)."""

    label: str  #: trimmed; "" when the model gave none
    box: Tuple[float, float, float, float]  #: x_min, y_min, x_max, y_max in image pixels
    loc: Tuple[int, int, int, int]  #: the raw <locDDDD> values y_min, x_min, y_max, x_max
    seg: Optional[Tuple[int, ...]] = None  #: the 16 raw <segDDD> codes of ``segment``, or None


def parse_detections(text: Union[str, bytes], width: int, height: int) -> List[Detection]:
    """The objects of a ``detect a ; b`` or ``segment a`` answer, with boxes in pixels of the
    original ``width`` x ``height`` image (``pg_detections_parse``). Needs no model: pass the
    generated text. Text holding no object gives ``[]``; out-of-range values and empty boxes
    are dropped. The segmentation codes are raw (decoding them to a mask needs big_vision's
    VQ-VAE weights, which the Hugging Face checkpoints lack).
    """
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    buf = ctypes.create_string_buffer(data, max(len(data), 1))
    handle = POINTER(_ffi.pg_detections)()
    lib.pg_detections_parse(byref(handle), buf, len(data), int(width), int(height))
    try:
        result = []
        info = _ffi.pg_detection_info()
        for i in range(lib.pg_detections_count(handle)):
            ctypes.memset(byref(info), 0, ctypes.sizeof(info))
            info.struct_size = ctypes.sizeof(info)
            lib.pg_detections_get(handle, i, byref(info))
            label = ctypes.string_at(info.label, info.label_len) if info.label_len else b""
            seg = (tuple(int(info.seg_codes[k]) for k in range(info.n_seg))
                   if info.n_seg and info.seg_codes else None)
            result.append(Detection(
                label=_text(label),
                box=(float(info.x_min), float(info.y_min), float(info.x_max),
                     float(info.y_max)),
                loc=(int(info.loc[0]), int(info.loc[1]), int(info.loc[2]), int(info.loc[3])),
                seg=seg))
        return result
    finally:
        lib.pg_detections_free(handle)


# ---------------------------------------------------------------------------------------------
# Segmentation masks (issue 14; docs/postprocessing.md)
# ---------------------------------------------------------------------------------------------


class MaskDecoder(_Handle):
    """big_vision's VQ-VAE mask decoder (``pg_mask_decoder``), loaded from ``vae-oid.npz``."""

    _free_name = "pg_mask_decoder_free"

    def __init__(self, path: PathLike) -> None:
        h = POINTER(_ffi.pg_mask_decoder)()
        lib.pg_mask_decoder_load(byref(h), _path_bytes(path))
        self._h = h

    def logits(self, codes: Sequence[int]) -> "numpy.ndarray":
        """The 64x64 float32 logits of 16 codes (0..127, a 4x4 grid row-major); > 0 inside."""
        import numpy as np
        arr, n = _int32_array(codes)
        out = np.zeros((_ffi.PG_MASK_SIDE, _ffi.PG_MASK_SIDE), np.float32)
        lib.pg_mask_decode_logits(self._ptr(), arr, n,
                                  out.ctypes.data_as(POINTER(ctypes.c_float)), out.size)
        return out


@dataclass(frozen=True)
class Segment:
    """One object of a ``segment ...`` answer with its mask (``pg_detections_mask``)."""

    label: str  #: trimmed; "" when the model gave none
    box: Tuple[float, float, float, float]  #: x_min, y_min, x_max, y_max in image pixels
    loc: Tuple[int, int, int, int]  #: raw <locDDDD> values y_min, x_min, y_max, x_max
    seg: Optional[Tuple[int, ...]]  #: the 16 <segDDD> codes, None without a mask
    mask: Optional["numpy.ndarray"]  #: HxW bool, the image-sized mask; None without codes
    logits: Optional["numpy.ndarray"]  #: 64x64 float32 decoder output; None without codes
    mask_box: Optional[Tuple[int, int, int, int]]  #: x0, y0, x1, y1 the mask was pasted in


def segment_answer(text: Union[str, bytes], width: int, height: int,
                   decoder: MaskDecoder) -> Tuple[List[Segment], Optional[str]]:
    """Parses a ``segment`` answer for a ``width`` x ``height`` image and decodes every mask.

    Returns ``(segments, problem)``: ``problem`` is None for a clean answer, else the message
    of ``pg_detections_status`` (a truncated or malformed object; what parsed is kept).
    """
    import numpy as np
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    buf = ctypes.create_string_buffer(data, max(len(data), 1))
    handle = POINTER(_ffi.pg_detections)()
    lib.pg_detections_parse(byref(handle), buf, len(data), int(width), int(height))
    try:
        problem = None
        if lib.pg_detections_status(handle) != _ffi.PG_OK:
            problem = _text(lib.pg_last_error())
        out = []
        for i, d in enumerate(parse_detections(data, width, height)):  # same objects
            mask = logits = box = None
            if d.seg is not None:
                logits = np.zeros((_ffi.PG_MASK_SIDE, _ffi.PG_MASK_SIDE), np.float32)
                m = np.zeros((int(height), int(width)), np.uint8)
                b = (ctypes.c_uint32 * 4)()
                lib.pg_detections_mask(handle, i, decoder._ptr(),
                                       logits.ctypes.data_as(POINTER(ctypes.c_float)),
                                       m.ctypes.data_as(POINTER(ctypes.c_uint8)), m.size, b)
                mask, box = m.astype(bool), (int(b[0]), int(b[1]), int(b[2]), int(b[3]))
            out.append(Segment(label=d.label, box=d.box, loc=d.loc, seg=d.seg, mask=mask,
                               logits=logits, mask_box=box))
        return out, problem
    finally:
        lib.pg_detections_free(handle)


def _session_segment(self: Session, objects: Union[str, Sequence[str]], *,
                     vae: Union[MaskDecoder, PathLike], image: ImageLike,
                     max_new_tokens: Optional[int] = None) -> List[Segment]:
    """Runs ``segment a ; b`` greedily on ``image`` and returns each object with its numpy
    mask (see :func:`segment_answer`; the image's size, after EXIF rotation, sizes the masks).
    ``vae`` is a :class:`MaskDecoder` or the path of ``vae-oid.npz``."""
    names = [objects] if isinstance(objects, str) else list(objects)
    img = _coerce_image(image)
    dec = vae if isinstance(vae, MaskDecoder) else MaskDecoder(vae)
    try:
        text = self.generate("segment " + " ; ".join(names), image=img,
                             max_new_tokens=max_new_tokens)
        return segment_answer(text, img.width, img.height, dec)[0]
    finally:
        if dec is not vae:
            dec.close()
        if img is not image:
            img.close()


Session.segment = _session_segment  # type: ignore[attr-defined]


# Batches live in their own module; imported last because they use the classes above.
from ._batch import Batch, BatchResult  # noqa: E402
from ._batch import caption_many as _caption_many  # noqa: E402

# The photo catalogue (pg index): its own module too.
from ._index import IndexStats, SearchHit, index, index_db_init, index_hash_file  # noqa: E402
from ._index import index_model_id, search  # noqa: E402

__all__ += ["IndexStats", "SearchHit", "index", "search", "index_db_init", "index_hash_file",
            "index_model_id"]
