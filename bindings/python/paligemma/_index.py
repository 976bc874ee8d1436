"""The photo catalogue (``pg_index_*``, docs/index.md): ``paligemma.index(...)`` and
``paligemma.search(...)``.

A thin layer over the C indexer, not a second implementation: the walk, hashing, resume rule,
transactions, XMP sidecars and schema are the library's (one definition, docs/index-schema.md),
so a catalogue written from Python and one written by ``pg index`` are the same.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import byref, c_char_p
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence, Union

from . import _ffi
from ._ffi import PaliGemmaError, lib

if TYPE_CHECKING:  # pragma: no cover
    from . import Model

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class IndexStats:
    """Counters of an :func:`index` run (``pg_index_stats``)."""

    files_total: int      #: JPEG/PNG files found
    files_done: int       #: of these, finished
    files_indexed: int    #: finished with model work in this run
    files_skipped: int    #: every result already present
    files_failed: int     #: unreadable or undecodable (error rows written)
    files_other: int      #: not JPEG/PNG, left alone
    results_written: int
    elapsed_ms: float

    @classmethod
    def _from(cls, s: "_ffi.pg_index_stats") -> "IndexStats":
        return cls(int(s.files_total), int(s.files_done), int(s.files_indexed),
                   int(s.files_skipped), int(s.files_failed), int(s.files_other),
                   int(s.results_written), float(s.elapsed_ms))


@dataclass(frozen=True)
class SearchHit:
    """One :func:`search` result: a file, its best-matching caption and the bm25 score
    (lower is better)."""

    path: str
    text: str
    score: float


#: progress(stats, path, note) -> True to stop. path None: between batch steps; note set: a
#: skipped file, an unreadable folder, a failed image.
IndexProgress = Callable[[IndexStats, Optional[str], Optional[str]], Any]


def _b(path: PathLike) -> bytes:
    return os.fsencode(os.fspath(path))


def _s(raw: Optional[bytes]) -> Optional[str]:
    return None if raw is None else os.fsdecode(raw)


def index(model: "Model", dirs: Union[PathLike, Sequence[PathLike]], *,
          db: Optional[PathLike] = None, tasks: Optional[Union[str, Sequence[str]]] = None,
          prompt: Optional[str] = None, xmp: bool = False, batch: int = 0,
          rescan: bool = False, max_new_tokens: int = 0,
          progress: Optional[IndexProgress] = None) -> IndexStats:
    """Indexes every JPEG/PNG under ``dirs`` into the catalogue (what ``pg index`` does).

    Args:
        model: a loaded :class:`Model`.
        dirs: a folder or a list of folders, walked recursively.
        db: the catalogue file; default ``<first folder>/.paligemma.sqlite``.
        tasks: ``"caption,detect:person ; dog"`` or a list of such items; default caption.
        prompt: the caption task's prompt (default ``"caption en"``).
        xmp: write/update ``NAME.EXT.xmp`` sidecars.
        batch: images decoded together (1..64; 0 = 4).
        rescan: re-hash unchanged files and retry images that failed before.
        max_new_tokens: per result (0 = 64).
        progress: ``progress(stats, path, note)``; return True to stop (raises
            PaliGemmaError CANCELLED; finished images stay committed). Its exceptions stop
            the run and are re-raised.

    Returns:
        The run's :class:`IndexStats`.
    """
    folders = [dirs] if isinstance(dirs, (str, bytes, os.PathLike)) else list(dirs)
    if not folders:
        raise ValueError("index: no folders")
    arr = (c_char_p * len(folders))(*[_b(d) for d in folders])
    if tasks is not None and not isinstance(tasks, str):
        tasks = ",".join(tasks)
    opts = _ffi.pg_index_options()
    lib.pg_index_options_init(byref(opts), ctypes.sizeof(opts))
    keep = [_b(db) if db is not None else None,
            tasks.encode() if tasks is not None else None,
            prompt.encode() if prompt is not None else None]
    opts.db_path, opts.tasks, opts.prompt = keep
    opts.batch = int(batch)
    opts.max_new_tokens = int(max_new_tokens)
    opts.flags = (_ffi.PG_INDEX_XMP if xmp else 0) | (_ffi.PG_INDEX_RESCAN if rescan else 0)
    raised: List[BaseException] = []

    def trampoline(user: Any, stats: Any, path: Optional[bytes], note: Optional[bytes]) -> int:
        try:
            return 1 if progress(IndexStats._from(stats.contents), _s(path), _s(note)) else 0
        except BaseException as e:  # noqa: B902 - re-raised after the C call returns
            raised.append(e)
            return 1

    cb = _ffi.pg_index_progress_fn(trampoline) if progress else _ffi.pg_index_progress_fn()
    opts.progress_fn = cb
    stats = _ffi.pg_index_stats()
    stats.struct_size = ctypes.sizeof(stats)
    try:
        lib.pg_index_run(model._ptr(), arr, len(folders), byref(opts), byref(stats))
    except PaliGemmaError:
        if raised:
            raise raised[0]
        raise
    return IndexStats._from(stats)


def search(db: PathLike, query: str, *, limit: int = 20) -> List[SearchHit]:
    """Full-text search of the captions (``pg search``): files whose caption holds any word
    of ``query``, best bm25 first."""
    hits: List[SearchHit] = []

    def on_hit(user: Any, path: bytes, text: bytes, score: float) -> int:
        hits.append(SearchHit(os.fsdecode(path), text.decode("utf-8", "replace"), score))
        return 0

    lib.pg_index_search(_b(db), query.encode("utf-8"), int(limit),
                        _ffi.pg_index_hit_fn(on_hit), None)
    return hits


def index_db_init(db: PathLike) -> None:
    """Creates (or migrates) the catalogue schema in ``db``: for writers other than
    :func:`index` (docs/index-schema.md)."""
    lib.pg_index_db_init(_b(db))


def index_hash_file(path: PathLike) -> str:
    """The XXH3-128 of a file's bytes as ``files.hash`` holds it (32 hex digits)."""
    buf = ctypes.create_string_buffer(33)
    lib.pg_index_hash_file(_b(path), buf, 33)
    return buf.value.decode()


def index_model_id(model: "Model") -> str:
    """The model's weights identity as ``results.model_id`` holds it (32 hex digits)."""
    buf = ctypes.create_string_buffer(33)
    lib.pg_index_model_id(model._ptr(), buf, 33)
    return buf.value.decode()
