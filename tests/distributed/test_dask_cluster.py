"""Issue 17: a real Dask cluster on 127.0.0.1 (dask-scheduler + two dask-worker --nthreads 1
--no-nanny processes) indexes the fixture images with the tiny model through
paligemma.distributed; one worker is SIGKILLed while it holds a task. Checks:

- the run ends with every file written, no task lost (the scheduler reran the dead worker's
  tasks on the other one), no duplicate row (one result per content, task and prompt);
- corrupt images are error records (files.error, status 'error' results), the run goes on;
- the catalogue equals a single-machine run over the same folder: `pg index` when the built
  `pg` has it, else this module in LocalCluster mode with one worker (said in the output);
- a second run resumes: no task sent, nothing written, the catalogue unchanged;
- the CLI `python3 -m paligemma.distributed index --scheduler ADDR` works against the cluster.

Every process it starts is killed at the end, whatever happens. Exit 77 = skipped (no Dask,
or a libpaligemma without the catalogue functions). Environment: PALIGEMMA_LIBRARY,
PYTHONPATH (bindings/python), PG_TEST_DATA_DIR (tests/data), PG_TOOL (the pg program).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

SKIP = 77
DEADLINE_S = 50.0  # the meson timeout is 60: fail with logs before it strikes
TASKS = "caption,detect:cat"

START = time.monotonic()


def left():
    return max(1.0, DEADLINE_S - (time.monotonic() - START))


def skip(why):
    print("SKIP: " + why)
    sys.exit(SKIP)


try:
    import distributed  # noqa: F401
    from distributed import Client
except ImportError as exc:
    skip("Dask distributed is missing (Debian: python3-distributed): %s" % exc)

import paligemma.distributed as pgd  # noqa: E402

import catalogue_dump  # noqa: E402

if not pgd.available():
    skip("this libpaligemma has no catalogue functions (pg index, issue 12)")

DATA = os.environ.get("PG_TEST_DATA_DIR") or os.path.join(HERE, "..", "data")
MODEL = os.path.join(DATA, "models", "tiny", "bf16")
IMAGES = os.path.join(DATA, "image", "files")
CORRUPT = ["corrupt/derived_zero_bytes.jpg", "corrupt/derived_random_garbage.jpg",
           "corrupt/derived_png_signature_only.png", "corrupt/skimage_truncated.jpg"]
PG_TOOL = os.environ.get("PG_TOOL", "")

failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)
    return cond


class Cluster:
    """The scheduler and workers this test started (and only those)."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = {}  # name -> Popen
        self.logs = {}
        self.scheduler_file = os.path.join(tmp, "scheduler.json")

    def _start(self, name, args):
        log = open(os.path.join(self.tmp, name + ".log"), "wb")
        self.logs[name] = log.name
        self.procs[name] = subprocess.Popen([sys.executable, "-m"] + args, stdout=log,
                                            stderr=subprocess.STDOUT, cwd=self.tmp,
                                            start_new_session=True)
        log.close()

    def start(self, n_workers):
        self._start("scheduler", ["distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", "0", "--no-dashboard",
                                  "--scheduler-file", self.scheduler_file])
        for _ in range(int(left() * 10)):
            if os.path.exists(self.scheduler_file) and os.path.getsize(self.scheduler_file):
                break
            if self.procs["scheduler"].poll() is not None:
                break
            time.sleep(0.1)
        with open(self.scheduler_file) as f:  # raises (and fails) if it never came
            self.address = json.load(f)["address"]
        for i in range(n_workers):
            name = "worker%d" % i
            self._start(name, ["distributed.cli.dask_worker", "--scheduler-file",
                               self.scheduler_file, "--host", "127.0.0.1", "--nthreads", "1",
                               "--no-nanny", "--no-dashboard", "--name", name,
                               "--local-directory", os.path.join(self.tmp, name)])

    def kill(self, name):
        p = self.procs[name]
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)

    def stop_all(self):
        for name, p in self.procs.items():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM if name == "scheduler" else signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for name, p in self.procs.items():
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)

    def dump_logs(self):
        for name, path in self.logs.items():
            with open(path, "rb") as f:
                tail = f.read()[-3000:].decode("utf-8", "replace")
            print("---- %s log (tail) ----\n%s" % (name, tail))


