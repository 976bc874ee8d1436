"""``python3 -m paligemma.distributed index [--scheduler ADDR | --local N] -m MODEL DIR...``

Indexes the folders into the ``pg index`` catalogue with a Dask cluster: an existing one
(``--scheduler tcp://host:8786`` or ``--scheduler-file FILE``) or a LocalCluster of ``--local
N`` worker processes on this machine (the default, N = 1). A progress bar on a terminal,
plain lines otherwise; ``--json`` prints the counters as one JSON object at the end.
Exit status: 0 done (corrupt images are error rows, not failures), 1 some tasks failed
(their files are left for the next run), 2 usage or setup error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any, Dict, List, Optional

from distributed import Client, LocalCluster

from paligemma import LIBRARY_PATH, PaliGemmaError

from ._index import IndexStats, index
from ._native import CatalogueUnavailable, available
from ._work import parse_tasks


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m paligemma.distributed",
                                description="Scale-out of pg index on Dask distributed.")
    sub = p.add_subparsers(dest="command", required=True)
    ix = sub.add_parser("index", help="index folders into the pg index catalogue")
    where = ix.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDR",
                       help="the dask-scheduler address, e.g. tcp://10.0.0.1:8786")
    where.add_argument("--scheduler-file", metavar="FILE",
                       help="the file dask-scheduler --scheduler-file wrote")
    where.add_argument("--local", metavar="N", type=int,
                       help="start a LocalCluster of N worker processes here (default 1)")
    ix.add_argument("-m", "--model", required=True,
                    help="model folder (the same path must hold the same weights on "
                         "every worker)")
    ix.add_argument("--db", help="the catalogue (default DIR/.paligemma.sqlite of the first)")
    ix.add_argument("--tasks", default="caption",
                    help='as pg index: "caption,detect:person ; dog,segment:cat"')
    ix.add_argument("--prompt", help='the caption task\'s prompt (default "caption en")')
    ix.add_argument("--batch", type=int, default=4,
                    help="sessions decoded together on a worker (1..64, default 4)")
    ix.add_argument("--max-new-tokens", type=int, default=64)
    ix.add_argument("--chunk", type=int, default=0,
                    help="files per Dask task (default 4 x batch): work lost if a worker dies")
    ix.add_argument("--rescan", action="store_true",
                    help="re-hash every file and retry error results")
    ix.add_argument("--threads", type=int, default=0,
                    help="compute threads per worker (default 0: every core)")
    ix.add_argument("--weight-dtype", choices=["auto", "q8", "q4"])
    ix.add_argument("--backend", help='"cpu" (default) or "ref"')
    ix.add_argument("--wait-workers", type=float, default=60.0, metavar="S",
                    help="seconds to wait for a first worker (default 60)")
    ix.add_argument("--json", action="store_true", help="the counters as JSON at the end")
    ix.add_argument("dirs", nargs="+", metavar="DIR")
    return p


class _Progress:
    """A bar on a terminal, one plain line per file otherwise (stderr)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def __call__(self, stats: IndexStats, path: str, record: Optional[Dict[str, Any]]) -> None:
        total = max(stats.files_total, 1)
        if self.tty:
            width = 30
            filled = int(width * stats.files_done / total)
            self.stream.write("\r[%s%s] %d/%d files, %d failed" % (
                "#" * filled, "." * (width - filled), stats.files_done, stats.files_total,
                stats.files_failed))
        else:
            how = "skipped" if record is None else (
                "error: %s" % record["error"] if record.get("error") else "on " + record["worker"])
            self.stream.write("%d/%d %s (%s)\n" % (stats.files_done, stats.files_total, path,
                                                   how))
        self.stream.flush()

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")


def _summary(stats: IndexStats) -> str:
    return ("%d files: %d indexed, %d skipped, %d failed, %d other; %d results written; "
            "%d tasks (%d failed) in %.1f s" % (
                stats.files_total, stats.files_indexed, stats.files_skipped,
                stats.files_failed, stats.files_other, stats.results_written, stats.chunks,
                stats.chunks_failed, stats.elapsed_ms / 1e3))


def _run_index(args: argparse.Namespace) -> int:
    parse_tasks(args.tasks, args.prompt)  # a bad --tasks fails before any cluster starts
    if not available():
        raise CatalogueUnavailable("%s lacks the catalogue functions of pg index (issue 12)"
                                   % LIBRARY_PATH)
    cluster = None
    if args.scheduler:
        client = Client(args.scheduler)
    elif args.scheduler_file:
        client = Client(scheduler_file=args.scheduler_file)
    else:
        n = args.local if args.local is not None else 1
        if n < 1:
            raise ValueError("--local needs at least 1 worker")
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        client = Client(cluster)
    progress = _Progress(sys.stderr)
    try:
        stats = index(client, args.dirs, args.model, db_path=args.db, tasks=args.tasks,
                      prompt=args.prompt, batch=args.batch, max_new_tokens=args.max_new_tokens,
                      chunk=args.chunk, rescan=args.rescan, threads=args.threads,
                      weight_dtype=args.weight_dtype, backend=args.backend,
                      wait_workers=args.wait_workers, progress=progress)
    finally:
        progress.end()
        client.close()
        if cluster is not None:
            cluster.close()
    for path, note in stats.notes:
        sys.stderr.write("note: %s: %s\n" % (path, note))
    if args.json:
        out = dataclasses.asdict(stats)
        out["notes"] = [{"path": p, "note": n} for p, n in stats.notes]
        print(json.dumps(out))
    else:
        print(_summary(stats))
    return 1 if stats.chunks_failed else 0


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run_index(args)
    except (CatalogueUnavailable, PaliGemmaError, ValueError, OSError, RuntimeError) as exc:
        sys.stderr.write("python3 -m paligemma.distributed: %s\n" % exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
