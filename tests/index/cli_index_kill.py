#!/usr/bin/env python3
"""`kill -9` in the middle of `pg index`, then a re-run: nothing finished is lost, nothing is
duplicated, no image is half written (standard library).

usage: cli_index_kill.py PG MODEL_DIR IMAGE

IMAGE is copied N times with distinct trailing bytes (distinct hashes, same picture). The
first run is searched (pg search) while it writes, then killed with SIGKILL after it has
reported K finished images; every image it reported must have all its results, every
image in the catalogue must have ALL of its tasks' results (one transaction per image), and
the re-run must run exactly the images not yet in the catalogue.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import index_util as u  # noqa: E402
from index_util import check, rows, run  # noqa: E402

N = 160
KILL_AFTER = 5
TASKS = 'caption,detect:bird'


def main():
    pg, model, image = sys.argv[1:4]
    tmp = tempfile.mkdtemp(prefix='pg-index-kill-')
    lib = os.path.join(tmp, 'lib')
    u.padded_copies(image, lib, N)
    db = os.path.join(tmp, 'cat.sqlite')
    cmd = [pg, 'index', '-m', model, '--db', db, '--tasks', TASKS, '--max-tokens', '48',
           '--batch', '2', '--threads', '2', lib]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    reported = []
    deadline = time.monotonic() + 60
    for raw in proc.stderr:
        line = raw.decode('utf-8', 'replace')
        # "pg index: K/N PATH (R images/min)": PATH is committed before this line is printed
        parts = line.split()
        if len(parts) >= 4 and '/' in parts[2] and parts[2].split('/')[0].isdigit():
            reported.append(parts[3])
        if len(reported) >= KILL_AFTER or time.monotonic() > deadline:
            break
    # A reader while the writer writes (WAL): pg search answers from what is committed.
    (cap,), = rows(db, "SELECT text FROM results WHERE task = 'caption' LIMIT 1")
    word = next(w for w in cap.replace('<', ' ').replace('>', ' ').split()
                if w.isalnum() and len(w) > 2)
    src, sout, serr = run([pg, 'search', '--db', db, word, '--json'])
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    check(proc.returncode == -signal.SIGKILL, 'first run killed by SIGKILL (rc %s)'
          % proc.returncode)
    check(len(reported) == KILL_AFTER, '%d images reported before the kill' % len(reported))
    check(src == 0 and sout.count('"path"') >= 1 and alive,
          'pg search during the run: %d hit(s), rc %d, writer still running: %s %s'
          % (sout.count('"path"'), src, alive, serr.strip()))

    check(rows(db, 'PRAGMA integrity_check') == [('ok',)], 'database intact after kill -9')
    done = rows(db, 'SELECT f.path, count(r.id) FROM files f LEFT JOIN results r '
                    'ON r.hash = f.hash GROUP BY f.path')
    n_done = len(done)
    print('       (%d of %d images in the catalogue after the kill)' % (n_done, N))
    check(0 < n_done < N, 'the kill came mid-run')
    check(all(c == 2 for _, c in done), 'every image in the catalogue has both results')
    paths = {p for p, _ in done}
    check(all(p in paths for p in reported), 'every reported image is in the catalogue')
    snap = rows(db, 'SELECT * FROM results ORDER BY id')

    rc, _, err = run(cmd, timeout=120)
    s = u.summary(err)
    check(rc == 0 and s is not None and s['indexed'] == N - n_done and s['done'] == n_done,
          're-run runs exactly the %d missing images (rc %d, %s)' % (N - n_done, rc, s))
    rc, _, err = run(cmd, timeout=60)
    s = u.summary(err)
    check(s is not None and s['indexed'] == 0 and s['done'] == N,
          'a third run finds everything done (%s)' % s)
    after = rows(db, 'SELECT * FROM results ORDER BY id')
    check(after[:len(snap)] == snap, 'results written before the kill are kept unchanged')
    check(rows(db, 'SELECT count(*), count(DISTINCT hash) FROM files') == [(N, N)],
          '%d files, each once' % N)
    check(rows(db, 'SELECT count(*) FROM results') == [(2 * N,)], '%d results: none '
          'duplicated, none missing' % (2 * N))
    print('%d failure(s)' % u.failures)
    return 1 if u.failures else 0


if __name__ == '__main__':
    sys.exit(main())
