"""The client's side of the catalogue: the folder walk and the one SQLite writer, in the
schema of ``pg index`` (docs/index-schema.md; the schema itself is created by the library).

Every finished image is written in one ``BEGIN IMMEDIATE ... COMMIT`` (its ``files`` row and
all its ``results`` / ``boxes`` rows), results with ``INSERT OR IGNORE`` on the resume key, so
a record that arrives twice (a task rerun after a worker died) never duplicates a row.
"""

from __future__ import annotations

import os
import sqlite3
import stat as stat_mod
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Sequence, Set, Tuple

from . import _native

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MAX_DEPTH = 64
SCHEMA_VERSION = 1  # the version whose tables this writer fills


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Walk:
    roots: List[str] = field(default_factory=list)  #: absolute folders walked
    paths: List[str] = field(default_factory=list)  #: JPEG/PNG files, sorted, unique
    notes: List[Tuple[str, str]] = field(default_factory=list)  #: (path, why) passed over
    #: some folder or entry could not be read: its files are unseen, not gone (prune nothing)
    incomplete: bool = False


def walk(dirs: Sequence[str]) -> Walk:
    """Every JPEG/PNG (by extension) below ``dirs``, as ``pg index`` walks: absolute paths
    under each folder's real path, hidden entries skipped, links to folders not followed,
    links to files followed, sorted and without repeats."""
    w = Walk()
    for d in dirs:
        if not os.path.exists(d):
            raise FileNotFoundError("%s: no such folder" % d)
        if not os.path.isdir(d):
            raise NotADirectoryError("%s: not a folder" % d)
        root = os.path.realpath(d)
        os.listdir(root)  # an unreadable root is an error, not a note
        w.roots.append(root)
        _walk_dir(w, root, 0)
    w.paths = sorted(set(w.paths))
    return w


def _walk_dir(w: Walk, folder: str, depth: int) -> None:
    try:
        names = os.listdir(folder)
    except OSError as exc:
        w.notes.append((folder, "cannot read this folder: %s" % exc.strerror))
        w.incomplete = True
        return
    for name in names:
        if name.startswith("."):
            continue
        path = os.path.join(folder, name)
        try:
            lst, st = os.lstat(path), os.stat(path)
        except OSError as exc:
            w.notes.append((path, "cannot stat: %s" % exc.strerror))
            w.incomplete = True
            continue
        if stat_mod.S_ISDIR(st.st_mode):
            if stat_mod.S_ISLNK(lst.st_mode):
                w.notes.append((path, "symbolic link to a folder: not followed"))
            elif depth >= MAX_DEPTH:
                w.notes.append((path, "folders nested too deep: not entered"))
            else:
                _walk_dir(w, path, depth + 1)
        elif stat_mod.S_ISREG(st.st_mode):
            suffix = os.path.splitext(name)[1].lower()
            if suffix in IMAGE_SUFFIXES:
                w.paths.append(path)
            elif suffix != ".xmp":
                w.notes.append((path, "not a JPEG or PNG: skipped"))


