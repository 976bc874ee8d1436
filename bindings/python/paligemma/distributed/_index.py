"""The client's driver: walk, look up the resume keys, send the work to the cluster in
chunks, write each record as it comes back (this process is the only writer)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from distributed import Client, as_completed

import paligemma

from . import _native
from ._catalogue import Catalogue, utc_now, walk
from ._plugin import ModelPlugin, identity, index_chunk
from ._work import Task, error_text, parse_tasks


#: times one task may be lost with its worker and waited for again before it counts as failed
MAX_REWAITS = 16


@dataclass
class IndexStats:
    """Counters of one :func:`index` run (the fields of ``pg_index_stats``, plus chunks)."""

    files_total: int = 0  #: JPEG/PNG files found
    files_done: int = 0  #: of these, finished (indexed, skipped or failed)
    files_indexed: int = 0  #: finished with model work in this run
    files_skipped: int = 0  #: every result already present: no model work
    files_failed: int = 0  #: unreadable or undecodable: error rows written (or none possible)
    files_other: int = 0  #: not JPEG/PNG: left alone
    results_written: int = 0  #: results rows inserted
    chunks: int = 0  #: tasks sent to the cluster
    chunks_failed: int = 0  #: tasks that raised (their files are left for the next run)
    elapsed_ms: float = 0.0
    notes: List[Tuple[str, str]] = field(default_factory=list)  #: (path, note)
    workers: Dict[str, int] = field(default_factory=dict)  #: worker address -> files done


#: ``progress(stats, path, record)`` after each finished file; record None for a file done
#: without model work. Return True to stop (what is committed stays; the rest is left).
Progress = Callable[[IndexStats, str, Optional[Dict[str, Any]]], Optional[bool]]


def default_db(dirs: Sequence[str]) -> str:
    return os.path.join(dirs[0], ".paligemma.sqlite")


def start_model(client: Client, model_path: str, *, threads: int = 0,
                weight_dtype: Optional[str] = None, backend: Optional[str] = None,
                wait_workers: float = 60.0) -> Tuple[str, str, str]:
    """Registers the :class:`ModelPlugin` (each worker loads the model once, now and when
    it joins later), waits for a first worker, and returns (plugin name, model_id, variant).
    Every worker must hold the same weights (the same model_id)."""
    plugin = ModelPlugin(os.path.abspath(model_path), threads=threads,
                         weight_dtype=weight_dtype, backend=backend)
    client.wait_for_workers(1, timeout=wait_workers)
    client.register_worker_plugin(plugin, name=plugin.name)
    identities = set(client.run(identity, plugin.name).values())
    if len(identities) != 1:
        raise RuntimeError("the workers loaded different weights from %s: %s"
                           % (model_path, sorted(identities)))
    model_id, variant = identities.pop()
    return plugin.name, model_id, variant


def _chunks(items: List[Tuple[str, List[Task]]],
            size: int) -> List[List[Tuple[str, List[Task]]]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def index(client: Client, dirs: Sequence[str], model_path: str, *,
          db_path: Optional[str] = None, tasks: Optional[str] = None,
          prompt: Optional[str] = None, batch: int = 4, max_new_tokens: int = 64,
          chunk: int = 0, rescan: bool = False, threads: int = 0,
          weight_dtype: Optional[str] = None, backend: Optional[str] = None,
          wait_workers: float = 60.0, progress: Optional[Progress] = None) -> IndexStats:
    """Indexes every JPEG/PNG under ``dirs`` into the ``pg index`` catalogue ``db_path``
    (default ``DIR/.paligemma.sqlite`` of the first folder) with the cluster of ``client``.

    Resumable: a file whose content hash already has a result for this model, task and
    prompt is not sent again. Work goes out as tasks of ``chunk`` files (0 = 4 x batch); a
    worker that dies mid-task has its tasks rerun elsewhere by the scheduler, and since this
    process is the one writer and inserts with the resume key, no row is ever duplicated.
    A corrupt image comes back as an error record (error rows) and the run goes on.
    """
    started = time.monotonic()
    task_list = parse_tasks(tasks, prompt)
    if not 1 <= int(batch) <= 64:
        raise ValueError("batch must be in 1..64")
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be at least 1")
    chunk = int(chunk) or 4 * int(batch)
    stats = IndexStats()
    found = walk(dirs)
    stats.notes.extend(found.notes)
    stats.files_other = sum(1 for _, n in found.notes if n.endswith("skipped"))
    stats.files_total = len(found.paths)
    cat = Catalogue(db_path or default_db(found.roots))
    try:
        name, model_id, _variant = start_model(client, model_path, threads=threads,
                                               weight_dtype=weight_dtype, backend=backend,
                                               wait_workers=wait_workers)
        seen_at = utc_now()
        work, by_hash, stopped = _plan(cat, found.paths, task_list, model_id, rescan, seen_at,
                                       stats, progress)
        if not stopped:
            stopped = _run(client, cat, name, model_id, work, by_hash, batch, max_new_tokens,
                           chunk, rescan, seen_at, stats, progress)
        if not stopped and stats.chunks_failed == 0 and not found.incomplete:
            cat.forget_vanished(found.roots, set(found.paths))
    finally:
        cat.close()
        stats.elapsed_ms = (time.monotonic() - started) * 1e3
    return stats


def _finished(stats: IndexStats, path: str, record: Optional[Dict[str, Any]],
              progress: Optional[Progress]) -> bool:
    stats.files_done += 1
    return bool(progress(stats, path, record)) if progress is not None else False


def _plan(cat: Catalogue, paths: List[str], task_list: List[Task], model_id: str,
          rescan: bool, seen_at: str, stats: IndexStats, progress: Optional[Progress]
          ) -> Tuple[List[Tuple[str, List[Task]]], Dict[str, List[Tuple[str, int, int]]], bool]:
    """Hashes what changed, settles the files that need no model work, and returns the work:
    one (path, tasks left) per distinct content, the other paths of that content, and
    whether progress asked to stop."""
    known = cat.known_files()
    done = cat.done_keys(model_id, rescan)
    work: List[Tuple[str, List[Task]]] = []
    by_hash: Dict[str, List[Tuple[str, int, int]]] = {}  # hash -> [(path, size, mtime)]
    for path in paths:
        try:
            st = os.stat(path)
            row = known.get(path)
            if row and not rescan and row[0] == st.st_size and row[1] == st.st_mtime_ns:
                h = row[2]
            else:
                h = _native.hash_file(path)
        except (OSError, paligemma.PaliGemmaError) as exc:
            # unreadable: without a hash no row can hold it
            stats.notes.append((path, "cannot hash: %s" % error_text(exc)))
            stats.files_failed += 1
            if _finished(stats, path, None, progress):
                return work, by_hash, True
            continue
        if h in by_hash:  # the same content again: written with the first path's record
            by_hash[h].append((path, st.st_size, st.st_mtime_ns))
            continue
        left = [t for t in task_list if (h, t[0], t[1]) not in done]
        if not left:
            row = known.get(path)
            if row and row == (st.st_size, st.st_mtime_ns, h):
                cat.touch(path, seen_at)
            else:
                cat.write_file(path, st.st_size, st.st_mtime_ns, h, seen_at)
            stats.files_skipped += 1
            if _finished(stats, path, None, progress):
                return work, by_hash, True
            continue
        by_hash[h] = []
        work.append((path, left))
    return work, by_hash, False


def _run(client: Client, cat: Catalogue, name: str, model_id: str,
         work: List[Tuple[str, List[Task]]], by_hash: Dict[str, List[Tuple[str, int, int]]],
         batch: int, max_new_tokens: int, chunk: int, rescan: bool, seen_at: str,
         stats: IndexStats, progress: Optional[Progress]) -> bool:
    futures = {}
    for part in _chunks(work, chunk):
        f = client.submit(index_chunk, name, part, batch, max_new_tokens, pure=False)
        futures[f] = part
    stats.chunks = len(futures)
    stopped = False
    rewaits: Dict[Any, int] = {}
    try:
        pending = as_completed(list(futures))
        for f in pending:
            if f.status in ("lost", "pending") and rewaits.get(f, 0) < MAX_REWAITS:
                # it finished on a worker that died before the result came here: the
                # scheduler computes it again elsewhere, so wait for it again
                rewaits[f] = rewaits.get(f, 0) + 1
                pending.add(f)
                continue
            part = futures.pop(f)
            if f.status != "finished":
                stats.chunks_failed += 1
                why = error_text(f.exception()) if f.status == "error" else f.status
                for path, _ in part:
                    stats.notes.append((path, "task failed, left for the next run: %s" % why))
                    stats.files_failed += 1
                    if _finished(stats, path, None, progress):
                        stopped = True
                        break
                f.release()
                if stopped:
                    break
                continue
            records = f.result()
            f.release()
            for record in records:
                if _write(cat, record, model_id, by_hash, rescan, seen_at, stats,
                          progress):
                    stopped = True
                    break
            if stopped:
                break
    finally:
        for f in futures:  # stopped early: drop what is still queued or running
            f.cancel()
    return stopped


def _write(cat: Catalogue, record: Dict[str, Any], model_id: str,
           by_hash: Dict[str, List[Tuple[str, int, int]]], rescan: bool, seen_at: str,
           stats: IndexStats, progress: Optional[Progress]) -> bool:
    path = record["path"]
    if record["model_id"] != model_id:
        raise RuntimeError("worker %s answered with model %s, not %s (different weights?)"
                           % (record["worker"], record["model_id"], model_id))
    stats.workers[record["worker"]] = stats.workers.get(record["worker"], 0) + 1
    if record["hash"] is None:  # vanished or unreadable on the worker
        stats.notes.append((path, "cannot read on %s: %s" % (record["worker"],
                                                            record["error"])))
        stats.files_failed += 1
        return _finished(stats, path, record, progress)
    # other paths of the content the client hashed (if the file changed meanwhile, the
    # record holds the new content; its twins wait for the next run)
    twins = by_hash.get(record["hash"], [])
    stats.results_written += cat.write_record(record, seen_at, twins, rescan)
    if record["error"] is not None:
        stats.files_failed += 1
    else:
        stats.files_indexed += 1
    stats.files_skipped += len(twins)  # their content was done with this record
    stats.files_done += len(twins)
    return _finished(stats, path, record, progress)
