#!/usr/bin/env python3
"""`pg index` error paths give clear messages (standard library).

usage: cli_index_errors.py PG MODEL_DIR IMAGE

- a folder that does not exist: exit 1, the message names it;
- an unreadable subfolder: a note naming it, the run goes on and indexes the rest;
- an unreadable top folder: exit 1, "cannot read this folder";
- a read-only database file, and a new database in a read-only folder: exit 1, "read-only";
- a database of a newer schema version: refused, nothing written;
- an SQLite file that is not a catalogue: refused.
Permission cases run pg as `nobody` through setpriv when the test runs as root (root ignores
file modes); without setpriv as root they are reported as skipped.
"""
import os
import shutil
import sqlite3
import stat
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import index_util as u  # noqa: E402
from index_util import check, rows, run  # noqa: E402


def as_user():
    """A command prefix that drops root, [] when not root, None when root cannot be dropped."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which('setpriv')
    if not setpriv:
        return None
    return [setpriv, '--reuid=65534', '--regid=65534', '--clear-groups']


def main():
    pg, model, image = sys.argv[1:4]
    pg, model = os.path.abspath(pg), os.path.abspath(model)
    tmp = tempfile.mkdtemp(prefix='pg-index-err-')
    os.chmod(tmp, 0o755)
    base = [pg, 'index', '-m', model, '--max-tokens', '8', '--threads', '2']

    missing = os.path.join(tmp, 'no-such-folder')
    rc, _, err = run(base + ['--db', os.path.join(tmp, 'x.sqlite'), missing])
    check(rc == 1 and 'no-such-folder' in err and 'No such file' in err,
          'missing folder: %s' % err.strip())

    drop = as_user()
    if drop is None:
        print('skip  permission cases (root without setpriv)')
    else:
        permissions(base, drop, tmp, image)

    # A newer schema: refused before anything is written.
    lib = os.path.join(tmp, 'plain')
    u.padded_copies(image, lib, 1)
    newer = os.path.join(tmp, 'newer.sqlite')
    con = sqlite3.connect(newer)
    con.execute('PRAGMA user_version = 7')
    con.commit()
    con.close()
    rc, _, err = run(base + ['--db', newer, lib])
    check(rc == 1 and 'schema version 7 is newer' in err, 'newer schema: %s' % err.strip())
    check(rows(newer, "SELECT count(*) FROM sqlite_master") == [(0,)], 'newer schema: untouched')

    other = os.path.join(tmp, 'other.sqlite')
    con = sqlite3.connect(other)
    con.execute('CREATE TABLE t (x)')
    con.commit()
    con.close()
    rc, _, err = run(base + ['--db', other, lib])
    check(rc == 1 and 'not a pg index catalogue' in err, 'foreign SQLite file: %s' % err.strip())

    rc, _, err = run(base + ['--db', os.path.join(tmp, 'ok.sqlite'), '--tasks', 'translate', lib])
    check(rc == 1 and "unknown task 'translate'" in err, 'bad --tasks: %s' % err.strip())
    print('%d failure(s)' % u.failures)
    return 1 if u.failures else 0


def permissions(base, drop, tmp, image):
    # An unreadable subfolder is a note; the readable image beside it is indexed.
    lib = os.path.join(tmp, 'lib')
    u.padded_copies(image, lib, 1)
    locked = os.path.join(lib, 'locked')
    u.padded_copies(image, locked, 1)
    os.chmod(locked, 0)
    writable = os.path.join(tmp, 'w')
    os.mkdir(writable)
    os.chmod(writable, 0o777)
    db = os.path.join(writable, 'cat.sqlite')
    rc, _, err = run(drop + base + ['--db', db, lib])
    s = u.summary(err)
    check(rc == 0 and 'locked: cannot read this folder: Permission denied' in err and
          s is not None and s['indexed'] == 1, 'unreadable subfolder: a note, the run goes on '
          '(%s)' % err.strip().splitlines()[0] if err.strip() else 'no output')

    rc, _, err = run(drop + base + ['--db', db, locked])
    check(rc == 1 and 'cannot read this folder' in err, 'unreadable top folder: %s'
          % err.strip())
    os.chmod(locked, 0o755)
    # Once readable, the file inside is indexed; locked again, its row is not pruned.
    rc, _, err = run(drop + base + ['--db', db, lib])
    inside = os.path.join(os.path.realpath(locked), 'copy000.jpg')
    had = rows(db, 'SELECT count(*) FROM files WHERE path = ?', (inside,))
    os.chmod(locked, 0)
    rc, _, err = run(drop + base + ['--db', db, lib])
    check(had == [(1,)] and rows(db, 'SELECT count(*) FROM files WHERE path = ?', (inside,)) ==
          [(1,)], 'an unreadable subfolder\'s rows are kept (unseen is not gone)')
    os.chmod(locked, 0o755)

    # A read-only database file.
    os.chmod(db, 0o444)
    before = rows(db, 'SELECT count(*) FROM results')
    rc, _, err = run(drop + base + ['--db', db, '--prompt', 'caption de', lib])
    check(rc == 1 and 'read-only' in err and 'cat.sqlite' in err,
          'read-only database: %s' % err.strip())
    check(rows(db, 'SELECT count(*) FROM results') == before, 'read-only database: unchanged')

    # A new database in a folder that cannot be written.
    ro = os.path.join(tmp, 'ro')
    os.mkdir(ro)
    os.chmod(ro, 0o555)
    rc, _, err = run(drop + base + ['--db', os.path.join(ro, 'new.sqlite'), lib])
    check(rc == 1 and 'new.sqlite' in err and ('read-only' in err or 'writable' in err),
          'database in a read-only folder: %s' % err.strip())
    os.chmod(db, 0o644)


if __name__ == '__main__':
    sys.exit(main())