def env():
    e = dict(os.environ)
    e.pop("PYTHONSTARTUP", None)
    return e


def reference_run(tmp):
    """The single-machine catalogue of the same folder: pg index, else this module alone."""
    db = os.path.join(tmp, "single.sqlite")
    if PG_TOOL and os.path.exists(PG_TOOL) and subprocess.run(
            [PG_TOOL, "index", "--help"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, timeout=10).returncode == 0:
        how = "pg index"
        cmd = [PG_TOOL, "index", "-m", MODEL, "--db", db, "--tasks", TASKS, "--threads", "1",
               "--quiet", IMAGES]
    else:
        how = "paligemma.distributed --local 1 (pg index is not in this build)"
        cmd = [sys.executable, "-m", "paligemma.distributed", "index", "--local", "1",
               "--threads", "1", "-m", MODEL, "--db", db, "--tasks", TASKS, IMAGES]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(),
                       timeout=left())
    # pg index exits 1 when some files failed (the corrupt ones); a catalogue must exist
    check(os.path.exists(db) and r.returncode in (0, 1),
          "single-machine run (%s) wrote a catalogue (rc %d)" % (how, r.returncode))
    if r.returncode not in (0, 1):
        print(r.stderr.decode("utf-8", "replace")[-2000:])
    return db, how


def no_duplicates(db_path):
    import sqlite3

    db = sqlite3.connect(db_path)
    try:
        hashes = {h for (h,) in db.execute("SELECT DISTINCT hash FROM files")}
        per_key = db.execute("SELECT hash, task, prompt, count(*) FROM results"
                             " GROUP BY hash, model_id, task, prompt").fetchall()
        check(all(n == 1 for *_, n in per_key), "one results row per resume key")
        keys = {(h, t) for h, t, _p, _n in per_key}
        want = {(h, t) for h in hashes for t in ("caption", "detect")}
        check(keys == want, "every content has exactly its two results (%d rows for %d "
              "contents)" % (len(per_key), len(hashes)))
        dup_boxes = db.execute("SELECT count(*) FROM (SELECT result_id, idx FROM boxes"
                               " GROUP BY result_id, idx HAVING count(*) > 1)").fetchone()[0]
        check(dup_boxes == 0, "no duplicate boxes rows")
        for rel in CORRUPT:
            path = os.path.realpath(os.path.join(IMAGES, rel))
            row = db.execute("SELECT hash, width, error FROM files WHERE path = ?",
                             (path,)).fetchone()
            if not check(row is not None, "corrupt %s has a files row" % rel):
                continue
            statuses = db.execute("SELECT status, error FROM results WHERE hash = ?",
                                  (row[0],)).fetchall()
            check(row[1] is None and bool(row[2]) and len(statuses) == 2
                  and all(s == "error" and e for s, e in statuses),
                  "corrupt %s: an error record (files.error %r, results %r)"
                  % (rel, row[2], [s for s, _ in statuses]))
    finally:
        db.close()