class Catalogue:
    """One writer connection to a ``pg index`` database (created by the library if new)."""

    def __init__(self, path: str) -> None:
        self.path = path
        _native.db_init(path)  # creates or migrates: the one definition of the schema
        self.db = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.execute("PRAGMA busy_timeout = 5000")
        self.db.execute("PRAGMA synchronous = NORMAL")
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            self.db.close()
            raise RuntimeError("%s: catalogue schema version %d, this writer needs %d"
                               % (path, version, SCHEMA_VERSION))

    def close(self) -> None:
        self.db.close()

    def known_files(self) -> Dict[str, Tuple[int, int, str]]:
        """path -> (size, mtime_ns, hash) of every files row."""
        return {p: (s, m, h) for p, s, m, h in
                self.db.execute("SELECT path, size, mtime_ns, hash FROM files")}

    def done_keys(self, model_id: str, rescan: bool) -> Set[Tuple[str, str, str]]:
        """(hash, task, prompt) of the results already there for this model (error results
        excluded with ``rescan``: they are redone)."""
        sql = "SELECT hash, task, prompt FROM results WHERE model_id = ?"
        if rescan:
            sql += " AND status = 'ok'"
        return {tuple(r) for r in self.db.execute(sql, (model_id,))}  # type: ignore[misc]

    def dims_of_hash(self, content_hash: str) -> Tuple[Any, Any]:
        """(width, height) of a decoded files row with this content, else (None, None)."""
        row = self.db.execute("SELECT width, height FROM files WHERE hash = ? AND"
                              " width IS NOT NULL LIMIT 1", (content_hash,)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def _upsert_file(self, path: str, size: int, mtime_ns: int, content_hash: str,
                     width: Any, height: Any, error: Any, seen_at: str) -> None:
        self.db.execute(
            "INSERT INTO files (path, size, mtime_ns, hash, width, height, error, seen_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET"
            " size = excluded.size, mtime_ns = excluded.mtime_ns, hash = excluded.hash,"
            " width = excluded.width, height = excluded.height, error = excluded.error,"
            " seen_at = excluded.seen_at",
            (path, size, mtime_ns, content_hash, width, height, error, seen_at))

    def touch(self, path: str, seen_at: str) -> None:
        """A file whose row is current: only the walk time changes."""
        with self._transaction():
            self.db.execute("UPDATE files SET seen_at = ? WHERE path = ?", (seen_at, path))

    def write_file(self, path: str, size: int, mtime_ns: int, content_hash: str,
                   seen_at: str) -> None:
        """A files row alone, for content indexed earlier (under this path or another):
        its size from a decoded row of that content, no error (as pg index writes it)."""
        with self._transaction():
            self._upsert_file(path, size, mtime_ns, content_hash,
                              *self.dims_of_hash(content_hash), None, seen_at)

    def write_record(self, record: Dict[str, Any], seen_at: str,
                     also: Iterable[Tuple[str, int, int]] = (), rescan: bool = False) -> int:
        """A worker's record: its files row (and those of ``also``, other paths with the same
        content: (path, size, mtime_ns)), its results and boxes, in one transaction. Returns
        the results rows inserted (0 for those already there). The other paths get the
        record's size and no error, as pg index writes a file whose content is done."""
        h = record["hash"]
        inserted = 0
        with self._transaction():
            self._upsert_file(record["path"], record["size"], record["mtime_ns"], h,
                              record["width"], record["height"], record["error"], seen_at)
            for path, size, mtime_ns in also:
                self._upsert_file(path, size, mtime_ns, h, record["width"], record["height"],
                                  None, seen_at)
            for r in record["results"]:
                inserted += self._insert_result(h, record, r, rescan)
        return inserted

    def _insert_result(self, content_hash: str, record: Dict[str, Any], r: Dict[str, Any],
                       rescan: bool) -> int:
        key = (content_hash, record["model_id"], r["task"], r["prompt"])
        if rescan:  # an error result is redone: delete, then insert (never UPDATE results)
            self.db.execute("DELETE FROM results WHERE hash = ? AND model_id = ? AND task = ?"
                            " AND prompt = ? AND status = 'error'", key)
        cur = self.db.execute(
            "INSERT OR IGNORE INTO results (hash, model_variant, model_id, task, prompt,"
            " status, error, text, token_ids, stop_reason, preprocess_ms, vision_ms,"
            " prefill_ms, decode_ms, prefill_tokens, decode_tokens, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (content_hash, record["model_variant"], record["model_id"], r["task"], r["prompt"],
             r["status"], r["error"], r["text"], r["token_ids"], r["stop_reason"],
             r["preprocess_ms"], r["vision_ms"], r["prefill_ms"], r["decode_ms"],
             r["prefill_tokens"], r["decode_tokens"], utc_now()))
        if cur.rowcount != 1:
            return 0  # the key is there already (a rerun task's second answer)
        result_id = cur.lastrowid
        for idx, b in enumerate(r["boxes"]):
            self.db.execute(
                "INSERT INTO boxes (result_id, idx, label, x_min, y_min, x_max, y_max,"
                " nx_min, ny_min, nx_max, ny_max) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (result_id, idx, b["label"], b["x_min"], b["y_min"], b["x_max"], b["y_max"],
                 b["nx_min"], b["ny_min"], b["nx_max"], b["ny_max"]))
        return 1

    def forget_vanished(self, roots: Sequence[str], seen: Set[str]) -> int:
        """Deletes the files rows of paths below ``roots`` that the walk did not see (their
        results stay: they follow content). Returns how many."""
        gone = []
        for (path,) in self.db.execute("SELECT path FROM files"):
            if path not in seen and any(path.startswith(r.rstrip("/") + "/") for r in roots):
                gone.append(path)
        with self._transaction():
            self.db.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in gone])
        return len(gone)

    def _transaction(self) -> "_Tx":
        return _Tx(self.db)


class _Tx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