def main():
    tmp = tempfile.mkdtemp(prefix="pg-dask-")
    cluster = Cluster(tmp)
    client = None
    try:
        cluster.start(2)
        client = Client(cluster.address, timeout=left())
        client.wait_for_workers(2, timeout=left())
        pids = client.run(os.getpid)  # worker address -> pid
        by_pid = {p.pid: name for name, p in cluster.procs.items()}
        name_of = {addr: by_pid.get(pid) for addr, pid in pids.items()}
        check(sorted(n for n in name_of.values() if n) == ["worker0", "worker1"],
              "two workers joined: %s" % sorted(name_of.items()))

        killed = {}

        def progress(stats, path, record):
            # the first time a worker is seen holding a task, kill it (SIGKILL: no goodbye)
            if killed or record is None:
                return None
            for addr, keys in client.processing().items():
                if keys and name_of.get(addr):
                    killed.update(address=addr, name=name_of[addr], keys=list(keys),
                                  at=stats.files_done)
                    cluster.kill(name_of[addr])
                    break
            return None

        db = os.path.join(tmp, "dask.sqlite")
        stats = pgd.index(client, [IMAGES], MODEL, db_path=db, tasks=TASKS, batch=2, chunk=4,
                          threads=1, wait_workers=left(), progress=progress)
        check(bool(killed), "a worker was killed while it held tasks: %s"
              % {k: v for k, v in killed.items() if k != "keys"})
        if killed:
            check(cluster.procs[killed["name"]].poll() is not None, "the killed worker is dead")
            survivor = [a for a in name_of if a != killed["address"]][0]
            check(stats.workers.get(survivor, 0) > 0 and sum(stats.workers.values())
                  > stats.workers.get(killed["address"], 0),
                  "the other worker did the rest: %s" % stats.workers)
        walked = pgd.walk([IMAGES])
        check(stats.chunks_failed == 0 and stats.files_done == len(walked.paths),
              "no task lost: %d/%d files done, %d tasks, %d failed"
              % (stats.files_done, len(walked.paths), stats.chunks, stats.chunks_failed))
        for path, note in stats.notes:
            if "task failed" in note:
                print("      %s: %s" % (path, note))
        check(stats.files_failed >= len(CORRUPT), "corrupt images counted as failed (%d)"
              % stats.files_failed)
        no_duplicates(db)

        ref_db, how = reference_run(tmp)
        got, want = catalogue_dump.dump(db), catalogue_dump.dump(ref_db)
        diff = catalogue_dump.differences(got, want)
        check(not diff and len(got["files"]) == len(walked.paths),
              "the catalogue equals the single-machine run (%s): %d files, %d results, "
              "%d boxes" % (how, len(got["files"]), len(got["results"]), len(got["boxes"])))
        for line in diff:
            print("      " + line)
        check(got["fts"] == got["fts_expected"], "the FTS index holds the ok captions")

        again = pgd.index(client, [IMAGES], MODEL, db_path=db, tasks=TASKS, batch=2, chunk=4,
                          threads=1, wait_workers=left())
        check(again.chunks == 0 and again.results_written == 0
              and again.files_skipped == len(walked.paths),
              "a second run resumes: %d tasks, %d results written, %d skipped"
              % (again.chunks, again.results_written, again.files_skipped))
        check(catalogue_dump.differences(catalogue_dump.dump(db), got) == [],
              "the second run left the catalogue as it was")

        cli_db = os.path.join(tmp, "cli.sqlite")
        photos = os.path.join(IMAGES, "photos")
        r = subprocess.run([sys.executable, "-m", "paligemma.distributed", "index",
                            "--scheduler", cluster.address, "-m", MODEL, "--db", cli_db,
                            "--threads", "1", "--json", photos], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env(), timeout=left())
        out = json.loads(r.stdout.decode() or "{}") if r.returncode == 0 else {}
        check(r.returncode == 0 and out.get("files_total") == len(pgd.walk([photos]).paths)
              and out.get("files_indexed") == out.get("files_total")
              and out.get("results_written") == out.get("files_total"),
              "CLI --scheduler: rc %d, %s" % (r.returncode,
                                              {k: out.get(k) for k in ("files_total",
                                                                       "files_indexed",
                                                                       "results_written")}))
        if r.returncode != 0:
            print(r.stderr.decode("utf-8", "replace")[-2000:])
    except Exception as exc:  # a crash is a failure, with the cluster's logs
        import traceback

        traceback.print_exc()
        failures.append("exception: %r" % exc)
    finally:
        if client is not None:
            try:
                client.close(timeout=5)
            except Exception:
                pass
        cluster.stop_all()
        if failures:
            cluster.dump_logs()
        alive = [n for n, p in cluster.procs.items() if p.poll() is None]
        check(not alive, "every process started is gone (%s)" % alive)
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d check(s) failed" % len(failures) if failures else "all checks passed")
    print("%.1f s" % (time.monotonic() - START))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
